// Usage benchmark (`npm run bench:usage`): current_usage of one subscription holding N events (10
// million by default) in its open period, on PostgreSQL (DATABASE_URL, an empty database).
//
// Through the API: a count, a sum and a max metric (rolled up hourly) and a unique_count one (raw by
// design), a monthly plan with a graduated charge on the count and standard charges on the others
// (the unique_count charge is added later), a customer, and a subscription started at the beginning
// of the current month (UTC, calendar billing). Event i has the code of metric i % 4, timestamp
// spread evenly from the start of the month to now, and properties the metrics read.
//
// Loading: POST /api/v1/events/batch with 10,000 events per request, several in flight. The first
// `probe` events always go through the API; when the API rate projects more than ~6 minutes for N
// (`--load auto`, the default), the rest is written with SQL that stores the same rows the server
// stores: per chunk, one statement built like the server's own ingest statement (identities with the
// server's digests and payload hash, events, hourly counts and metric rollups, with the server's
// value and dims expressions), fed by generate_series instead of the request. The load is then
// checked: identities, events and hourly counts all equal N; metric rollups equal raw aggregates on
// sampled hours; a sample of events re-sent through the API is recognized as retries (same identity
// and payload hash), storing nothing.
//
// Measured, in one run: sequential current_usage requests (sum/count/max charges: rollups), the
// same through wrk with a few connections, the same aggregations as a raw scan of `events` in SQL
// (and their results must equal the usage's units exactly), then current_usage with the
// unique_count charge added to the plan (a raw scan by design). Then the sum charge priced by
// pricing group keys (region: 4 values; region and project: 100 pairs), each time through a plan
// write that rebuilds the sum metric's rollups with the keys (timed): current_usage from the rollups,
// then from raw events (the metric's rollup_group_keys emptied in SQL, so reads fall back), the two
// answers compared. Last, groupedIngestCost: commitBatch's DB time per variant of filters and group
// keys, alternating, in a database of its own. Progress goes to stderr; the last line on stdout is
// one JSON object. The goal (p95 < 20 ms from rollups) is reported, not asserted.
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import pg from "pg";
import { KEY_HASH, METRIC_DIMS, METRIC_VALUE, TX_HASH } from "../src/modules/ingest/store.ts";
import { wrk, type Workload } from "./ingest.ts";
import { startServer, type BenchServer } from "./server.ts";
import { Api, latencySummary, loadavg, machine, percentile, pool, requireEmptyDatabase, round2 } from "./support.ts";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const log = (s: string) => process.stderr.write(`[bench:usage] ${s}\n`);

const CODES = { count: "bench_api_calls", sum: "bench_storage_bytes", max: "bench_cpu_peak", unique: "bench_active_users" } as const;
/** Event i has code CODE_LIST[i % 4]. */
const CODE_LIST = [CODES.count, CODES.sum, CODES.max, CODES.unique];
const CUSTOMER = "bench_usage_customer";
/** The sum events' regions (event i: GROUP_REGIONS[(i >> 2) % 4]). */
const GROUP_REGIONS = ["eu-west", "us-east", "ap-south", "sa-east"];
const SUB = "bench_usage_sub";
const PLAN = "bench_usage_plan";

const PER_REQUEST = 10_000;
const API_CONCURRENCY = 4;
const API_BUDGET_SECONDS = 360;
const SQL_CHUNK = 250_000;
const SQL_PARALLEL = 2;
/**
 * Rollup slots per SQL writer: events spread over them as a server's writers spread theirs (2
 * workers x 2 writers = 4 slots per hour on this machine), so usage reads as many rollup rows as it
 * would after ingestion through the API.
 */
const SQL_ROLLUP_SLOTS = 4;

/** Where the events go in time: event i at fromSec + floor(i * spanSec / n) (unix seconds). */
interface Layout {
  n: number;
  fromSec: number;
  spanSec: number;
}

const tsOf = (i: number, l: Layout) => l.fromSec + Math.floor((i * l.spanSec) / l.n);

/** Event i's properties as canonical JSON (keys sorted, as the server stores and digests them). */
function propsOf(i: number): string {
  switch (i % 4) {
    case 0:
      return '{"region":"eu-west"}';
    case 1:
      // Grouped charges price these by region (4 values) and by region and project (100 pairs).
      return `{"bytes":${(i * 37) % 1000},"project":"p_${(i >> 2) % 25}","region":"${GROUP_REGIONS[(i >> 2) % 4]}"}`;
    case 2: {
      const v = (i * 13) % 10000;
      return `{"cpu":"${Math.floor(v / 100)}.${String(v % 100).padStart(2, "0")}","region":"eu-west"}`;
    }
    default:
      return `{"region":"eu-west","user_id":"u_${(i * 7) % 50000}"}`;
  }
}

const eventJson = (i: number, l: Layout) =>
  `{"transaction_id":"tx_${i}","external_subscription_id":"${SUB}","code":"${CODE_LIST[i % 4]}","timestamp":${tsOf(i, l)},"properties":${propsOf(i)}}`;

// The same events in SQL ($2 <= i < $3): code, timestamp and properties exactly as propsOf/tsOf
// build them, and the payload hash as validateEvent computes it (53 bits of MD5 of code NUL
// timestamp-in-microseconds-as-given NUL properties NUL amount). Then the server's ingest
// statement (src/modules/ingest/store.ts INSERT_BATCH) with its own expressions, without its
// ON CONFLICT join: the load adds event_identities' primary key after the last chunk, which fails
// on any repeated identity.
const LOAD_SQL = `
WITH g AS (
  SELECT $1::int AS org_id, ($8::text[])[(i % 4)::int + 1] AS code, $7::text AS sub, 'tx_' || i AS tx,
         ($9::int * ${SQL_ROLLUP_SLOTS} + (i / 4) % ${SQL_ROLLUP_SLOTS})::smallint AS slot,
         $5::int8 + (i * $6::int8) / $4::int8 AS ts_s,
         CASE i % 4
           WHEN 0 THEN '{"region":"eu-west"}'
           WHEN 1 THEN '{"bytes":' || ((i * 37) % 1000) || ',"project":"p_' || ((i / 4) % 25) || '","region":"'
                       || (ARRAY['${GROUP_REGIONS.join("','")}'])[((i / 4) % 4)::int + 1] || '"}'
           WHEN 2 THEN '{"cpu":"' || ((i * 13) % 10000) / 100 || '.' || lpad((((i * 13) % 10000) % 100)::text, 2, '0') || '","region":"eu-west"}'
           ELSE '{"region":"eu-west","user_id":"u_' || ((i * 7) % 50000) || '"}'
         END AS props
    FROM generate_series($2::int8, $3::int8 - 1) AS i
), typed AS (
  SELECT org_id, ${TX_HASH("tx")} AS tx_hash, ${KEY_HASH("sub", "tx")} AS key_hash,
         ('x' || left(md5(convert_to(code, 'UTF8') || '\\x00'::bytea || convert_to((ts_s * 1000000)::text, 'UTF8') || '\\x00'::bytea
                          || convert_to(props, 'UTF8') || '\\x00'::bytea), 14))::bit(56)::int8 >> 3 AS payload_hash,
         to_timestamp(ts_s) AS ts, code, sub, tx, props::jsonb AS props, slot
    FROM g
), ins AS (
  INSERT INTO event_identities (org_id, tx_hash, key_hash, payload_hash, ts)
  SELECT org_id, tx_hash, key_hash, payload_hash, ts FROM typed
), ev AS (
  INSERT INTO events (org_id, ts, code, external_subscription_id, transaction_id, properties, precise_total_amount_cents, created_at)
  SELECT org_id, ts, code, sub, tx, props, NULL, now() FROM typed
), roll AS (
  INSERT INTO event_rollups_hourly AS r (org_id, external_subscription_id, code, hour, slot, events_count)
  SELECT org_id, sub, code, date_trunc('hour', ts), slot, count(*) FROM typed GROUP BY 1, 2, 3, 4, 5 ORDER BY 1, 2, 3, 4, 5
  ON CONFLICT (org_id, external_subscription_id, code, hour, slot) DO UPDATE SET events_count = r.events_count + excluded.events_count
), metric_roll AS (
  INSERT INTO metric_rollups_hourly AS r (org_id, metric_id, external_subscription_id, dims, hour, slot, events_count, value_sum, value_max)
  SELECT f.org_id, m.id, f.sub, ${METRIC_DIMS("f.props", "m")}, date_trunc('hour', f.ts), f.slot, count(*), sum(v.value), max(v.value)
    FROM typed f
    JOIN billable_metrics m ON m.org_id = f.org_id AND m.code = f.code AND m.deleted_at IS NULL AND m.aggregation_type IN ('count_agg', 'sum_agg', 'max_agg')
    CROSS JOIN LATERAL (SELECT ${METRIC_VALUE("f.props", "m")} AS value) v
   WHERE m.aggregation_type = 'count_agg' OR v.value IS NOT NULL
   GROUP BY 1, 2, 3, 4, 5, 6 ORDER BY 1, 2, 3, 4, 5, 6
  ON CONFLICT (org_id, metric_id, external_subscription_id, dims, hour, slot) DO UPDATE
     SET events_count = r.events_count + excluded.events_count,
         value_sum = r.value_sum + excluded.value_sum,
         value_max = greatest(r.value_max, excluded.value_max)
)
SELECT count(*)::int AS n FROM typed`;

// The aggregations of the rolled-up charges straight from raw events: what current_usage would cost
// without rollups (same metric value expression, same window).
const RAW_SCAN_SQL = `
SELECT m.aggregation_type AS agg, count(*)::text AS n, sum(v.value)::text AS s, max(v.value)::text AS mx
  FROM billable_metrics m
  JOIN events e ON e.org_id = m.org_id AND e.code = m.code AND e.external_subscription_id = $2
  CROSS JOIN LATERAL (SELECT ${METRIC_VALUE("e.properties", "m")} AS value) v
 WHERE m.org_id = $1 AND m.id = ANY($3::int8[]) AND e.ts >= $4::timestamptz AND e.ts < $5::timestamptz
   AND (m.aggregation_type = 'count_agg' OR v.value IS NOT NULL)
 GROUP BY 1`;

export interface UsageBenchOptions {
  events: number;
  load: "auto" | "api" | "sql";
  requests: number;
  wrkSeconds: number;
  rawRuns: number;
  uniqueRuns: number;
  /** Timed current_usage runs per grouped variant from rollups (after one warm-up); default 20. */
  groupedRuns?: number;
  /** The same from raw events; default 3. */
  groupedRawRuns?: number;
  /** Rounds of the ingest micro benchmark (groupedIngestCost; 0 skips it); default 8. */
  ingestRounds?: number;
}

async function loadApi(api: Api, l: Layout, from: number, to: number): Promise<void> {
  const requests = Math.ceil((to - from) / PER_REQUEST);
  let done = 0;
  let lastLog = Date.now();
  await pool(requests, API_CONCURRENCY, async (r) => {
    const lo = from + r * PER_REQUEST;
    const hi = Math.min(to, lo + PER_REQUEST);
    const parts: string[] = [];
    for (let i = lo; i < hi; i++) parts.push(eventJson(i, l));
    const res = await api.call<{ events: unknown[] }>("POST", "/api/v1/events/batch", `{"events":[${parts.join(",")}]}`);
    if (res.events.length !== hi - lo) throw new Error(`batch ${lo}..${hi}: ${res.events.length} events answered`);
    done += hi - lo;
    if (Date.now() - lastLog > 10_000) {
      lastLog = Date.now();
      log(`  api: ${done.toLocaleString("en")} / ${(to - from).toLocaleString("en")}`);
    }
  });
}

// Indexes of events (and its partitions) and event_identities, as "name definition", sorted.
const INDEX_SNAPSHOT = `
SELECT i.indexname || ' ' || i.indexdef AS def FROM pg_indexes i
 WHERE i.schemaname = current_schema()
   AND (i.tablename IN ('events', 'event_identities')
        OR i.tablename IN (SELECT c.relname FROM pg_inherits h JOIN pg_class c ON c.oid = h.inhrelid WHERE h.inhparent = 'events'::regclass))
 ORDER BY 1`;

/**
 * The indexes a bulk load may build once at the end rather than row by row: the partitioned index
 * of `events` (with its per-partition children), the partitions' own indexes and event_identities'
 * primary key. Returns the statements that recreate them, in two independent groups.
 */
async function dropLoadIndexes(c: pg.Client): Promise<{ identities: string[]; events: string[] }> {
  const parent = await c.query(
    "SELECT i.indexrelid::regclass::text AS name, pg_get_indexdef(i.indexrelid) AS def FROM pg_index i WHERE i.indrelid = 'events'::regclass",
  );
  const own = await c.query(
    `SELECT i.indexrelid::regclass::text AS name, pg_get_indexdef(i.indexrelid) AS def
       FROM pg_inherits h JOIN pg_index i ON i.indrelid = h.inhrelid
      WHERE h.inhparent = 'events'::regclass AND NOT EXISTS (SELECT 1 FROM pg_inherits p WHERE p.inhrelid = i.indexrelid)`,
  );
  const pk = await c.query(
    "SELECT conname, pg_get_constraintdef(oid) AS def FROM pg_constraint WHERE conrelid = 'event_identities'::regclass AND contype = 'p'",
  );
  for (const r of parent.rows) await c.query(`DROP INDEX ${r.name}`);
  for (const r of own.rows) await c.query(`DROP INDEX ${r.name}`);
  for (const r of pk.rows) await c.query(`ALTER TABLE event_identities DROP CONSTRAINT ${r.conname}`);
  return {
    identities: pk.rows.map((r) => `ALTER TABLE event_identities ADD CONSTRAINT ${r.conname} ${r.def}`),
    // "ON ONLY" would create the partitioned index without its children.
    events: [...parent.rows.map((r) => String(r.def).replace(" ON ONLY ", " ON ")), ...own.rows.map((r) => r.def as string)],
  };
}

/**
 * Writes events [from, to) with LOAD_SQL: chunks of SQL_CHUNK, SQL_PARALLEL at a time, each with its own
 * rollup slots. The indexes of events and event_identities are dropped for the load and built again
 * after it (same definitions, checked); the primary key's build proves every identity is unique,
 * which is what lets the statement skip the server's ON CONFLICT join.
 */
async function loadSql(url: string, orgId: number, l: Layout, from: number, to: number): Promise<{ insert_seconds: number; index_build_seconds: number }> {
  const clients = await Promise.all(
    Array.from({ length: SQL_PARALLEL }, async () => {
      const c = new pg.Client({ connectionString: url });
      await c.connect();
      await c.query("SET maintenance_work_mem = '512MB'");
      return c;
    }),
  );
  try {
    const before = (await clients[0]!.query(INDEX_SNAPSHOT)).rows.map((r) => r.def as string);
    const rebuild = await dropLoadIndexes(clients[0]!);
    const started = performance.now();
    let insertSeconds = 0;
    try {
      const chunks = Math.ceil((to - from) / SQL_CHUNK);
      const free = [...clients.keys()];
      let done = 0;
      let lastLog = Date.now();
      await pool(chunks, SQL_PARALLEL, async (k) => {
        const slot = free.pop()!;
        try {
          const lo = from + k * SQL_CHUNK;
          const hi = Math.min(to, lo + SQL_CHUNK);
          const { rows } = await clients[slot]!.query(LOAD_SQL, [orgId, lo, hi, l.n, l.fromSec, l.spanSec, SUB, CODE_LIST, slot]);
          if (rows[0].n !== hi - lo) throw new Error(`chunk ${lo}..${hi}: ${rows[0].n} rows stored`);
          done += hi - lo;
        } finally {
          free.push(slot);
        }
        if (Date.now() - lastLog > 10_000) {
          lastLog = Date.now();
          log(`  sql: ${done.toLocaleString("en")} / ${(to - from).toLocaleString("en")}`);
        }
      });
      insertSeconds = (performance.now() - started) / 1000;
      log(`  sql: ${(to - from).toLocaleString("en")} events inserted in ${round2(insertSeconds)} s; building indexes`);
    } finally {
      // Rebuilt even after a failure, so the database keeps its schema.
      const t0 = performance.now();
      await Promise.all([
        (async () => {
          for (const sql of rebuild.identities) await clients[0]!.query(sql);
        })(),
        (async () => {
          for (const sql of rebuild.events) await clients[1 % clients.length]!.query(sql);
        })(),
      ]);
      insertSeconds = insertSeconds || (t0 - started) / 1000;
      const after = (await clients[0]!.query(INDEX_SNAPSHOT)).rows.map((r) => r.def as string);
      if (JSON.stringify(after) !== JSON.stringify(before)) throw new Error(`indexes differ after the load:\n${before.join("\n")}\n---\n${after.join("\n")}`);
    }
    return { insert_seconds: round2(insertSeconds), index_build_seconds: round2((performance.now() - started) / 1000 - insertSeconds) };
  } finally {
    await Promise.all(clients.map((c) => c.end()));
  }
}

/** Checks the stored rows against each other and against the server's own view of the events. */
async function checkLoad(c: pg.Client, api: Api, orgId: number, metrics: Record<"count" | "sum" | "max", number>, l: Layout): Promise<Record<string, unknown>> {
  const count = async (sql: string, params: unknown[]) => Number((await c.query(sql, params)).rows[0].n);
  const identities = await count("SELECT count(*) AS n FROM event_identities WHERE org_id = $1", [orgId]);
  const events = await count("SELECT count(*) AS n FROM events WHERE org_id = $1 AND external_subscription_id = $2", [orgId, SUB]);
  const hourly = await count("SELECT coalesce(sum(events_count), 0) AS n FROM event_rollups_hourly WHERE org_id = $1 AND external_subscription_id = $2", [orgId, SUB]);
  if (identities !== l.n || events !== l.n || hourly !== l.n) {
    throw new Error(`load inconsistent: ${identities} identities, ${events} events, ${hourly} in hourly counts; expected ${l.n}`);
  }
  // Metric rollups against raw aggregates, on the hours of the first, middle and last events.
  const hours = [...new Set([0, Math.floor(l.n / 2), l.n - 1].map((i) => Math.floor(tsOf(i, l) / 3600) * 3600))];
  let sampled = 0;
  for (const hour of hours) {
    for (const [name, id] of Object.entries(metrics)) {
      const { rows } = await c.query(
        `WITH r AS (
           SELECT sum(events_count) AS n, sum(value_sum) AS s, max(value_max) AS mx FROM metric_rollups_hourly
            WHERE org_id = $1 AND metric_id = $2 AND external_subscription_id = $3 AND hour = to_timestamp($4)
         ), x AS (
           SELECT count(*) AS n, sum(v.value) AS s, max(v.value) AS mx
             FROM billable_metrics m JOIN events e ON e.org_id = m.org_id AND e.code = m.code AND e.external_subscription_id = $3
             CROSS JOIN LATERAL (SELECT ${METRIC_VALUE("e.properties", "m")} AS value) v
            WHERE m.org_id = $1 AND m.id = $2 AND e.ts >= to_timestamp($4) AND e.ts < to_timestamp($4) + interval '1 hour'
              AND (m.aggregation_type = 'count_agg' OR v.value IS NOT NULL)
         )
         SELECT x.n::int8 AS raw_n, (r.n = x.n AND r.s IS NOT DISTINCT FROM x.s AND r.mx IS NOT DISTINCT FROM x.mx) AS equal FROM r, x`,
        [orgId, id, SUB, hour],
      );
      if (rows[0].equal !== true) throw new Error(`metric rollups of ${name} differ from raw events in hour ${new Date(hour * 1000).toISOString()}`);
      sampled += Number(rows[0].raw_n);
    }
  }
  // Re-sent through the API, a sample of stored events must be recognized as retries: same identity
  // (nothing stored) and same payload hash (no 422 conflict).
  const sample = Array.from({ length: Math.min(1000, l.n) }, (_, k) => Math.floor((k * l.n) / Math.min(1000, l.n)));
  const res = await api.call<{ events: { transaction_id: string; lago_id: string }[] }>(
    "POST",
    "/api/v1/events/batch",
    `{"events":[${sample.map((i) => eventJson(i, l)).join(",")}]}`,
  );
  const after = await count("SELECT count(*) AS n FROM event_identities WHERE org_id = $1", [orgId]);
  if (res.events.length !== sample.length || after !== identities) throw new Error(`re-sent sample: ${res.events.length} answered, ${after - identities} stored again`);
  return {
    identities,
    events,
    hourly_counts: hourly,
    metric_rollups_vs_raw: { hours: hours.length, metrics: 3, events_compared: sampled, equal: true },
    resent_through_api: { events: sample.length, stored_again: after - identities, conflicts: 0 },
  };
}

// ---- ingest cost of group keys in the rollups ------------------------------------------------------

// METRIC_DIMS as it was before migration 0020 (filter keys only): the expression timing below
// compares it with today's on metrics that list no group keys, whose rows must cost what they did.
const METRIC_DIMS_BEFORE_0020 = (props: string, metric: string) =>
  `CASE WHEN ${metric}.filters = '[]'::jsonb THEN '' ELSE coalesce(
     (SELECT jsonb_object_agg(fl ->> 'key', ${props} ->> (fl ->> 'key'))::text FROM jsonb_array_elements(${metric}.filters) AS fl
       WHERE (fl -> 'values') ? (${props} ->> (fl ->> 'key'))), '') END`;

interface IngestVariant {
  name: string;
  filters: { key: string; values: string[] }[];
  groupKeys: string[];
}

const INGEST_VARIANTS: IngestVariant[] = [
  { name: "no_filters_no_group_keys", filters: [], groupKeys: [] },
  { name: "filters_no_group_keys", filters: [{ key: "region", values: ["eu-west", "us-east"] }], groupKeys: [] },
  { name: "group_region_4_values", filters: [], groupKeys: ["region"] },
  { name: "group_region_project_100_pairs", filters: [], groupKeys: ["project", "region"] },
  { name: "group_user_unbounded", filters: [], groupKeys: ["user_id"] },
];

/**
 * DB time of the real batch path (commitBatch, 1,000-event batches, 20 subscriptions, one hour of
 * event time per batch) for a sum metric per variant, the variants alternating within each round
 * so a shared machine's drift hits them alike (report ratios, not absolutes); plus the METRIC_DIMS
 * expression alone, before 0020 and now, over the same stored events. In a fresh database on the
 * same server, dropped at the end.
 */
async function groupedIngestCost(url: string, rounds: number): Promise<Record<string, unknown>> {
  const { migrate } = await import("../src/db/migrate.ts");
  const { openPostgres } = await import("../src/db/postgres.ts");
  const { validateEvent } = await import("../src/modules/ingest/core/event.ts");
  const { commitBatch, monthOf, Partitions } = await import("../src/modules/ingest/store.ts");
  const dbName = `vv_bench_group_ingest_${process.pid}`;
  const admin = new pg.Client({ connectionString: url });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${dbName}`);
  const target = new URL(url);
  target.pathname = `/${dbName}`;
  const db = openPostgres({ url: target.toString(), size: 2, maxOverflow: 0, timeoutMs: 60_000, recycleMs: 3_600_000 });
  try {
    await migrate(db);
    const orgId = Number(
      (await db.query<{ id: number }>("INSERT INTO organizations (public_id, name, created_at) VALUES (gen_random_uuid(), 'bench', now()) RETURNING id")).rows[0]!.id,
    );
    const metricIds: number[] = [];
    for (const v of INGEST_VARIANTS) {
      const { rows } = await db.query<{ id: string }>(
        `INSERT INTO billable_metrics (org_id, lago_id, code, name, aggregation_type, field_name, filters, rollup_group_keys, created_at, updated_at)
         VALUES ($1, gen_random_uuid(), $2, $2, 'sum_agg', 'tokens', $3::jsonb, $4::jsonb, now(), now()) RETURNING id::text`,
        [orgId, v.name, JSON.stringify(v.filters), JSON.stringify(v.groupKeys)],
      );
      metricIds.push(Number(rows[0]!.id));
    }
    const startMs = Date.UTC(new Date().getUTCFullYear(), new Date().getUTCMonth() - 1, 2);
    const window = { nowMs: Date.now(), oldestMs: null, retentionDays: 0 };
    const partitions = new Partitions(db);
    const BATCH = 1000;
    const PER_ROUND = 5;
    const times = new Map<string, number[]>(INGEST_VARIANTS.map((v) => [v.name, []]));
    let seq = 0;
    log(`ingest cost: ${rounds} rounds x ${INGEST_VARIANTS.length} variants x ${PER_ROUND} batches of ${BATCH}`);
    for (let round = 0; round < rounds; round++) {
      for (let k = 0; k < INGEST_VARIANTS.length; k++) {
        const v = INGEST_VARIANTS[(round + k) % INGEST_VARIANTS.length]!;
        for (let b = 0; b < PER_ROUND; b++) {
          const hourMs = startMs + (round * PER_ROUND + b) * 3_600_000;
          const events = [];
          for (let i = 0; i < BATCH; i++) {
            const n = seq++;
            // Group values independent of the subscription (high bits of a multiplicative hash of the sequence).
            const h = Math.imul(n, 2654435761) >>> 0;
            const checked = validateEvent(
              {
                transaction_id: `gi-${n}`,
                external_subscription_id: `sub_${i % 20}`,
                code: v.name,
                timestamp: ((hourMs + Math.floor((i * 3_600_000) / BATCH)) / 1000).toFixed(3),
                properties: { tokens: n % 97, region: GROUP_REGIONS[h >>> 30], project: `p_${(h >>> 16) % 25}`, user_id: `u_${n}` },
              },
              orgId,
              window,
            );
            if (!checked.ok) throw new Error(`invalid bench event: ${JSON.stringify(checked.errors)}`);
            events.push(checked.event);
          }
          await partitions.ensure(new Set(events.map((e) => monthOf(e.tsMicros))));
          const t0 = performance.now();
          const { created } = await commitBatch(db, events, Date.now(), 0);
          if (round > 0) times.get(v.name)!.push(performance.now() - t0);
          if (created.size !== BATCH) throw new Error(`${created.size} of ${BATCH} stored`);
        }
      }
    }
    const median = (xs: number[]) => percentile([...xs].sort((a, b) => a - b), 0.5);
    const base = median(times.get(INGEST_VARIANTS[0]!.name)!);
    const batches: Record<string, unknown> = {};
    for (const v of INGEST_VARIANTS) {
      const m = median(times.get(v.name)!);
      const rows = Number(
        (await db.query<{ n: string }>("SELECT count(*)::text AS n FROM metric_rollups_hourly WHERE metric_id = $1", [metricIds[INGEST_VARIANTS.indexOf(v)]])).rows[0]!.n,
      );
      batches[v.name] = { p50_ms_per_batch: round2(m), us_per_event: round2((m * 1000) / BATCH), ratio_to_first: round2(m / base), rollup_rows_per_1000_events: round2((rows * 1000) / (rounds * PER_ROUND * BATCH)) };
    }
    // The expression alone over the stored events of the two variants without group keys, old and new alternating.
    const expr: Record<string, unknown> = {};
    for (const v of INGEST_VARIANTS.slice(0, 2)) {
      const id = metricIds[INGEST_VARIANTS.indexOf(v)]!;
      const sql = (dims: (p: string, m: string) => string) =>
        `SELECT count(DISTINCT x.d)::int AS n FROM (SELECT ${dims("e.properties", "m")} AS d FROM billable_metrics m JOIN events e ON e.org_id = m.org_id AND e.code = m.code WHERE m.id = $1 OFFSET 0) x`;
      const before: number[] = [];
      const now: number[] = [];
      for (let i = 0; i < 2 * rounds + 2; i++) {
        const which = i % 2 === 0 ? before : now;
        const t0 = performance.now();
        await db.query(sql(i % 2 === 0 ? METRIC_DIMS_BEFORE_0020 : METRIC_DIMS), [id]);
        if (i >= 2) which.push(performance.now() - t0);
      }
      expr[v.name] = { before_0020_p50_ms: round2(median(before)), now_p50_ms: round2(median(now)), ratio_now_vs_before: round2(median(now) / median(before)), events: (rounds * PER_ROUND * BATCH) };
    }
    const out = { batch_size: BATCH, subscriptions: 20, events_per_subscription_hour: BATCH / 20, rounds_timed: rounds - 1, commit_batch: batches, metric_dims_expression: expr, loadavg_1m: loadavg() };
    log(`ingest cost: ${JSON.stringify(out)}`);
    return out;
  } finally {
    await db.close();
    await admin.query(`DROP DATABASE IF EXISTS ${dbName}`);
    await admin.end();
  }
}

export async function runUsageBench(opts: UsageBenchOptions): Promise<void> {
  const n = Math.max(1000, Math.min(100_000_000, Math.floor(opts.events) || 10_000_000));
  const url = await requireEmptyDatabase("bench:usage");
  const apiKey = "bench_" + Math.random().toString(36).slice(2) + Math.random().toString(36).slice(2);
  const workers = Math.max(1, Math.min(os.availableParallelism(), Number(process.env.WORKERS) || os.availableParallelism()));
  const env = { DATABASE_URL: url, VALUEVERSE_API_KEY: apiKey, WORKERS: String(workers), INGEST_QUEUE_MAX: "1000000" };
  log(`${os.cpus()[0]?.model ?? "cpu"} x${os.availableParallelism()}, load average ${loadavg()}; ${n.toLocaleString("en")} events, load ${opts.load}`);

  let server: BenchServer = await startServer(env, log);
  let api = new Api(server.url, apiKey);
  const db = new pg.Client({ connectionString: url });
  await db.connect();
  try {
    // ---- catalog, customer, subscription (all through the API) ----
    const metric = (code: string, name: string, aggregation_type: string, field_name?: string) =>
      api.call<{ billable_metric: { lago_id: string } }>("POST", "/api/v1/billable_metrics", {
        billable_metric: { code, name, aggregation_type, ...(field_name ? { field_name } : {}) },
      });
    const created = {
      count: await metric(CODES.count, "API calls", "count_agg"),
      sum: await metric(CODES.sum, "Storage bytes", "sum_agg", "bytes"),
      max: await metric(CODES.max, "CPU peak", "max_agg", "cpu"),
      unique: await metric(CODES.unique, "Active users", "unique_count_agg", "user_id"),
    };
    const ids = new Map<string, { id: number; org_id: number }>(
      (await db.query("SELECT lago_id::text, id::int8::text AS id, org_id FROM billable_metrics")).rows.map((r) => [r.lago_id, { id: Number(r.id), org_id: r.org_id }]),
    );
    const metricId = (k: keyof typeof created) => ids.get(created[k].billable_metric.lago_id)!.id;
    const orgId = ids.get(created.count.billable_metric.lago_id)!.org_id;
    const rolled = { count: metricId("count"), sum: metricId("sum"), max: metricId("max") };
    const plan = await api.call<{ plan: { charges: { lago_id: string }[] } }>("POST", "/api/v1/plans", {
      plan: {
        name: "Usage benchmark",
        code: PLAN,
        interval: "monthly",
        amount_cents: 1000,
        amount_currency: "EUR",
        charges: [
          {
            billable_metric_id: created.count.billable_metric.lago_id,
            charge_model: "graduated",
            properties: {
              graduated_ranges: [
                { from_value: 0, to_value: 1_000_000, per_unit_amount: "0.001", flat_amount: "0" },
                { from_value: 1_000_001, to_value: null, per_unit_amount: "0.0005", flat_amount: "10" },
              ],
            },
          },
          { billable_metric_id: created.sum.billable_metric.lago_id, charge_model: "standard", properties: { amount: "0.0001" } },
          { billable_metric_id: created.max.billable_metric.lago_id, charge_model: "standard", properties: { amount: "2" } },
        ],
      },
    });
    await api.call("POST", "/api/v1/customers", { customer: { external_id: CUSTOMER, name: "Usage benchmark", currency: "EUR" } });
    const now = new Date();
    const monthStart = Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1);
    await api.call("POST", "/api/v1/subscriptions", {
      subscription: { external_customer_id: CUSTOMER, plan_code: PLAN, external_id: SUB, billing_time: "calendar", subscription_at: new Date(monthStart).toISOString() },
    });
    // Events from the start of the month to a minute ago (at least a minute of spread).
    const layout: Layout = { n, fromSec: monthStart / 1000, spanSec: Math.max(60, Math.floor((now.getTime() - monthStart) / 1000) - 60) };
    log(`catalog ready (org ${orgId}); events from ${new Date(monthStart).toISOString()} over ${round2(layout.spanSec / 3600)} h`);

    // ---- load ----
    const loadStarted = performance.now();
    const probe = opts.load === "sql" ? 0 : opts.load === "api" ? n : Math.min(n, 200_000);
    let apiEvents = 0;
    let apiSeconds = 0;
    let sqlLoad: { insert_seconds: number; index_build_seconds: number } | null = null;
    if (probe > 0) {
      log(`loading ${probe.toLocaleString("en")} events through POST /api/v1/events/batch (${PER_REQUEST} per request, ${API_CONCURRENCY} in flight)`);
      await loadApi(api, layout, 0, probe);
      apiEvents = probe;
      apiSeconds = (performance.now() - loadStarted) / 1000;
    }
    const apiRate = apiEvents > 0 ? apiEvents / apiSeconds : null;
    const projected = apiRate === null ? null : n / apiRate;
    if (apiRate !== null) log(`api: ${Math.round(apiRate)} events/s; ${n.toLocaleString("en")} events would take ${Math.round(projected!)} s`);
    if (apiEvents < n) {
      if (opts.load === "auto" && projected! <= API_BUDGET_SECONDS) {
        log(`loading the rest through the API`);
        await loadApi(api, layout, apiEvents, n);
        apiEvents = n;
        apiSeconds = (performance.now() - loadStarted) / 1000;
      } else {
        log(`loading ${(n - apiEvents).toLocaleString("en")} events with SQL (${SQL_CHUNK.toLocaleString("en")} per statement, ${SQL_PARALLEL} in parallel)`);
        sqlLoad = await loadSql(url, orgId, layout, apiEvents, n);
      }
    }
    const loadSeconds = (performance.now() - loadStarted) / 1000;
    log(`loaded ${n.toLocaleString("en")} events in ${round2(loadSeconds)} s; checking`);
    // What autovacuum does after a bulk load, done now so it does not run during the measurements
    // (and before the check: its re-sent events are looked up by plans that need the statistics).
    const vacuumStarted = performance.now();
    await db.query("VACUUM (ANALYZE) events, event_identities, event_rollups_hourly, metric_rollups_hourly");
    const vacuumSeconds = (performance.now() - vacuumStarted) / 1000;
    log(`VACUUM (ANALYZE) in ${round2(vacuumSeconds)} s`);
    const consistency = await checkLoad(db, api, orgId, rolled, layout);
    log(`consistent: ${JSON.stringify(consistency)}`);
    const rollupRows = Number(
      (await db.query("SELECT count(*) AS n FROM metric_rollups_hourly WHERE org_id = $1 AND external_subscription_id = $2", [orgId, SUB])).rows[0].n,
    );

    // ---- current_usage from rollups ----
    const route = `/api/v1/customers/${CUSTOMER}/current_usage?external_subscription_id=${SUB}`;
    type Usage = { from_datetime: string; to_datetime: string; charges_usage: { units: string; events_count: number; billable_metric: { code: string } }[] };
    const timed = async (): Promise<[number, Usage]> => {
      const t0 = performance.now();
      const r = await api.call<{ customer_usage: Usage }>("GET", route);
      return [performance.now() - t0, r.customer_usage];
    };
    for (let i = 0; i < 20; i++) await timed();
    const latencies: number[] = [];
    let usage: Usage | undefined;
    const loadBefore = loadavg();
    for (let i = 0; i < opts.requests; i++) {
      const [ms, u] = await timed();
      latencies.push(ms);
      usage = u;
    }
    const currentUsage = { ...latencySummary(latencies), charges: ["count_agg (graduated)", "sum_agg (standard)", "max_agg (standard)"], loadavg_1m: loadBefore };
    log(`current_usage (${opts.requests} sequential): ${JSON.stringify(currentUsage)}`);
    let usageWrk: Workload | null = null;
    if (opts.wrkSeconds > 0) {
      usageWrk = await wrk(server.url, apiKey, { size: 0, seconds: opts.wrkSeconds, connections: 4, prefix: "usage", script: path.join(HERE, "usage.lua"), args: [route] });
      log(`current_usage (wrk, 4 connections, ${opts.wrkSeconds} s): ${JSON.stringify(usageWrk)}`);
    }

    // ---- the same aggregations from raw events ----
    const from = new Date(usage!.from_datetime);
    const to = new Date(Date.parse(usage!.to_datetime) + 1000);
    const rawParams = [orgId, SUB, [rolled.count, rolled.sum, rolled.max], from.toISOString(), to.toISOString()];
    const rawTimes: number[] = [];
    let raw: Record<string, { n: string; s: string | null; mx: string | null }> = {};
    log(`raw scan: 1 warm-up + ${opts.rawRuns} runs over ${Math.round((n * 3) / 4).toLocaleString("en")} events`);
    for (let i = 0; i <= opts.rawRuns; i++) {
      const t0 = performance.now();
      const { rows } = await db.query(RAW_SCAN_SQL, rawParams);
      if (i > 0) rawTimes.push(performance.now() - t0);
      raw = Object.fromEntries(rows.map((r) => [r.agg, r]));
    }
    const rawScan = { ...latencySummary(rawTimes), runs: rawTimes.length, loadavg_1m: loadavg() };
    delete (rawScan as Record<string, unknown>).requests;
    log(`raw scan: ${JSON.stringify(rawScan)}`);
    const units = Object.fromEntries(usage!.charges_usage.map((c) => [c.billable_metric.code, c]));
    const exact = {
      count: Number(units[CODES.count]!.units) === Number(raw.count_agg?.n),
      sum: Number(units[CODES.sum]!.units) === Number(raw.sum_agg?.s),
      max: Number(units[CODES.max]!.units) === Number(raw.max_agg?.mx),
      events_count: units[CODES.count]!.events_count + units[CODES.sum]!.events_count + units[CODES.max]!.events_count === Number(raw.count_agg?.n) + Number(raw.sum_agg?.n) + Number(raw.max_agg?.n),
    };
    log(`usage units ${JSON.stringify(Object.fromEntries(Object.entries(units).map(([k, v]) => [k, v.units])))}; equal to the raw scan: ${JSON.stringify(exact)}`);

    // ---- with the unique_count charge (raw events by design) ----
    await api.call("PUT", `/api/v1/plans/${PLAN}`, {
      plan: {
        charges: [
          ...plan.plan.charges.map((c) => ({ id: c.lago_id })),
          { billable_metric_id: created.unique.billable_metric.lago_id, charge_model: "standard", properties: { amount: "0.1" } },
        ],
      },
    });
    // A fresh server: every worker reads the changed plan (caches elsewhere refresh within their TTL).
    await server.stop();
    server = await startServer(env, log);
    api = new Api(server.url, apiKey);
    const uniqueTimes: number[] = [];
    let withUnique: Usage | undefined;
    log(`current_usage with the unique_count charge: 1 warm-up + ${opts.uniqueRuns} runs`);
    for (let i = 0; i <= opts.uniqueRuns; i++) {
      const [ms, u] = await timed();
      if (i > 0) uniqueTimes.push(ms);
      withUnique = u;
    }
    const uniqueUnits = withUnique!.charges_usage.find((c) => c.billable_metric.code === CODES.unique);
    const distinct = (
      await db.query(
        `SELECT count(DISTINCT properties ->> 'user_id')::text AS n FROM events WHERE org_id = $1 AND code = $2 AND external_subscription_id = $3 AND ts >= $4 AND ts < $5`,
        [orgId, CODES.unique, SUB, from.toISOString(), to.toISOString()],
      )
    ).rows[0].n;
    const uniqueCount = {
      ...latencySummary(uniqueTimes),
      events_scanned: Math.floor(n / 4),
      units: uniqueUnits?.units ?? null,
      equal_to_count_distinct: uniqueUnits?.units === distinct,
    };
    log(`current_usage with unique_count: ${JSON.stringify(uniqueCount)}`);

    // ---- grouped charges: from rollups (their dims keep the group keys) and from raw events ----
    const grouped: Record<string, unknown> = {};
    for (const keys of [["region"], ["region", "project"]]) {
      const name = keys.join("+");
      // The sum charge priced by `keys` (the unique_count charge goes again): the plan write rebuilds
      // the sum metric's rollups with the keys, before it answers.
      const t0 = performance.now();
      await api.call("PUT", `/api/v1/plans/${PLAN}`, {
        plan: {
          charges: [
            { id: plan.plan.charges[0]!.lago_id },
            { id: plan.plan.charges[1]!.lago_id, billable_metric_id: created.sum.billable_metric.lago_id, charge_model: "standard", properties: { amount: "0.0001", pricing_group_keys: keys } },
            { id: plan.plan.charges[2]!.lago_id },
          ],
        },
      });
      const rebuildMs = performance.now() - t0;
      const listed = (await db.query("SELECT rollup_group_keys::text AS k FROM billable_metrics WHERE id = $1", [rolled.sum])).rows[0].k as string;
      if (JSON.stringify(JSON.parse(listed)) !== JSON.stringify([...keys].sort())) throw new Error(`rollup_group_keys ${listed} after pricing by ${name}`);
      const sumRollupRows = Number(
        (await db.query("SELECT count(*) AS n FROM metric_rollups_hourly WHERE org_id = $1 AND metric_id = $2 AND external_subscription_id = $3", [orgId, rolled.sum, SUB])).rows[0].n,
      );
      await server.stop();
      server = await startServer(env, log);
      api = new Api(server.url, apiKey);
      const runs = async (count: number): Promise<[number[], Usage]> => {
        const times: number[] = [];
        let last: Usage | undefined;
        for (let i = 0; i <= count; i++) {
          const [ms, u] = await timed();
          if (i > 0) times.push(ms);
          last = u;
        }
        return [times, last!];
      };
      log(`grouped by ${name}: rollups rebuilt in ${Math.round(rebuildMs)} ms (${sumRollupRows} rollup rows); current_usage 1 warm-up + ${opts.groupedRuns ?? 20} runs`);
      const [fromRollups, rolledUsage] = await runs(opts.groupedRuns ?? 20);
      // Without the keys listed, usage reads the charge's groups from raw events (the rollups stay as they are).
      await db.query("UPDATE billable_metrics SET rollup_group_keys = '[]' WHERE id = $1", [rolled.sum]);
      log(`grouped by ${name} from raw events: 1 warm-up + ${opts.groupedRawRuns ?? 3} runs`);
      let fromRaw: number[];
      let rawUsage: Usage;
      try {
        [fromRaw, rawUsage] = await runs(opts.groupedRawRuns ?? 3);
      } finally {
        await db.query("UPDATE billable_metrics SET rollup_group_keys = $2::jsonb WHERE id = $1", [rolled.sum, listed]);
      }
      const groupsOf = (u: Usage) => JSON.stringify(u.charges_usage.find((c) => c.billable_metric.code === CODES.sum));
      const rollupSummary = latencySummary(fromRollups);
      const rawSummary = latencySummary(fromRaw);
      grouped[name] = {
        groups: (rolledUsage.charges_usage.find((c) => c.billable_metric.code === CODES.sum) as unknown as { grouped_usage: unknown[] }).grouped_usage.length,
        plan_update_with_rollup_rebuild_ms: Math.round(rebuildMs),
        sum_metric_rollup_rows: sumRollupRows,
        from_rollups: rollupSummary,
        from_raw_events: rawSummary,
        ratio_raw_vs_rollups_p50: round2(rawSummary.p50_ms / rollupSummary.p50_ms),
        equal: groupsOf(rolledUsage) === groupsOf(rawUsage),
      };
      log(`grouped by ${name}: ${JSON.stringify(grouped[name])}`);
    }
    const ingestCost = (opts.ingestRounds ?? 8) > 0 ? await groupedIngestCost(url, opts.ingestRounds ?? 8) : null;

    const summary = {
      events: n,
      load_seconds: round2(loadSeconds),
      load: {
        method: apiEvents === n ? "api" : apiEvents === 0 ? "sql" : "api+sql",
        api_events: apiEvents,
        sql_events: n - apiEvents,
        api_events_per_s: apiRate === null ? null : Math.round(apiRate),
        api_projected_seconds_for_all: projected === null ? null : Math.round(projected),
        api_budget_seconds: API_BUDGET_SECONDS,
        events_per_request: PER_REQUEST,
        requests_in_flight: API_CONCURRENCY,
        sql:
          sqlLoad === null
            ? null
            : {
                ...sqlLoad,
                how: "one statement per chunk of generate_series rows, built like the server's ingest statement (identities, events, hourly counts, metric rollups); indexes of events and event_identities built after the load (same definitions, checked)",
                chunk: SQL_CHUNK,
                parallel: SQL_PARALLEL,
              },
      },
      consistency,
      vacuum_analyze_seconds: round2(vacuumSeconds),
      events_per_code: Math.floor(n / 4),
      rollup_rows: rollupRows,
      window: { from: from.toISOString(), to: to.toISOString() },
      current_usage: currentUsage,
      current_usage_wrk: usageWrk,
      raw_scan: { ...rawScan, events_aggregated: Number(raw.count_agg?.n ?? 0) + Number(raw.sum_agg?.n ?? 0) + Number(raw.max_agg?.n ?? 0) },
      ratio_raw_vs_rollups: round2(rawScan.p50_ms / currentUsage.p50_ms),
      usage_equals_raw_scan: exact,
      unique_count: uniqueCount,
      grouped_current_usage: grouped,
      grouped_ingest_cost: ingestCost,
      goal: { p95_ms_under: 20, met: currentUsage.p95_ms < 20 },
      machine: machine(),
      database: "postgres",
      workers,
    };
    process.stdout.write(JSON.stringify(summary) + "\n");
  } finally {
    await db.end();
    await server.stop();
  }
}
