// Cache benchmark (`npm run bench:cache`): a cached catalog lookup (a plan of 10 charges by code) and
// a cached subscription lookup (by external_id, with its plan) against the same lookups uncached
// (CACHE=off services over the same database), in one run. With REDIS_URL, also the Redis tier on
// its own (the in-process tier emptied before every lookup). On DATABASE_URL (PostgreSQL) or, when
// unset, an embedded database in a temporary directory. Progress on stderr; the last stdout line is
// one JSON object. The goal (cached p50 at least 10x faster than uncached) is reported, not
// asserted.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { buildApp } from "../src/app.ts";
import { openDatabase } from "../src/db/open.ts";
import { Cache, DEFAULT_CACHE_OPTIONS } from "../src/modules/cache/index.ts";
import { CatalogService } from "../src/modules/catalog/index.ts";
import { CustomerService } from "../src/modules/customers/index.ts";
import { SubscriptionService } from "../src/modules/subscriptions/index.ts";
import { systemClock } from "../src/shared/clock.ts";
import { loadConfig } from "../src/shared/config.ts";
import { machine } from "./support.ts";

const log = (s: string) => process.stderr.write(`[bench:cache] ${s}\n`);
const ITERATIONS = Number(process.env.BENCH_CACHE_ITERATIONS ?? 2000);
const WARMUP = 200;

interface Summary {
  p50_us: number;
  p95_us: number;
  p99_us: number;
  mean_us: number;
  lookups: number;
}

function summarize(us: number[]): Summary {
  const s = [...us].sort((a, b) => a - b);
  const at = (q: number) => s[Math.min(s.length - 1, Math.floor(q * s.length))]!;
  const r = (x: number) => Math.round(x * 10) / 10;
  return { p50_us: r(at(0.5)), p95_us: r(at(0.95)), p99_us: r(at(0.99)), mean_us: r(s.reduce((a, b) => a + b, 0) / s.length), lookups: s.length };
}

async function measure(name: string, op: () => Promise<unknown>, before?: () => void): Promise<Summary> {
  for (let i = 0; i < WARMUP; i++) {
    before?.();
    await op();
  }
  const us: number[] = [];
  for (let i = 0; i < ITERATIONS; i++) {
    before?.();
    const t = process.hrtime.bigint();
    await op();
    us.push(Number(process.hrtime.bigint() - t) / 1000);
  }
  const s = summarize(us);
  log(`${name}: p50 ${s.p50_us} µs, p95 ${s.p95_us} µs`);
  return s;
}

export async function runCacheBench(): Promise<Record<string, unknown>> {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "vv-bench-cache-"));
  const apiKey = "bench_cache_key_0123456789";
  const config = loadConfig({
    ...process.env,
    DATA_DIR: dataDir,
    LOG_LEVEL: "warn",
    VALUEVERSE_API_KEY: apiKey,
    BILLING_SCHEDULER: "off",
    WEBHOOK_WORKER: "off",
    PAYMENT_WORKER: "off",
    CACHE: "on",
  });
  const db = await openDatabase(config);
  const app = buildApp(config, { db });
  try {
    await app.start();
    const orgId = (await app.orgs.authenticate(apiKey))!;
    const call = async (method: "POST" | "GET", url: string, payload?: unknown) => {
      const r = await app.http.inject({ method, url, headers: { authorization: `Bearer ${apiKey}` }, ...(payload ? { payload: payload as object } : {}) });
      if (r.statusCode !== 200) throw new Error(`${method} ${url}: ${r.statusCode} ${r.body}`);
      return r.json();
    };
    const suffix = Date.now().toString(36);
    log(`setting up on ${db.kind}${config.cache.redisUrl ? " with Redis" : ""}: 10 metrics, a plan of 10 charges, a subscription`);
    const metrics = [];
    for (let i = 0; i < 10; i++) {
      metrics.push((await call("POST", "/api/v1/billable_metrics", { billable_metric: { name: `m${i}`, code: `bench_m${i}_${suffix}`, aggregation_type: "sum_agg", field_name: "v" } })).billable_metric);
    }
    const planCode = `bench_plan_${suffix}`;
    await call("POST", "/api/v1/plans", {
      plan: {
        name: "Bench",
        code: planCode,
        interval: "monthly",
        amount_cents: 4900,
        amount_currency: "USD",
        charges: metrics.map((m, i) => ({
          billable_metric_id: m.lago_id,
          charge_model: "graduated",
          properties: {
            graduated_ranges: [
              { from_value: 0, to_value: 1000, per_unit_amount: `0.00${i + 1}`, flat_amount: "0" },
              { from_value: 1001, to_value: null, per_unit_amount: "0.0005", flat_amount: "1" },
            ],
          },
        })),
      },
    });
    const sub = `bench_sub_${suffix}`;
    await call("POST", "/api/v1/subscriptions", { subscription: { external_customer_id: `bench_cus_${suffix}`, plan_code: planCode, external_id: sub } });

    // The same lookups with caching off, over the same database, in the same run.
    const off = new Cache({ ...DEFAULT_CACHE_OPTIONS, enabled: false });
    const uncachedCatalog = new CatalogService(db, systemClock, { cache: off });
    const uncachedSubscriptions = new SubscriptionService(db, systemClock, uncachedCatalog, new CustomerService(db, systemClock), { cache: off });

    const results: Record<string, Record<string, Summary>> = { uncached: {}, l1: {} };
    results.uncached!.plan_by_code = await measure("plan by code, uncached", () => uncachedCatalog.getPlanByCode(orgId, planCode));
    results.l1!.plan_by_code = await measure("plan by code, in-process tier", () => app.catalog.getPlanByCode(orgId, planCode));
    results.uncached!.subscription_by_external_id = await measure("subscription by external_id, uncached", () => uncachedSubscriptions.getByExternalId(orgId, sub));
    results.l1!.subscription_by_external_id = await measure("subscription by external_id, in-process tier", () => app.subscriptions.getByExternalId(orgId, sub));
    if (app.cache.l2Up) {
      results.l2 = {};
      // The in-process tier emptied before each lookup: Redis answers (plan and subscription rows).
      results.l2.plan_by_code = await measure("plan by code, Redis tier", () => app.catalog.getPlanByCode(orgId, planCode), () => app.cache.clearLocal());
      results.l2.subscription_by_external_id = await measure("subscription by external_id, Redis tier", () => app.subscriptions.getByExternalId(orgId, sub), () => app.cache.clearLocal());
    }
    const ratio = (tier: string, what: string) => Math.round((results.uncached![what]!.p50_us / results[tier]![what]!.p50_us) * 10) / 10;
    const ratios: Record<string, number> = {
      plan_l1_vs_uncached_p50: ratio("l1", "plan_by_code"),
      subscription_l1_vs_uncached_p50: ratio("l1", "subscription_by_external_id"),
    };
    if (results.l2) {
      ratios.plan_l2_vs_uncached_p50 = ratio("l2", "plan_by_code");
      ratios.subscription_l2_vs_uncached_p50 = ratio("l2", "subscription_by_external_id");
    }
    return {
      bench: "cache",
      database: db.kind,
      redis: config.cache.redisUrl !== undefined,
      iterations: ITERATIONS,
      ...results,
      ratios,
      goal: "cached p50 >= 10x faster than uncached",
      goal_met: Object.values(ratios).every((r) => r >= 10),
      machine: machine(),
    };
  } finally {
    await app.close();
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  runCacheBench().then(
    (summary) => {
      process.stdout.write(JSON.stringify(summary) + "\n");
      process.exit(0);
    },
    (err) => {
      console.error(err);
      process.exit(1);
    },
  );
}
