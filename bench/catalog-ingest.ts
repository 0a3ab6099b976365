// Catalog-ingest benchmark (`npm run bench:catalog-ingest`): ingest throughput with an empty catalog
// and with a large one (1,000 billable metrics, 100 plans, 100,000 subscriptions by default), in one
// run on PostgreSQL (DATABASE_URL, an empty database).
//
// Both phases send the same events (bench/catalog-ingest.lua: codes cycling over the catalog's
// metric codes, subscription ids over its subscriptions) with the ingest benchmark's workloads and
// wrk runner (bench/ingest.ts): single-event requests (256 connections) and 100-event batches (16
// connections), after a 3 s warm-up, each phase on a fresh server. With the empty catalog every
// event is unmatched; with the catalog every event's code is a metric (three in four of them count,
// sum or max, which the ingest statement rolls up hourly in the same transaction) and its
// subscription exists. A third phase sends, with the same catalog, events whose codes match no
// metric: it tells the cost of the catalog's size from the cost of maintaining metric rollups.
// Before each phase the event tables are emptied (TRUNCATE), so all start from the same empty
// event data.
//
// The catalog: metrics and plans through the API; subscriptions (each with its own customer)
// through the API for up to `apiSeconds`, the rest with SQL that copies every column of an
// API-written customer and subscription except their identities (the summary says how many went
// which way). Progress goes to stderr; the last line on stdout is one JSON object. The goal
// (the catalog figure within 10% of the empty one) is reported, not asserted.
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import pg from "pg";
import { wrk, type Workload } from "./ingest.ts";
import { startServer } from "./server.ts";
import { Api, loadavg, machine, pool, requireEmptyDatabase, round2 } from "./support.ts";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const log = (s: string) => process.stderr.write(`[bench:catalog-ingest] ${s}\n`);

export interface CatalogIngestOptions {
  seconds: number;
  metrics: number;
  plans: number;
  subscriptions: number;
}

const SQL_CHUNK = 20_000;
const API_CONCURRENCY = 8;

const metricCode = (i: number) => `metric_${String(i).padStart(4, "0")}`;
const AGGREGATIONS = ["count_agg", "sum_agg", "max_agg", "unique_count_agg"] as const;

interface Phase {
  single: Workload;
  batch100: Workload;
  loadavg_1m_before: number;
  loadavg_1m_after: number;
}

async function measure(env: Record<string, string>, apiKey: string, seconds: number, args: string[], runId: string, name: string): Promise<Phase> {
  const script = path.join(HERE, "catalog-ingest.lua");
  const server = await startServer(env, log);
  try {
    const loadBefore = loadavg();
    log(`${name}: warm-up (3 s)`);
    await wrk(server.url, apiKey, { size: 0, seconds: 3, connections: 64, prefix: `${runId}-${name}-warm`, script, args });
    const out: Record<string, Workload> = {};
    for (const [workload, size, connections] of [
      ["single", 0, 256],
      ["batch100", 100, 16],
    ] as const) {
      log(`${name}/${workload}: ${seconds}s, ${connections} connections`);
      out[workload] = await wrk(server.url, apiKey, { size, seconds, connections, prefix: `${runId}-${name}-${workload}`, script, args });
      log(`${name}/${workload}: ${JSON.stringify(out[workload])}`);
    }
    return { single: out.single!, batch100: out.batch100!, loadavg_1m_before: loadBefore, loadavg_1m_after: loadavg() };
  } finally {
    await server.stop();
  }
}

/** Copies `table`'s row `templateId` for each i in [from, to), with `overrides` (column -> SQL over i and t). */
async function copyRows(c: pg.Client, table: string, templateId: number, from: number, to: number, overrides: Record<string, string>, extraFrom = "", params: unknown[] = []): Promise<number> {
  const cols = (await c.query("SELECT column_name FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = $1 ORDER BY ordinal_position", [table])).rows
    .map((r) => r.column_name as string)
    .filter((col) => col !== "id");
  const select = cols.map((col) => (col in overrides ? overrides[col] : `t.${col}`));
  let n = 0;
  for (let lo = from; lo < to; lo += SQL_CHUNK) {
    const hi = Math.min(to, lo + SQL_CHUNK);
    const r = await c.query(
      `INSERT INTO ${table} (${cols.join(", ")})
       SELECT ${select.join(", ")} FROM ${table} t CROSS JOIN generate_series($1::int, $2::int - 1) AS i ${extraFrom} WHERE t.id = $3`,
      [lo, hi, templateId, ...params],
    );
    n += r.rowCount ?? 0;
  }
  return n;
}

async function buildCatalog(api: Api, db: pg.Client, o: CatalogIngestOptions, apiSeconds: number): Promise<Record<string, unknown>> {
  const started = performance.now();
  // Metrics: a quarter each of count, sum, max and unique count; every tenth with a region filter.
  await pool(o.metrics, 4, async (i) => {
    const aggregation = AGGREGATIONS[i % 4]!;
    await api.call("POST", "/api/v1/billable_metrics", {
      billable_metric: {
        code: metricCode(i),
        name: `Metric ${i}`,
        aggregation_type: aggregation,
        ...(aggregation === "sum_agg" || aggregation === "max_agg" ? { field_name: "tokens" } : aggregation === "unique_count_agg" ? { field_name: "region" } : {}),
        ...(i % 10 === 0 ? { filters: [{ key: "region", values: ["eu-west", "us-east", "ap-south"] }] } : {}),
      },
    });
  });
  const metricsSeconds = (performance.now() - started) / 1000;
  log(`${o.metrics} metrics in ${round2(metricsSeconds)} s`);
  const lagoIds = new Map<string, string>(
    (await db.query("SELECT code, lago_id::text FROM billable_metrics WHERE deleted_at IS NULL")).rows.map((r) => [r.code, r.lago_id]),
  );

  // Plans: plan p charges every metric i with i % plans == p (standard or graduated, alternately).
  const plansStarted = performance.now();
  await pool(o.plans, 4, async (p) => {
    const charges = [];
    for (let i = p; i < o.metrics; i += o.plans) {
      const graduated = Math.floor(i / o.plans) % 2 === 1 && AGGREGATIONS[i % 4] !== "unique_count_agg";
      charges.push({
        billable_metric_id: lagoIds.get(metricCode(i)),
        charge_model: graduated ? "graduated" : "standard",
        properties: graduated
          ? {
              graduated_ranges: [
                { from_value: 0, to_value: 1000, per_unit_amount: "0.01", flat_amount: "0" },
                { from_value: 1001, to_value: null, per_unit_amount: "0.005", flat_amount: "1" },
              ],
            }
          : { amount: "0.02" },
      });
    }
    await api.call("POST", "/api/v1/plans", { plan: { name: `Plan ${p}`, code: `plan_${p}`, interval: "monthly", amount_cents: 1000 + p, amount_currency: "EUR", charges } });
  });
  const plansSeconds = (performance.now() - plansStarted) / 1000;
  log(`${o.plans} plans in ${round2(plansSeconds)} s`);

  // Subscriptions (each creating its customer, as Lago does for an unknown external_customer_id)
  // through the API while the budget lasts, in order, so the API wrote sub_0 .. sub_(k-1).
  const subsStarted = performance.now();
  const now = new Date();
  const subscriptionAt = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1)).toISOString();
  const deadline = Date.now() + apiSeconds * 1000;
  let next = 0;
  let viaApi = 0;
  await Promise.all(
    Array.from({ length: API_CONCURRENCY }, async () => {
      while (next < o.subscriptions && (Date.now() < deadline || next === 0)) {
        const i = next++;
        await api.call("POST", "/api/v1/subscriptions", {
          subscription: { external_customer_id: `cus_${i}`, plan_code: `plan_${i % o.plans}`, external_id: `sub_${i}`, billing_time: "calendar", subscription_at: subscriptionAt },
        });
        viaApi++;
      }
    }),
  );
  const apiSubsSeconds = (performance.now() - subsStarted) / 1000;
  log(`${viaApi} subscriptions (and customers) through the API in ${round2(apiSubsSeconds)} s (${Math.round(viaApi / apiSubsSeconds)}/s)`);

  let viaSql = 0;
  const sqlStarted = performance.now();
  if (viaApi < o.subscriptions) {
    const customer = (await db.query("SELECT id, org_id, slug, sequential_id FROM customers WHERE external_id = 'cus_0'")).rows[0];
    const subscription = (await db.query("SELECT id FROM subscriptions WHERE external_id = 'sub_0'")).rows[0];
    const seqBase = Number((await db.query("SELECT max(sequential_id) AS m FROM customers WHERE org_id = $1", [customer.org_id])).rows[0].m);
    // The slug is "<org letters>-<org id tail>-<sequential id, at least 3 digits>".
    const slugPrefix = String(customer.slug).replace(/-\d+$/, "-");
    await db.query("BEGIN");
    const customers = await copyRows(db, "customers", Number(customer.id), viaApi, o.subscriptions, {
      lago_id: "gen_random_uuid()",
      external_id: "'cus_' || i",
      sequential_id: `${seqBase} + i - ${viaApi} + 1`,
      slug: `'${slugPrefix}' || lpad((${seqBase} + i - ${viaApi} + 1)::text, 3, '0')`,
      created_at: "now()",
      updated_at: "now()",
    });
    const subscriptions = await copyRows(
      db,
      "subscriptions",
      Number(subscription.id),
      viaApi,
      o.subscriptions,
      {
        lago_id: "gen_random_uuid()",
        external_id: "'sub_' || i",
        customer_id: "c.id",
        plan_id: "p.id",
        created_at: "now()",
        updated_at: "now()",
      },
      `JOIN customers c ON c.org_id = t.org_id AND c.external_id = 'cus_' || i AND c.deleted_at IS NULL
       JOIN plans p ON p.org_id = t.org_id AND p.code = 'plan_' || (i % $4::int) AND p.deleted_at IS NULL`,
      [o.plans],
    );
    await db.query("COMMIT");
    viaSql = subscriptions;
    if (customers !== o.subscriptions - viaApi || subscriptions !== o.subscriptions - viaApi) throw new Error(`SQL wrote ${customers} customers, ${subscriptions} subscriptions`);
    await db.query("ANALYZE customers, subscriptions");
    log(`${viaSql} subscriptions and customers with SQL in ${round2((performance.now() - sqlStarted) / 1000)} s`);
  }
  // Spot check: a SQL-written subscription reads back through the API like an API-written one.
  const probe = await api.call<{ subscription: Record<string, unknown> }>("GET", `/api/v1/subscriptions/sub_${o.subscriptions - 1}`);
  const reference = await api.call<{ subscription: Record<string, unknown> }>("GET", "/api/v1/subscriptions/sub_0");
  for (const key of ["status", "billing_time", "subscription_at", "started_at"]) {
    if (probe.subscription[key] !== reference.subscription[key]) throw new Error(`sub_${o.subscriptions - 1}.${key} = ${String(probe.subscription[key])}, sub_0: ${String(reference.subscription[key])}`);
  }
  const counts = (await db.query(
    `SELECT (SELECT count(*) FROM billable_metrics WHERE deleted_at IS NULL)::int AS metrics, (SELECT count(*) FROM plans WHERE deleted_at IS NULL)::int AS plans,
            (SELECT count(*) FROM charges WHERE deleted_at IS NULL)::int AS charges, (SELECT count(*) FROM customers WHERE deleted_at IS NULL)::int AS customers,
            (SELECT count(*) FROM subscriptions WHERE status = 'active')::int AS active_subscriptions`,
  )).rows[0];
  return {
    ...counts,
    metrics_via: "api",
    plans_via: "api",
    subscriptions_via_api: viaApi,
    subscriptions_via_sql: viaSql,
    api_subscriptions_per_s: Math.round(viaApi / apiSubsSeconds),
    seconds: { metrics: round2(metricsSeconds), plans: round2(plansSeconds), subscriptions_api: round2(apiSubsSeconds), subscriptions_sql: round2((performance.now() - sqlStarted) / 1000) },
  };
}

export async function runCatalogIngestBench(opts: CatalogIngestOptions & { apiSeconds?: number }): Promise<void> {
  const o: CatalogIngestOptions = {
    seconds: Math.max(3, Math.min(120, Math.floor(opts.seconds) || 15)),
    metrics: Math.max(4, Math.min(10_000, Math.floor(opts.metrics) || 1000)),
    plans: Math.max(1, Math.min(1000, Math.floor(opts.plans) || 100)),
    subscriptions: Math.max(1, Math.min(10_000_000, Math.floor(opts.subscriptions) || 100_000)),
  };
  const apiSeconds = opts.apiSeconds ?? 30;
  const url = await requireEmptyDatabase("bench:catalog-ingest");
  const apiKey = "bench_" + Math.random().toString(36).slice(2) + Math.random().toString(36).slice(2);
  const runId = Date.now().toString(36);
  const workers = Math.max(1, Math.min(os.availableParallelism(), Number(process.env.WORKERS) || os.availableParallelism()));
  const env = { DATABASE_URL: url, VALUEVERSE_API_KEY: apiKey, WORKERS: String(workers), INGEST_QUEUE_MAX: "1000000" };
  const args = [String(o.metrics), String(o.subscriptions), "metric_"];
  log(`${os.cpus()[0]?.model ?? "cpu"} x${os.availableParallelism()}, load average ${loadavg()}; ${JSON.stringify(o)}`);

  const db = new pg.Client({ connectionString: url });
  await db.connect();
  try {
    const empty = await measure(env, apiKey, o.seconds, args, runId, "empty");

    log("emptying the event tables");
    await db.query("TRUNCATE events, event_identities, event_rollups_hourly, metric_rollups_hourly");
    const server = await startServer(env, log);
    let catalog: Record<string, unknown>;
    try {
      catalog = await buildCatalog(new Api(server.url, apiKey), db, o, apiSeconds);
    } finally {
      await server.stop();
    }
    log(`catalog: ${JSON.stringify(catalog)}`);
    await db.query("VACUUM (ANALYZE) billable_metrics, plans, charges, customers, subscriptions");

    const full = await measure(env, apiKey, o.seconds, args, runId, "catalog");
    const rollups = Number((await db.query("SELECT count(*) AS n FROM metric_rollups_hourly")).rows[0].n);
    log("emptying the event tables");
    await db.query("TRUNCATE events, event_identities, event_rollups_hourly, metric_rollups_hourly");
    const unmatched = await measure(env, apiKey, o.seconds, [String(o.metrics), String(o.subscriptions), "nometric_"], runId, "catalog-unmatched-codes");
    const ratio = (a: Workload, b: Workload) => round2(b.events_per_s / Math.max(1, a.events_per_s));
    const ratios = { single: ratio(empty.single, full.single), batch100: ratio(empty.batch100, full.batch100) };
    const summary = {
      empty_catalog: empty,
      with_catalog: full,
      ratio_catalog_vs_empty: ratios,
      goal: { within: 0.1, met: ratios.single >= 0.9 && ratios.batch100 >= 0.9 },
      with_catalog_codes_matching_no_metric: unmatched,
      ratio_catalog_unmatched_codes_vs_empty: { single: ratio(empty.single, unmatched.single), batch100: ratio(empty.batch100, unmatched.batch100) },
      catalog,
      metric_rollup_rows_written: rollups,
      events: "codes cycle over the catalog's metric codes, subscription ids over its subscriptions (the same in both phases)",
      machine: machine(),
      database: "postgres",
      workers,
      seconds_per_workload: o.seconds,
    };
    process.stdout.write(JSON.stringify(summary) + "\n");
  } finally {
    await db.end();
  }
}
