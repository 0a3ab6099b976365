import { describe, expect, it } from "vitest";
import { d } from "../../../src/shared/money.ts";
import {
  centsOf,
  chargeFees,
  commitmentFee,
  commitmentSpanOf,
  countsTowardCommitment,
  describeInstant,
  linkTrueUps,
  withTrueUps,
  type BillingTerms,
  type FeeDraft,
} from "../../../src/modules/invoicing/core/index.ts";
import type { Charge, MinimumCommitment } from "../../../src/modules/catalog/index.ts";
import type { ChargeUsage } from "../../../src/modules/metering/index.ts";
import { rate } from "../../../src/modules/pricing/index.ts";
import { terms } from "./helpers.ts";

// Lago's guide, "Spending minimums": Monthly Tracked Users at $0.010 each, a $100 spending minimum.
const metric = {
  id: 7,
  lagoId: "00000000-0000-4000-8000-000000000007",
  code: "mtu",
  name: "Monthly tracked users",
  description: null,
  aggregationType: "unique_count_agg",
  fieldName: "user",
  weightedInterval: null,
  recurring: false,
  roundingFunction: null,
  roundingPrecision: null,
  filters: [{ key: "region", values: ["eu", "us"] }],
  createdAt: new Date(0),
} as const;
const price = { model: "standard", amount: d("0.01") } as const;

function charge(over: Partial<Charge> = {}): Charge {
  return {
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
    minAmountCents: 10000n,
    properties: {},
    price,
    pricingGroupKeys: null,
    filters: [{ id: 11, invoiceDisplayName: "EU", values: { region: ["eu"] }, properties: {}, price, pricingGroupKeys: null }],
    createdAt: new Date(0),
    ...over,
  } as unknown as Charge;
}

const bucket = (c: Charge, filterIndex: number, units: string) => {
  const r = rate(price as never, { units: d(units) });
  return {
    filter: filterIndex === -1 ? null : c.filters[filterIndex]!,
    filterIndex,
    groupedBy: null,
    units: d(units),
    totalAggregatedUnits: d(units),
    eventsCount: Number(units),
    proratedUnits: null,
    rated: r,
    amountCents: centsOf(r.amount, "USD"),
  };
};

/** A charge's usage: EU users, then users of no filter (the default bucket). */
function usageOf(c: Charge, eu: string, other: string): ChargeUsage {
  return {
    charge: c,
    fees: [bucket(c, 0, eu), bucket(c, -1, other)],
    units: d(eu).plus(other),
    totalAggregatedUnits: d(eu).plus(other),
    eventsCount: 0,
    amountCents: 0n,
  };
}

/** The lines of a charge period as "display name: cents". */
function lines(t: BillingTerms, at: string, usage: ChargeUsage[]): string[] {
  const span = describeInstant(t, new Date(at))!.charges!;
  return withTrueUps(usage, chargeFees(usage, span, "USD"), span, t, "USD").map((f) => `${f.item.filterInvoiceDisplayName ?? f.item.invoiceDisplayName}: ${f.amountCents}`);
}

const MARCH = terms("2024-03-01T00:00:00Z");

describe("a charge's spending minimum bills a true-up fee for what usage fell short of (Lago's guide)", () => {
  it.each([
    ["5,000 users ($50) against a $100 minimum: a $50 true-up", MARCH, "0", "5000", ["Monthly tracked users: 5000", "Monthly tracked users - True-up: 5000"]],
    ["12,000 users ($120) reach the minimum: no true-up", MARCH, "0", "12000", ["Monthly tracked users: 12000"]],
    ["exactly $100 of usage: no true-up", MARCH, "4000", "6000", ["EU: 4000", "Monthly tracked users: 6000"]],
    [
      "no usage at all: the default bucket's zero line stays, topped up by the whole $100",
      MARCH,
      "0",
      "0",
      ["Monthly tracked users: 0", "Monthly tracked users - True-up: 10000"],
    ],
    [
      "usage in two buckets ($30 EU + $25 other) adds up before the minimum: a $45 true-up after the charge's last line",
      MARCH,
      "3000",
      "2500",
      ["EU: 3000", "Monthly tracked users: 2500", "Monthly tracked users - True-up: 4500"],
    ],
    [
      // 22 of March's 31 days: $100 × 22 / 31 = $70.967… → 7,097 cents; $20 used.
      "started March 10th: the minimum is prorated to 22/31 ($70.97), $20 used, a $50.97 true-up",
      terms("2024-03-10T00:00:00Z"),
      "0",
      "2000",
      ["Monthly tracked users: 2000", "Monthly tracked users - True-up: 5097"],
    ],
  ])("%s", (_name, t, eu, other, expected) => {
    expect(lines(t, "2024-04-01T00:00:00Z", [usageOf(charge(), eu, other)])).toEqual(expected);
  });

  it("terminated March 15th: the minimum covers March 1st–15th, $100 × 15 / 31 = $48.39", () => {
    const t = terms("2024-03-01T00:00:00Z", { terminatedAt: "2024-03-15T10:00:00Z" });
    expect(lines(t, "2024-03-15T10:00:00Z", [usageOf(charge(), "0", "0")])).toEqual(["Monthly tracked users: 0", "Monthly tracked users - True-up: 4839"]);
  });

  it("upgraded March 15th: the day goes to the new plan, $100 × 14 / 31 = $45.16", () => {
    const t = terms("2024-03-01T00:00:00Z", { terminatedAt: "2024-03-15T10:00:00Z", endedBy: "upgrade" });
    expect(lines(t, "2024-03-15T10:00:00Z", [usageOf(charge(), "0", "0")])).toEqual(["Monthly tracked users: 0", "Monthly tracked users - True-up: 4516"]);
  });

  it("a charge without a minimum keeps Lago's rule: zero lines are dropped, nothing is topped up", () => {
    expect(lines(MARCH, "2024-04-01T00:00:00Z", [usageOf(charge({ minAmountCents: 0n }), "0", "0")])).toEqual([]);
  });

  it("a charge paid in advance has no spending minimum", () => {
    expect(lines(MARCH, "2024-04-01T00:00:00Z", [usageOf(charge({ payInAdvance: true }), "0", "500")])).toEqual(["Monthly tracked users: 500"]);
  });

  it("the true-up is one unit of the difference, for the charge, with no events or bucket of its own", () => {
    const usage = [usageOf(charge(), "0", "5000")];
    const span = describeInstant(MARCH, new Date("2024-04-01T00:00:00Z"))!.charges!;
    const [parent, trueUp] = withTrueUps(usage, chargeFees(usage, span, "USD"), span, MARCH, "USD");
    expect(trueUp).toMatchObject({ feeType: "charge", charge: parent!.charge, units: d(1), eventsCount: 0, usage: null, unitAmountCents: 5000n });
    expect(trueUp!.preciseAmount.toString()).toBe("50");
    expect(trueUp!.trueUpOf).toBe(parent);
  });

  it("once ids are drawn, the charge fee and its true-up name each other", () => {
    const usage = [usageOf(charge(), "0", "5000")];
    const span = describeInstant(MARCH, new Date("2024-04-01T00:00:00Z"))!.charges!;
    let n = 0;
    const [parent, trueUp] = linkTrueUps(withTrueUps(usage, chargeFees(usage, span, "USD"), span, MARCH, "USD"), () => `id-${++n}`);
    expect([parent!.lagoId, parent!.trueUpFeeLagoId, trueUp!.lagoId, trueUp!.trueUpParentFeeLagoId]).toEqual(["id-1", "id-2", "id-2", "id-1"]);
  });
});

const COMMITMENT: MinimumCommitment = {
  lagoId: "00000000-0000-4000-8000-00000000c0c0",
  amountCents: 50000n,
  invoiceDisplayName: null,
  taxCodes: [],
  createdAt: new Date(0),
  updatedAt: new Date(0),
};

function spanAt(t: BillingTerms, at: string) {
  const instant = describeInstant(t, new Date(at));
  if (instant === null) throw new Error(`nothing billed at ${at}`);
  return commitmentSpanOf(t, instant);
}

describe("the commitment is assessed on the invoice that closes the plan's period (in arrears)", () => {
  it.each([
    ["a plan in arrears: the period end closes the month", MARCH, "2024-04-01T00:00:00Z", "2024-03-01..2024-03-31 from 2024-03-01T00:00:00.000Z"],
    [
      "a plan paid in advance: the next period's invoice closes the month (it bills March's usage)",
      terms("2024-03-01T00:00:00Z", { payInAdvance: true }),
      "2024-04-01T00:00:00Z",
      "2024-03-01..2024-03-31 from 2024-03-01T00:00:00.000Z",
    ],
    [
      "a yearly plan with monthly charges: the year's end, not each month's",
      terms("2024-01-01T00:00:00Z", { interval: "yearly", billChargesMonthly: true }),
      "2025-01-01T00:00:00Z",
      "2024-01-01..2024-12-31 from 2024-01-01T00:00:00.000Z",
    ],
    ["started March 10th: the covered part starts then", terms("2024-03-10T00:00:00Z"), "2024-04-01T00:00:00Z", "2024-03-01..2024-03-31 from 2024-03-10T00:00:00.000Z"],
  ])("%s", (_name, t, at, expected) => {
    const span = spanAt(t, at)!;
    expect(`${span.period.fromDate}..${span.period.toDate} from ${span.from.toISOString()}`).toBe(expected);
    expect(span.to).toEqual(span.period.to);
    expect(span.endedBy).toBeNull();
  });

  it.each([
    ["the start of a plan paid in advance", terms("2024-03-01T00:00:00Z", { payInAdvance: true }), "2024-03-01T00:00:00Z"],
    ["a month's end inside a yearly plan billing charges monthly", terms("2024-01-01T00:00:00Z", { interval: "yearly", billChargesMonthly: true }), "2024-02-01T00:00:00Z"],
  ])("no commitment at %s", (_name, t, at) => {
    expect(spanAt(t, at)).toBeNull();
  });

  it("a termination inside the period closes it at the termination", () => {
    const t = terms("2024-03-01T00:00:00Z", { terminatedAt: "2024-03-15T10:00:00Z" });
    const span = spanAt(t, "2024-03-15T10:00:00Z")!;
    expect(span.to.toISOString()).toBe("2024-03-15T10:00:00.000Z");
    expect(span.endedBy).toBe("termination");
  });
});

describe("the commitment fee tops the period's fees up to the commitment, prorated by days", () => {
  const fee = (t: BillingTerms, at: string, billed: bigint) => commitmentFee(COMMITMENT, spanAt(t, at)!, billed, { code: "pro" }, "USD");

  it.each([
    ["$100 plan fee + $50 usage against $500: a $350 commitment fee", MARCH, "2024-04-01T00:00:00Z", 15000n, 35000n],
    ["$600 billed against $500: none", MARCH, "2024-04-01T00:00:00Z", 60000n, null],
    ["exactly $500 billed: none", MARCH, "2024-04-01T00:00:00Z", 50000n, null],
    // $500 × 22 / 31 = $354.838… → 35,484 cents, less $100 billed.
    ["started March 10th: $500 × 22/31 = $354.84 less $100 billed = $254.84", terms("2024-03-10T00:00:00Z"), "2024-04-01T00:00:00Z", 10000n, 25484n],
    [
      "terminated March 15th (its day counts): $500 × 15/31 = $241.94, nothing billed",
      terms("2024-03-01T00:00:00Z", { terminatedAt: "2024-03-15T10:00:00Z" }),
      "2024-03-15T10:00:00Z",
      0n,
      24194n,
    ],
    [
      "upgraded March 15th (the day goes to the new plan): $500 × 14/31 = $225.81",
      terms("2024-03-01T00:00:00Z", { terminatedAt: "2024-03-15T10:00:00Z", endedBy: "upgrade" }),
      "2024-03-15T10:00:00Z",
      0n,
      22581n,
    ],
  ])("%s", (_name, t, at, billed, expected) => {
    expect(fee(t, at, billed)?.amountCents ?? null).toBe(expected);
  });

  it("is a `commitment` fee of one unit, named after the commitment, for the period covered", () => {
    const f = fee(MARCH, "2024-04-01T00:00:00Z", 0n)!;
    expect(f).toMatchObject({ feeType: "commitment", charge: null, units: d(1), unitAmountCents: 50000n, usage: null });
    expect(f.item).toMatchObject({ type: "commitment", code: "minimum_commitment", invoiceDisplayName: "Minimum commitment", lagoItemId: COMMITMENT.lagoId, itemType: "Commitment" });
    expect([f.from.toISOString(), f.to.toISOString()]).toEqual(["2024-03-01T00:00:00.000Z", "2024-03-31T23:59:59.999Z"]);
    const named = commitmentFee({ ...COMMITMENT, invoiceDisplayName: "Contract minimum" }, spanAt(MARCH, "2024-04-01T00:00:00Z")!, 0n, { code: "pro" }, "USD")!;
    expect(named.item.invoiceDisplayName).toBe("Contract minimum");
  });

  it("counts subscription and usage fees from inside the period, not the next period's advance fee or other commitments", () => {
    const period = spanAt(MARCH, "2024-04-01T00:00:00Z")!.period;
    const at = (feeType: FeeDraft["feeType"], from: string) => countsTowardCommitment({ feeType, from: new Date(from) }, period);
    expect([
      at("subscription", "2024-03-01T00:00:00Z"),
      at("charge", "2024-03-10T00:00:00Z"),
      at("subscription", "2024-04-01T00:00:00Z"),
      at("commitment", "2024-03-01T00:00:00Z"),
      at("charge", "2024-02-01T00:00:00Z"),
    ]).toEqual([true, true, false, false, false]);
  });
});
