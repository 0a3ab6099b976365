// Spending minimums (true-up fees) and minimum commitments against a real database, under a test
// clock: the invoice that closes a period carries the true-ups, the amounts worked out by hand.
// On PGlite by default, PostgreSQL with TEST_DATABASE_URL.
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

/** A monthly EUR plan with one charge, `calls` at €0.05 each; `extra` goes into the plan body, `charge` into the charge. */
async function planWith(org: Org, extra: Record<string, unknown>, charge: Record<string, unknown> = {}) {
  const calls = (await org.api("POST", "/api/v1/billable_metrics", { billable_metric: { name: "API calls", code: uid("calls"), aggregation_type: "count_agg" } }))
    .billable_metric;
  const plan = (
    await org.api("POST", "/api/v1/plans", {
      plan: {
        name: "Growth",
        code: uid("growth"),
        interval: "monthly",
        amount_cents: 0,
        amount_currency: "EUR",
        charges: [{ billable_metric_id: calls.lago_id, charge_model: "standard", properties: { amount: "0.05" }, ...charge }],
        ...extra,
      },
    })
  ).plan;
  return { calls: calls.code as string, plan: plan.code as string, json: plan };
}

const linesOf = (inv: any) => inv.fees.map((f: any) => [f.item.type, f.item.invoice_display_name, f.amount_cents]);

describe("a charge's spending minimum", () => {
  it("tops January's usage up with a true-up line tied to the charge's fee", async () => {
    const org = await newOrg(t);
    await org.freeze("2026-01-01T00:00:00Z");
    const p = await planWith(org, {}, { min_amount_cents: 1000 });
    expect(p.json.charges[0].min_amount_cents).toBe(1000);
    const cus = await customer(org);
    const sub = await subscribe(org, cus, p.plan);
    await org.freeze("2026-01-20T10:00:00Z");
    await sendCalls(org, sub, p.calls, 100, "2026-01-20T10:00:00Z");
    await org.freeze("2026-02-01T00:00:00Z");

    // 100 calls × €0.05 = €5.00 against a €10.00 minimum: a €5.00 true-up.
    const [inv] = await invoicesOf(org, cus);
    const full = await invoiceOf(org, inv.lago_id);
    const charges = full.fees.filter((f: any) => f.item.type === "charge");
    expect(charges.map((f: any) => [f.item.invoice_display_name, f.amount_cents, f.units])).toEqual([
      ["API calls", 500, "100"],
      ["API calls - True-up", 500, "1"],
    ]);
    const [fee, trueUp] = charges;
    expect(fee.lago_true_up_fee_id).toBe(trueUp.lago_id);
    expect(trueUp.lago_true_up_parent_fee_id).toBe(fee.lago_id);
    expect(trueUp.lago_charge_id).toBe(fee.lago_charge_id);
    expect(trueUp.events_count).toBe(0);
    expect(full).toMatchObject({ fees_amount_cents: 1000, total_amount_cents: 1000 });
    // The true-up has no events of its own; the charge fee keeps its 100.
    expect((await org.api("GET", `/api/v1/fees/${trueUp.lago_id}/events`)).events).toEqual([]);
    expect((await org.api("GET", `/api/v1/fees/${fee.lago_id}/events?per_page=1`)).meta.total_count).toBe(100);

    // February: 300 calls = €15.00, above the minimum: no true-up.
    await org.freeze("2026-02-10T10:00:00Z");
    await sendCalls(org, sub, p.calls, 300, "2026-02-10T10:00:00Z");
    await org.freeze("2026-03-01T00:00:00Z");
    const feb = await invoiceOf(org, (await invoicesOf(org, cus))[0].lago_id);
    expect(feb.fees.filter((f: any) => f.item.type === "charge").map((f: any) => f.amount_cents)).toEqual([1500]);
    expect(feb.fees[0].lago_true_up_fee_id ?? null).toBeNull();
  });

  it("is prorated for a subscription starting mid-month and billed whole when nothing was used", async () => {
    const org = await newOrg(t);
    await org.freeze("2026-01-10T00:00:00Z");
    const p = await planWith(org, {}, { min_amount_cents: 1000 });
    const cus = await customer(org);
    await subscribe(org, cus, p.plan);
    await org.freeze("2026-02-01T00:00:00Z");
    // January 10th–31st: 22 of 31 days, €10.00 × 22 / 31 = €7.0967… → €7.10; no calls.
    const inv = await invoiceOf(org, (await invoicesOf(org, cus))[0].lago_id);
    expect(linesOf(inv).filter((l: any) => l[0] === "charge")).toEqual([
      ["charge", "API calls", 0],
      ["charge", "API calls - True-up", 710],
    ]);
    expect(inv.total_amount_cents).toBe(710);
  });
});

describe("a plan's minimum commitment", () => {
  it("is shown on the plan, replaced and removed by an update, and refused when invalid (422 naming the field)", async () => {
    const org = await newOrg(t);
    await org.api("POST", "/api/v1/taxes", { tax: { name: "VAT", code: "vat", rate: "20" } });
    const p = await planWith(org, { minimum_commitment: { amount_cents: 50000, invoice_display_name: "Contract minimum", tax_codes: ["vat"] } });
    expect(p.json.minimum_commitment).toMatchObject({
      plan_code: p.plan,
      amount_cents: 50000,
      invoice_display_name: "Contract minimum",
      interval: "monthly",
      taxes: [expect.objectContaining({ code: "vat" })],
    });
    const id = p.json.minimum_commitment.lago_id;
    const changed = (await org.api("PUT", `/api/v1/plans/${p.plan}`, { plan: { minimum_commitment: { amount_cents: 60000 } } })).plan;
    expect(changed.minimum_commitment).toMatchObject({ lago_id: id, amount_cents: 60000, invoice_display_name: "Contract minimum" });
    expect((await org.api("PUT", `/api/v1/plans/${p.plan}`, { plan: { name: "Still" } })).plan.minimum_commitment.amount_cents).toBe(60000);
    expect((await org.api("PUT", `/api/v1/plans/${p.plan}`, { plan: { minimum_commitment: null } })).plan.minimum_commitment).toBeNull();

    const bad = (body: unknown) => org.raw("POST", "/api/v1/plans", { plan: { name: "x", code: uid("x"), interval: "monthly", amount_cents: 0, amount_currency: "EUR", ...(body as object) } });
    expect422(await bad({ minimum_commitment: { amount_cents: 0 } }), "minimum_commitment.amount_cents");
    expect422(await bad({ minimum_commitment: { amount_cents: -5 } }), "minimum_commitment.amount_cents");
    expect422(await bad({ minimum_commitment: { invoice_display_name: "no amount" } }), "minimum_commitment.amount_cents");
    expect422(await bad({ minimum_commitment: "big" }), "minimum_commitment");
    expect(expect422(await bad({ minimum_commitment: { amount_cents: 100, tax_codes: ["nope"] } }), "minimum_commitment.tax_codes")).toMatchObject({
      "minimum_commitment.tax_codes": ["tax_not_found"],
    });
  });

  it("in arrears: January's fees below the commitment get a commitment fee for the rest, taxed with the commitment's taxes", async () => {
    const org = await newOrg(t);
    await org.freeze("2026-01-01T00:00:00Z");
    await org.api("POST", "/api/v1/taxes", { tax: { name: "VAT", code: "vat", rate: "20" } });
    const p = await planWith(org, { amount_cents: 10000, minimum_commitment: { amount_cents: 50000, invoice_display_name: "Contract minimum", tax_codes: ["vat"] } });
    const cus = await customer(org);
    const sub = await subscribe(org, cus, p.plan);
    await org.freeze("2026-01-15T10:00:00Z");
    await sendCalls(org, sub, p.calls, 1000, "2026-01-15T10:00:00Z");
    await org.freeze("2026-02-01T00:00:00Z");

    // €100 plan + 1,000 × €0.05 = €150 against €500: a €350 commitment fee, 20 % VAT on it only (€70).
    const jan = await invoiceOf(org, (await invoicesOf(org, cus))[0].lago_id);
    expect(linesOf(jan)).toEqual([
      ["subscription", "Growth", 10000],
      ["charge", "API calls", 5000],
      ["commitment", "Contract minimum", 35000],
    ]);
    const commitment = jan.fees[2];
    expect(commitment).toMatchObject({ units: "1", taxes_amount_cents: 7000, from_date: "2026-01-01T00:00:00Z", to_date: "2026-01-31T23:59:59Z" });
    expect(commitment.item).toMatchObject({ code: "minimum_commitment", item_type: "Commitment", lago_item_id: p.json.minimum_commitment.lago_id });
    expect(jan).toMatchObject({ fees_amount_cents: 50000, taxes_amount_cents: 7000, total_amount_cents: 57000 });

    // February: 20,000 calls = €1,000 + €100: above the commitment, no commitment fee.
    await org.freeze("2026-02-03T10:00:00Z");
    await sendCalls(org, sub, p.calls, 20000, "2026-02-03T10:00:00Z");
    await org.freeze("2026-03-01T00:00:00Z");
    const feb = await invoiceOf(org, (await invoicesOf(org, cus))[0].lago_id);
    expect(linesOf(feb).map((l: any) => l[0])).toEqual(["subscription", "charge"]);
    expect(feb.total_amount_cents).toBe(110000);
  });

  it("paid in advance: the invoice that bills January's usage counts January's fee paid on January 1st", async () => {
    const org = await newOrg(t);
    await org.freeze("2026-01-01T00:00:00Z");
    const p = await planWith(org, { amount_cents: 10000, pay_in_advance: true, minimum_commitment: { amount_cents: 30000 } });
    const cus = await customer(org);
    const sub = await subscribe(org, cus, p.plan);
    await org.freeze("2026-01-15T10:00:00Z");
    await sendCalls(org, sub, p.calls, 200, "2026-01-15T10:00:00Z");
    await org.freeze("2026-02-01T00:00:00Z");
    // February 1st: February's €100 in advance, January's 200 calls (€10) and January's commitment:
    // €300 − (€100 paid January 1st + €10) = €190.
    const invoices = await invoicesOf(org, cus);
    expect(invoices).toHaveLength(2);
    const feb = await invoiceOf(org, invoices[0].lago_id);
    expect(linesOf(feb)).toEqual([
      ["subscription", "Growth", 10000],
      ["charge", "API calls", 1000],
      ["commitment", "Minimum commitment", 19000],
    ]);
    expect(feb.fees[2]).toMatchObject({ from_date: "2026-01-01T00:00:00Z", to_date: "2026-01-31T23:59:59Z" });
  });

  it("is prorated on the final invoice of a subscription terminated mid-month", async () => {
    const org = await newOrg(t);
    await org.freeze("2026-01-01T00:00:00Z");
    const p = await planWith(org, { amount_cents: 10000, minimum_commitment: { amount_cents: 50000 } });
    const cus = await customer(org);
    const sub = await subscribe(org, cus, p.plan);
    await org.freeze("2026-01-15T12:00:00Z");
    await org.api("DELETE", `/api/v1/subscriptions/${sub}`);
    // January 1st–15th: the plan €100 × 15/31 = €48.39; the commitment €500 × 15/31 = €241.94:
    // a €193.55 commitment fee.
    const last = await invoiceOf(org, (await invoicesOf(org, cus))[0].lago_id);
    expect(linesOf(last)).toEqual([
      ["subscription", "Growth", 4839],
      ["commitment", "Minimum commitment", 19355],
    ]);
    expect(last.fees[1].to_date).toBe("2026-01-15T12:00:00Z");
  });
});
