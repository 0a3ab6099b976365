// GET /subscriptions/:external_id/lifetime_usage against a real database, under a test clock:
// usage invoiced since the start (progressive billing invoices and the period's invoice counting
// each unit once), the open period's usage, and the plan's usage thresholds with how far the
// period has come to each. Amounts worked out by hand. On PGlite by default, PostgreSQL with
// TEST_DATABASE_URL.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestApp, type TestApp } from "../helpers/app.ts";
import { json } from "./support.ts";
import { BILLING_ENV, customer, invoicesOf, newOrg, plan, sendCalls, subscribe, thresholdPlan, type Org } from "./billing_support.ts";

let t: TestApp;
beforeAll(async () => {
  t = await startTestApp({ env: BILLING_ENV });
});
afterAll(async () => {
  await t?.close();
});

const lifetime = async (org: Org, sub: string) => {
  const r = await org.raw("GET", `/api/v1/subscriptions/${encodeURIComponent(sub)}/lifetime_usage`);
  expect(r.statusCode, r.body).toBe(200);
  return json(r).lifetime_usage;
};

describe("lifetime usage", () => {
  it("adds invoiced usage (each unit once across progressive invoices) and the open period's, with threshold progress", async () => {
    const org = await newOrg(t);
    await org.freeze("2026-01-01T00:00:00Z");
    const p = await thresholdPlan(org);
    const cus = await customer(org);
    const sub = await subscribe(org, cus, p.plan);

    // January 5th: 300 calls = €15; the next run invoices the €10 crossing.
    await org.freeze("2026-01-05T10:00:00Z");
    await sendCalls(org, sub, p.calls, 300, "2026-01-05T10:00:00Z");
    await org.freeze("2026-01-06T00:00:00Z");
    const first = await lifetime(org, sub);
    expect(first).toMatchObject({
      external_subscription_id: sub,
      external_historical_usage_amount_cents: 0,
      // The progressive invoice of the open period is in the current amount, not counted twice.
      invoiced_usage_amount_cents: 0,
      current_usage_amount_cents: 1500,
      from_datetime: "2026-01-01T00:00:00Z",
      to_datetime: "2026-01-31T23:59:59Z",
    });
    expect(first.lago_id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    // €15 of €10 (crossed at the run), of €30, and of the recurring step's next level €30 + €50.
    expect(first.usage_thresholds).toEqual([
      { amount_cents: 1000, completion_ratio: 1, reached_at: "2026-01-06T00:00:00Z" },
      { amount_cents: 3000, completion_ratio: 0.5, reached_at: null },
      { amount_cents: 8000, completion_ratio: 0.1875, reached_at: null },
    ]);
    expect((await lifetime(org, sub)).lago_id).toBe(first.lago_id);

    // 500 more calls (€40 in all): the €30 crossing is invoiced on the 10th.
    await sendCalls(org, sub, p.calls, 500, "2026-01-06T00:00:00Z");
    await org.freeze("2026-01-10T00:00:00Z");
    expect(await lifetime(org, sub)).toMatchObject({ invoiced_usage_amount_cents: 0, current_usage_amount_cents: 4000 });

    // February 1st: January's invoice bills €40 of usage less the €40 its progressive invoices
    // billed (€15 + €25): €40 invoiced in all. February so far: 100 calls = €5.
    await org.freeze("2026-02-01T00:00:00Z");
    const invoices = await invoicesOf(org, cus);
    expect(invoices.map((i) => [i.invoice_type, i.fees_amount_cents, i.progressive_billing_credit_amount_cents]).sort()).toEqual([
      ["progressive_billing", 1500, 0],
      ["progressive_billing", 4000, 1500],
      ["subscription", 14000, 4000],
    ]);
    await sendCalls(org, sub, p.calls, 100, "2026-02-01T00:00:00Z");
    await org.freeze("2026-02-02T00:00:00Z");
    const feb = await lifetime(org, sub);
    expect(feb).toMatchObject({ invoiced_usage_amount_cents: 4000, current_usage_amount_cents: 500, to_datetime: "2026-02-28T23:59:59Z", from_datetime: "2026-01-01T00:00:00Z" });
    // Thresholds count per charge period here (progressive billing's rule): February starts over.
    expect(feb.usage_thresholds).toEqual([
      { amount_cents: 1000, completion_ratio: 0.5, reached_at: null },
      { amount_cents: 3000, completion_ratio: 0.1666, reached_at: null },
      { amount_cents: 8000, completion_ratio: 0.0625, reached_at: null },
    ]);
  });

  it("counts a plan without thresholds from its invoices alone, and answers 404 outside the organization", async () => {
    const org = await newOrg(t);
    await org.freeze("2026-01-01T00:00:00Z");
    const p = await plan(org, { amount_cents: 2000 });
    const cus = await customer(org);
    const sub = await subscribe(org, cus, p.plan);
    await sendCalls(org, sub, p.calls, 200, "2026-01-01T10:00:00Z");
    // January's invoice: €20 plan + €10 usage; only the usage counts.
    await org.freeze("2026-02-01T00:00:00Z");
    expect(await lifetime(org, sub)).toMatchObject({ invoiced_usage_amount_cents: 1000, current_usage_amount_cents: 0, usage_thresholds: [] });

    const nf = async (who: Org, id: string) => {
      const r = await who.raw("GET", `/api/v1/subscriptions/${encodeURIComponent(id)}/lifetime_usage`);
      expect(r.statusCode, r.body).toBe(404);
      expect(json(r)).toMatchObject({ status: 404, code: "subscription_not_found" });
    };
    await nf(org, "no-such-subscription");
    await nf(await newOrg(t), sub);
  });
});
