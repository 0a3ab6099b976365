import type { Db, Queryable } from "../../db/db.ts";
import type { Clock } from "../../shared/clock.ts";
import type { Config } from "../../shared/config.ts";
import { notFound, validationFailed, type FieldErrors } from "../../shared/errors.ts";
import {
  DAY_MS,
  MAX_ID_LENGTH,
  isoFromMicros,
  isoFromMs,
  validateEvent,
  type PreparedEvent,
  type TimeWindow,
} from "./core/event.ts";
import { KEY_DIGEST, KEY_HASH, TX_HASH, insertNaive, monthOf, type Partitions } from "./store.ts";
import type { EventWriter, Outcome, WriterMetrics } from "./writer.ts";

export interface EventJson {
  lago_id: string;
  transaction_id: string;
  lago_customer_id: null;
  code: string;
  timestamp: string;
  precise_total_amount_cents: string | null;
  properties: Record<string, unknown>;
  lago_subscription_id: null;
  external_subscription_id: string;
  created_at: string;
}

export interface EventFilters {
  page: number;
  perPage: number;
  externalSubscriptionId?: string;
  code?: string;
  timestampFrom?: Date;
  timestampTo?: Date;
  /** Only events at or after the subscription's start (Lago's `timestamp_from_started_at`; needs externalSubscriptionId). */
  fromStartedAt?: boolean;
}

/** Where events go instead of the group-commit writer (the JetStream publisher); every outcome "created" once accepted. */
export interface EventSink {
  publish(events: readonly PreparedEvent[]): Promise<Outcome[]>;
}

const conflictDetails = { transaction_id: ["value_already_exist"] };

/** Accepts events (validation, identity, durable write) and reads them back. */
export class IngestService {
  /** Where GET /events reads: a read replica when configured (may lag), else the primary. */
  private reads: Queryable | null = null;

  constructor(
    private readonly db: Db,
    private readonly writer: EventWriter,
    private readonly partitions: Partitions,
    private readonly clock: Clock,
    private readonly config: Pick<Config, "retentionDays" | "ingest">,
    private readonly metrics: WriterMetrics,
    /** INGEST_MODE=jetstream: validated events go to the stream instead of the writer (src/modules/jetstream). */
    private readonly sink?: EventSink,
  ) {}

  /** GET /events reads from `reads` (src/db/replica.ts); GET /events/:transaction_id, the primary. */
  readFrom(reads: Queryable): void {
    this.reads = reads;
  }

  window(orgId: number): TimeWindow {
    const nowMs = this.clock.now(orgId);
    const days = this.config.retentionDays;
    return { nowMs, oldestMs: days > 0 ? nowMs - days * DAY_MS : 0, retentionDays: days };
  }

  /** POST /events: answers once the event is durable; 422 on invalid input or a conflicting duplicate. */
  async ingestOne(orgId: number, raw: unknown): Promise<EventJson> {
    const window = this.window(orgId);
    const v = validateEvent(raw, orgId, window);
    if (!v.ok) {
      this.metrics.outcome("rejected", 1);
      throw validationFailed(v.errors, "the event is invalid");
    }
    const outcome = await this.write([v.event]);
    const o = outcome[0]!;
    if (o.kind === "conflict") {
      throw validationFailed(conflictDetails, "an event with this transaction_id and external_subscription_id exists with another payload");
    }
    if (o.kind === "invalid") throw validationFailed({ event: [o.reason] }, "the event was refused by the database");
    return renderPrepared(v.event, o, window.nowMs);
  }

  /**
   * POST /events/batch. Invalid fields reject the whole batch (Lago's behaviour: nothing stored,
   * errors keyed by index). Identity is then judged event by event: new ones are stored, exact
   * retries are accepted, conflicting ones are refused and listed by index (422 when any).
   */
  async ingestBatch(orgId: number, raws: unknown[]): Promise<{ events: EventJson[]; conflicts: FieldErrors[] | null; conflictIndexes: number[] }> {
    const window = this.window(orgId);
    const prepared: PreparedEvent[] = [];
    const errors: Record<string, FieldErrors> = {};
    let invalid = 0;
    for (let i = 0; i < raws.length; i++) {
      const v = validateEvent(raws[i], orgId, window);
      if (v.ok) prepared.push(v.event);
      else {
        errors[String(i)] = v.errors;
        invalid++;
      }
    }
    if (invalid > 0) {
      this.metrics.outcome("rejected", invalid);
      throw validationFailed(errors, `${invalid} of ${raws.length} events are invalid; nothing was stored`);
    }
    const outcomes = await this.write(prepared);
    const events: EventJson[] = [];
    const conflictIndexes: number[] = [];
    const details: FieldErrors[] = [];
    outcomes.forEach((o, i) => {
      if (o.kind === "conflict" || o.kind === "invalid") {
        conflictIndexes.push(i);
        details.push(o.kind === "conflict" ? conflictDetails : { event: [o.reason] });
      } else events.push(renderPrepared(prepared[i]!, o, window.nowMs));
    });
    return { events, conflicts: details.length ? details : null, conflictIndexes };
  }

  private write(events: PreparedEvent[]): Promise<Outcome[]> {
    if (this.config.ingest.mode === "naive") return this.writeNaive(events);
    if (this.sink !== undefined) return this.sink.publish(events);
    return this.writer.submit(events);
  }

  private async writeNaive(events: PreparedEvent[]): Promise<Outcome[]> {
    const out: Outcome[] = [];
    for (const e of events) {
      await this.partitions.ensure([monthOf(e.tsMicros)]);
      // Benchmark baseline only: a repeated identity counts as a retry without comparing payloads.
      const lagoId = await insertNaive(this.db, e, this.clock.now(e.orgId));
      out.push(lagoId !== null ? { kind: "created", lagoId } : { kind: "duplicate", lagoId: "", tsMicros: e.tsMicros });
      this.metrics.outcome(lagoId !== null ? "created" : "duplicate", 1);
    }
    return out;
  }

  async list(orgId: number, f: EventFilters): Promise<{ events: EventJson[]; total: number }> {
    const where = ["org_id = $1"];
    const params: unknown[] = [orgId];
    let subParam = "";
    if (f.externalSubscriptionId !== undefined) {
      subParam = `$${params.push(f.externalSubscriptionId)}`;
      where.push(`external_subscription_id = ${subParam}`);
    }
    if (f.code !== undefined) where.push(`code = $${params.push(f.code)}`);
    if (f.timestampFrom !== undefined) where.push(`ts >= $${params.push(f.timestampFrom.toISOString())}`);
    if (f.timestampTo !== undefined) where.push(`ts <= $${params.push(f.timestampTo.toISOString())}`);
    if (f.fromStartedAt && f.externalSubscriptionId !== undefined) {
      // The live subscription's start (else the latest started one); no subscription: no bound, as in Lago.
      where.push(`ts >= COALESCE((SELECT s.started_at FROM subscriptions s
        WHERE s.org_id = $1 AND s.external_id = ${subParam} AND s.started_at IS NOT NULL
        ORDER BY s.status = 'active' DESC, s.started_at DESC LIMIT 1), '-infinity'::timestamptz)`);
    }
    const cond = where.join(" AND ");
    const reads = this.reads ?? this.db;
    const [rows, count] = await Promise.all([
      reads.query<EventRow>(
        `SELECT ${EVENT_COLUMNS} FROM events WHERE ${cond} ORDER BY ts DESC, transaction_id, external_subscription_id
         LIMIT ${f.perPage} OFFSET ${(f.page - 1) * f.perPage}`,
        params,
      ),
      reads.query<{ n: string }>(`SELECT count(*)::text AS n FROM events WHERE ${cond}`, params),
    ]);
    return { events: rows.rows.map(renderEventRow), total: Number(count.rows[0]?.n ?? 0) };
  }

  /** The first event (earliest) with this transaction_id, optionally for one subscription. */
  async get(orgId: number, transactionId: string, externalSubscriptionId?: string): Promise<EventJson> {
    // Ids that could never have been accepted (NUL, unpaired surrogates, too long) are simply not there.
    for (const id of [transactionId, externalSubscriptionId ?? ""]) {
      if (id.length > MAX_ID_LENGTH || id.includes("\u0000") || !id.isWellFormed()) throw notFound("event", "");
    }
    const params: unknown[] = [orgId, transactionId];
    // ts as text: a Date would drop the microseconds and the lookup below would miss the event.
    // The identity rows give the candidate times (their keys are digests); the events row decides.
    let sql = `SELECT ts::text AS ts FROM event_identities WHERE org_id = $1 AND tx_hash = ${TX_HASH("$2::text")}`;
    if (externalSubscriptionId !== undefined) sql += ` AND key_hash = ${KEY_HASH(`$${params.push(externalSubscriptionId)}::text`, "$2::text")}`;
    const ids = await this.db.query<{ ts: string }>(sql + " ORDER BY event_identities.ts", params);
    for (const id of ids.rows) {
      const p: unknown[] = [orgId, id.ts, transactionId];
      let q = `SELECT ${EVENT_COLUMNS} FROM events WHERE org_id = $1 AND ts = $2::timestamptz AND transaction_id = $3`;
      if (externalSubscriptionId !== undefined) q += ` AND external_subscription_id = $${p.push(externalSubscriptionId)}`;
      const row = (await this.db.query<EventRow>(q + " LIMIT 1", p)).rows[0];
      if (row) return renderEventRow(row);
    }
    throw notFound("event", transactionId);
  }
}

function renderPrepared(e: PreparedEvent, o: Outcome & { lagoId: string }, nowMs: number): EventJson {
  return {
    lago_id: o.lagoId,
    transaction_id: e.transactionId,
    lago_customer_id: null,
    code: e.code,
    timestamp: isoFromMicros(o.kind === "duplicate" ? o.tsMicros : e.tsMicros),
    precise_total_amount_cents: e.preciseAmount,
    properties: e.properties ?? {},
    lago_subscription_id: null,
    external_subscription_id: e.subscriptionId,
    created_at: isoFromMs(nowMs),
  };
}

/** The columns `renderEventRow` reads, from the events table aliased `e` (or unaliased with ""). */
export function eventColumns(alias = ""): string {
  const c = (name: string) => (alias ? `${alias}.${name}` : name);
  return `${KEY_DIGEST(c("external_subscription_id"), c("transaction_id"))}::text AS lago_id, ${c("transaction_id")} AS transaction_id,
  ${c("external_subscription_id")} AS external_subscription_id, ${c("code")} AS code,
  (extract(epoch FROM ${c("ts")}) * 1000000)::int8::text AS ts_us, ${c("properties")} AS properties,
  ${c("precise_total_amount_cents")}::text AS amount, ${c("created_at")} AS created_at`;
}
const EVENT_COLUMNS = eventColumns();

export interface EventRow {
  lago_id: string;
  transaction_id: string;
  external_subscription_id: string;
  code: string;
  ts_us: string;
  properties: Record<string, unknown> | null;
  amount: string | null;
  created_at: Date;
}

/** Lago's EventObject for a stored event. */
export function renderEventRow(r: EventRow): EventJson {
  return {
    lago_id: r.lago_id,
    transaction_id: r.transaction_id,
    lago_customer_id: null,
    code: r.code,
    timestamp: isoFromMicros(Number(r.ts_us)),
    precise_total_amount_cents: r.amount,
    properties: r.properties ?? {},
    lago_subscription_id: null,
    external_subscription_id: r.external_subscription_id,
    created_at: new Date(r.created_at).toISOString(),
  };
}

