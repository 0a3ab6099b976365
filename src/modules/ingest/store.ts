// SQL of the ingest module: the group-commit statement, the naive per-request path (benchmark
// baseline), partition management, and event reads.
import { createHash } from "node:crypto";
import type { Db, Queryable } from "../../db/db.ts";
import type { PreparedEvent } from "./core/event.ts";
import { intArrayLiteral, textArrayLiteral } from "./core/pg_array.ts";

/**
 * The identity digests, computed by the database from the ids so every writer (batch, naive, a
 * JetStream worker) derives them identically; MD5 is stable across PostgreSQL versions.
 */
/** 32 bits suffice for finding an event by transaction_id alone (migration 0015). */
export const TX_HASH = (tx: string) => `('x' || left(md5(${tx}), 8))::bit(32)::int4`;
/** The identity digest, as hex; as a uuid (KEY_DIGEST) it is the event's lago_id. */
const KEY_DIGEST_HEX = (sub: string, tx: string) => `md5(length(${sub})::text || ':' || ${sub} || ${tx})`;
export const KEY_DIGEST = (sub: string, tx: string) => `${KEY_DIGEST_HEX(sub, tx)}::uuid`;
/**
 * The identity's key in event_identities (migration 0019): the digest's first 64 bits, beside
 * TX_HASH. A key match is a candidate, not a verdict: findIdentities answers "stored" only when it
 * also finds the stored event with these ids, so distinct identities sharing a key are never merged.
 */
const KEY_HASH_OF_HEX = (hex: string) => `('x' || left(${hex}, 16))::bit(64)::int8`;
export const KEY_HASH = (sub: string, tx: string) => KEY_HASH_OF_HEX(KEY_DIGEST_HEX(sub, tx));

/**
 * The metrics with hourly rollups (the others are computed from raw events). Rollups hold the
 * event's value for the metric (METRIC_VALUE, through `metering_value` of the 0005 migration) and
 * its dims (METRIC_DIMS); ingest, the backfill and usage reads all use these two expressions.
 */
export const ROLLED_UP_AGGREGATIONS = "('count_agg', 'sum_agg', 'max_agg')";
export const METRIC_VALUE = (props: string, metric: string) =>
  `CASE WHEN ${metric}.aggregation_type = 'count_agg' THEN NULL ELSE metering_value(${props}, ${metric}.field_name) END`;

/**
 * The event's values for the metric's filter keys as canonical JSON text (jsonb prints an object's
 * keys in one fixed order), keeping only values the metric declares: charge filters can name no
 * others, so anything else could match no filter (and would only multiply rollup rows). '' when
 * none is left. Inline SQL rather than a function: PostgreSQL cannot inline a function holding a
 * subquery, and the call costs three times the expression on the ingest path.
 * A metric whose charges price by group keys (`rollup_group_keys`, migration 0020, kept by
 * metering) also keeps the event's value of each such key, any value (null/absent: left out, as
 * `props ->> key` reads it back); a key that is both keeps any value, which matches no filter
 * the declared values would not. The first test is true only when both lists are empty (filters
 * are objects, group keys strings): one comparison per event, as before 0020, for the common
 * metric without either; with filters only, the second branch is the expression of before.
 */
export const METRIC_DIMS = (props: string, metric: string) =>
  `CASE WHEN ${metric}.filters = ${metric}.rollup_group_keys THEN ''
   WHEN ${metric}.rollup_group_keys = '[]'::jsonb THEN coalesce(
     (SELECT jsonb_object_agg(fl ->> 'key', ${props} ->> (fl ->> 'key'))::text FROM jsonb_array_elements(${metric}.filters) AS fl
       WHERE (fl -> 'values') ? (${props} ->> (fl ->> 'key'))), '')
   ELSE coalesce(
     (SELECT jsonb_object_agg(d.k, d.v)::text FROM (
        SELECT fl ->> 'key' AS k, ${props} ->> (fl ->> 'key') AS v FROM jsonb_array_elements(${metric}.filters) AS fl
         WHERE (fl -> 'values') ? (${props} ->> (fl ->> 'key'))
        UNION ALL
        SELECT g.k, ${props} ->> g.k FROM jsonb_array_elements_text(${metric}.rollup_group_keys) AS g(k)
         WHERE ${props} ->> g.k IS NOT NULL) d), '') END`;

/**
 * The rollups of the live count/sum/max metric of each new event's code (a code has at most one
 * live metric), from `source`: the new events with their metric's columns (`fm` of INSERT_BATCH;
 * metric_id null: none). `events_count`, `value_sum` and `value_max` aggregate the events the
 * metric counts (count: all; sum and max: those with a numeric value, as Lago's numeric
 * condition); a metric with `counts_events` (migration 0021) also keeps every event of its code in
 * `all_count` — rows with events_count 0 then exist, and reads skip them — instead of
 * event_rollups_hourly. value_sum stays null while no counted event has a value.
 */
const METRIC_ROLLUP_UPSERT = (source: string, slot: string) => `
  INSERT INTO metric_rollups_hourly AS r (org_id, metric_id, external_subscription_id, dims, hour, slot, events_count, value_sum, value_max, all_count)
  SELECT f.org_id, f.metric_id, f.sub, ${METRIC_DIMS("f.props", "f")}, date_trunc('hour', f.ts), ${slot},
         count(*) FILTER (WHERE f.aggregation_type = 'count_agg' OR v.value IS NOT NULL), sum(v.value), max(v.value),
         count(*) FILTER (WHERE f.counts_events)
    FROM ${source} f
    CROSS JOIN LATERAL (SELECT ${METRIC_VALUE("f.props", "f")} AS value) v
   WHERE f.metric_id IS NOT NULL AND (f.counts_events OR f.aggregation_type = 'count_agg' OR v.value IS NOT NULL)
   GROUP BY 1, 2, 3, 4, 5 ORDER BY 1, 2, 3, 4, 5
  ON CONFLICT (org_id, metric_id, external_subscription_id, dims, hour, slot) DO UPDATE
     SET events_count = r.events_count + excluded.events_count,
         value_sum = coalesce(r.value_sum + excluded.value_sum, r.value_sum, excluded.value_sum),
         value_max = greatest(r.value_max, excluded.value_max),
         all_count = r.all_count + excluded.all_count`;

/**
 * New events whose code feeds a metric with a live charge paid in advance wait in
 * `advance_charge_events` for the invoicing module's AdvanceBilling worker (migration 0016), in
 * arrival order (within a batch by timestamp: its rows come sorted by identity). The uncorrelated
 * EXISTS is a one-time filter over an index that is empty while no organization sells in advance:
 * then the queue costs ingest nothing per event.
 */
const QUEUE_ADVANCE_EVENTS = `
  INSERT INTO advance_charge_events (org_id, lago_event_id, external_subscription_id, transaction_id, code, ts, properties, created_at)
  SELECT f.org_id, f.key_digest, f.sub, f.tx, f.code, f.ts, f.props, $9::timestamptz
    FROM fresh f
   WHERE EXISTS (SELECT 1 FROM billable_metrics WHERE has_advance_charges AND deleted_at IS NULL)
     AND EXISTS (SELECT 1 FROM billable_metrics a
                  WHERE a.org_id = f.org_id AND a.code = f.code AND a.has_advance_charges AND a.deleted_at IS NULL)
   ORDER BY f.ts, f.n`;

/**
 * One statement per batch: identities first (ON CONFLICT DO NOTHING decides, for the life of the
 * data, which events are new), then only the new events go to `events`, into the hourly counts
 * per code (event_rollups_hourly, or the all_count of the code's metric when it keeps them) and
 * into the hourly rollups of the live count/sum/max metric their code feeds (METRIC_ROLLUP_UPSERT). Atomic
 * as one statement; returns the ordinals (1-based) and lago ids of the new rows. Callers sort rows
 * by identity so concurrent batches lock index entries in one order, and run it after
 * `lockCodesShared` in the same transaction (see there). `fresh` matches an inserted identity row
 * on all its columns, so two ids of a batch sharing the 96-bit key never both go in (the second
 * one is not found by findIdentities, hence refused, never merged). The identity digest `kd` is
 * computed once per event (OFFSET 0 keeps the planner from inlining it into both of its uses).
 */
const INSERT_BATCH = `
WITH input AS (
  SELECT * FROM unnest($1::int[], $2::int8[], $3::int8[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[])
    WITH ORDINALITY AS t(org_id, payload_hash, ts_us, code, sub, tx, props, amount, n)
), typed AS (
  SELECT n, org_id, ${TX_HASH("tx")} AS tx_hash, ${KEY_HASH_OF_HEX("kd")} AS key_hash, kd::uuid AS key_digest, payload_hash,
         timestamptz 'epoch' + ts_us * interval '1 microsecond' AS ts, code, sub, tx, props::jsonb AS props, amount::numeric AS amount
  FROM (SELECT input.*, ${KEY_DIGEST_HEX("sub", "tx")} AS kd FROM input OFFSET 0) input
), ins AS (
  INSERT INTO event_identities (org_id, tx_hash, key_hash, payload_hash, ts)
  SELECT org_id, tx_hash, key_hash, payload_hash, ts FROM typed ORDER BY n
  ON CONFLICT DO NOTHING
  RETURNING org_id, tx_hash, key_hash, payload_hash, ts
), fresh AS (
  SELECT typed.* FROM typed JOIN ins USING (org_id, tx_hash, key_hash, payload_hash, ts)
), ev AS (
  INSERT INTO events (org_id, ts, code, external_subscription_id, transaction_id, properties, precise_total_amount_cents, created_at)
  SELECT org_id, ts, code, sub, tx, props, amount, $9::timestamptz FROM fresh
), fm AS (
  SELECT f.*, m.id AS metric_id, m.counts_events, m.aggregation_type, m.field_name, m.filters, m.rollup_group_keys
    FROM fresh f
    LEFT JOIN billable_metrics m
      ON m.org_id = f.org_id AND m.code = f.code AND m.deleted_at IS NULL AND m.aggregation_type IN ${ROLLED_UP_AGGREGATIONS}
), roll AS (
  INSERT INTO event_rollups_hourly AS r (org_id, external_subscription_id, code, hour, slot, events_count)
  SELECT org_id, sub, code, date_trunc('hour', ts), $10::smallint, count(*) FROM fm WHERE counts_events IS NOT TRUE
   GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4
  ON CONFLICT (org_id, external_subscription_id, code, hour, slot) DO UPDATE SET events_count = r.events_count + excluded.events_count
), metric_roll AS (
  ${METRIC_ROLLUP_UPSERT("fm", "$10::smallint")}
), advance AS (
  ${QUEUE_ADVANCE_EVENTS}
)
SELECT n::int AS n, key_digest::text AS lago_id FROM fresh`;

/**
 * Writers take a shared advisory lock per (organization, code) of their batch, in a statement of
 * their own before INSERT_BATCH, so INSERT_BATCH's snapshot is taken once the lock is held. A
 * metric's backfill takes the same lock exclusively (metering's `rebuildMetricRollups`): a batch
 * either committed before the backfill reads `events` (the backfill counts its events) or starts
 * after the backfill committed (it sees the metric and adds its own rollups) — never both, never
 * neither. Keys are taken in one order (no deadlock between writers and a backfill locking two
 * codes). The key is one bigint, org_id in the high half and hashtext(code) in the low half: the
 * two-int space holds other modules' (namespace, id) locks, and small bigint keys (no org 0) the
 * migration's and partitions'. The group-commit function (commitBatch) only tries the locks: a
 * batch never waits behind a rebuild, its busy codes' events are retried later (EventWriter).
 */
export const CODE_LOCK_KEY = (org: string, code: string) => `((${org})::int8 << 32) | (hashtext(${code})::int8 & 4294967295)`;
const LOCK_CODES_SHARED = `
SELECT count(pg_advisory_xact_lock_shared(k.key))::int AS n
  FROM (SELECT DISTINCT ${CODE_LOCK_KEY("t.org_id", "t.code")} AS key FROM unnest($1::int[], $2::text[]) AS t(org_id, code) ORDER BY 1) k`;

/** The key of an (organization, code) pair: in BatchCommit.busy and wherever codes are deduplicated. */
export const codeKey = (orgId: number, code: string) => orgId + "\u0000" + code;

/** The distinct (organization, code) pairs of a batch, as two parallel arrays. */
function distinctCodes(events: readonly PreparedEvent[]): { orgs: number[]; codes: string[] } {
  const seen = new Set<string>();
  const orgs: number[] = [];
  const codes: string[] = [];
  for (const e of events) {
    const key = codeKey(e.orgId, e.code);
    if (seen.has(key)) continue;
    seen.add(key);
    orgs.push(e.orgId);
    codes.push(e.code);
  }
  return { orgs, codes };
}

export async function lockCodesShared(q: Queryable, events: readonly PreparedEvent[]): Promise<void> {
  const { orgs, codes } = distinctCodes(events);
  await q.query(LOCK_CODES_SHARED, [orgs, codes], { prepare: "ingest_lock_codes" });
}

/** Rollup slots: each concurrent writer adds to its own rollup rows (see the migration). */
export const ROLLUP_SLOTS = 64;

/** Inserts the new events of a batch; returns ordinal (1-based) -> lago id of each new one. */
export async function insertBatch(q: Queryable, events: readonly PreparedEvent[], createdAtMs: number, slot: number): Promise<Map<number, string>> {
  return new Map((await runBatch(q, INSERT_BATCH, "ingest_insert_batch", events, createdAtMs, slot)).map((r) => [Number(r.n), r.lago_id]));
}

async function runBatch(
  q: Queryable,
  sql: string,
  name: string,
  events: readonly PreparedEvent[],
  createdAtMs: number,
  slot: number,
  extra: readonly string[] = [],
): Promise<{ n: number; lago_id: string }[]> {
  const n = events.length;
  const org = new Array<number>(n);
  const payload = new Array<number>(n);
  const ts = new Array<number>(n);
  const code = new Array<string>(n);
  const subId = new Array<string>(n);
  const txId = new Array<string>(n);
  const props = new Array<string | null>(n);
  const amount = new Array<string | null>(n);
  for (let i = 0; i < n; i++) {
    const e = events[i]!;
    org[i] = e.orgId;
    payload[i] = e.payloadHash;
    ts[i] = e.tsMicros;
    code[i] = e.code;
    subId[i] = e.subscriptionId;
    txId[i] = e.transactionId;
    props[i] = e.propertiesJson;
    amount[i] = e.preciseAmount;
  }
  const { rows } = await q.query<{ n: number; lago_id: string }>(
    sql,
    // Array literals built here (core/pg_array.ts): the same text node-postgres would send, for less CPU.
    [
      intArrayLiteral(org),
      intArrayLiteral(payload),
      intArrayLiteral(ts),
      textArrayLiteral(code),
      textArrayLiteral(subId),
      textArrayLiteral(txId),
      textArrayLiteral(props),
      textArrayLiteral(amount),
      new Date(createdAtMs).toISOString(),
      slot,
      ...extra,
    ],
    { prepare: name },
  );
  return rows;
}

/**
 * The code locks and INSERT_BATCH in one PL/pgSQL call: one round trip and an implicit transaction
 * instead of BEGIN, the lock statement, the insert and COMMIT (four round trips, about half the
 * cost of a small batch). A volatile PL/pgSQL function takes a new snapshot per statement, so the
 * insert still sees everything committed before its locks were granted (see lockCodesShared).
 * The function's name carries a digest of its body: a process running other code never calls a
 * body it does not know, and creating it is idempotent.
 */
const BATCH_FUNCTION_BODY = `
BEGIN
  -- Try, never wait: a code whose lock a metric's rebuild holds (or waits for) is reported back
  -- as (-org_id, code) rows and nothing is inserted; the writer commits the batch's other codes
  -- at once and retries that code's events later (see EventWriter), so one rebuild never stalls
  -- the ingest of every other code behind it. $11/$12 are the batch's distinct (org, code) pairs
  -- (deduplicated by the caller: one plain scan here, no sort — a try-lock cannot deadlock).
  RETURN QUERY SELECT -t.org_id, t.code FROM unnest($11::int[], $12::text[]) AS t(org_id, code)
                WHERE NOT pg_try_advisory_xact_lock_shared(${CODE_LOCK_KEY("t.org_id", "t.code")});
  IF FOUND THEN
    RETURN;
  END IF;
  RETURN QUERY ${INSERT_BATCH.replace("SELECT n::int AS n, key_digest::text AS lago_id FROM fresh", "SELECT fresh.n::int, fresh.key_digest::text FROM fresh")};
END`;
const BATCH_FUNCTION = `ingest_batch_${createHash("sha1").update(BATCH_FUNCTION_BODY).digest("hex").slice(0, 12)}`;
const CREATE_BATCH_FUNCTION = `
CREATE OR REPLACE FUNCTION ${BATCH_FUNCTION}(int[], int8[], int8[], text[], text[], text[], text[], text[], timestamptz, smallint, int[], text[])
RETURNS TABLE (out_n int, out_lago_id text) LANGUAGE plpgsql VOLATILE AS $vv_ingest$${BATCH_FUNCTION_BODY}$vv_ingest$`;
const CALL_BATCH_FUNCTION = `SELECT out_n AS n, out_lago_id AS lago_id FROM ${BATCH_FUNCTION}($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`;

const functionReady = new WeakMap<Db, Promise<void>>();

/** Creates this code's batch function once per database (serialised: concurrent CREATE OR REPLACE fails). */
function ensureBatchFunction(db: Db): Promise<void> {
  let ready = functionReady.get(db);
  if (!ready) {
    ready = db
      .transaction(async (tx) => {
        await tx.query("SELECT pg_advisory_xact_lock(7221003)");
        const { rows } = await tx.query("SELECT 1 FROM pg_proc WHERE proname = $1", [BATCH_FUNCTION]);
        if (rows.length === 0) await tx.query(CREATE_BATCH_FUNCTION);
      })
      .catch((err: unknown) => {
        functionReady.delete(db);
        throw err;
      });
    functionReady.set(db, ready);
  }
  return ready;
}

export interface BatchCommit {
  /** Ordinal (1-based) -> lago id of each new event. */
  created: Map<number, string>;
  /**
   * Codes (as codeKey) whose lock a metric's rebuild holds or waits for: when any, nothing was
   * inserted and `created` is empty.
   */
  busy: Set<string>;
}

/**
 * Commits a batch on its own (one implicit transaction): the same effect as lockCodesShared then
 * insertBatch in a transaction, in one round trip — except that a code lock not granted at once
 * is not waited for: the batch then stores nothing and says which codes were busy.
 */
export async function commitBatch(db: Db, events: readonly PreparedEvent[], createdAtMs: number, slot: number): Promise<BatchCommit> {
  await ensureBatchFunction(db);
  const { orgs, codes } = distinctCodes(events);
  const rows = await runBatch(db, CALL_BATCH_FUNCTION, "ingest_commit_batch", events, createdAtMs, slot, [intArrayLiteral(orgs), textArrayLiteral(codes)]);
  const created = new Map<number, string>();
  const busy = new Set<string>();
  for (const r of rows) {
    const n = Number(r.n);
    if (n < 0) busy.add(codeKey(-n, r.lago_id));
    else created.set(n, r.lago_id);
  }
  return { created, busy };
}

export interface StoredIdentity {
  /** Index into the `keys` passed to findIdentities. */
  index: number;
  payloadHash: number;
  tsMicros: number;
  lagoId: string;
}

/**
 * The stored identities among `keys` (events that were not new): the identity row, and the stored
 * event at its time with the same ids and code. A key match without that event is not a stored
 * identity: another identity sharing the key (a digest collision) or the same ids under another
 * code (which is another payload) — either way the writer refuses the event, never merges it.
 */
export async function findIdentities(q: Queryable, keys: readonly PreparedEvent[]): Promise<StoredIdentity[]> {
  if (keys.length === 0) return [];
  const { rows } = await q.query<{ n: number; payload_hash: string; ts_us: string; lago_id: string }>(
    `SELECT k.n::int AS n, i.payload_hash::text AS payload_hash, (extract(epoch FROM i.ts) * 1000000)::int8::text AS ts_us,
            ${KEY_DIGEST("k.sub", "k.tx")}::text AS lago_id
       FROM unnest($1::int[], $2::text[], $3::text[], $4::text[]) WITH ORDINALITY AS k(org_id, sub, tx, code, n)
       JOIN event_identities i
         ON i.org_id = k.org_id AND i.tx_hash = ${TX_HASH("k.tx")} AND i.key_hash = ${KEY_HASH("k.sub", "k.tx")}
      WHERE EXISTS (SELECT 1 FROM events e WHERE e.org_id = k.org_id AND e.code = k.code AND e.external_subscription_id = k.sub
                       AND e.ts = i.ts AND e.transaction_id = k.tx)`,
    [keys.map((k) => k.orgId), keys.map((k) => k.subscriptionId), keys.map((k) => k.transactionId), keys.map((k) => k.code)],
  );
  return rows.map((r) => ({ index: Number(r.n) - 1, payloadHash: Number(r.payload_hash), tsMicros: Number(r.ts_us), lagoId: r.lago_id }));
}

/**
 * The baseline a typical ORM service would use: one transaction per request, one INSERT per table
 * and event. Only the ingest benchmark's `naive` workload runs it (INGEST_MODE=naive).
 */
export async function insertNaive(db: Db, e: PreparedEvent, createdAtMs: number): Promise<string | null> {
  return db.transaction(async (tx) => {
    await lockCodesShared(tx, [e]);
    const ts = new Date(Math.floor(e.tsMicros / 1000)).toISOString().replace("Z", String(e.tsMicros % 1000).padStart(3, "0") + "Z");
    const inserted = await tx.query<{ lago_id: string }>(
      `INSERT INTO event_identities (org_id, tx_hash, key_hash, payload_hash, ts)
       VALUES ($1, ${TX_HASH("$3::text")}, ${KEY_HASH("$2::text", "$3::text")}, $4, $5)
       ON CONFLICT DO NOTHING RETURNING ${KEY_DIGEST("$2::text", "$3::text")}::text AS lago_id`,
      [e.orgId, e.subscriptionId, e.transactionId, e.payloadHash, ts],
    );
    if (inserted.rows.length === 0) return null;
    await tx.query(
      `INSERT INTO events (org_id, ts, code, external_subscription_id, transaction_id, properties, precise_total_amount_cents, created_at)
       VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7::numeric, $8)`,
      [e.orgId, ts, e.code, e.subscriptionId, e.transactionId, e.propertiesJson, e.preciseAmount, new Date(createdAtMs)],
    );
    await tx.query(
      `WITH fm AS (
         SELECT $1::int AS org_id, $2::text AS sub, $3::text AS code, $4::jsonb AS props, $5::timestamptz AS ts,
                m.id AS metric_id, m.counts_events, m.aggregation_type, m.field_name, m.filters, m.rollup_group_keys
           FROM (SELECT 1) one
           LEFT JOIN billable_metrics m ON m.org_id = $1 AND m.code = $3 AND m.deleted_at IS NULL AND m.aggregation_type IN ${ROLLED_UP_AGGREGATIONS}
       ), roll AS (
         INSERT INTO event_rollups_hourly AS r (org_id, external_subscription_id, code, hour, slot, events_count)
         SELECT org_id, sub, code, date_trunc('hour', ts), 0, 1 FROM fm WHERE counts_events IS NOT TRUE
         ON CONFLICT (org_id, external_subscription_id, code, hour, slot) DO UPDATE SET events_count = r.events_count + 1
       )
       ${METRIC_ROLLUP_UPSERT("fm", "0")}`,
      [e.orgId, e.subscriptionId, e.code, e.propertiesJson, ts],
    );
    await tx.query(
      `INSERT INTO advance_charge_events (org_id, lago_event_id, external_subscription_id, transaction_id, code, ts, properties, created_at)
       SELECT $1, $2::uuid, $3, $4, $5, $6, $7::jsonb, $8
        WHERE EXISTS (SELECT 1 FROM billable_metrics a WHERE a.org_id = $1 AND a.code = $5 AND a.has_advance_charges AND a.deleted_at IS NULL)`,
      [e.orgId, inserted.rows[0]!.lago_id, e.subscriptionId, e.transactionId, e.code, ts, e.propertiesJson, new Date(createdAtMs)],
    );
    return inserted.rows[0]!.lago_id;
  });
}

// ---- partitions ---------------------------------------------------------------------------------

const MONTH_MS_APPROX = 31 * 86_400_000;

/** Months (as "YYYY_MM") whose partitions must exist for these event times. */
export function monthOf(tsMicros: number): string {
  const d = new Date(Math.floor(tsMicros / 1000));
  return `${d.getUTCFullYear()}_${String(d.getUTCMonth() + 1).padStart(2, "0")}`;
}

export function partitionBounds(month: string): { name: string; from: string; to: string } {
  const [y, m] = month.split("_").map(Number) as [number, number];
  const from = new Date(Date.UTC(y, m - 1, 1));
  const to = new Date(Date.UTC(y, m, 1));
  return { name: `events_p${month}`, from: from.toISOString(), to: to.toISOString() };
}

/** Creates monthly event partitions on demand; remembers which exist so the hot path skips the check. */
export class Partitions {
  private known = new Set<string>();
  private pending = new Map<string, Promise<void>>();

  constructor(private readonly db: Db) {}

  async ensure(months: Iterable<string>): Promise<void> {
    const waits: Promise<void>[] = [];
    for (const month of months) {
      if (this.known.has(month)) continue;
      let p = this.pending.get(month);
      if (!p) {
        p = this.create(month).finally(() => this.pending.delete(month));
        this.pending.set(month, p);
      }
      waits.push(p);
    }
    if (waits.length > 0) await Promise.all(waits);
  }

  /** The current month and `ahead` months after it, so the hot path rarely creates one. */
  async ensureAround(nowMs: number, ahead = 2): Promise<void> {
    const months: string[] = [];
    for (let i = 0; i <= ahead; i++) months.push(monthOf((nowMs + i * MONTH_MS_APPROX) * 1000));
    months.push(monthOf(nowMs * 1000));
    await this.ensure(new Set(months));
  }

  /** Forgets a dropped partition (data lifecycle), so an event for its month creates it again. */
  forget(month: string): void {
    this.known.delete(month);
  }

  private async create(month: string): Promise<void> {
    const { name, from, to } = partitionBounds(month);
    // Serialised by an advisory lock: two processes creating the same partition would otherwise race.
    await this.db.transaction(async (tx) => {
      await tx.query("SELECT pg_advisory_xact_lock(7221002)");
      const exists = await tx.query("SELECT 1 FROM pg_class WHERE relname = $1 AND relkind IN ('r', 'p')", [name]);
      if (exists.rowCount === 0) {
        await tx.query(`CREATE TABLE ${name} PARTITION OF events FOR VALUES FROM ('${from}') TO ('${to}')`);
        // The query index and the hot-data index; the lifecycle slims both once the partition is old.
        await tx.query(`CREATE INDEX ${name}_main_idx ON ${name} (org_id, code, external_subscription_id, ts)`);
        await tx.query(`CREATE INDEX ${name}_recent_idx ON ${name} (org_id, ts)`);
      }
    });
    this.known.add(month);
  }
}
