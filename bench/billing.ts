// Billing job benchmark (`npm run bench:billing`): invoices per second of `invoicing.runBillingJob()`
// on PostgreSQL (DATABASE_URL, an empty database), in this process, as `valueverse bill` runs it.
//
// Set up through the API (fastify inject, same process, a manual clock at 2026-03-15): a count, a
// sum and a max metric; a monthly plan, in arrears, with a 10.00 EUR subscription fee and three
// charges (standard 0.05 per call; graduated on the sum: 1.00 up to 10, then 0.50; standard 2.00
// on the max); N customers with one calendar subscription each, started 2026-03-01; per
// subscription 4 calls, 2 storage events (3 + 9) and 2 seat events (3, 7), as 10,000-event batches.
// Then, after VACUUM ANALYZE, the clock moves to 2026-04-01 00:00:05 and the job runs once: every
// subscription has one instant due (March's end), so it issues N invoices, each finalized at once
// (grace period 0) with 4 fees and a total of 10.00 + 0.20 + 11.00 + 14.00 = 35.20 EUR; both are
// checked. A second run must issue nothing. Progress goes to stderr; the last line on stdout is one
// JSON object. The goal (>= 1,000 invoices/s) is reported, not asserted.
import fs from "node:fs";
import inspector from "node:inspector/promises";
import os from "node:os";
import pg from "pg";
import { buildApp } from "../src/app.ts";
import type { Db, Queryable } from "../src/db/db.ts";
import { openPostgres } from "../src/db/postgres.ts";
import { ManualClock } from "../src/shared/clock.ts";
import { loadConfig } from "../src/shared/config.ts";
import { loadavg, machine, pool, requireEmptyDatabase, round2 } from "./support.ts";

const log = (s: string) => process.stderr.write(`[bench:billing] ${s}\n`);

const SETUP_AT = Date.UTC(2026, 2, 15, 12, 0, 0);
const BILL_AT = Date.UTC(2026, 3, 1, 0, 0, 5);
const EXPECTED_TOTAL_CENTS = 3520;
const FEES_PER_INVOICE = 4;

export async function runBillingBench(opts: { subscriptions: number; cpuProfile?: string }): Promise<void> {
  const url = await requireEmptyDatabase("bench:billing");
  const n = Math.max(1, Math.min(1_000_000, Math.floor(opts.subscriptions) || 5_000));
  const apiKey = "bench_" + Math.random().toString(36).slice(2) + Math.random().toString(36).slice(2);
  const clock = new ManualClock(SETUP_AT);
  const config = loadConfig({
    ...process.env,
    DATABASE_URL: url,
    VALUEVERSE_API_KEY: apiKey,
    BILLING_SCHEDULER: "off",
    WEBHOOK_WORKER: "off",
    LOG_LEVEL: process.env.LOG_LEVEL || "warn",
  });
  const profile = new StatementProfile();
  const app = buildApp(config, { clock, db: profile.wrap(openPostgres({ url, ...config.pool })) });
  await app.start();
  const headers = { authorization: `Bearer ${apiKey}` };
  const api = async (method: "POST" | "GET", route: string, payload?: unknown) => {
    const r = await app.http.inject({ method, url: route, headers, ...(payload === undefined ? {} : { payload: payload as object }) });
    if (r.statusCode !== 200) throw new Error(`${method} ${route}: HTTP ${r.statusCode} ${r.body.slice(0, 500)}`);
    return JSON.parse(r.body);
  };

  try {
    log(`${n} subscriptions; load average ${loadavg()}`);
    const setupStarted = performance.now();
    const metric = async (code: string, aggregation_type: string, field_name?: string) =>
      (await api("POST", "/api/v1/billable_metrics", { billable_metric: { name: code, code, aggregation_type, ...(field_name ? { field_name } : {}) } })).billable_metric
        .lago_id as string;
    const calls = await metric("bench_calls", "count_agg");
    const storage = await metric("bench_storage_gb", "sum_agg", "gb");
    const seats = await metric("bench_seats", "max_agg", "seats");
    await api("POST", "/api/v1/plans", {
      plan: {
        name: "Bench",
        code: "bench_plan",
        interval: "monthly",
        amount_cents: 1000,
        amount_currency: "EUR",
        pay_in_advance: false,
        charges: [
          { billable_metric_id: calls, charge_model: "standard", properties: { amount: "0.05" } },
          {
            billable_metric_id: storage,
            charge_model: "graduated",
            properties: {
              graduated_ranges: [
                { from_value: 0, to_value: 10, per_unit_amount: "1.00", flat_amount: "0" },
                { from_value: 11, to_value: null, per_unit_amount: "0.50", flat_amount: "0" },
              ],
            },
          },
          { billable_metric_id: seats, charge_model: "standard", properties: { amount: "2.00" } },
        ],
      },
    });
    await pool(n, 8, async (i) => {
      await api("POST", "/api/v1/customers", { customer: { external_id: `bench_cus_${i}`, currency: "EUR" } });
      await api("POST", "/api/v1/subscriptions", {
        subscription: { external_customer_id: `bench_cus_${i}`, plan_code: "bench_plan", external_id: `bench_sub_${i}`, billing_time: "calendar", subscription_at: "2026-03-01T00:00:00Z" },
      });
      if ((i + 1) % 1000 === 0) log(`${i + 1} customers and subscriptions`);
    });
    const subscriptionsSeconds = (performance.now() - setupStarted) / 1000;

    const ts = (day: number) => Date.UTC(2026, 2, day, 10, 0, 0) / 1000;
    const eventsOf = (i: number) => {
      const sub = `bench_sub_${i}`;
      return [
        ...[1, 2, 3, 4].map((k) => ({ transaction_id: `c${k}_${i}`, external_subscription_id: sub, code: "bench_calls", timestamp: ts(k + 1), properties: {} })),
        { transaction_id: `g1_${i}`, external_subscription_id: sub, code: "bench_storage_gb", timestamp: ts(3), properties: { gb: 3 } },
        { transaction_id: `g2_${i}`, external_subscription_id: sub, code: "bench_storage_gb", timestamp: ts(9), properties: { gb: 9 } },
        { transaction_id: `s1_${i}`, external_subscription_id: sub, code: "bench_seats", timestamp: ts(4), properties: { seats: 3 } },
        { transaction_id: `s2_${i}`, external_subscription_id: sub, code: "bench_seats", timestamp: ts(12), properties: { seats: 7 } },
      ];
    };
    const perSub = eventsOf(0).length;
    const subsPerBatch = Math.floor(10_000 / perSub);
    const eventsStarted = performance.now();
    await pool(Math.ceil(n / subsPerBatch), 2, async (b) => {
      const events = [];
      for (let i = b * subsPerBatch; i < Math.min(n, (b + 1) * subsPerBatch); i++) events.push(...eventsOf(i));
      await api("POST", "/api/v1/events/batch", { events });
    });
    const events = n * perSub;
    const eventsSeconds = (performance.now() - eventsStarted) / 1000;
    log(`set up in ${round2((performance.now() - setupStarted) / 1000)} s (${events} events in ${round2(eventsSeconds)} s)`);

    const admin = new pg.Client({ connectionString: url });
    await admin.connect();
    try {
      await admin.query("VACUUM (ANALYZE)");
    } finally {
      await admin.end();
    }

    clock.set(BILL_AT);
    log(`billing job at ${new Date(BILL_AT).toISOString()} (load average ${loadavg()})`);
    profile.reset();
    // --cpu-profile FILE: a V8 CPU profile of the job alone (open it in Chrome DevTools or speedscope).
    const inspectorSession = opts.cpuProfile ? new inspector.Session() : null;
    if (inspectorSession !== null) {
      inspectorSession.connect();
      await inspectorSession.post("Profiler.enable");
      await inspectorSession.post("Profiler.start");
    }
    const cpuBefore = process.cpuUsage();
    const started = performance.now();
    const summary = await app.invoicing.runBillingJob();
    const seconds = (performance.now() - started) / 1000;
    const cpu = process.cpuUsage(cpuBefore);
    if (inspectorSession !== null) {
      const { profile: cpuProfile } = await inspectorSession.post("Profiler.stop");
      fs.writeFileSync(opts.cpuProfile!, JSON.stringify(cpuProfile));
      inspectorSession.disconnect();
      log(`CPU profile of the job written to ${opts.cpuProfile}`);
    }
    const statements = profile.top(12, seconds);
    for (const st of statements) log(`  ${String(st.calls).padStart(7)} x ${String(st.mean_ms).padStart(6)} ms = ${String(st.total_ms).padStart(8)} ms  ${st.sql}`);
    const invoicesPerS = Math.round(summary.invoicesIssued / seconds);
    log(`${summary.invoicesIssued} invoices in ${round2(seconds)} s: ${invoicesPerS} invoices/s (failures ${summary.failures}, load average ${loadavg()})`);

    // What the job wrote: one finalized invoice per subscription, its 4 fees, the hand-worked total.
    const check = await app.reads.query<{ invoices: string; finalized: string; min_total: string; max_total: string; fees: string; numbers: string }>(
      `SELECT count(*)::text AS invoices, count(*) FILTER (WHERE status = 'finalized')::text AS finalized,
              min(total_amount_cents)::text AS min_total, max(total_amount_cents)::text AS max_total,
              (SELECT count(*) FROM fees)::text AS fees, count(DISTINCT number)::text AS numbers
         FROM invoices`,
    );
    const c = check.rows[0]!;
    const problems: string[] = [];
    if (summary.invoicesIssued !== n || Number(c.invoices) !== n) problems.push(`expected ${n} invoices, the job issued ${summary.invoicesIssued} and ${c.invoices} are stored`);
    if (Number(c.finalized) !== n || Number(c.numbers) !== n) problems.push(`expected ${n} finalized invoices with distinct numbers, found ${c.finalized} and ${c.numbers}`);
    if (Number(c.fees) !== n * FEES_PER_INVOICE) problems.push(`expected ${n * FEES_PER_INVOICE} fees, found ${c.fees}`);
    if (Number(c.min_total) !== EXPECTED_TOTAL_CENTS || Number(c.max_total) !== EXPECTED_TOTAL_CENTS) {
      problems.push(`expected every total to be ${EXPECTED_TOTAL_CENTS} cents, found ${c.min_total}..${c.max_total}`);
    }
    const again = await app.invoicing.runBillingJob();
    if (again.invoicesIssued !== 0) problems.push(`a second run issued ${again.invoicesIssued} invoices`);
    for (const p of problems) log(`PROBLEM: ${p}`);

    process.stdout.write(
      JSON.stringify({
        subscriptions: n,
        events,
        events_per_subscription: perSub,
        charges_per_plan: 3,
        invoices_issued: summary.invoicesIssued,
        failures: summary.failures,
        job_seconds: round2(seconds),
        invoices_per_s: invoicesPerS,
        ms_per_invoice: round2((seconds * 1000) / Math.max(1, summary.invoicesIssued)),
        job_process_cpu_s: { user: round2(cpu.user / 1e6), system: round2(cpu.system / 1e6) },
        job_statements: { total: profile.calls, per_invoice: round2(profile.calls / Math.max(1, summary.invoicesIssued)), top_by_time: statements },
        goal: { invoices_per_s_at_least: 1000, met: invoicesPerS >= 1000 },
        checks: { ok: problems.length === 0, problems },
        setup_seconds: { customers_and_subscriptions: round2(subscriptionsSeconds), events: round2(eventsSeconds) },
        database: "postgres",
        pool: config.pool,
        machine: { ...machine(), cpus: os.availableParallelism() },
      }) + "\n",
    );
    if (problems.length > 0) process.exitCode = 1;
  } finally {
    await app.close();
  }
}

/**
 * Wall time per SQL statement (queries and transaction control), summed by statement text: where
 * the job's time goes, as the database client sees it (waits for a connection included).
 */
class StatementProfile {
  private stats = new Map<string, { calls: number; ms: number }>();
  calls = 0;

  private record(sql: string, ms: number): void {
    const key = sql.replace(/\s+/g, " ").trim().slice(0, 140);
    const s = this.stats.get(key) ?? { calls: 0, ms: 0 };
    s.calls++;
    s.ms += ms;
    this.stats.set(key, s);
    this.calls++;
  }

  private timed(q: Queryable): Queryable {
    return {
      query: async (sql, params, opts) => {
        const t = performance.now();
        try {
          return await q.query(sql, params, opts);
        } finally {
          this.record(sql, performance.now() - t);
        }
      },
    };
  }

  wrap(db: Db): Db {
    const timed = this.timed(db);
    return {
      kind: db.kind,
      query: timed.query,
      transaction: (fn) => {
        const t = performance.now();
        return db.transaction((tx) => fn(this.timed(tx))).finally(() => this.record("(transaction: BEGIN .. COMMIT, all statements)", performance.now() - t));
      },
      exec: (sql) => db.exec(sql),
      poolStats: () => db.poolStats(),
      close: () => db.close(),
    };
  }

  reset(): void {
    this.stats.clear();
    this.calls = 0;
  }

  top(n: number, seconds: number): { sql: string; calls: number; total_ms: number; mean_ms: number; share_of_job: number }[] {
    return [...this.stats.entries()]
      .map(([sql, s]) => ({ sql, calls: s.calls, total_ms: Math.round(s.ms), mean_ms: round2(s.ms / s.calls), share_of_job: round2(s.ms / 1000 / seconds) }))
      .sort((a, b) => b.total_ms - a.total_ms)
      .slice(0, n);
  }
}
