import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestApp, type TestApp } from "../helpers/app.ts";
import { DB_KIND } from "../helpers/db.ts";
import { T0_S, bearer, client, json, uid } from "./support.ts";

// Lago's `timestamp_from_started_at` on GET /api/v1/events: only events at or after the start of the
// subscription named by external_subscription_id.
describe(`GET /api/v1/events?timestamp_from_started_at on ${DB_KIND}`, () => {
  let t: TestApp;
  const sub = uid("sub");
  beforeAll(async () => {
    t = await startTestApp();
    const headers = bearer(t.apiKey);
    const plan = { name: "Basic", code: uid("plan"), interval: "monthly", amount_cents: 1_000, amount_currency: "USD" };
    expect((await t.app.http.inject({ method: "POST", url: "/api/v1/plans", headers, payload: { plan } })).statusCode).toBe(200);
    const subscription = { external_customer_id: uid("cus"), plan_code: plan.code, external_id: sub, subscription_at: new Date(T0_S * 1000).toISOString() };
    expect((await t.app.http.inject({ method: "POST", url: "/api/v1/subscriptions", headers, payload: { subscription } })).statusCode).toBe(200);
    const api = client(t);
    for (const [tx, offset] of [["before-2", -7200], ["before-1", -1], ["at", 0], ["after", 3600]] as const) {
      const r = await api.postEvent({ transaction_id: tx, external_subscription_id: sub, code: "calls", timestamp: T0_S + offset });
      expect(r.statusCode).toBe(200);
    }
  });
  afterAll(async () => {
    await t.close();
  });

  it("lists only the events from the subscription's start on", async () => {
    const r = await client(t).list(`external_subscription_id=${sub}&timestamp_from_started_at=true`);
    expect(r.statusCode).toBe(200);
    const body = json(r);
    expect(body.events.map((e: { transaction_id: string }) => e.transaction_id).sort()).toEqual(["after", "at"]);
    expect(body.meta.total_count).toBe(2);
  });

  it("lists every event when the flag is false", async () => {
    const body = json(await client(t).list(`external_subscription_id=${sub}&timestamp_from_started_at=false`));
    expect(body.meta.total_count).toBe(4);
  });

  it("needs external_subscription_id, and a boolean", async () => {
    const missing = await client(t).list("timestamp_from_started_at=true");
    expect(missing.statusCode).toBe(422);
    expect(json(missing).error_details).toHaveProperty("external_subscription_id");
    const bad = await client(t).list(`external_subscription_id=${sub}&timestamp_from_started_at=yes`);
    expect(bad.statusCode).toBe(422);
    expect(json(bad).error_details).toEqual({ timestamp_from_started_at: ["must_be_true_or_false"] });
  });
});
