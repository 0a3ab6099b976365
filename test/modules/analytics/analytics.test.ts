import { describe, expect, it } from "vitest";
import { addMonths, monthJson, monthWindow, monthsBetween } from "../../../src/modules/analytics/core/months.ts";
import { mrrByMonth, spreadCents, spreadMonths, weeklyMrr, type SubscriptionFeeGroup } from "../../../src/modules/analytics/core/mrr.ts";
import { readAnalyticsQuery } from "../../../src/modules/analytics/core/query.ts";
import { periodOf, readUsageQuery, usagesJson } from "../../../src/modules/analytics/core/usage.ts";
import { d } from "../../../src/shared/money.ts";
import { grossRevenuesJson, invoiceCollectionsJson, invoicedUsagesJson, overdueBalancesJson } from "../../../src/modules/analytics/core/series.ts";

describe("months", () => {
  it.each([
    ["2026-03-15T12:00:00Z", 3, ["2026-01", "2026-02", "2026-03"]],
    ["2026-01-31T23:59:59Z", 2, ["2025-12", "2026-01"]],
    ["2026-02-01T00:00:00Z", 1, ["2026-02"]],
  ])("the window ending %s over %i months is %j", (now, months, expected) => expect(monthWindow(Date.parse(now), months)).toEqual(expected));

  it.each([
    ["2026-01", -1, "2025-12"],
    ["2026-11", 3, "2027-02"],
    ["2026-05", -17, "2024-12"],
  ])("%s moved by %i months is %s", (key, delta, expected) => expect(addMonths(key, delta)).toBe(expected));

  it("lists the months between two months, both included", () => {
    expect(monthsBetween("2025-11", "2026-02")).toEqual(["2025-11", "2025-12", "2026-01", "2026-02"]);
    expect(monthsBetween("2026-02", "2026-02")).toEqual(["2026-02"]);
  });

  it("renders a month as Lago does, its first instant", () => expect(monthJson("2023-11")).toBe("2023-11-01T00:00:00.000Z"));
});

describe("MRR normalisation", () => {
  it.each([
    [100n, 3, [34n, 33n, 33n]],
    [1200n, 12, Array(12).fill(100n)],
    [5n, 3, [2n, 2n, 1n]],
    [0n, 2, [0n, 0n]],
  ])("%s cents spread over %i months: equal shares, remainder first, adding up to the fee", (cents, n, expected) => {
    const shares = spreadCents(cents as bigint, n as number);
    expect(shares).toEqual(expected);
    expect(shares.reduce((a, b) => a + b, 0n)).toBe(cents);
  });

  const group = (g: Partial<SubscriptionFeeGroup>): SubscriptionFeeGroup => ({
    interval: "monthly",
    currency: "EUR",
    issuingMonth: "2026-04",
    periodFrom: null,
    periodTo: null,
    payInAdvance: false,
    cents: 0n,
    invoices: 1,
    ...g,
  });

  it("a monthly fee counts in the month its invoice was issued, whatever period it paid for", () => {
    expect(spreadMonths(group({ periodFrom: "2026-03", periodTo: "2026-03" }))).toEqual(["2026-04"]);
  });

  it("a quarterly fee in arrears spreads over the quarter it paid for", () => {
    expect(spreadMonths(group({ interval: "quarterly", periodFrom: "2026-01", periodTo: "2026-03" }))).toEqual(["2026-01", "2026-02", "2026-03"]);
  });

  it("a quarterly fee in advance with a shortened (prorated) period spreads over the months remaining", () => {
    expect(spreadMonths(group({ interval: "quarterly", payInAdvance: true, periodFrom: "2026-02", periodTo: "2026-03" }))).toEqual(["2026-02", "2026-03"]);
  });

  it("a yearly fee without a period spreads over 12 months from the issuing month (advance) or before it (arrears)", () => {
    expect(spreadMonths(group({ interval: "yearly", payInAdvance: true }))).toEqual(monthsBetween("2026-04", "2027-03"));
    expect(spreadMonths(group({ interval: "yearly", payInAdvance: false }))).toEqual(monthsBetween("2025-04", "2026-03"));
  });

  it.each([
    [10000n, 4, 10825n], // 100.00 a week on average × 4.33
    [3333n, 1, 14432n], // 33.33 × 4.33 = 144.3189 → 144.32
    [1n, 2, 2n], // 0.005 × 4.33 = 0.021645 → 0.02
    [0n, 0, 0n],
  ])("weekly: %s cents over %i invoices is %s cents a month", (cents, invoices, expected) => expect(weeklyMrr(cents, invoices)).toBe(expected));

  it("adds monthly, spread and weekly fees per month and currency", () => {
    const rows = mrrByMonth([
      group({ issuingMonth: "2026-01", cents: 5000n }),
      group({ interval: "quarterly", payInAdvance: true, issuingMonth: "2026-01", periodFrom: "2026-01", periodTo: "2026-03", cents: 30000n }),
      group({ interval: "weekly", issuingMonth: "2026-01", cents: 2000n, invoices: 2 }),
      group({ interval: "weekly", issuingMonth: "2026-01", cents: 1000n, invoices: 1 }),
      group({ issuingMonth: "2026-01", cents: 700n, currency: "USD" }),
    ]);
    const by = Object.fromEntries(rows.map((r) => [`${r.month} ${r.currency}`, r.cents]));
    // January: 50.00 + 100.00 (a third of 300.00) + 10.00 a week × 4.33 = 193.30
    expect(by).toEqual({ "2026-01 EUR": 19330n, "2026-02 EUR": 10000n, "2026-03 EUR": 10000n, "2026-01 USD": 700n });
  });
});

describe("query parameters", () => {
  it("defaults to the last 12 months, every currency, every customer", () => {
    expect(readAnalyticsQuery({})).toEqual({ ok: true, value: { currency: null, externalCustomerId: null, months: 12 } });
  });

  it("reads currency, customer and months", () => {
    expect(readAnalyticsQuery({ currency: "USD", external_customer_id: "cus_1", months: "3" })).toEqual({
      ok: true,
      value: { currency: "USD", externalCustomerId: "cus_1", months: 3 },
    });
  });

  it("names every broken parameter", () => {
    expect(readAnalyticsQuery({ currency: "EURO", months: "0", external_customer_id: ["a", "b"] })).toEqual({
      ok: false,
      errors: { currency: ["value_is_invalid"], months: ["must_be_an_integer_between_1_and_240"], external_customer_id: ["value_is_invalid"] },
    });
    expect(readAnalyticsQuery({ months: "1.5" })).toMatchObject({ ok: false, errors: { months: [expect.any(String)] } });
    expect(readAnalyticsQuery({ months: "-2" })).toMatchObject({ ok: false });
  });
});

describe("series", () => {
  const window = ["2026-01", "2026-02"];

  it("gross revenue: one row per month and currency with figures, zeros where none, invoices and fees merged", () => {
    const rows = grossRevenuesJson(window, null, [
      { month: "2026-02", currency: "USD", cents: 500n, invoices: 1 },
      { month: "2026-01", currency: "EUR", cents: 1000n, invoices: 2 },
      { month: "2026-01", currency: "EUR", cents: 50n, invoices: 0 },
      { month: "2025-12", currency: "GBP", cents: 9n, invoices: 1 },
    ]);
    expect(rows.map((r) => [r.month.slice(0, 7), r.currency, r.amount_cents, r.invoices_count])).toEqual([
      ["2026-01", "EUR", 1050, 2],
      ["2026-01", "USD", 0, 0],
      ["2026-02", "EUR", 0, 0],
      ["2026-02", "USD", 500, 1],
    ]);
  });

  it("a requested currency is shown even with nothing in it", () => {
    expect(grossRevenuesJson(window, "JPY", []).map((r) => [r.month, r.amount_cents, r.currency])).toEqual([
      ["2026-01-01T00:00:00.000Z", 0, "JPY"],
      ["2026-02-01T00:00:00.000Z", 0, "JPY"],
    ]);
  });

  it("no figures and no currency: an empty series", () => expect(overdueBalancesJson(window, null, [])).toEqual([]));

  it("invoice collection lists the three payment statuses of every month", () => {
    const rows = invoiceCollectionsJson(["2026-01"], null, [{ month: "2026-01", currency: "EUR", paymentStatus: "failed", cents: 700n, invoices: 1 }]);
    expect(rows).toEqual([
      { month: "2026-01-01T00:00:00.000Z", payment_status: "pending", invoices_count: 0, amount_cents: 0, currency: "EUR" },
      { month: "2026-01-01T00:00:00.000Z", payment_status: "succeeded", invoices_count: 0, amount_cents: 0, currency: "EUR" },
      { month: "2026-01-01T00:00:00.000Z", payment_status: "failed", invoices_count: 1, amount_cents: 700, currency: "EUR" },
    ]);
  });

  it("invoiced usage lists only invoiced metrics, in month, currency and code order", () => {
    const rows = invoicedUsagesJson(window, [
      { month: "2026-02", currency: "EUR", code: "b", cents: 2n },
      { month: "2026-02", currency: "EUR", code: "a", cents: 1n },
      { month: "2026-01", currency: "EUR", code: "z", cents: 3n },
      { month: "2025-01", currency: "EUR", code: "old", cents: 3n },
    ]);
    expect(rows.map((r) => `${r.month.slice(0, 7)} ${r.code} ${r.amount_cents}`)).toEqual(["2026-01 z 3", "2026-02 a 1", "2026-02 b 2"]);
  });
});

describe("usage report", () => {
  it.each([
    ["2026-03-18", "daily", "2026-03-18", "2026-03-18"],
    ["2026-03-18", "weekly", "2026-03-16", "2026-03-22"], // a Wednesday: Monday to Sunday
    ["2026-03-16", "weekly", "2026-03-16", "2026-03-22"],
    ["2026-03-22", "weekly", "2026-03-16", "2026-03-22"],
    ["2026-01-01", "weekly", "2025-12-29", "2026-01-04"],
    ["2026-02-10", "monthly", "2026-02-01", "2026-02-28"],
    ["2028-02-10", "monthly", "2028-02-01", "2028-02-29"],
  ] as const)("%s in a %s report falls in %s – %s", (day, g, start, end) => expect(periodOf(day, g)).toEqual({ start, end }));

  it("defaults to monthly periods over the 12 months up to today", () => {
    const r = readUsageQuery({}, "2026-03-15");
    expect(r).toMatchObject({ ok: true, value: { granularity: "monthly", fromDate: "2025-04-01", toDate: "2026-03-15", metricRecurring: null } });
  });

  it("names every broken parameter", () => {
    const r = readUsageQuery(
      { time_granularity: "hourly", from_date: "2026-13-01", to_date: "soon", customer_type: "robot", customer_country: "france", currency: "XXX", is_billable_metric_recurring: "yes" },
      "2026-03-15",
    );
    expect(r.ok).toBe(false);
    expect(Object.keys((r as { errors: object }).errors).sort()).toEqual(
      ["currency", "customer_country", "customer_type", "from_date", "is_billable_metric_recurring", "time_granularity", "to_date"].sort(),
    );
    expect(readUsageQuery({ from_date: "2026-02-30" }, "2026-03-15")).toEqual({ ok: false, errors: { from_date: ["invalid_date"] } });
    expect(readUsageQuery({ from_date: "2026-03-02", to_date: "2026-03-01" }, "2026-03-15")).toEqual({ ok: false, errors: { from_date: ["must_be_before_to_date"] } });
  });

  it("adds the days of a period per metric, units as decimals, amounts in cents", () => {
    const rows = usagesJson("org", "weekly", [
      { day: "2026-03-17", currency: "EUR", code: "calls", metricDeleted: false, units: d("1.5"), cents: 150n },
      { day: "2026-03-20", currency: "EUR", code: "calls", metricDeleted: false, units: d("2.25"), cents: 225n },
      { day: "2026-03-09", currency: "EUR", code: "gb", metricDeleted: true, units: d("7"), cents: 1n },
    ]);
    expect(rows).toEqual([
      { organization_id: "org", start_of_period_dt: "2026-03-09", end_of_period_dt: "2026-03-15", amount_currency: "EUR", amount_cents: 1, billable_metric_code: "gb", units: "7", is_billable_metric_deleted: true },
      { organization_id: "org", start_of_period_dt: "2026-03-16", end_of_period_dt: "2026-03-22", amount_currency: "EUR", amount_cents: 375, billable_metric_code: "calls", units: "3.75", is_billable_metric_deleted: false },
    ]);
  });
});
