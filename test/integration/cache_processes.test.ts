// Cache invalidation between real server processes (`valueverse serve`, two of them on one
// PostgreSQL database): a plan price change made through one process is priced by the other's very
// next current_usage read — over Redis pub/sub (a private redis-server), and over PostgreSQL
// LISTEN/NOTIFY when no Redis is configured. Needs PostgreSQL: two processes cannot share an
// embedded PGlite database (one process owns it), so on PGlite this file is skipped.
import { afterAll, describe, expect, it } from "vitest";
import { call } from "../../e2e/helpers/http.ts";
import { createDataTarget, killAllServers, randomKey, startServer, type DataTarget, type ServerProcess } from "../../e2e/helpers/server.ts";
import { DB_KIND } from "../helpers/db.ts";
import { startRedis, type RedisServer } from "../helpers/redis.ts";
import { parseMetrics, uid } from "./support.ts";

afterAll(async () => {
  await killAllServers();
});

async function scenario(env: Record<string, string>) {
  const target: DataTarget = await createDataTarget("postgres");
  const apiKey = randomKey();
  const servers: ServerProcess[] = [];
  try {
    // Billing and delivery off: only the requests below touch the database.
    const common = { WORKERS: "1", BILLING_SCHEDULER: "off", WEBHOOK_WORKER: "off", PAYMENT_WORKER: "off", ...env };
    servers.push(await startServer({ target, apiKey, env: common }));
    servers.push(await startServer({ target, apiKey, env: common }));
    const [one, two] = servers as [ServerProcess, ServerProcess];
    const ok = async (server: ServerProcess, method: string, path: string, body?: unknown) => {
      const r = await call(server.url, method, path, { apiKey, body });
      expect(r.status, JSON.stringify(r.body)).toBe(200);
      return r.body;
    };
    const code = uid("calls");
    const metric = (await ok(one, "POST", "/api/v1/billable_metrics", { billable_metric: { name: "Calls", code, aggregation_type: "count_agg" } })).billable_metric;
    const charge = (amount: string, id?: string) => ({ ...(id ? { id } : {}), billable_metric_id: metric.lago_id, charge_model: "standard", properties: { amount } });
    const plan = (await ok(one, "POST", "/api/v1/plans", { plan: { name: "P", code: uid("plan"), interval: "monthly", amount_cents: 0, amount_currency: "EUR", charges: [charge("1")] } })).plan;
    const customer = uid("cus");
    const sub = uid("sub");
    await ok(one, "POST", "/api/v1/subscriptions", { subscription: { external_customer_id: customer, plan_code: plan.code, external_id: sub } });
    await ok(one, "POST", "/api/v1/events/batch", {
      events: Array.from({ length: 3 }, () => ({ transaction_id: uid("tx"), external_subscription_id: sub, code })),
    });
    const usage = async (server: ServerProcess) =>
      (await ok(server, "GET", `/api/v1/customers/${customer}/current_usage?external_subscription_id=${sub}`)).customer_usage.amount_cents as number;

    // The second process reads (and caches) the plan at 1 EUR an event.
    expect(await usage(two)).toBe(300);
    expect(await usage(two)).toBe(300);
    const metrics = parseMetrics((await call(two.url, "GET", "/metrics")).body as string);
    expect(metrics.get('cache_hits_total{kind="plan",tier="l1"}'), "the second read came from its in-process cache").toBeGreaterThan(0);
    for (const [price, expected] of [["2", 600], ["0.5", 150], ["3", 900]] as const) {
      await ok(one, "PUT", `/api/v1/plans/${plan.code}`, { plan: { charges: [charge(price, plan.charges[0].lago_id)] } });
      expect(await usage(two), `priced at ${price} by the other process`).toBe(expected);
      expect(await usage(one)).toBe(expected);
    }
    // And the other way round.
    await ok(two, "PUT", `/api/v1/plans/${plan.code}`, { plan: { charges: [charge("4", plan.charges[0].lago_id)] } });
    expect(await usage(one)).toBe(1200);
    return servers.map((s) => s.logLines(50));
  } finally {
    for (const s of servers) await s.stop();
    await target.cleanup();
  }
}

describe.skipIf(DB_KIND === "pglite")("cache invalidation across two server processes on one PostgreSQL database", () => {
  let redis: RedisServer | undefined;
  afterAll(async () => {
    await redis?.stop();
  });

  it("over Redis pub/sub: the other process prices with the new plan on its next read", async () => {
    redis = await startRedis();
    const errors = await scenario({ REDIS_URL: redis.url });
    expect(errors.flat()).toEqual([]);
  });

  it("without Redis, over PostgreSQL LISTEN/NOTIFY: the same", async () => {
    const errors = await scenario({});
    expect(errors.flat()).toEqual([]);
  });
});
