// Revenue analytics against a real database: customers billed January to March 2026 under the test
// clock, then every /analytics route checked against figures worked out by hand; filters, the
// window, bad parameters, and another organization seeing nothing. On PGlite by default,
// PostgreSQL with TEST_DATABASE_URL.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestApp, type TestApp } from "../helpers/app.ts";
import { BILLING_ENV, customer, expect422, invoicesOf, invoiceOf, newOrg, plan, sendCalls, subscribe, type Org } from "./billing_support.ts";

let t: TestApp;
beforeAll(async () => {
  t = await startTestApp({ env: { ...BILLING_ENV, WEBHOOK_WORKER: "off" } });
});
afterAll(async () => {
  await t?.close();
});

const JAN = "2026-01-01T00:00:00.000Z";
const FEB = "2026-02-01T00:00:00.000Z";
const MAR = "2026-03-01T00:00:00.000Z";

/**
 * The story, in EUR, no taxes:
 *   monthly  — 100.00 a month in arrears + 0.05 a call: 100 calls in January, 40 in February;
 *   quarterly — 300.00 a quarter in advance, subscribed 1 January (one add-on invoice in February);
 *   usd      — one 20.00 add-on invoice in March, in USD.
 * Invoices:
 *   I1 2026-01-01 quarterly's Q1 fee        300.00  payment failed    (due 1 Jan: overdue)
 *   I2 2026-02-01 monthly's January 100+5  105.00  paid, 10.00 refunded by a credit note
 *   I4 2026-02-10 quarterly's one-off        50.00  pending           (due 10 Feb: overdue)
 *   I5 2026-02-10 quarterly's one-off        70.00  voided            (counts nowhere)
 *   I3 2026-03-01 monthly's February 100+2 102.00  pending           (due 1 Mar: overdue)
 *   I6 2026-03-02 usd's one-off              20.00  paid
 * Today is 2026-03-15.
 */
async function billedOrg(): Promise<{ org: Org; monthly: string; quarterly: string; usd: string; ids: Record<string, string>; calls: string }> {
  const org = await newOrg(t);
  await org.freeze("2026-01-01T00:00:00Z");
  await org.api("POST", "/api/v1/add_ons", { add_on: { name: "Setup", code: "setup", amount_cents: 5000, amount_currency: "EUR" } });
  await org.api("POST", "/api/v1/add_ons", { add_on: { name: "Extra", code: "extra", amount_cents: 7000, amount_currency: "EUR" } });
  await org.api("POST", "/api/v1/add_ons", { add_on: { name: "Dollar", code: "dollar", amount_cents: 2000, amount_currency: "USD" } });
  const p = await plan(org, { amount_cents: 10000 });
  await org.api("POST", "/api/v1/plans", {
    plan: { name: "Quarterly", code: "quarterly", interval: "quarterly", amount_cents: 30000, amount_currency: "EUR", pay_in_advance: true, charges: [] },
  });
  const monthly = await customer(org);
  const quarterly = await customer(org);
  const usd = await customer(org, { currency: "USD" });
  const mSub = await subscribe(org, monthly, p.plan);
  await subscribe(org, quarterly, "quarterly");

  await org.freeze("2026-01-10T00:00:00Z");
  await sendCalls(org, mSub, p.calls, 100, "2026-01-10T00:00:00Z");
  await org.freeze("2026-02-01T00:00:00Z");
  await org.freeze("2026-02-10T00:00:00Z");
  await sendCalls(org, mSub, p.calls, 40, "2026-02-10T00:00:00Z");
  const oneOff = async (cus: string, code: string, currency = "EUR") =>
    (await org.api("POST", "/api/v1/invoices", { invoice: { external_customer_id: cus, currency, fees: [{ add_on_code: code }] } })).invoice;
  const i4 = await oneOff(quarterly, "setup");
  const i5 = await oneOff(quarterly, "extra");
  await org.api("POST", `/api/v1/invoices/${i5.lago_id}/void`);
  await org.freeze("2026-03-01T00:00:00Z");
  await org.freeze("2026-03-02T00:00:00Z");
  const i6 = await oneOff(usd, "dollar", "USD");
  await org.api("PUT", `/api/v1/invoices/${i6.lago_id}`, { invoice: { payment_status: "succeeded" } });

  const [i3, i2] = await invoicesOf(org, monthly);
  const quarterlyInvoices = await invoicesOf(org, quarterly);
  const i1 = quarterlyInvoices.find((i: any) => i.invoice_type === "subscription");
  // The invoices are what the story says.
  expect([i1.issuing_date, i1.total_amount_cents, quarterlyInvoices.length]).toEqual(["2026-01-01", 30000, 3]);
  expect([i2.issuing_date, i2.total_amount_cents]).toEqual(["2026-02-01", 10500]);
  expect([i3.issuing_date, i3.total_amount_cents]).toEqual(["2026-03-01", 10200]);
  expect([i4.issuing_date, i4.total_amount_cents, i6.issuing_date]).toEqual(["2026-02-10", 5000, "2026-03-02"]);

  await org.api("PUT", `/api/v1/invoices/${i1.lago_id}`, { invoice: { payment_status: "failed" } });
  await org.api("PUT", `/api/v1/invoices/${i2.lago_id}`, { invoice: { payment_status: "succeeded" } });
  const subFee = (await invoiceOf(org, i2.lago_id)).fees.find((f: any) => f.item.type === "subscription").lago_id;
  await org.freeze("2026-03-15T00:00:00Z");
  const cn = (
    await org.api("POST", "/api/v1/credit_notes", {
      credit_note: { invoice_id: i2.lago_id, reason: "other", items: [{ fee_id: subFee, amount_cents: 1000 }], refund_amount_cents: 1000, credit_amount_cents: 0 },
    })
  ).credit_note;
  expect(cn.refund_amount_cents).toBe(1000);
  return { org, monthly, quarterly, usd, calls: p.calls, ids: { i1: i1.lago_id, i2: i2.lago_id, i3: i3.lago_id, i4: i4.lago_id, i5: i5.lago_id, i6: i6.lago_id } };
}

let story: Awaited<ReturnType<typeof billedOrg>>;

describe("analytics", () => {
  beforeAll(async () => {
    story = await billedOrg();
  });

  it("gross revenue: finalized invoices by issuing month, less refunds; voided and drafts left out", async () => {
    const { gross_revenues } = await story.org.api("GET", "/api/v1/analytics/gross_revenue?months=3");
    expect(gross_revenues).toEqual([
      { month: JAN, amount_cents: 30000, currency: "EUR", invoices_count: 1, billing_entity_id: null },
      { month: JAN, amount_cents: 0, currency: "USD", invoices_count: 0, billing_entity_id: null },
      // I2 105.00 − 10.00 refunded + I4 50.00 (I5 voided)
      { month: FEB, amount_cents: 14500, currency: "EUR", invoices_count: 2, billing_entity_id: null },
      { month: FEB, amount_cents: 0, currency: "USD", invoices_count: 0, billing_entity_id: null },
      { month: MAR, amount_cents: 10200, currency: "EUR", invoices_count: 1, billing_entity_id: null },
      { month: MAR, amount_cents: 2000, currency: "USD", invoices_count: 1, billing_entity_id: null },
    ]);
  });

  it("gross revenue of one customer, in one currency", async () => {
    const { gross_revenues } = await story.org.api("GET", `/api/v1/analytics/gross_revenue?months=3&currency=EUR&external_customer_id=${story.monthly}`);
    expect(gross_revenues.map((r: any) => [r.month, r.amount_cents, r.invoices_count])).toEqual([
      [JAN, 0, 0],
      [FEB, 9500, 1],
      [MAR, 10200, 1],
    ]);
    const none = await story.org.api("GET", "/api/v1/analytics/gross_revenue?months=3&external_customer_id=nobody");
    expect(none.gross_revenues).toEqual([]);
  });

  it("the window is the last `months` months by the organization's clock, 12 by default", async () => {
    const one = await story.org.api("GET", "/api/v1/analytics/gross_revenue?months=1&currency=EUR");
    expect(one.gross_revenues.map((r: any) => [r.month, r.amount_cents])).toEqual([[MAR, 10200]]);
    const year = await story.org.api("GET", "/api/v1/analytics/gross_revenue?currency=EUR");
    expect(year.gross_revenues.length).toBe(12);
    expect(year.gross_revenues[0].month).toBe("2025-04-01T00:00:00.000Z");
    expect(year.gross_revenues.map((r: any) => r.amount_cents).reduce((a: number, b: number) => a + b, 0)).toBe(30000 + 14500 + 10200);
  });

  it("invoice collection: finalized invoices by month and payment status", async () => {
    const { invoice_collections } = await story.org.api("GET", "/api/v1/analytics/invoice_collection?months=3&currency=EUR");
    const seen = invoice_collections.filter((r: any) => r.invoices_count > 0).map((r: any) => [r.month, r.payment_status, r.invoices_count, r.amount_cents]);
    expect(seen).toEqual([
      [JAN, "failed", 1, 30000],
      [FEB, "pending", 1, 5000],
      [FEB, "succeeded", 1, 10500],
      [MAR, "pending", 1, 10200],
    ]);
    expect(invoice_collections.length).toBe(9);
    expect(invoice_collections.every((r: any) => r.currency === "EUR")).toBe(true);
  });

  it("invoiced usage: charge fees on finalized invoices, by metric code", async () => {
    const { invoiced_usages } = await story.org.api("GET", "/api/v1/analytics/invoiced_usage?months=3");
    expect(invoiced_usages).toEqual([
      { month: FEB, code: story.calls, amount_cents: 500, currency: "EUR" },
      { month: MAR, code: story.calls, amount_cents: 200, currency: "EUR" },
    ]);
  });

  it("MRR: monthly fees in their issuing month, the quarterly fee spread over its quarter", async () => {
    const { mrrs } = await story.org.api("GET", "/api/v1/analytics/mrr?months=3&currency=EUR");
    expect(mrrs).toEqual([
      { month: JAN, amount_cents: 10000, currency: "EUR" },
      { month: FEB, amount_cents: 20000, currency: "EUR" },
      { month: MAR, amount_cents: 20000, currency: "EUR" },
    ]);
  });

  it("overdue balance: pending or failed finalized invoices past their due date, by due month", async () => {
    const { overdue_balances } = await story.org.api("GET", "/api/v1/analytics/overdue_balance?months=3&currency=EUR");
    expect(overdue_balances).toEqual([
      { month: JAN, amount_cents: 30000, currency: "EUR", lago_invoice_ids: [story.ids.i1], billing_entity_id: null },
      { month: FEB, amount_cents: 5000, currency: "EUR", lago_invoice_ids: [story.ids.i4], billing_entity_id: null },
      { month: MAR, amount_cents: 10200, currency: "EUR", lago_invoice_ids: [story.ids.i3], billing_entity_id: null },
    ]);
    const mine = await story.org.api("GET", `/api/v1/analytics/overdue_balance?months=3&external_customer_id=${story.monthly}`);
    expect(mine.overdue_balances.filter((r: any) => r.amount_cents > 0).map((r: any) => [r.month, r.lago_invoice_ids])).toEqual([[MAR, [story.ids.i3]]]);
  });

  it("usage: billed units and amounts per metric, by month or day, with Lago's filters", async () => {
    const org = await story.org.api("GET", "/api/v1/analytics/usage?from_date=2026-01-01&to_date=2026-03-31");
    const publicId = org.usages[0]?.organization_id;
    expect(publicId).toMatch(/^[0-9a-f-]{36}$/);
    expect(org.usages).toEqual([
      { organization_id: publicId, start_of_period_dt: "2026-01-01", end_of_period_dt: "2026-01-31", amount_currency: "EUR", amount_cents: 500, billable_metric_code: story.calls, units: "100", is_billable_metric_deleted: false },
      { organization_id: publicId, start_of_period_dt: "2026-02-01", end_of_period_dt: "2026-02-28", amount_currency: "EUR", amount_cents: 200, billable_metric_code: story.calls, units: "40", is_billable_metric_deleted: false },
    ]);
    const daily = await story.org.api("GET", `/api/v1/analytics/usage?time_granularity=daily&from_date=2026-02-01&external_customer_id=${story.monthly}&billable_metric_code=${story.calls}`);
    expect(daily.usages.map((u: any) => [u.start_of_period_dt, u.end_of_period_dt, u.units])).toEqual([["2026-02-01", "2026-02-01", "40"]]);
    // Defaults: monthly, the last 12 months up to today (15 March 2026).
    expect((await story.org.api("GET", "/api/v1/analytics/usage")).usages.length).toBe(2);
    for (const filter of ["plan_code=quarterly", `external_customer_id=${story.quarterly}`, "currency=USD", "billable_metric_code=nothing", "is_billable_metric_recurring=true", "customer_type=company"]) {
      expect((await story.org.api("GET", `/api/v1/analytics/usage?${filter}`)).usages, filter).toEqual([]);
    }
    expect((await story.org.api("GET", "/api/v1/analytics/usage?is_billable_metric_recurring=false")).usages.length).toBe(2);
    expect422(await story.org.raw("GET", "/api/v1/analytics/usage?time_granularity=hourly&from_date=2026-13-01"), "time_granularity", "from_date");
  });

  it("an invoice paid later is no longer overdue", async () => {
    await story.org.api("PUT", `/api/v1/invoices/${story.ids.i4}`, { invoice: { payment_status: "succeeded" } });
    const { overdue_balances } = await story.org.api("GET", "/api/v1/analytics/overdue_balance?months=3&currency=EUR");
    expect(overdue_balances.map((r: any) => r.amount_cents)).toEqual([30000, 0, 10200]);
  });

  it("bad parameters: a 422 naming each field", async () => {
    for (const route of ["gross_revenue", "invoice_collection", "invoiced_usage", "mrr", "overdue_balance"]) {
      const errors = expect422(await story.org.raw("GET", `/api/v1/analytics/${route}?currency=EURO&months=zero`), "currency", "months");
      expect(errors.currency).toEqual(["value_is_invalid"]);
    }
    expect422(await story.org.raw("GET", "/api/v1/analytics/mrr?months=0"), "months");
    expect422(await story.org.raw("GET", "/api/v1/analytics/mrr?months=241"), "months");
  });

  it("another organization sees nothing, whatever customer it names", async () => {
    const other = await newOrg(t);
    await other.freeze("2026-03-15T00:00:00Z");
    for (const [route, key] of [
      ["gross_revenue", "gross_revenues"],
      ["invoice_collection", "invoice_collections"],
      ["invoiced_usage", "invoiced_usages"],
      ["mrr", "mrrs"],
      ["overdue_balance", "overdue_balances"],
      ["usage", "usages"],
    ] as const) {
      expect((await other.api("GET", `/api/v1/analytics/${route}?months=3`))[key]).toEqual([]);
      const named = await other.api("GET", `/api/v1/analytics/${route}?months=3&currency=EUR&external_customer_id=${story.monthly}`);
      expect(named[key].every((r: any) => r.amount_cents === 0)).toBe(true);
    }
  });

  it("without an API key: 401", async () => {
    const r = await t.app.http.inject({ method: "GET", url: "/api/v1/analytics/mrr" });
    expect(r.statusCode).toBe(401);
  });
});

describe("analytics: plan intervals, taxes and fees on no invoice", () => {
  /**
   * VAT 20 % on everything. A yearly plan, 1,200.00 in advance from 1 January (calendar), with a
   * non-invoiceable charge paid in advance (1.00 a call, 5 calls on 3 January); a weekly plan,
   * 10.00 a week in arrears from Monday 5 January. On 10 February:
   *   yearly invoice (1 Jan)          1,200.00 + 240.00 VAT = 144000, spread over 12 months: 12000 a month
   *   weekly invoices 12, 19, 26 Jan   3 × 1200 (10.00 + 2.00 VAT)
   *                   2, 9 Feb         2 × 1200
   *   the advance fee (3 Jan)          5.00 + 1.00 VAT = 600, on no invoice
   * MRR, January: 12000 + 3600 / 3 × 4.33 = 12000 + 5196 = 17196; February: 12000 + 2400 / 2 × 4.33 = 17196.
   * Gross revenue, January: 144000 + 3600 + 600 = 148200 over 4 invoices; February: 2400 over 2.
   */
  it("normalises yearly and weekly fees, taxes included, and counts fees on no invoice as revenue", async () => {
    const org = await newOrg(t);
    await org.freeze("2026-01-01T00:00:00Z");
    await org.api("POST", "/api/v1/taxes", { tax: { name: "VAT", code: "vat", rate: "20", applied_to_organization: true } });
    const metric = (await org.api("POST", "/api/v1/billable_metrics", { billable_metric: { name: "Seats", code: "seats", aggregation_type: "count_agg" } })).billable_metric;
    await org.api("POST", "/api/v1/plans", {
      plan: {
        name: "Yearly", code: "yearly", interval: "yearly", amount_cents: 120000, amount_currency: "EUR", pay_in_advance: true,
        charges: [{ billable_metric_id: metric.lago_id, charge_model: "standard", pay_in_advance: true, invoiceable: false, properties: { amount: "1" } }],
      },
    });
    await org.api("POST", "/api/v1/plans", { plan: { name: "Weekly", code: "weekly", interval: "weekly", amount_cents: 1000, amount_currency: "EUR", pay_in_advance: false, charges: [] } });
    const yearly = await customer(org);
    const weekly = await customer(org);
    const ySub = await subscribe(org, yearly, "yearly");
    await org.freeze("2026-01-03T00:00:00Z");
    await sendCalls(org, ySub, "seats", 5, "2026-01-03T00:00:00Z");
    await org.freeze("2026-01-05T00:00:00Z");
    await subscribe(org, weekly, "weekly");
    for (const day of ["2026-01-12", "2026-01-19", "2026-01-26", "2026-02-02", "2026-02-09", "2026-02-10"]) await org.freeze(`${day}T00:00:00Z`);

    const yInvoices = await invoicesOf(org, yearly);
    expect(yInvoices.map((i: any) => [i.issuing_date, i.total_amount_cents])).toEqual([["2026-01-01", 144000]]);
    const wInvoices = await invoicesOf(org, weekly);
    expect(wInvoices.map((i: any) => [i.issuing_date, i.total_amount_cents]).reverse()).toEqual(
      ["2026-01-12", "2026-01-19", "2026-01-26", "2026-02-02", "2026-02-09"].map((d) => [d, 1200]),
    );

    const { mrrs } = await org.api("GET", "/api/v1/analytics/mrr?months=2");
    expect(mrrs).toEqual([
      { month: JAN, amount_cents: 17196, currency: "EUR" },
      { month: FEB, amount_cents: 17196, currency: "EUR" },
    ]);
    // The yearly fee keeps counting in the months it paid for (not yet reached by the clock: outside the window).
    const yearlyOnly = await org.api("GET", `/api/v1/analytics/mrr?months=2&external_customer_id=${yearly}`);
    expect(yearlyOnly.mrrs.map((r: any) => r.amount_cents)).toEqual([12000, 12000]);

    const { gross_revenues } = await org.api("GET", "/api/v1/analytics/gross_revenue?months=2");
    expect(gross_revenues.map((r: any) => [r.month, r.amount_cents, r.invoices_count])).toEqual([
      [JAN, 148200, 4],
      [FEB, 2400, 2],
    ]);
    // The advance fee is usage, but on no invoice: not invoiced usage; it is in the usage report.
    expect((await org.api("GET", "/api/v1/analytics/invoiced_usage?months=2")).invoiced_usages).toEqual([]);
    const usages = (await org.api("GET", "/api/v1/analytics/usage?from_date=2026-01-01&time_granularity=weekly")).usages;
    expect(usages.map((u: any) => [u.start_of_period_dt, u.billable_metric_code, u.units, u.amount_cents])).toEqual([["2025-12-29", "seats", "5", 500]]);
  });
});

describe("analytics: discounts", () => {
  // A monthly plan of 100.00 in advance from 1 January, a 10.00 coupon applied once (the first invoice). MRR and gross revenue are net of it: January 90.00, February 100.00.
  it("MRR and gross revenue are net of coupons", async () => {
    const org = await newOrg(t);
    await org.freeze("2026-01-01T00:00:00Z");
    await org.api("POST", "/api/v1/plans", { plan: { name: "Monthly", code: "monthly", interval: "monthly", amount_cents: 10000, amount_currency: "EUR", pay_in_advance: true, charges: [] } });
    await org.api("POST", "/api/v1/coupons", {
      coupon: { name: "Ten", code: "ten", coupon_type: "fixed_amount", amount_cents: 1000, amount_currency: "EUR", frequency: "once", expiration: "no_expiration" },
    });
    const cus = await customer(org);
    await org.api("POST", "/api/v1/applied_coupons", { applied_coupon: { external_customer_id: cus, coupon_code: "ten" } });
    await subscribe(org, cus, "monthly");
    await org.freeze("2026-02-01T00:00:00Z");
    expect((await invoicesOf(org, cus)).map((i: any) => [i.issuing_date, i.total_amount_cents]).reverse()).toEqual([
      ["2026-01-01", 9000],
      ["2026-02-01", 10000],
    ]);
    expect((await org.api("GET", "/api/v1/analytics/mrr?months=2")).mrrs.map((r: any) => r.amount_cents)).toEqual([9000, 10000]);
    expect((await org.api("GET", "/api/v1/analytics/gross_revenue?months=2")).gross_revenues.map((r: any) => r.amount_cents)).toEqual([9000, 10000]);
    // Repeated parameters are not a value.
    expect422(await org.raw("GET", "/api/v1/analytics/mrr?currency=EUR&currency=USD&months=2&months=3"), "currency", "months");
  });
});
