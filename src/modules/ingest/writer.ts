// Group commit. Requests append their events to one in-memory queue; a writer takes up to
// `batchMax` events and commits them in one statement (one transaction), then answers every request
// in the batch. A new batch starts as soon as a writer slot is free, so under load batches grow by
// themselves and at rest an event waits for nothing. The queue is bounded: past `queueMax` queued
// events a request is refused (429) instead of growing memory without limit.
import type { Db } from "../../db/db.ts";
import { RETRYABLE_SQLSTATES, isDataError, isUnavailable, sqlState } from "../../db/db.ts";
import type { Clock } from "../../shared/clock.ts";
import { AppError } from "../../shared/errors.ts";
import { identityKey, type PreparedEvent } from "./core/event.ts";
import { Partitions, ROLLUP_SLOTS, codeKey, commitBatch, findIdentities, monthOf } from "./store.ts";

export type Outcome =
  /** Stored now. */
  | { kind: "created"; lagoId: string }
  /** Stored before with the same payload: nothing new is stored. */
  | { kind: "duplicate"; lagoId: string; tsMicros: number }
  /** The identity is taken by an event with another payload: rejected, the stored one unchanged. */
  | { kind: "conflict" }
  /** The database refused this event's data (a value the validator let through). */
  | { kind: "invalid"; reason: string };

export interface WriterOptions {
  batchMax: number;
  queueMax: number;
  writers: number;
}

export interface WriterMetrics {
  batch(size: number, seconds: number): void;
  outcome(kind: Outcome["kind"] | "rejected", n: number): void;
}

interface Request {
  outcomes: Outcome[];
  remaining: number;
  resolve: (o: Outcome[]) => void;
  reject: (e: unknown) => void;
  failed: boolean;
}

interface Entry {
  event: PreparedEvent;
  key: string;
  request: Request;
  index: number;
  /** Times this entry was set aside because its code was busy (see setAside). */
  parks: number;
}

const MAX_ATTEMPTS = 5;
/** Waits before a set-aside entry is queued again: 5 ms, doubling, at most this. */
const PARK_MAX_MS = 200;
const DAY_MICROS = 86_400_000_000;

export class QueueFullError extends AppError {
  constructor(retryAfterSeconds: number) {
    super("too_many_requests", "ingest_queue_full", "the ingest queue is full; retry after the delay in Retry-After", undefined, {
      "retry-after": String(retryAfterSeconds),
    });
  }
}

export class EventWriter {
  private queue: Entry[] = [];
  private head = 0;
  private inFlight = 0;
  private scheduled = false;
  private drainWaiters: (() => void)[] = [];
  /** Entries set aside while their code is busy (a metric's rebuild holds its lock), not yet queued again. */
  private parked = 0;
  /** Rollup slots not used by a batch in flight (see ROLLUP_SLOTS). */
  private freeSlots: number[];
  private closed = false;
  private readonly committedListeners: (() => void)[] = [];

  constructor(
    private readonly db: Db,
    private readonly partitions: Partitions,
    private readonly clock: Clock,
    private readonly opts: WriterOptions,
    private readonly metrics: WriterMetrics,
  ) {
    // Spread processes over the slot range so writers of different processes rarely share a slot.
    const base = (process.pid * opts.writers) % ROLLUP_SLOTS;
    this.freeSlots = Array.from({ length: opts.writers }, (_, i) => (base + i) % ROLLUP_SLOTS);
  }

  /** Called after a batch that stored new events committed (invoicing's advance charges look at their queue). */
  onCommitted(listener: () => void): void {
    this.committedListeners.push(listener);
  }

  get queued(): number {
    return this.queue.length - this.head;
  }

  /** Events set aside while a metric's rebuild holds their code's lock (see setAside). */
  get waitingOnCodeLock(): number {
    return this.parked;
  }

  /** Resolves with one outcome per event once all of them are committed (or known duplicates). */
  submit(events: readonly PreparedEvent[]): Promise<Outcome[]> {
    if (this.closed) {
      return Promise.reject(new AppError("unavailable", "shutting_down", "the server is shutting down", undefined, { "retry-after": "1" }));
    }
    if (this.queued + this.parked + events.length > this.opts.queueMax && this.queued + this.parked > 0) {
      return Promise.reject(new QueueFullError(1));
    }
    return new Promise<Outcome[]>((resolve, reject) => {
      const request: Request = { outcomes: new Array(events.length), remaining: events.length, resolve, reject, failed: false };
      for (let i = 0; i < events.length; i++) {
        const event = events[i]!;
        this.queue.push({ event, key: identityKey(event), request, index: i, parks: 0 });
      }
      this.schedule();
    });
  }

  /** Stops taking events and resolves once everything queued has been committed. */
  async drain(): Promise<void> {
    this.closed = true;
    if (this.idle()) return;
    await new Promise<void>((resolve) => this.drainWaiters.push(resolve));
  }

  private idle(): boolean {
    return this.queued === 0 && this.inFlight === 0 && this.parked === 0;
  }

  private schedule(): void {
    if (this.scheduled || this.inFlight >= this.opts.writers || this.queued === 0) return;
    this.scheduled = true;
    // setImmediate: events that arrive in the same I/O turn join the same batch.
    setImmediate(() => {
      this.scheduled = false;
      while (this.inFlight < this.opts.writers && this.queued > 0) this.startBatch();
    });
  }

  private startBatch(): void {
    const end = Math.min(this.queue.length, this.head + this.opts.batchMax);
    const batch = this.queue.slice(this.head, end);
    this.head = end;
    if (this.head > 4096 && this.head * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.head);
      this.head = 0;
    }
    this.inFlight++;
    const slot = this.freeSlots.pop() ?? 0;
    const started = performance.now();
    this.commit(batch, slot)
      .then(
        () => this.metrics.batch(batch.length, (performance.now() - started) / 1000),
        (err) => this.failBatch(batch, err),
      )
      .finally(() => {
        this.freeSlots.push(slot);
        this.inFlight--;
        if (this.queued > 0) this.schedule();
        else if (this.idle()) for (const w of this.drainWaiters.splice(0)) w();
      });
  }

  private async commit(batch: Entry[], slot: number): Promise<void> {
    // One row per identity: later entries with the same identity (retries inside the batch, or the
    // same event sent by two requests at once) are judged against what the first one stored.
    const leaders = new Map<string, Entry>();
    for (const entry of batch) if (!leaders.has(entry.key)) leaders.set(entry.key, entry);
    // Any fixed order works for lock ordering, as long as every writer uses the same one.
    const rows = [...leaders.values()].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    const months = new Set<string>();
    const events = new Array<PreparedEvent>(rows.length);
    let day = NaN;
    for (let i = 0; i < rows.length; i++) {
      const e = (events[i] = rows[i]!.event);
      // Events of one day share a month: most batches format it once.
      const d = Math.floor(e.tsMicros / DAY_MICROS);
      if (d !== day) months.add(monthOf(e.tsMicros));
      day = d;
    }
    await this.partitions.ensure(months);

    let created: Map<number, string>;
    try {
      // The code locks and the insert commit together, in one round trip (see commitBatch): a
      // metric's backfill never misses nor double counts this batch.
      const result = await this.withRetry(() => commitBatch(this.db, events, this.clock.now(), slot));
      if (result.busy.size > 0) return await this.setAside(batch, result.busy, slot);
      created = result.created;
    } catch (err) {
      if (!isDataError(err)) throw err;
      if (rows.length === 1) {
        for (const entry of batch) this.settle(entry, { kind: "invalid", reason: (err as Error).message });
        this.metrics.outcome("invalid", batch.length);
        return;
      }
      // A value the database refuses: commit the rest in halves so one bad event fails alone.
      const half = new Set(rows.slice(0, rows.length >> 1).map((r) => r.key));
      await this.commit(batch.filter((e) => half.has(e.key)), slot);
      await this.commit(batch.filter((e) => !half.has(e.key)), slot);
      return;
    }

    // The usual batch: every event is new and appears once; each is "created".
    if (created.size === rows.length && rows.length === batch.length) {
      for (let i = 0; i < rows.length; i++) this.settle(rows[i]!, { kind: "created", lagoId: created.get(i + 1)! });
      this.metrics.outcome("created", rows.length);
      for (const listener of this.committedListeners) listener();
      return;
    }

    // What is stored under each identity of the batch: this batch's row, or an earlier one.
    const stored = new Map<string, StoredEvent>();
    const notNew: Entry[] = [];
    rows.forEach((r, i) => {
      const lagoId = created.get(i + 1);
      if (lagoId !== undefined) stored.set(r.key, { payloadHash: r.event.payloadHash, tsMicros: r.event.tsMicros, lagoId, createdNow: true });
      else notNew.push(r);
    });
    if (notNew.length > 0) {
      const found = await this.withRetry(() => findIdentities(this.db, notNew.map((r) => r.event)));
      for (const s of found) stored.set(notNew[s.index]!.key, { ...s, createdNow: false });
    }

    const counts = { created: 0, duplicate: 0, conflict: 0 };
    for (const entry of batch) {
      const s = stored.get(entry.key);
      let outcome: Outcome;
      if (s?.createdNow && leaders.get(entry.key) === entry) outcome = { kind: "created", lagoId: s.lagoId };
      // Not inserted and not found (see findIdentities): the same ids under another code, another
      // identity sharing the digest key, or the identity vanished (retention) between the two
      // statements; answering conflict is the safe side: nothing is overwritten or merged.
      else if (s === undefined || s.payloadHash !== entry.event.payloadHash) outcome = { kind: "conflict" };
      else outcome = { kind: "duplicate", lagoId: s.lagoId, tsMicros: s.tsMicros };
      counts[outcome.kind]++;
      this.settle(entry, outcome);
    }
    this.metrics.outcome("created", counts.created);
    if (counts.created > 0) for (const listener of this.committedListeners) listener();
    if (counts.duplicate) this.metrics.outcome("duplicate", counts.duplicate);
    if (counts.conflict) this.metrics.outcome("conflict", counts.conflict);
  }

  /**
   * A metric's rebuild holds the lock of some of the batch's codes (it can take seconds on a large
   * code): their entries wait aside and are queued again after a growing delay, while the rest of
   * the batch commits now. Nothing was stored by the attempt, so exactly-once is unchanged; the
   * queue bound counts the entries set aside.
   */
  private async setAside(batch: Entry[], busy: Set<string>, slot: number): Promise<void> {
    const waiting: Entry[] = [];
    const rest: Entry[] = [];
    for (const entry of batch) (busy.has(codeKey(entry.event.orgId, entry.event.code)) ? waiting : rest).push(entry);
    let parks = 0;
    for (const entry of waiting) parks = Math.max(parks, ++entry.parks);
    this.parked += waiting.length;
    setTimeout(
      () => {
        this.parked -= waiting.length;
        for (const entry of waiting) this.queue.push(entry);
        this.schedule();
      },
      Math.min(PARK_MAX_MS, 5 * 2 ** (parks - 1)),
    );
    if (rest.length > 0) await this.commit(rest, slot);
  }

  private async withRetry<T>(fn: () => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await fn();
      } catch (err) {
        const state = sqlState(err);
        if (attempt >= MAX_ATTEMPTS || state === undefined || !RETRYABLE_SQLSTATES.has(state)) throw err;
        await new Promise((r) => setTimeout(r, 5 * attempt));
      }
    }
  }

  private settle(entry: Entry, outcome: Outcome): void {
    const req = entry.request;
    if (req.failed) return;
    req.outcomes[entry.index] = outcome;
    if (--req.remaining === 0) req.resolve(req.outcomes);
  }

  private failBatch(batch: Entry[], err: unknown): void {
    for (const entry of batch) {
      const req = entry.request;
      if (req.failed) continue;
      req.failed = true;
      req.reject(
        isUnavailable(err)
          ? new AppError("unavailable", "database_unavailable", "the database is unavailable; nothing was stored, retry", undefined, {
              "retry-after": "1",
            })
          : err,
      );
    }
  }
}

interface StoredEvent {
  payloadHash: number;
  tsMicros: number;
  lagoId: string;
  /** Inserted by this batch (then only the first entry of the identity is "created"). */
  createdNow: boolean;
}
