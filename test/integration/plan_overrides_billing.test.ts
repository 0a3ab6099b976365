// Per-subscription `plan_overrides` of taxes, the minimum commitment and usage thresholds, billed:
// a subscription overriding them gets invoices that follow its overrides (commitment true-up,
// progressive invoice, taxes), while another subscription on the same plan keeps the plan's.
// Amounts worked out by hand. On PGlite by default, PostgreSQL with TEST_DATABASE_URL.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestApp, type TestApp } from "../helpers/app.ts";
import { uid } from "./support.ts";
import { BILLING_ENV, customer, expect422, invoiceOf, invoicesOf, newOrg, sendCalls, subscribe, type Org } from "./billing_support.ts";

let t: TestApp;
beforeAll(async () => {
  t = await startTestApp({ env: BILLING_ENV });
});
afterAll(async () => {
  await t?.close();
});

/**
 * €100 a month in arrears, calls at €0.05, taxed VAT 20 %; a €200 commitment (no taxes of its own:
 * the plan's apply) and progressive billing past €50. GST 10 % exists but is not the plan's.
 */
async function setUp(org: Org) {
  await org.api("POST", "/api/v1/taxes", { tax: { name: "VAT", code: "vat", rate: "20" } });
  await org.api("POST", "/api/v1/taxes", { tax: { name: "GST", code: "gst", rate: "10" } });
  const calls = (await org.api("POST", "/api/v1/billable_metrics", { billable_metric: { name: "API calls", code: uid("calls"), aggregation_type: "count_agg" } }))
    .billable_metric;
  const plan = (
    await org.api("POST", "/api/v1/plans", {
      plan: {
        name: "Growth",
        code: uid("growth"),
        interval: "monthly",
        amount_cents: 10000,
        amount_currency: "EUR",
        tax_codes: ["vat"],
        charges: [{ billable_metric_id: calls.lago_id, charge_model: "standard", properties: { amount: "0.05" } }],
        minimum_commitment: { amount_cents: 20000 },
        usage_thresholds: [{ amount_cents: 5000, threshold_display_name: "Plan step" }],
      },
    })
  ).plan;
  return { calls: calls.code as string, plan: plan.code as string, json: plan };
}

const OVERRIDES = {
  tax_codes: ["gst"],
  minimum_commitment: { amount_cents: 40000, invoice_display_name: "Deal minimum" },
  usage_thresholds: [{ amount_cents: 2000, threshold_display_name: "Deal step" }],
};

async function subscribeWith(org: Org, cus: string, plan: string, planOverrides: unknown) {
  const id = uid("sub");
  const res = await org.api("POST", "/api/v1/subscriptions", {
    subscription: { external_customer_id: cus, plan_code: plan, external_id: id, billing_time: "calendar", plan_overrides: planOverrides },
  });
  return { id, json: res.subscription };
}

const linesOf = (inv: any) => inv.fees.map((f: any) => [f.item.type, f.item.invoice_display_name, f.amount_cents, f.taxes_amount_cents]);

describe("plan_overrides of taxes, commitment and thresholds", () => {
  it("are shown on the subscription's plan, merged by an update, and refused when invalid (422 naming the field)", async () => {
    const org = await newOrg(t);
    const p = await setUp(org);
    const cus = await customer(org);
    const sub = await subscribeWith(org, cus, p.plan, OVERRIDES);
    const plan = sub.json.plan;
    expect(plan.tax_codes).toEqual(["gst"]);
    expect(plan.minimum_commitment).toMatchObject({ amount_cents: 40000, invoice_display_name: "Deal minimum", plan_code: p.plan, tax_codes: [] });
    expect(plan.minimum_commitment.lago_id).not.toBe(p.json.minimum_commitment.lago_id);
    expect(plan.usage_thresholds.map((u: any) => [u.amount_cents, u.threshold_display_name])).toEqual([[2000, "Deal step"]]);

    // An update sending only the commitment's name keeps its id and amount; null gives the plan's thresholds back.
    const updated = (
      await org.api("PUT", `/api/v1/subscriptions/${sub.id}`, { subscription: { plan_overrides: { minimum_commitment: { invoice_display_name: "Floor" }, usage_thresholds: null } } })
    ).subscription.plan;
    expect(updated.minimum_commitment).toMatchObject({ lago_id: plan.minimum_commitment.lago_id, amount_cents: 40000, invoice_display_name: "Floor" });
    expect(updated.usage_thresholds.map((u: any) => u.lago_id)).toEqual([p.json.usage_thresholds[0].lago_id]);
    expect(updated.tax_codes).toEqual(["gst"]);
    // The plan itself is untouched.
    expect((await org.api("GET", `/api/v1/plans/${p.plan}`)).plan).toMatchObject({ tax_codes: ["vat"], minimum_commitment: { amount_cents: 20000 } });

    const bad = (planOverrides: unknown) =>
      org.raw("POST", "/api/v1/subscriptions", { subscription: { external_customer_id: cus, plan_code: p.plan, external_id: uid("sub"), plan_overrides: planOverrides } });
    expect(expect422(await bad({ tax_codes: ["nope"] }), "plan_overrides.tax_codes")).toEqual({ "plan_overrides.tax_codes": ["tax_not_found"] });
    expect(expect422(await bad({ minimum_commitment: { amount_cents: 5, tax_codes: ["nope"] } }), "plan_overrides.minimum_commitment.tax_codes")).toEqual({
      "plan_overrides.minimum_commitment.tax_codes": ["tax_not_found"],
    });
    expect422(await bad({ minimum_commitment: { amount_cents: 0 } }), "plan_overrides.minimum_commitment.amount_cents");
    expect422(await bad({ usage_thresholds: [{ amount_cents: 100 }, { amount_cents: 100 }] }), "plan_overrides.usage_thresholds[1].amount_cents");
    const put = await org.raw("PUT", `/api/v1/subscriptions/${sub.id}`, { subscription: { plan_overrides: { tax_codes: ["nope"] } } });
    expect422(put, "plan_overrides.tax_codes");
    expect((await org.api("GET", `/api/v1/subscriptions/${sub.id}`)).subscription.plan.tax_codes).toEqual(["gst"]);
  });

  it("bill the overriding subscription by its overrides and the other one by the plan", async () => {
    const org = await newOrg(t);
    await org.freeze("2026-01-01T00:00:00Z");
    const p = await setUp(org);
    const plain = await customer(org);
    const dealer = await customer(org);
    const onPlan = await subscribe(org, plain, p.plan);
    const deal = await subscribeWith(org, dealer, p.plan, OVERRIDES);

    // January 5th: 800 calls each = €40: past the deal's €20 threshold, not the plan's €50.
    await org.freeze("2026-01-05T10:00:00Z");
    await sendCalls(org, onPlan, p.calls, 800, "2026-01-05T10:00:00Z");
    await sendCalls(org, deal.id, p.calls, 800, "2026-01-05T10:00:00Z");
    await org.freeze("2026-01-06T00:00:00Z");
    expect((await invoicesOf(org, plain)).filter((i) => i.invoice_type === "progressive_billing")).toEqual([]);
    const [progressive, ...others] = (await invoicesOf(org, dealer)).filter((i) => i.invoice_type === "progressive_billing");
    expect(others).toEqual([]);
    // €40 of usage, GST 10 %: €4.
    expect(progressive).toMatchObject({ fees_amount_cents: 4000, taxes_amount_cents: 400, total_amount_cents: 4400 });
    const full = await invoiceOf(org, progressive.lago_id);
    expect(full.applied_usage_thresholds.map((a: any) => [a.usage_threshold.lago_id, a.usage_threshold.amount_cents])).toEqual([
      [deal.json.plan.usage_thresholds[0].lago_id, 2000],
    ]);

    // February 1st.
    await org.freeze("2026-02-01T00:00:00Z");
    // On the plan: €100 + €40 = €140 against €200: a €60 true-up; VAT 20 % on every fee (the
    // commitment has no taxes of its own): €40.
    const planMonth = await invoiceOf(org, (await invoicesOf(org, plain)).find((i) => i.invoice_type === "subscription").lago_id);
    expect(linesOf(planMonth)).toEqual([
      ["subscription", "Growth", 10000, 2000],
      ["charge", "API calls", 4000, 800],
      ["commitment", "Minimum commitment", 6000, 1200],
    ]);
    expect(planMonth).toMatchObject({ fees_amount_cents: 20000, progressive_billing_credit_amount_cents: 0, taxes_amount_cents: 4000, total_amount_cents: 24000 });
    expect(planMonth.fees[2].item.lago_item_id).toBe(p.json.minimum_commitment.lago_id);

    // The deal: €100 + €40 = €140 against €400: a €260 true-up, fees €400. The €40 billed
    // progressively is credited before tax, spread over the fees in proportion (€10, €4, €26);
    // GST 10 % on the €360 left: €36.
    const dealMonth = await invoiceOf(org, (await invoicesOf(org, dealer)).find((i) => i.invoice_type === "subscription").lago_id);
    expect(linesOf(dealMonth).map((l: any) => l.slice(0, 3))).toEqual([
      ["subscription", "Growth", 10000],
      ["charge", "API calls", 4000],
      ["commitment", "Deal minimum", 26000],
    ]);
    expect(dealMonth).toMatchObject({
      fees_amount_cents: 40000,
      progressive_billing_credit_amount_cents: 4000,
      sub_total_excluding_taxes_amount_cents: 36000,
      taxes_amount_cents: 3600,
      total_amount_cents: 39600,
    });
    // Per fee: 10 % of €90, €36 and €234.
    expect(dealMonth.fees.map((f: any) => f.taxes_amount_cents)).toEqual([900, 360, 2340]);
    expect(dealMonth.fees[2].item.lago_item_id).toBe(deal.json.plan.minimum_commitment.lago_id);
  });

  it("follow a tax code renamed or deleted, in the subscription's stored overrides", async () => {
    const org = await newOrg(t);
    const p = await setUp(org);
    const cus = await customer(org);
    const sub = await subscribeWith(org, cus, p.plan, { tax_codes: ["gst", "vat"], minimum_commitment: { amount_cents: 100, tax_codes: ["gst"] } });
    // Read once, so the subscription is cached: the rename must reach the cached copy too.
    expect((await org.api("GET", `/api/v1/subscriptions/${sub.id}`)).subscription.plan.tax_codes).toEqual(["gst", "vat"]);

    await org.api("PUT", "/api/v1/taxes/gst", { tax: { code: "gst_2026" } });
    let plan = (await org.api("GET", `/api/v1/subscriptions/${sub.id}`)).subscription.plan;
    expect(plan.tax_codes).toEqual(["gst_2026", "vat"]);
    expect(plan.minimum_commitment.tax_codes).toEqual(["gst_2026"]);

    await org.api("DELETE", "/api/v1/taxes/gst_2026");
    plan = (await org.api("GET", `/api/v1/subscriptions/${sub.id}`)).subscription.plan;
    expect(plan.tax_codes).toEqual(["vat"]);
    expect(plan.minimum_commitment.tax_codes).toEqual([]);
  });
});
