import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { Decimal, d } from "../../../src/shared/money.ts";
import {
  centsOf,
  chargeFees,
  describeInstant,
  subscriptionFee,
  subscriptionFeeAmount,
  unusedAdvanceCredit,
  type BillingTerms,
} from "../../../src/modules/invoicing/core/index.ts";
import type { Charge } from "../../../src/modules/catalog/index.ts";
import type { ChargeUsage } from "../../../src/modules/metering/index.ts";
import { rate } from "../../../src/modules/pricing/index.ts";
import { terms } from "./helpers.ts";

const PLAN = { code: "pro", name: "Pro", description: null, invoiceDisplayName: null };

/** The subscription fee (minor units) the instant `at` bills for a plan of `amountCents`. */
function feeAt(t: BillingTerms, at: string, amountCents: bigint, currency = "EUR"): bigint {
  const instant = describeInstant(t, new Date(at));
  if (instant?.fee == null) throw new Error(`no subscription fee at ${at}`);
  return subscriptionFee({ ...PLAN, amountCents }, "sub-lago-id", instant.fee, t, currency).amountCents;
}

describe("the subscription fee is prorated by calendar days, boundary days included (Lago's examples)", () => {
  it.each([
    // Lago guide, "Assign a plan to a customer": $50 monthly from August 10th owes 22 × $50 / 31.
    ["$50 monthly from August 10th owes 22/31: $35.48", terms("2022-08-10T00:00:00Z"), "2022-09-01T00:00:00Z", 5000n, 3548n],
    // Lago guide, "Upgrades and downgrades": Plan A (€100, arrears, calendar) from January 1st,
    // upgraded to Plan B (€200) on January 15th: A bills 14 days, B bills 17.
    [
      "an upgrade on January 15th bills the old plan January 1st–14th: 14/31 × €100 = €45.16",
      terms("2024-01-01T00:00:00Z", { terminatedAt: "2024-01-15T10:00:00Z", endedBy: "upgrade" }),
      "2024-01-15T10:00:00Z",
      10000n,
      4516n,
    ],
    [
      "the new plan after that upgrade bills January 15th–31st at the period end: 17/31 × €200 = €109.68",
      terms("2024-01-15T10:00:00Z", { subscriptionAt: "2024-01-01T00:00:00Z" }),
      "2024-02-01T00:00:00Z",
      20000n,
      10968n,
    ],
    [
      "a termination bills its own day: terminated January 15th, 15/31 × €100 = €48.39",
      terms("2024-01-01T00:00:00Z", { terminatedAt: "2024-01-15T10:00:00Z" }),
      "2024-01-15T10:00:00Z",
      10000n,
      4839n,
    ],
    [
      "a plan paid in advance started on the 10th (calendar) bills 22/31 at once",
      terms("2022-08-10T09:00:00Z", { payInAdvance: true }),
      "2022-08-10T09:00:00Z",
      5000n,
      3548n,
    ],
    [
      "an anniversary plan paid in advance bills its whole first period",
      terms("2024-01-31T10:00:00Z", { payInAdvance: true, billingTime: "anniversary" }),
      "2024-01-31T10:00:00Z",
      5000n,
      5000n,
    ],
    [
      "trial days are not billed: 10 days of trial from January 10th leave January 20th–31st, 12/31 of €100",
      terms("2024-01-10T00:00:00Z", { trialEndsAt: "2024-01-20T00:00:00Z" }),
      "2024-02-01T00:00:00Z",
      10000n,
      3871n,
    ],
    [
      "a plan paid in advance bills the rest of the period when the trial ends (April 1st + 5 days: April 6th–30th, 25/30)",
      terms("2024-04-01T00:00:00Z", { payInAdvance: true, trialEndsAt: "2024-04-06T00:00:00Z" }),
      "2024-04-06T00:00:00Z",
      3000n,
      2500n,
    ],
    [
      "a trial ending mid-day bills its last day (Lago counts from the trial end's date)",
      terms("2024-04-01T12:00:00Z", { trialEndsAt: "2024-04-06T12:00:00Z" }),
      "2024-05-01T00:00:00Z",
      3000n,
      2500n,
    ],
    [
      "a trial covering the whole period bills zero",
      terms("2024-04-01T00:00:00Z", { trialEndsAt: "2024-06-01T00:00:00Z" }),
      "2024-05-01T00:00:00Z",
      3000n,
      0n,
    ],
    [
      "a weekly plan from a Thursday bills Thursday to Sunday: 4/7 of $7",
      terms("2024-01-18T15:00:00Z", { interval: "weekly" }),
      "2024-01-22T00:00:00Z",
      700n,
      400n,
    ],
    [
      "a yearly plan from July 1st of a leap year bills 184/366 of $1,200",
      terms("2024-07-01T00:00:00Z", { interval: "yearly" }),
      "2025-01-01T00:00:00Z",
      120000n,
      60328n,
    ],
  ] as const)("%s", (_case, t, at, amountCents, expected) => {
    expect(feeAt(t, at, amountCents)).toBe(expected);
  });

  it("keeps the exact share as the precise amount: 22/31 of $50", () => {
    const t = terms("2022-08-10T00:00:00Z");
    const instant = describeInstant(t, new Date("2022-09-01T00:00:00Z"))!;
    expect(subscriptionFeeAmount(d(50), instant.fee!, t).toString()).toBe("35.48387096774193548387096774193548387097");
  });

  it("credits the unused days of a fee paid in advance from the day after a termination, never more than was paid", () => {
    const t = terms("2024-01-01T00:00:00Z", { payInAdvance: true, terminatedAt: "2024-01-15T10:00:00Z" });
    const unused = describeInstant(t, t.terminatedAt!)!.unused!;
    // 16 days (16th–31st) of 31: 16/31 × €100 = €51.61.
    expect(unusedAdvanceCredit(d(100), unused, "termination", null, 10000n, "EUR")).toBe(5161n);
    // An upgrade hands its own day to the new plan: 17 days, €54.84.
    expect(unusedAdvanceCredit(d(100), unused, "upgrade", null, 10000n, "EUR")).toBe(5484n);
    expect(unusedAdvanceCredit(d(100), unused, "termination", null, 3000n, "EUR")).toBe(3000n);
  });
});

describe("a fee is rounded once, half-up, to its currency's minor unit", () => {
  it.each([
    ["USD: 0.005 rounds up to a cent", "0.005", "USD", 1n],
    ["USD: 0.00499 rounds down", "0.00499", "USD", 0n],
    ["USD: 2.675 is 268 cents (no binary float error)", "2.675", "USD", 268n],
    ["JPY has no minor unit: ¥0.5 rounds to ¥1", "0.5", "JPY", 1n],
    ["JPY: ¥1234.49 is 1234", "1234.49", "JPY", 1234n],
    ["KWD has three: 0.0005 rounds to 1 fils", "0.0005", "KWD", 1n],
    ["KWD: 1.2344 is 1234 fils", "1.2344", "KWD", 1234n],
    ["EUR: 22/31 of 50 is 35.48", "35.48387096774193548387096774193548387097", "EUR", 3548n],
  ] as const)("%s", (_case, amount, currency, cents) => {
    expect(centsOf(new Decimal(amount), currency)).toBe(cents);
  });

  it("the precise amount rounded is the amount: |precise − cents| ≤ half a minor unit", () => {
    fc.assert(
      fc.property(fc.bigInt({ min: 0n, max: 10n ** 15n }), fc.integer({ min: 0, max: 6 }), fc.constantFrom("USD", "JPY", "KWD"), (units, scale, currency) => {
        const amount = new Decimal(units.toString()).div(Decimal.pow(10, scale));
        const cents = centsOf(amount, currency);
        const minor = Decimal.pow(10, [0, 2, 3][["JPY", "USD", "KWD"].indexOf(currency)]!);
        expect(amount.times(minor).minus(cents.toString()).abs().lte("0.5")).toBe(true);
      }),
      { numRuns: 200 },
    );
  });
});

describe("usage fees are the charge's buckets as current usage priced them", () => {
  const metric = {
    id: 7,
    orgId: 1,
    lagoId: "00000000-0000-4000-8000-000000000007",
    code: "api_calls",
    name: "API calls",
    description: null,
    aggregationType: "count_agg",
    fieldName: null,
    weightedInterval: null,
    recurring: false,
    roundingFunction: null,
    roundingPrecision: null,
    filters: [{ key: "region", values: ["eu", "us"] }],
    createdAt: new Date(0),
  } as const;
  const price = { model: "standard", amount: d("0.0015") } as const;
  const charge = {
    id: 3,
    lagoId: "00000000-0000-4000-8000-000000000003",
    code: null,
    invoiceDisplayName: null,
    metric,
    chargeModel: "standard",
    payInAdvance: false,
    invoiceable: true,
    regroupPaidFees: null,
    prorated: false,
    minAmountCents: 0n,
    properties: {},
    price,
    pricingGroupKeys: null,
    filters: [{ id: 11, invoiceDisplayName: "EU", values: { region: ["__ALL_FILTER_VALUES__"] }, properties: {}, price, pricingGroupKeys: null }],
    createdAt: new Date(0),
  } as unknown as Charge;
  const bucket = (units: string, events: number) => {
    const r = rate(price as never, { units: d(units) });
    return {
      filter: null,
      filterIndex: -1,
      groupedBy: null,
      units: d(units),
      totalAggregatedUnits: d(units),
      eventsCount: events,
      proratedUnits: null,
      rated: r,
      amountCents: centsOf(r.amount, "USD"),
    };
  };
  const usage: ChargeUsage = {
    charge,
    fees: [{ ...bucket("1003", 1003), filter: charge.filters[0]!, filterIndex: 0 }, bucket("0", 0)],
    units: d("1003"),
    totalAggregatedUnits: d("1003"),
    eventsCount: 1003,
    amountCents: 150n,
  };
  const t = terms("2024-03-01T00:00:00Z");
  const span = describeInstant(t, new Date("2024-04-01T00:00:00Z"))!.charges!;

  it("1,003 calls at $0.0015 are $1.5045: 150 cents, the unit price kept exact", () => {
    const [fee, ...rest] = chargeFees([usage], span, "USD");
    expect(rest).toEqual([]); // the empty default bucket is left out, as Lago drops zero fees
    expect(fee!.amountCents).toBe(150n);
    expect(fee!.preciseAmount.toString()).toBe("1.5045");
    expect(fee!.preciseUnitAmount.toString()).toBe("0.0015");
    expect(fee!.units.toString()).toBe("1003");
    expect(fee!.eventsCount).toBe(1003);
    expect(fee!.to.toISOString()).toBe("2024-03-31T23:59:59.999Z");
    expect(fee!.item).toMatchObject({ type: "charge", code: "api_calls", invoiceDisplayName: "API calls", filterInvoiceDisplayName: "EU" });
  });

  it("records the bucket with Lago's wildcard expanded, so the fee's events can be found again", () => {
    const [fee] = chargeFees([usage], span, "USD");
    expect(fee!.usage).toEqual({ from: span.from, to: span.to, bucket: { metricId: 7, filters: [{ region: ["eu", "us"] }], index: 0 } });
  });
});
