import { describe, expect, it } from "vitest";
import { advanceProrationShare, carriedOverAmount, carriesOverInAdvance, daysLeft, proratedInAdvance } from "../../../src/modules/invoicing/core/advance_recurring.ts";
import { d } from "../../../src/shared/money.ts";
import { price } from "../pricing/helpers.ts";
import { usageWindowAt } from "../../../src/modules/metering/index.ts";

const monthly = { interval: "monthly" as const, billChargesMonthly: null };
const sub = (o: { since?: string; until?: string; timezone?: string } = {}) => ({
  subscriptionAt: new Date(o.since ?? "2026-01-01T00:00:00Z"),
  startedAt: null,
  terminatedAt: o.until === undefined ? null : new Date(o.until),
  billingTime: "calendar" as const,
  timezone: o.timezone ?? "UTC",
});
const windowAt = (s: ReturnType<typeof sub>, at: string) => usageWindowAt(s, monthly, new Date(at))!;

describe("the share of the period a prorated advance event pays for", () => {
  it.each([
    ["the period's first instant pays the whole month", "2026-07-01T00:00:00Z", 31, "1.00000"],
    ["day 10 of July pays 22 of 31 days, its own day included", "2026-07-10T15:30:00Z", 22, "0.70968"],
    ["the last day pays one day", "2026-07-31T23:59:59Z", 1, "0.03226"],
    ["day 15 of February 2026 pays 14 of 28 days", "2026-02-15T00:00:00Z", 14, "0.50000"],
  ])("%s", (_name, at, days, share) => {
    const w = windowAt(sub(), at);
    expect(daysLeft(w, new Date(at))).toBe(days);
    expect(advanceProrationShare(w, new Date(at)).toFixed(5)).toBe(share);
  });

  it("counts days in the customer's timezone: 23:00 UTC on July 9th is July 10th in Paris", () => {
    const paris = sub({ timezone: "Europe/Paris" });
    const at = new Date("2026-07-09T23:00:00Z");
    expect(daysLeft(windowAt(paris, at.toISOString()), at)).toBe(22);
    expect(daysLeft(windowAt(sub(), at.toISOString()), at)).toBe(23);
  });

  it("a subscription terminated inside the period pays only to its last day, over the period's days", () => {
    const s = sub({ until: "2026-07-20T12:00:00Z" });
    const at = new Date("2026-07-10T00:00:00Z");
    // July 10th to 20th: 11 days of 31.
    expect(daysLeft(windowAt(s, at.toISOString()), at)).toBe(11);
    expect(advanceProrationShare(windowAt(s, at.toISOString()), at).times(31).toString()).toBe("11");
  });

  it("only recurring sums and unique counts with prorated: true are prorated", () => {
    expect(proratedInAdvance(c(true, true, "sum_agg"))).toBe(true);
    expect(proratedInAdvance(c(true, true, "unique_count_agg"))).toBe(true);
    expect(proratedInAdvance(c(false, true, "sum_agg"))).toBe(false);
    expect(proratedInAdvance(c(true, false, "sum_agg"))).toBe(false);
    expect(proratedInAdvance(c(true, true, "count_agg"))).toBe(false);
  });
});

const c = (prorated: boolean, recurring: boolean, aggregationType: "sum_agg" | "unique_count_agg" | "count_agg", payInAdvance = true) => ({
  prorated,
  payInAdvance,
  metric: { recurring, aggregationType },
});

describe("units carried into a period by a recurring sum paid in advance", () => {
  it("only recurring sums paid in advance carry over", () => {
    expect(carriesOverInAdvance(c(false, true, "sum_agg"))).toBe(true);
    expect(carriesOverInAdvance(c(true, true, "sum_agg"))).toBe(true);
    expect(carriesOverInAdvance(c(false, false, "sum_agg"))).toBe(false);
    expect(carriesOverInAdvance(c(false, true, "unique_count_agg"))).toBe(false);
    expect(carriesOverInAdvance(c(false, true, "sum_agg", false))).toBe(false);
  });

  const august = windowAt(sub(), "2026-08-01T00:00:00Z");
  const standard = price("standard", { amount: "10" });
  const graduated = price("graduated", {
    graduated_ranges: [
      { from_value: 0, to_value: 10, per_unit_amount: "1", flat_amount: "0" },
      { from_value: 11, to_value: null, per_unit_amount: "0.5", flat_amount: "2" },
    ],
  });
  it.each([
    ["3 seats at €10 cost €30", standard, "3", false, "30"],
    ["prorated over a whole period: still €30", standard, "3", true, "30"],
    ["graduated from nothing: 12 units cost 10 + 2 + 1 = €13", graduated, "12", false, "13"],
    ["no units carried cost nothing", standard, "0", false, "0"],
    ["a negative running sum holds no units", standard, "-2", false, "0"],
  ])("%s", (_name, p, carried, prorated, amount) => {
    expect(carriedOverAmount(p, d(carried), { prorated, window: august }).toString()).toBe(amount);
  });

  it("prorated over a subscription that ends inside the period: August 1st to 10th is 10/31", () => {
    const ending = windowAt(sub({ until: "2026-08-10T12:00:00Z" }), "2026-08-01T00:00:00Z");
    expect(carriedOverAmount(standard, d("31"), { prorated: true, window: ending }).toString()).toBe("100");
    expect(carriedOverAmount(standard, d("31"), { prorated: false, window: ending }).toString()).toBe("310");
  });

  it("the metric's rounding applies to the carried units before pricing", () => {
    expect(carriedOverAmount(standard, d("2.4"), { prorated: false, window: august, round: (u) => u.ceil() }).toString()).toBe("30");
  });
});
