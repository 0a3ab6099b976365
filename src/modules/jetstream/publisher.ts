// The API side of INGEST_MODE=jetstream: validated events go to the replicated stream, and a
// request is answered once JetStream acknowledged every one of its events (stored on a quorum of
// the stream's replicas). A batch travels as messages of up to NATS_EVENTS_PER_MESSAGE events, all
// published at once (asynchronous publishes), and is answered when the last acknowledgement
// arrives. Smaller requests of one organization arriving in the same turn of the event loop share
// a message (the group commit of direct mode, moved in front of the stream). A message per event
// would cost a publish, a replication round and an acknowledgement per event: measured, single
// events went at 0.17x direct mode that way. Shared messages change nothing for exactly-once: the
// ingest worker judges every event by its identity in the database; the stream's duplicate window
// only spares it exact repeats of a whole message.
import type { JetStreamClient } from "nats";
import type { Clock } from "../../shared/clock.ts";
import type { NatsConfig } from "../../shared/config.ts";
import { AppError } from "../../shared/errors.ts";
import type { PreparedEvent } from "../ingest/core/event.ts";
import { QueueFullError, type Outcome } from "../ingest/index.ts";
import { chunkEvents, encodeEvents, identityDigest, messageId } from "./core/message.ts";
import { subjectOf } from "./nats.ts";

export interface PublisherMetrics {
  /** Events JetStream acknowledged; `duplicate`: dropped as a repeat of a message id in the window. */
  published(n: number, duplicates: number, seconds: number): void;
  publishFailed(n: number): void;
}

export interface PublisherOptions {
  /** Events waiting for JetStream's acknowledgement before requests get 429 (INGEST_QUEUE_MAX). */
  queueMax: number;
}

const encoder = new TextEncoder();
/** Well under NATS's default max_payload (1 MB). */
const MAX_MESSAGE_BYTES = 512 * 1024;

interface Shared {
  events: PreparedEvent[];
  digests: string[];
  waiters: { resolve: (duplicate: boolean) => void; reject: (err: unknown) => void }[];
}

export class EventPublisher {
  private inFlight = 0;
  private closed = false;
  /** Small requests waiting for this turn's shared message, per organization. */
  private shared = new Map<number, Shared>();
  private flushScheduled = false;

  constructor(
    private readonly js: JetStreamClient,
    private readonly config: NatsConfig,
    private readonly clock: Clock,
    private readonly opts: PublisherOptions,
    private readonly metrics: PublisherMetrics,
  ) {}

  get pending(): number {
    return this.inFlight;
  }

  /**
   * Resolves once JetStream holds every event (each "created": its lago_id is the identity digest
   * the worker will store it under). Rejects with a 503 when the stream did not take them within
   * NATS_PUBLISH_TIMEOUT_MS; a client retry is then safe (same message ids, same identities).
   */
  async publish(events: readonly PreparedEvent[]): Promise<Outcome[]> {
    if (this.closed) throw new AppError("unavailable", "shutting_down", "the server is shutting down", undefined, { "retry-after": "1" });
    if (this.inFlight + events.length > this.opts.queueMax && this.inFlight > 0) throw new QueueFullError(1);
    this.inFlight += events.length;
    const started = performance.now();
    const digests = events.map((e) => identityDigest(e.subscriptionId, e.transactionId));
    try {
      if (events.length < this.config.eventsPerMessage) {
        const duplicate = await this.join(events, digests);
        this.metrics.published(events.length, duplicate ? events.length : 0, (performance.now() - started) / 1000);
        return digests.map((lagoId) => ({ kind: "created", lagoId }));
      }
      const chunks = chunkEvents(events, this.config.eventsPerMessage, MAX_MESSAGE_BYTES);
      let offset = 0;
      const acks = chunks.map((chunk) => {
        const ids = digests.slice(offset, (offset += chunk.length));
        return this.publishChunk(chunk, ids, started + this.config.publishTimeoutMs).then((duplicate) => (duplicate ? chunk.length : 0));
      });
      const duplicates = (await Promise.all(acks)).reduce((a, b) => a + b, 0);
      this.metrics.published(events.length, duplicates, (performance.now() - started) / 1000);
    } catch (err) {
      this.metrics.publishFailed(events.length);
      throw new AppError(
        "unavailable",
        "event_stream_unavailable",
        `the event stream did not acknowledge the event(s) within ${this.config.publishTimeoutMs} ms; retry (${(err as Error).message})`,
        undefined,
        { "retry-after": "1" },
      );
    } finally {
      this.inFlight -= events.length;
    }
    return digests.map((lagoId) => ({ kind: "created", lagoId }));
  }

  /** Adds a small request to its organization's shared message; resolves once that message is acknowledged. */
  private join(events: readonly PreparedEvent[], digests: readonly string[]): Promise<boolean> {
    const orgId = events[0]!.orgId;
    let group = this.shared.get(orgId);
    if (group === undefined) {
      group = { events: [], digests: [], waiters: [] };
      this.shared.set(orgId, group);
    }
    const g = group;
    return new Promise<boolean>((resolve, reject) => {
      for (let i = 0; i < events.length; i++) {
        g.events.push(events[i]!);
        g.digests.push(digests[i]!);
      }
      g.waiters.push({ resolve, reject });
      if (g.events.length >= this.config.eventsPerMessage) this.flush(orgId);
      else if (!this.flushScheduled) {
        this.flushScheduled = true;
        setImmediate(() => {
          this.flushScheduled = false;
          for (const org of [...this.shared.keys()]) this.flush(org);
        });
      }
    });
  }

  private flush(orgId: number): void {
    const g = this.shared.get(orgId);
    if (g === undefined) return;
    this.shared.delete(orgId);
    const deadline = performance.now() + this.config.publishTimeoutMs;
    const chunks = chunkEvents(g.events, this.config.eventsPerMessage, MAX_MESSAGE_BYTES);
    let offset = 0;
    const acks = chunks.map((chunk) => this.publishChunk(chunk, g.digests.slice(offset, (offset += chunk.length)), deadline));
    Promise.all(acks).then(
      (dups) => {
        const duplicate = dups.every(Boolean);
        for (const w of g.waiters) w.resolve(duplicate);
      },
      (err: unknown) => {
        for (const w of g.waiters) w.reject(err);
      },
    );
  }

  /** Stops taking events (requests in flight still finish). */
  close(): void {
    this.closed = true;
  }

  /** Publishes one message, retrying until `deadline` (a stream electing a new leader answers errors for a moment). */
  private async publishChunk(events: PreparedEvent[], digests: string[], deadline: number): Promise<boolean> {
    const orgId = events[0]!.orgId;
    const data = encoder.encode(encodeEvents(orgId, this.clock.now(orgId), events));
    const subject = subjectOf(this.config, orgId);
    const msgID = messageId(orgId, events, digests);
    for (let attempt = 1; ; attempt++) {
      const remaining = deadline - performance.now();
      try {
        // msgID travels as the Nats-Msg-Id header: JetStream's duplicate detection.
        const ack = await this.js.publish(subject, data, { msgID, timeout: Math.max(50, Math.min(remaining, 2_000)) });
        return ack.duplicate;
      } catch (err) {
        if (deadline - performance.now() <= 0) throw err;
        await new Promise((r) => setTimeout(r, Math.min(50 * attempt, 500, Math.max(1, deadline - performance.now()))));
      }
    }
  }
}
