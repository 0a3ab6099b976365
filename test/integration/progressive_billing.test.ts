// Progressive billing against a real database, under a test clock: usage thresholds crossed
// mid-period issue `progressive_billing` invoices (once per crossing, whatever the number of runs),
// and the period-end invoice credits what they billed. Amounts worked out by hand.
// On PGlite by default, PostgreSQL with TEST_DATABASE_URL.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestApp, type TestApp } from "../helpers/app.ts";
import { uid } from "./support.ts";
import { BILLING_ENV, customer, expect422, invoiceOf, invoicesOf, newOrg, sendCalls, subscribe, thresholdPlan, type Org } from "./billing_support.ts";

let t: TestApp;
beforeAll(async () => {
  t = await startTestApp({ env: BILLING_ENV });
});
afterAll(async () => {
  await t?.close();
});

const progressive = async (org: Org, cus: string) => (await invoicesOf(org, cus)).filter((i) => i.invoice_type === "progressive_billing").reverse();

describe("progressive billing", () => {
  it("shows the plan's thresholds in order, and refuses bad ones with a 422 naming the field", async () => {
    const org = await newOrg(t);
    // The steps sent out of order: the plan answers them sorted.
    const p = await thresholdPlan(org, { stepsReversed: true });
    expect(p.json.usage_thresholds.map((u: any) => [u.amount_cents, u.threshold_display_name, u.recurring])).toEqual([
      [1000, "Step 1", false],
      [3000, "Step 2", false],
      [5000, "Every €50", true],
    ]);
    const kept = p.json.usage_thresholds[0].lago_id;
    const updated = (await org.api("PUT", `/api/v1/plans/${p.plan}`, { plan: { usage_thresholds: [{ amount_cents: 1000, threshold_display_name: "First" }] } })).plan;
    expect(updated.usage_thresholds).toEqual([expect.objectContaining({ lago_id: kept, amount_cents: 1000, threshold_display_name: "First", recurring: false })]);
    expect((await org.api("PUT", `/api/v1/plans/${p.plan}`, { plan: { usage_thresholds: [] } })).plan.usage_thresholds).toEqual([]);

    const bad = (usage_thresholds: unknown) =>
      org.raw("POST", "/api/v1/plans", { plan: { name: "x", code: uid("x"), interval: "monthly", amount_cents: 0, amount_currency: "EUR", usage_thresholds } });
    expect422(await bad([{ amount_cents: 0 }]), "usage_thresholds[0].amount_cents");
    expect422(await bad([{ threshold_display_name: "no amount" }]), "usage_thresholds[0].amount_cents");
    expect422(await bad([{ amount_cents: 100 }, { amount_cents: 100 }]), "usage_thresholds[1].amount_cents");
    expect422(await bad([{ amount_cents: 100, recurring: true }, { amount_cents: 200, recurring: true }]), "usage_thresholds[1].recurring");
    expect422(await bad([{ amount_cents: 100, recurring: "yes" }]), "usage_thresholds[0].recurring");
    expect422(await bad("many"), "usage_thresholds");
  });

  it("invoices each crossing once, credits earlier progressive invoices, and the month's invoice credits them all", async () => {
    const org = await newOrg(t);
    await org.api("POST", "/api/v1/webhook_endpoints", { webhook_endpoint: { webhook_url: "http://127.0.0.1:9/hook", signature_algo: "hmac" } });
    await org.freeze("2026-01-01T00:00:00Z");
    const p = await thresholdPlan(org, { stepsReversed: true });
    const cus = await customer(org);
    const sub = await subscribe(org, cus, p.plan);

    // January 5th: 300 calls = €15, past €10. Seen at the next run (here: the next clock move).
    await org.freeze("2026-01-05T10:00:00Z");
    await sendCalls(org, sub, p.calls, 300, "2026-01-05T10:00:00Z");
    expect(await progressive(org, cus)).toEqual([]);
    await org.freeze("2026-01-06T00:00:00Z");
    let [first, ...more] = await progressive(org, cus);
    expect(more).toEqual([]);
    expect(first).toMatchObject({ status: "finalized", fees_amount_cents: 1500, progressive_billing_credit_amount_cents: 0, total_amount_cents: 1500 });
    const full = await invoiceOf(org, first.lago_id);
    expect(full.fees.map((f: any) => [f.item.type, f.amount_cents, f.units])).toEqual([["charge", 1500, "300"]]);
    expect(full.fees[0].from_date).toBe("2026-01-01T00:00:00Z");
    // Lago's applied_usage_thresholds: the threshold crossed, as it was, and the usage it was crossed at.
    const step1 = p.json.usage_thresholds.find((u: any) => u.threshold_display_name === "Step 1");
    const applied = [{ lifetime_usage_amount_cents: 1500, created_at: "2026-01-06T00:00:00Z", usage_threshold: step1 }];
    expect(full.applied_usage_thresholds).toEqual(applied);
    expect(first.applied_usage_thresholds).toEqual(applied);

    // Runs again, concurrently and at the same time: nothing more to invoice.
    await org.freeze("2026-01-06T00:00:00Z");
    await Promise.all([t.app.invoicing.runBillingJob({ orgId: org.orgId }), t.app.invoicing.runBillingJob({ orgId: org.orgId })]);
    expect(await progressive(org, cus)).toHaveLength(1);

    // 500 more calls: €40, past €30. The invoice bills €40 of usage less the €15 already billed.
    await sendCalls(org, sub, p.calls, 500, "2026-01-06T00:00:00Z");
    await org.freeze("2026-01-10T00:00:00Z");
    let list = await progressive(org, cus);
    expect(list).toHaveLength(2);
    expect(list[1]).toMatchObject({ fees_amount_cents: 4000, progressive_billing_credit_amount_cents: 1500, total_amount_cents: 2500 });

    // 1,000 more: €90 = €30 + €60, past the recurring €50 once. €90 less €40 billed.
    await sendCalls(org, sub, p.calls, 1000, "2026-01-10T00:00:00Z");
    await org.freeze("2026-01-20T00:00:00Z");
    list = await progressive(org, cus);
    expect(list).toHaveLength(3);
    expect(list[2]).toMatchObject({ fees_amount_cents: 9000, progressive_billing_credit_amount_cents: 4000, total_amount_cents: 5000 });
    expect(list[2].applied_usage_thresholds.map((a: any) => [a.lifetime_usage_amount_cents, a.usage_threshold.amount_cents, a.usage_threshold.recurring])).toEqual([
      [9000, 5000, true],
    ]);

    // February 1st: €100 plan + €90 usage, €90 of it already billed progressively.
    await org.freeze("2026-02-01T00:00:00Z");
    const month = (await invoicesOf(org, cus)).find((i) => i.invoice_type === "subscription");
    expect(month).toMatchObject({ fees_amount_cents: 19000, progressive_billing_credit_amount_cents: 9000, sub_total_excluding_taxes_amount_cents: 10000, total_amount_cents: 10000 });
    expect(month.applied_usage_thresholds).toEqual([]);

    // February starts over: €10 of usage crosses the first step again.
    await org.freeze("2026-02-02T00:00:00Z");
    await sendCalls(org, sub, p.calls, 200, "2026-02-02T00:00:00Z");
    await org.freeze("2026-02-03T00:00:00Z");
    list = await progressive(org, cus);
    expect(list).toHaveLength(4);
    expect(list[3]).toMatchObject({ fees_amount_cents: 1000, progressive_billing_credit_amount_cents: 0, total_amount_cents: 1000 });

    // One subscription.usage_threshold_reached per threshold crossed: €10, €30, the recurring €50, February's €10.
    const hooks = (await org.api("GET", "/api/v1/webhooks?webhook_type=subscription.usage_threshold_reached&per_page=100")).webhooks;
    expect(hooks).toHaveLength(4);
  });
});
