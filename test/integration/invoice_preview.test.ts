// POST /invoices/preview against a real database, under a test clock: the next invoice of existing
// subscriptions and the first invoice of a new one, with taxes and coupons, worked out by hand;
// nothing is stored. On PGlite by default, PostgreSQL with TEST_DATABASE_URL.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestApp, type TestApp } from "../helpers/app.ts";
import { json, scalar, uid } from "./support.ts";
import { BILLING_ENV, customer, expect422, invoicesOf, newOrg, plan, sendCalls, subscribe, type Org } from "./billing_support.ts";

let t: TestApp;
beforeAll(async () => {
  t = await startTestApp({ env: BILLING_ENV });
});
afterAll(async () => {
  await t?.close();
});

const preview = (org: Org, body: unknown) => org.raw("POST", "/api/v1/invoices/preview", body);
const ok = async (org: Org, body: unknown) => {
  const r = await preview(org, body);
  expect(r.statusCode, r.body).toBe(200);
  return json(r).invoice;
};
const stored = (org: Org) =>
  scalar(t.db, "SELECT ((SELECT count(*) FROM invoices WHERE org_id = $1) + (SELECT count(*) FROM fees WHERE org_id = $1))::text AS n", [org.orgId]);

/** €100 a month in arrears, calls at €0.05, the plan taxed 20%; a customer subscribed on March 1st with 300 calls by March 10th. */
async function setup() {
  const org = await newOrg(t);
  await org.freeze("2026-03-01T00:00:00Z");
  await org.api("POST", "/api/v1/taxes", { tax: { name: "VAT", code: "vat20", rate: "20" } });
  const p = await plan(org, { amount_cents: 10000, tax_codes: ["vat20"] });
  const cus = await customer(org);
  const sub = await subscribe(org, cus, p.plan);
  await org.freeze("2026-03-10T12:00:00Z");
  await sendCalls(org, sub, p.calls, 300, "2026-03-05T10:00:00Z");
  return { org, p, cus, sub };
}

describe("invoice preview", () => {
  it("previews an active subscription's next invoice: the month's fee, usage so far, taxes, an inline coupon; stores nothing", async () => {
    const { org, cus, sub, p } = await setup();
    const before = await stored(org);
    const inv = await ok(org, { customer: { external_id: cus }, subscriptions: { external_ids: [sub] } });
    // April 1st: €100 + 300 × €0.05 = €115; 20% VAT on the plan's fees = €23.
    expect(inv).toMatchObject({
      lago_id: null,
      number: null,
      status: "draft",
      invoice_type: "subscription",
      currency: "EUR",
      issuing_date: "2026-04-01",
      fees_amount_cents: 11500,
      coupons_amount_cents: 0,
      taxes_amount_cents: 2300,
      total_amount_cents: 13800,
    });
    expect(inv.fees.map((f: any) => [f.item.type, f.item.code, f.units, f.amount_cents, f.taxes_amount_cents])).toEqual([
      ["subscription", p.plan, "1", 10000, 2000],
      ["charge", p.calls, "300", 1500, 300],
    ]);
    expect(inv.billing_periods).toEqual([
      expect.objectContaining({
        external_subscription_id: sub,
        invoicing_reason: "subscription_periodic",
        charges_from_datetime: "2026-03-01T00:00:00Z",
        charges_to_datetime: "2026-03-31T23:59:59Z",
      }),
    ]);
    expect(inv.customer.external_id).toBe(cus);
    expect(inv.applied_taxes).toEqual([expect.objectContaining({ tax_code: "vat20", amount_cents: 2300, fees_amount_cents: 11500 })]);

    // A €10 coupon given inline comes off before taxes: €105, VAT €21.
    const withCoupon = await ok(org, {
      customer: { external_id: cus },
      subscriptions: { external_ids: [sub] },
      coupons: [{ code: "spring", name: "Spring", coupon_type: "fixed_amount", amount_cents: 1000, amount_currency: "EUR" }],
    });
    expect(withCoupon).toMatchObject({ fees_amount_cents: 11500, coupons_amount_cents: 1000, sub_total_excluding_taxes_amount_cents: 10500, taxes_amount_cents: 2100, total_amount_cents: 12600 });
    expect(withCoupon.credits).toEqual([expect.objectContaining({ amount_cents: 1000, before_taxes: true, item: expect.objectContaining({ code: "spring", type: "coupon" }) })]);

    expect(await stored(org)).toBe(before);
    expect(await invoicesOf(org, cus)).toEqual([]);
    // The real invoice on April 1st is the one previewed.
    await org.freeze("2026-04-01T00:00:00Z");
    const [issued] = await invoicesOf(org, cus);
    expect(issued).toMatchObject({ fees_amount_cents: 11500, taxes_amount_cents: 2300, total_amount_cents: 13800, issuing_date: "2026-04-01" });
  });

  it("previews a new subscription's first invoice: prorated in arrears, whole in advance, for a customer that does not exist", async () => {
    const { org, p } = await setup();
    const before = await stored(org);
    // From March 10th, calendar: 22 of 31 days of €100 = €70.967… → €70.97; VAT €14.194 → €14.19.
    const inv = await ok(org, { customer: { name: "Prospect", currency: "EUR" }, plan_code: p.plan, billing_time: "calendar", subscription_at: "2026-03-10T00:00:00Z" });
    expect(inv).toMatchObject({ issuing_date: "2026-04-01", fees_amount_cents: 7097, taxes_amount_cents: 1419, total_amount_cents: 8516 });
    expect(inv.customer).toMatchObject({ lago_id: null, external_id: null, name: "Prospect" });
    expect(inv.fees.map((f: any) => [f.item.type, f.amount_cents, f.from_date, f.lago_subscription_id])).toEqual([
      ["subscription", 7097, "2026-03-10T00:00:00Z", null],
    ]);
    expect(inv.billing_periods[0]).toMatchObject({ lago_subscription_id: null, external_subscription_id: null, invoicing_reason: "subscription_periodic" });

    // A 10% coupon: €7.10 off (of €70.97, half-up), VAT on €63.87 = €12.774 → €12.77.
    const discounted = await ok(org, {
      customer: { name: "Prospect", currency: "EUR" },
      plan_code: p.plan,
      subscription_at: "2026-03-10T00:00:00Z",
      coupons: [{ code: "ten", coupon_type: "percentage", percentage_rate: "10" }],
    });
    expect(discounted).toMatchObject({ coupons_amount_cents: 710, sub_total_excluding_taxes_amount_cents: 6387, taxes_amount_cents: 1277, total_amount_cents: 7664 });

    // Paid in advance, anniversary: the first invoice is issued at the start, the whole €30.
    const advance = await plan(org, { amount_cents: 3000, pay_in_advance: true });
    const first = await ok(org, { customer: { currency: "EUR" }, plan_code: advance.plan, billing_time: "anniversary", subscription_at: "2026-03-10T00:00:00Z" });
    expect(first).toMatchObject({ issuing_date: "2026-03-10", fees_amount_cents: 3000, taxes_amount_cents: 0, total_amount_cents: 3000 });
    expect(first.billing_periods[0]).toMatchObject({ invoicing_reason: "subscription_starting", subscription_from_datetime: "2026-03-10T00:00:00Z" });
    expect(await stored(org)).toBe(before);
  });

  it("previews a termination at a future date, and applies the customer's own coupons", async () => {
    const { org, cus, sub, p } = await setup();
    await org.api("POST", "/api/v1/coupons", {
      coupon: { name: "Five", code: uid("five"), coupon_type: "fixed_amount", amount_cents: 500, amount_currency: "EUR", frequency: "forever", expiration: "no_expiration" },
    }).then((r) => org.api("POST", "/api/v1/applied_coupons", { applied_coupon: { external_customer_id: cus, coupon_code: r.coupon.code } }));
    const ended = await ok(org, { customer: { external_id: cus }, subscriptions: { external_ids: [sub], terminated_at: "2026-03-20T00:00:00Z" } });
    expect(ended.billing_periods[0]).toMatchObject({ invoicing_reason: "subscription_terminating", charges_to_datetime: "2026-03-20T00:00:00Z" });
    const [fee, usage] = ended.fees;
    expect(fee.item.type).toBe("subscription");
    // March 1st to 20th, the termination day counted: 20 of 31 days of €100 = €64.516… → €64.52.
    expect(fee).toMatchObject({ amount_cents: 6452, from_date: "2026-03-01T00:00:00Z", to_date: "2026-03-20T00:00:00Z" });
    expect(usage).toMatchObject({ units: "300", amount_cents: 1500 });
    // The applied €5 coupon counts (Lago: a preview shows the customer's coupons).
    expect(ended.coupons_amount_cents).toBe(500);
    expect(ended).toMatchObject({ fees_amount_cents: 7952, sub_total_excluding_taxes_amount_cents: 7452 });

    // A subscription that starts on March 20th (pending now): its first invoice, 12 of 31 days of
    // €100 = €38.709… → €38.71, VAT €7.742 → €7.74, less the applied €5 coupon's share before taxes.
    const later = uid("sub");
    const pending = await org.api("POST", "/api/v1/subscriptions", {
      subscription: { external_customer_id: cus, plan_code: p.plan, external_id: later, billing_time: "calendar", subscription_at: "2026-03-20T00:00:00Z" },
    });
    expect(pending.subscription.status).toBe("pending");
    const starting = await ok(org, { customer: { external_id: cus }, subscriptions: { external_ids: [later] } });
    expect(starting.billing_periods[0]).toMatchObject({ external_subscription_id: later, subscription_from_datetime: "2026-03-20T00:00:00Z" });
    // €38.71 − €5 = €33.71; VAT 20% = €6.742 → €6.74.
    expect(starting).toMatchObject({ fees_amount_cents: 3871, coupons_amount_cents: 500, taxes_amount_cents: 674, total_amount_cents: 4045 });
  });

  it("answers Lago's 404s and 422s, scoped to the organization", async () => {
    const { org, cus, sub, p } = await setup();
    const nf = async (body: unknown, code: string, who = org) => {
      const r = await preview(who, body);
      expect(r.statusCode, r.body).toBe(404);
      expect(json(r)).toMatchObject({ status: 404, code });
    };
    await nf({ customer: { external_id: "nobody" }, plan_code: p.plan }, "customer_not_found");
    await nf({ customer: { external_id: cus }, plan_code: "no_such_plan" }, "plan_not_found");
    await nf({ customer: { external_id: cus }, subscriptions: { external_ids: ["no_such_sub"] } }, "subscription_not_found");
    await nf({ customer: { external_id: cus }, plan_code: p.plan, coupons: [{ code: "unknown" }] }, "coupon_not_found");

    const other = await newOrg(t);
    await nf({ customer: { external_id: cus }, subscriptions: { external_ids: [sub] } }, "customer_not_found", other);
    await nf({ customer: { currency: "EUR" }, plan_code: p.plan }, "plan_not_found", other);
    const theirs = await customer(other);
    await nf({ customer: { external_id: theirs }, subscriptions: { external_ids: [sub] } }, "subscription_not_found", other);

    expect422(await preview(org, {}), "customer", "plan_code");
    expect422(await preview(org, { customer: { external_id: cus } }), "plan_code");
    expect422(await preview(org, { customer: { external_id: cus }, plan_code: p.plan, billing_time: "weekly", subscription_at: "soon" }), "billing_time", "subscription_at");
    expect422(await preview(org, { customer: { timezone: "Mars/Olympus", currency: "XXX1" }, plan_code: p.plan }), "customer.timezone", "customer.currency");
    expect422(await preview(org, { customer: { currency: "EUR" }, subscriptions: { external_ids: [sub] } }), "customer.external_id");
    expect422(await preview(org, { customer: { external_id: cus }, subscriptions: { external_ids: [sub], terminated_at: "2026-03-01T00:00:00Z", plan_code: p.plan } }), "subscriptions.terminated_at", "subscriptions.plan_code");
    expect422(await preview(org, { customer: { external_id: cus }, plan_code: p.plan, coupons: [{ name: "no code" }, { code: "x", coupon_type: "percentage", percentage_rate: "150" }] }), "coupons[0].code");
    expect422(await preview(org, { customer: { external_id: cus }, plan_code: p.plan, coupons: [{ code: "x", coupon_type: "percentage", percentage_rate: "150" }] }), "coupons[0].percentage_rate");
    expect422(await preview(org, { customer: { currency: "USD" }, plan_code: p.plan }), "currency");
  });
});
