// Two app instances on one database (as two processes would be), sharing a Redis when given one.
import type { InjectOptions, LightMyRequestResponse } from "fastify";
import { expect } from "vitest";
import { buildApp, type App } from "../../src/app.ts";
import type { Db } from "../../src/db/db.ts";
import { ManualClock } from "../../src/shared/clock.ts";
import { loadConfig } from "../../src/shared/config.ts";
import { openTestDb } from "../helpers/db.ts";
import { bearer, json, T0, uid } from "./support.ts";

export interface Pair {
  a: App;
  b: App;
  db: Db & { url?: string };
  apiKey: string;
  /** The Redis namespace both instances share (one deployment). */
  namespace: string;
  /** Logs (warn and above) of each instance, as JSON objects. */
  logs: { a: Record<string, unknown>[]; b: Record<string, unknown>[] };
  close(): Promise<void>;
}

/** The database once for both: closing an app leaves it open. */
function shared(db: Db): Db {
  return new Proxy(db, {
    get(target, prop) {
      if (prop === "close") return async () => {};
      const v = Reflect.get(target, prop, target);
      return typeof v === "function" ? v.bind(target) : v;
    },
  });
}

export async function startPair(env: Record<string, string> = {}): Promise<Pair> {
  const db = await openTestDb();
  const clock = new ManualClock(T0);
  const apiKey = "cache_key_" + Math.random().toString(36).slice(2, 14);
  const logs = { a: [] as Record<string, unknown>[], b: [] as Record<string, unknown>[] };
  // One Redis namespace for both: the same deployment.
  const namespace = uid("ns");
  const build = async (name: "a" | "b") => {
    const config = loadConfig({
      LOG_LEVEL: "silent",
      VALUEVERSE_API_KEY: apiKey,
      BILLING_SCHEDULER: "off",
      WEBHOOK_WORKER: "off",
      PAYMENT_WORKER: "off",
      WEBHOOK_PRIVATE_NETWORKS: "allow",
      CACHE_NAMESPACE: namespace,
      ...(db.url !== undefined ? { DATABASE_URL: db.url } : {}),
      ...env,
    });
    const app = buildApp(config, { db: shared(db), clock });
    // The cache logs through the app's logger: keep what it says, per instance.
    const log = app.http.log as unknown as Record<"warn" | "info", (obj: object, msg?: string) => void>;
    for (const level of ["warn", "info"] as const) log[level] = (obj, msg) => void logs[name].push({ level, msg, ...obj });
    await app.start();
    return app;
  };
  const a = await build("a");
  const b = await build("b");
  return {
    a,
    b,
    db,
    apiKey,
    namespace,
    logs,
    async close() {
      await a.close();
      await b.close();
      await db.close();
    },
  };
}

export function api(app: App, apiKey: string) {
  const call = (method: InjectOptions["method"], url: string, payload?: unknown) =>
    app.http.inject({ method, url, headers: bearer(apiKey), ...(payload === undefined ? {} : { payload: payload as InjectOptions["payload"] }) });
  const ok = (r: LightMyRequestResponse) => {
    expect(r.statusCode, r.body).toBe(200);
    return json(r);
  };
  return {
    call,
    ok,
    plan: async (code: string) => ok(await call("GET", `/api/v1/plans/${code}`)).plan,
    usage: async (customer: string, sub: string) =>
      ok(await call("GET", `/api/v1/customers/${encodeURIComponent(customer)}/current_usage?external_subscription_id=${encodeURIComponent(sub)}`)).customer_usage,
    subscription: async (sub: string) => ok(await call("GET", `/api/v1/subscriptions/${encodeURIComponent(sub)}`)).subscription,
  };
}

/** A count metric, a monthly plan charging `price` per event, a customer and a subscription with `events` events. */
export async function pricedSubscription(app: App, apiKey: string, price: string, events: number) {
  const c = api(app, apiKey);
  const code = uid("calls");
  const metric = c.ok(await c.call("POST", "/api/v1/billable_metrics", { billable_metric: { name: "Calls", code, aggregation_type: "count_agg" } })).billable_metric;
  const plan = c.ok(
    await c.call("POST", "/api/v1/plans", {
      plan: {
        name: "Usage",
        code: uid("plan"),
        interval: "monthly",
        amount_cents: 1000,
        amount_currency: "EUR",
        charges: [{ billable_metric_id: metric.lago_id, charge_model: "standard", properties: { amount: price } }],
      },
    }),
  ).plan;
  const customer = c.ok(await c.call("POST", "/api/v1/customers", { customer: { external_id: uid("cus"), currency: "EUR" } })).customer;
  const sub = uid("sub");
  c.ok(
    await c.call("POST", "/api/v1/subscriptions", {
      subscription: { external_customer_id: customer.external_id, plan_code: plan.code, external_id: sub, billing_time: "calendar", subscription_at: "2026-03-01T00:00:00Z" },
    }),
  );
  const batch = Array.from({ length: events }, () => ({ transaction_id: uid("tx"), external_subscription_id: sub, code, timestamp: T0 / 1000 - 3600 }));
  if (events > 0) c.ok(await c.call("POST", "/api/v1/events/batch", { events: batch }));
  return { code, metric, plan, customer: customer.external_id as string, sub, chargeId: plan.charges[0].lago_id as string };
}

/** Changes the price of the plan's one charge (PUT /plans/:code). */
export async function reprice(app: App, apiKey: string, s: { plan: { code: string }; metric: { lago_id: string }; chargeId: string }, price: string) {
  const c = api(app, apiKey);
  return c.ok(
    await c.call("PUT", `/api/v1/plans/${s.plan.code}`, {
      plan: { charges: [{ id: s.chargeId, billable_metric_id: s.metric.lago_id, charge_model: "standard", properties: { amount: price } }] },
    }),
  ).plan;
}
