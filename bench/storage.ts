// Storage benchmark (`npm run bench:storage`): bytes per stored event. Ingests N events of the
// ingest benchmark's shape (transaction ids "<prefix>-<n>", 1,000 subscriptions, code "api_calls",
// properties {"tokens": n, "region": "eu-west"}, a sum_agg metric on tokens) through the real batch
// path (commitBatch, 1,000-event batches) into a fresh database created on DATABASE_URL or
// TEST_DATABASE_URL (PostgreSQL only; dropped at the end), spread over BENCH_STORAGE_SPAN_HOURS of
// a past month. Then, after VACUUM ANALYZE, reports bytes per event (pg_total_relation_size: heap,
// TOAST, free-space and visibility maps, indexes) for the events partition while hot, again once the
// lifecycle has slimmed it (slimOldPartitions), for event_identities and the rollup tables; and the
// same rows in a "plain layout" (uuid id, text columns, jsonb, timestamps, the usual indexes) in the
// same run, for the ratio. Also the DB time and the server's WAL per 1000-event commitBatch. Progress on stderr; the last
// stdout line is one JSON object. The goal (<= 250 B/event) is reported, not asserted.
import crypto from "node:crypto";
import pg from "pg";
import { migrate } from "../src/db/migrate.ts";
import { openPostgres } from "../src/db/postgres.ts";
import type { Db } from "../src/db/db.ts";
import { validateEvent, type PreparedEvent } from "../src/modules/ingest/core/event.ts";
import { slimOldPartitions } from "../src/modules/ingest/lifecycle.ts";
import { commitBatch, monthOf, Partitions } from "../src/modules/ingest/store.ts";
import { machine, percentile, round2 } from "./support.ts";

const log = (s: string) => process.stderr.write(`[bench:storage] ${s}\n`);
const EVENTS = Number(process.env.BENCH_STORAGE_EVENTS ?? 500_000);
const MAX_SECONDS = Number(process.env.BENCH_STORAGE_SECONDS ?? 300);
const SPAN_HOURS = Number(process.env.BENCH_STORAGE_SPAN_HOURS ?? 24);
const BATCH = 1000;
const SUBSCRIPTIONS = 1000;

interface Size {
  table_bytes: number;
  index_bytes: number;
  total_bytes: number;
  bytes_per_event: number;
}

async function sizeOf(db: Db, relations: string[], events: number): Promise<Size> {
  const { rows } = await db.query<{ t: string; i: string }>(
    `SELECT coalesce(sum(pg_table_size(c.oid)), 0)::int8::text AS t, coalesce(sum(pg_indexes_size(c.oid)), 0)::int8::text AS i
       FROM pg_class c WHERE c.relname = ANY($1::text[]) AND c.relkind = 'r'`,
    [relations],
  );
  const t = Number(rows[0]!.t);
  const i = Number(rows[0]!.i);
  return { table_bytes: t, index_bytes: i, total_bytes: t + i, bytes_per_event: round2((t + i) / events) };
}

async function indexesOf(db: Db, table: string): Promise<Record<string, number>> {
  const { rows } = await db.query<{ name: string; bytes: string }>(
    `SELECT c.relname AS name, pg_relation_size(c.oid)::text AS bytes FROM pg_index x JOIN pg_class c ON c.oid = x.indexrelid
      WHERE x.indrelid = $1::regclass ORDER BY 1`,
    [table],
  );
  return Object.fromEntries(rows.map((r) => [r.name, Number(r.bytes)]));
}

async function vacuum(db: Db, tables: string[]): Promise<void> {
  for (const t of tables) await db.query(`VACUUM (ANALYZE) ${t}`);
}

export async function runStorageBench(): Promise<Record<string, unknown>> {
  const adminUrl = process.env.DATABASE_URL ?? process.env.TEST_DATABASE_URL;
  if (!adminUrl) throw new Error("bench:storage needs DATABASE_URL or TEST_DATABASE_URL (PostgreSQL), e.g. from ./scripts/start-postgres.sh");
  const dbName = `vv_bench_storage_${process.pid}`;
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${dbName}`);
  const url = new URL(adminUrl);
  url.pathname = `/${dbName}`;
  const db = openPostgres({ url: url.toString(), size: 2, maxOverflow: 0, timeoutMs: 30_000, recycleMs: 3_600_000 });
  try {
    await migrate(db);
    const org = await db.query<{ id: number }>(
      "INSERT INTO organizations (public_id, name, created_at) VALUES ($1, 'bench', now()) RETURNING id",
      [crypto.randomUUID()],
    );
    const orgId = Number(org.rows[0]!.id);
    await db.query(
      `INSERT INTO billable_metrics (org_id, lago_id, code, name, aggregation_type, field_name, created_at, updated_at)
       VALUES ($1, $2, 'api_calls', 'API calls', 'sum_agg', 'tokens', now(), now())`,
      [orgId, crypto.randomUUID()],
    );

    // Events in a month that ended more than 7 days ago, so slimming applies to its partition.
    const now = Date.now();
    const d = new Date(now);
    const startMs = Date.UTC(d.getUTCFullYear(), d.getUTCMonth() - 2, 3);
    const spanMs = SPAN_HOURS * 3_600_000;
    const prefix = `st${process.pid}`;
    const window = { nowMs: now, oldestMs: null, retentionDays: 0 };
    const partitions = new Partitions(db);
    const batchMs: number[] = [];
    const deadline = performance.now() + MAX_SECONDS * 1000;
    let stored = 0;
    // WAL of the whole server over the load (other databases' writes count too: run it alone).
    const walAt = async () => (await db.query<{ l: string }>("SELECT pg_current_wal_lsn()::text AS l")).rows[0]!.l;
    const walStart = await walAt();
    log(`ingesting up to ${EVENTS} events (${BATCH} per commitBatch) over ${SPAN_HOURS} h from ${new Date(startMs).toISOString()}`);
    for (let base = 0; base < EVENTS && performance.now() < deadline; base += BATCH) {
      const events: PreparedEvent[] = [];
      for (let i = base; i < Math.min(EVENTS, base + BATCH); i++) {
        const tsMs = startMs + Math.floor((i / EVENTS) * spanMs);
        const v = validateEvent(
          {
            transaction_id: `${prefix}-${i}`,
            external_subscription_id: `sub_${i % SUBSCRIPTIONS}`,
            code: "api_calls",
            timestamp: (tsMs / 1000).toFixed(3),
            properties: { tokens: i % 97, region: "eu-west" },
          },
          orgId,
          window,
        );
        if (!v.ok) throw new Error(`invalid bench event: ${JSON.stringify(v.errors)}`);
        events.push(v.event);
      }
      await partitions.ensure(new Set(events.map((e) => monthOf(e.tsMicros))));
      const t = performance.now();
      const { created } = await commitBatch(db, events, now, 0);
      batchMs.push(performance.now() - t);
      stored += created.size;
      if (base % 100_000 === 0 && base > 0) log(`${base} events`);
    }
    if (stored === 0) throw new Error("nothing stored");
    const walBytes = Number(
      (await db.query<{ b: string }>("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), $1::pg_lsn)::int8::text AS b", [walStart])).rows[0]!.b,
    );
    const sorted = [...batchMs].sort((a, b) => a - b);
    const ingest = {
      batches: batchMs.length,
      batch_size: BATCH,
      p50_ms_per_batch: round2(percentile(sorted, 0.5)),
      mean_ms_per_batch: round2(batchMs.reduce((a, b) => a + b, 0) / batchMs.length),
      events_per_s: Math.round(stored / (batchMs.reduce((a, b) => a + b, 0) / 1000)),
      wal_kb_per_batch: Math.round(walBytes / batchMs.length / 1024),
    };
    log(`stored ${stored} events; ${ingest.p50_ms_per_batch} ms p50 per batch`);

    const partition = `events_p${monthOf(startMs * 1000)}`;
    const rollups = ["event_rollups_hourly", "metric_rollups_hourly"];
    await vacuum(db, [partition, "event_identities", ...rollups]);
    const hot = {
      events: await sizeOf(db, [partition], stored),
      event_indexes: await indexesOf(db, partition),
      identities: await sizeOf(db, ["event_identities"], stored),
      rollups: await sizeOf(db, rollups, stored),
    };
    const slimmed = await slimOldPartitions(db, { now: () => now });
    await vacuum(db, [partition]);
    const slim = {
      indexes_dropped: slimmed,
      events: await sizeOf(db, [partition], stored),
      event_indexes: await indexesOf(db, partition),
    };

    // The plain layout: what an ORM schema typically stores for the same rows.
    await db.query(`CREATE TABLE plain_events (
      id uuid PRIMARY KEY, organization_id uuid NOT NULL, transaction_id text NOT NULL, external_subscription_id text NOT NULL,
      code text NOT NULL, properties jsonb NOT NULL DEFAULT '{}', precise_total_amount_cents numeric,
      timestamp timestamptz NOT NULL, created_at timestamptz NOT NULL, updated_at timestamptz NOT NULL)`);
    await db.query("CREATE UNIQUE INDEX plain_events_identity_idx ON plain_events (organization_id, external_subscription_id, transaction_id)");
    await db.query("CREATE INDEX plain_events_query_idx ON plain_events (organization_id, code, external_subscription_id, timestamp)");
    await db.query("CREATE INDEX plain_events_recent_idx ON plain_events (organization_id, timestamp)");
    const orgUuid = crypto.randomUUID();
    await db.query(
      `INSERT INTO plain_events SELECT gen_random_uuid(), $1::uuid, transaction_id, external_subscription_id, code, coalesce(properties, '{}'),
              precise_total_amount_cents, ts, created_at, created_at FROM ${partition} ORDER BY ts`,
      [orgUuid],
    );
    await vacuum(db, ["plain_events"]);
    const plain = { events: await sizeOf(db, ["plain_events"], stored), event_indexes: await indexesOf(db, "plain_events") };

    const storedHot = round2(hot.events.bytes_per_event + hot.identities.bytes_per_event);
    const storedSlim = round2(slim.events.bytes_per_event + hot.identities.bytes_per_event);
    const summary = {
      bench: "storage",
      events: stored,
      span_hours: SPAN_HOURS,
      subscriptions: SUBSCRIPTIONS,
      ingest,
      hot,
      slim,
      plain,
      bytes_per_event: {
        hot_events_plus_identities: storedHot,
        slim_events_plus_identities: storedSlim,
        rollups: hot.rollups.bytes_per_event,
        plain_layout: plain.events.bytes_per_event,
        ratio_hot_to_plain: round2(storedHot / plain.events.bytes_per_event),
        ratio_slim_to_plain: round2(storedSlim / plain.events.bytes_per_event),
      },
      goal: { slim_bytes_per_event_max: 250, met: storedSlim <= 250 },
      machine: machine(),
    };
    log(`per event: hot ${storedHot} B, slimmed ${storedSlim} B (events + identities), rollups ${hot.rollups.bytes_per_event} B, plain ${plain.events.bytes_per_event} B`);
    return summary;
  } finally {
    await db.close();
    if (!process.env.BENCH_STORAGE_KEEP) await admin.query(`DROP DATABASE IF EXISTS ${dbName}`);
    await admin.end();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  runStorageBench()
    .then((s) => {
      process.stdout.write(JSON.stringify(s) + "\n");
    })
    .catch((err: unknown) => {
      process.stderr.write(`[bench:storage] failed: ${err instanceof Error ? err.stack : String(err)}\n`);
      process.exit(1);
    });
}
