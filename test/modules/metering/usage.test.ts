import { describe, expect, it } from "vitest";
import { d } from "../../../src/shared/money.ts";
import {
  type BucketAggregate,
  type UsageWindow,
  chargeOrder,
  priceCharge,
  subscriptionUsage,
  usageJson,
  usageWindowAt,
} from "../../../src/modules/metering/core/index.ts";
import { at, charge, chargeFilter, metric } from "./helpers.ts";

const agg = (units: string, eventsCount = 1): BucketAggregate => ({ units: d(units), eventsCount, totalAggregatedUnits: d(units) });

// Lago's graduated example: $1 per unit up to 100, $0.50 from 101 to 200, $0.10 after.
const graduated = {
  graduated_ranges: [
    { from_value: 0, to_value: 100, per_unit_amount: "1", flat_amount: "0" },
    { from_value: 101, to_value: 200, per_unit_amount: "0.50", flat_amount: "0" },
    { from_value: 201, to_value: null, per_unit_amount: "0.10", flat_amount: "0" },
  ],
};
// Lago's package example: $5 per 100 units, the first 100 free.
const packaged = { amount: "5", package_size: 100, free_units: 100 };

describe("pricing a charge's usage", () => {
  const sum = metric({ aggregationType: "sum_agg", fieldName: "n" });
  it.each([
    ["zero usage bills 0 cents", "graduated", graduated, "0", 0n],
    ["graduated: units at the first tier bound bill $100", "graduated", graduated, "100", 10000n],
    ["graduated: one unit past the bound adds $0.50", "graduated", graduated, "101", 10050n],
    ["graduated: Lago's 250 units bill $155", "graduated", graduated, "250", 15500n],
    ["graduated: fractional units bill exactly, rounded once", "graduated", graduated, "100.333", 10017n],
    ["package: within the free units bills nothing", "package", packaged, "100", 0n],
    ["package: Lago's 201 units bill two packages, $10", "package", packaged, "201", 1000n],
    ["package: a fractional unit past a package starts the next", "package", packaged, "200.5", 1000n],
    ["standard: half a cent rounds up (half-up, per fee)", "standard", { amount: "0.005" }, "1", 1n],
    ["standard: just under half a cent rounds down", "standard", { amount: "0.00499" }, "1", 0n],
  ] as const)("%s", (_case, model, props, units, cents) => {
    const usage = priceCharge(charge(sum, model, props), [agg(units)], "USD");
    expect(usage.amountCents).toBe(cents);
    expect(usage.units.toString()).toBe(units);
  });

  it("a currency without minor units rounds to whole units", () => {
    expect(priceCharge(charge(sum, "standard", { amount: "0.5" }), [agg("3")], "JPY").amountCents).toBe(2n);
  });

  it("filters: each filter is priced at its own price, the rest at the charge's; totals add up", () => {
    const m = metric({ aggregationType: "count_agg", filters: [{ key: "region", values: ["eu", "us"] }] });
    const c = charge(m, "standard", { amount: "1" }, [
      chargeFilter({ region: ["eu"] }, "standard", { amount: "0.10" }),
      chargeFilter({ region: ["us"] }, "standard", { amount: "0.20" }),
    ]);
    const usage = priceCharge(c, [agg("10", 10), agg("5", 5), agg("2", 2)], "EUR");
    expect(usage.fees.map((f) => [f.filter === null ? "default" : Object.values(f.filter.values).join(), f.units.toString(), f.amountCents])).toEqual([
      ["eu", "10", 100n],
      ["us", "5", 100n],
      ["default", "2", 200n],
    ]);
    expect([usage.units.toString(), usage.eventsCount, usage.amountCents]).toEqual(["17", 17, 400n]);
  });

  it("each fee rounds once; the charge adds the rounded fees", () => {
    const m = metric({ aggregationType: "count_agg", filters: [{ key: "region", values: ["eu"] }] });
    const c = charge(m, "standard", { amount: "0.005" }, [chargeFilter({ region: ["eu"] }, "standard", { amount: "0.005" })]);
    // 0.5 cent + 0.5 cent: two fees of 1 cent each (not one of 1 cent).
    expect(priceCharge(c, [agg("1"), agg("1")], "USD").amountCents).toBe(2n);
  });

  it("the metric's rounding applies to the units before pricing", () => {
    const m = metric({ aggregationType: "sum_agg", fieldName: "gb", roundingFunction: "ceil", roundingPrecision: 0 });
    const usage = priceCharge(charge(m, "standard", { amount: "2" }), [agg("1.2")], "USD");
    expect([usage.units.toString(), usage.amountCents]).toEqual(["2", 400n]);
  });

  it("percentage charges rate each transaction: the fixed fee applies per event", () => {
    const m = metric({ aggregationType: "sum_agg", fieldName: "amount" });
    const c = charge(m, "percentage", { rate: "1", fixed_amount: "0.5" });
    const usage = priceCharge(c, [{ ...agg("300", 2), eventAmounts: [d("100"), d("200")] }], "USD");
    // 1% of 300 = 3, plus 2 × 0.50 = 4.00
    expect(usage.amountCents).toBe(400n);
  });
});

describe("Lago's usage JSON", () => {
  const window: UsageWindow = usageWindowAt(
    { subscriptionAt: at("2026-02-28T23:00:00Z"), startedAt: at("2026-02-28T23:00:00Z"), terminatedAt: null, billingTime: "calendar", timezone: "Europe/Paris" },
    { interval: "monthly", billChargesMonthly: null },
    at("2026-03-15T12:00:00Z"),
  )!;

  it("renders the period in UTC to the second, the issuing date, totals without taxes, and charges by metric name", () => {
    const storage = metric({ name: "Storage", code: "storage", aggregationType: "sum_agg", fieldName: "gb" });
    const calls = metric({ name: "api calls", code: "calls" });
    const charges = [charge(storage, "standard", { amount: "1" }), charge(calls, "package", packaged)].sort(chargeOrder);
    const priced = charges.map((c) => priceCharge(c, [agg(c.metric.code === "calls" ? "201" : "2.5", 3)], "EUR"));
    const json = usageJson(subscriptionUsage(window, "EUR", priced));
    expect(json).toMatchObject({
      from_datetime: "2026-02-28T23:00:00Z",
      to_datetime: "2026-03-31T21:59:59Z",
      issuing_date: "2026-04-01",
      lago_invoice_id: null,
      currency: "EUR",
      amount_cents: 1250,
      taxes_amount_cents: 0,
      total_amount_cents: 1250,
    });
    expect(json.charges_usage.map((c) => [c.billable_metric.code, c.units, c.events_count, c.amount_cents, c.amount_currency, c.filters])).toEqual([
      ["calls", "201", 3, 1000, "EUR", []],
      ["storage", "2.5", 3, 250, "EUR", []],
    ]);
  });

  it("lists the charge's filters with their values; the default bucket only counts in the charge's totals", () => {
    const m = metric({ aggregationType: "count_agg", filters: [{ key: "region", values: ["eu"] }] });
    const c = charge(m, "standard", { amount: "1" }, [chargeFilter({ region: ["eu"] })]);
    const json = usageJson(subscriptionUsage(window, "EUR", [priceCharge(c, [agg("2", 2), agg("3", 3)], "EUR")]));
    expect(json.charges_usage[0]!.filters).toEqual([
      { units: "2", total_aggregated_units: "2", amount_cents: 200, events_count: 2, invoice_display_name: null, values: { region: ["eu"] } },
    ]);
    expect(json.charges_usage[0]!.units).toBe("5");
  });
});
