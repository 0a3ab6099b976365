import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { type Decimal, ZERO, d } from "../../../src/shared/money.ts";
import {
  type AdvanceRunning,
  NO_ADVANCE_USAGE,
  advanceFee,
  advanceIncrement,
  arrearsCharges,
  remainingAllowance,
  withoutAdvanceCharges,
} from "../../../src/modules/invoicing/core/advance.ts";
import { type Price, rate, ratePercentage } from "../../../src/modules/pricing/index.ts";
import type { ChargeUsage, SubscriptionUsage } from "../../../src/modules/metering/index.ts";
import { price } from "../pricing/helpers.ts";

/** The fee of each event in turn (increments as units and transaction amounts alike), from an empty period. */
function feesOf(p: Price, increments: readonly string[]): string[] {
  let running: AdvanceRunning = NO_ADVANCE_USAGE;
  return increments.map((x) => {
    const fee = advanceFee(p, running, { units: d(x), amount: d(x) });
    running = fee.after;
    return fee.amount.toFixed(2);
  });
}

const graduated = price("graduated", {
  graduated_ranges: [
    { from_value: 0, to_value: 10, per_unit_amount: "1", flat_amount: "0" },
    { from_value: 11, to_value: null, per_unit_amount: "0.5", flat_amount: "2" },
  ],
});

describe("an event's advance fee is the charge's price with it less its price without it", () => {
  it.each<[string, Price, string[], string[]]>([
    ["standard at €0.05: each call costs €0.05", price("standard", { amount: "0.05" }), ["1", "1", "1"], ["0.05", "0.05", "0.05"]],
    [
      "graduated 0–10 at €1, then €0.50 + €2 flat: 4 GB €4; 8 more cross the tier (€13 − €4); 3 more €1.50",
      graduated,
      ["4", "8", "3"],
      ["4.00", "9.00", "1.50"],
    ],
    ["graduated: an event landing exactly on a tier's last unit pays no flat fee yet", graduated, ["10", "1"], ["10.00", "2.50"]],
    [
      "package of 100 at €5 after 100 free: 50 free, 60 starts a package, 80 stays in it, 20 starts the next",
      price("package", { amount: "5", package_size: 100, free_units: 100 }),
      ["50", "60", "80", "20"],
      ["0.00", "5.00", "0.00", "5.00"],
    ],
    [
      "percentage 1% + €0.10 per transaction, first 2 transactions free",
      price("percentage", { rate: "1", fixed_amount: "0.1", free_units_per_events: 2 }),
      ["100", "100", "200", "50"],
      ["0.00", "0.00", "2.10", "0.60"],
    ],
    [
      "percentage 2% with €250 free: the transaction that uses up the allowance pays on its part above it, plus the fixed fee",
      price("percentage", { rate: "2", fixed_amount: "1", free_units_per_total_aggregation: "250" }),
      ["200", "100", "100"],
      ["0.00", "2.00", "3.00"],
    ],
    [
      "percentage 5% capped at €3 per transaction, at least €0.50",
      price("percentage", { rate: "5", per_transaction_min_amount: "0.5", per_transaction_max_amount: "3" }),
      ["2", "40", "100"],
      ["0.50", "2.00", "3.00"],
    ],
    [
      "graduated percentage: 1% to 1,000 then 0.5%, €10 flat on entering the second range",
      price("graduated_percentage", {
        graduated_percentage_ranges: [
          { from_value: 0, to_value: 1000, rate: "1", flat_amount: "0" },
          { from_value: 1001, to_value: null, rate: "0.5", flat_amount: "10" },
        ],
      }),
      ["800", "400"],
      ["8.00", "13.00"],
    ],
    ["a negative sum lowers the price but is not refunded in advance", price("standard", { amount: "1" }), ["5", "-2", "3"], ["5.00", "0.00", "3.00"]],
  ])("%s", (_name, p, increments, expected) => {
    expect(feesOf(p, increments)).toEqual(expected);
  });
});

describe("the metric's rounding applies to the period's usage before it is priced", () => {
  it("ceil to whole units at €1: 0.2 GB costs a whole unit, 0.5 more nothing, 0.4 more the second unit", () => {
    const p = price("standard", { amount: "1" });
    let running: AdvanceRunning = NO_ADVANCE_USAGE;
    const fees = ["0.2", "0.5", "0.4"].map((x) => {
      const fee = advanceFee(p, running, { units: d(x), amount: d(x) }, (u) => u.ceil());
      running = fee.after;
      return fee.amount.toFixed(2);
    });
    expect(fees).toEqual(["1.00", "0.00", "1.00"]);
    expect(running.units.toString()).toBe("1.1");
  });
});

describe("what one event adds", () => {
  const facts = { value: null, uniqueIsNew: false, removes: false };
  it.each([
    ["a count adds one unit", { ...facts, aggregation: "count_agg" as const }, "1"],
    ["a sum adds the event's value", { ...facts, aggregation: "sum_agg" as const, value: d("2.5") }, "2.5"],
    ["a sum event without a numeric value adds nothing", { ...facts, aggregation: "sum_agg" as const }, null],
    ["a unique count adds one for a value new in the period", { ...facts, aggregation: "unique_count_agg" as const, uniqueIsNew: true }, "1"],
    ["a unique count adds nothing for a value already counted", { ...facts, aggregation: "unique_count_agg" as const }, "0"],
    ["a unique count removal is not refunded in advance", { ...facts, aggregation: "unique_count_agg" as const, removes: true }, null],
    ["max is never paid in advance", { ...facts, aggregation: "max_agg" as const, value: d("3") }, null],
  ])("%s", (_name, f, units) => {
    const inc = advanceIncrement(f);
    expect(inc === null ? null : inc.units.toString()).toBe(units);
  });
});

// Amounts with at most two decimals, positive (a period's fees telescope when usage only grows).
const positive = fc.integer({ min: 1, max: 500_000 }).map((c) => d(c).div(100));
const models: Price[] = [
  price("standard", { amount: "0.0123" }),
  graduated,
  price("package", { amount: "5", package_size: 7, free_units: 3 }),
  price("graduated_percentage", {
    graduated_percentage_ranges: [
      { from_value: 0, to_value: 100, rate: "3", flat_amount: "1" },
      { from_value: 101, to_value: null, rate: "1", flat_amount: "2" },
    ],
  }),
];

describe("properties", () => {
  it("a period's advance fees add up to the price of its whole usage (every model but percentage)", () => {
    fc.assert(
      fc.property(fc.constantFrom(...models), fc.array(positive, { minLength: 1, maxLength: 30 }), (p, xs) => {
        let running: AdvanceRunning = NO_ADVANCE_USAGE;
        let total = ZERO;
        for (const x of xs) {
          const fee = advanceFee(p, running, { units: x, amount: x });
          expect(fee.amount.isNegative()).toBe(false);
          total = total.plus(fee.amount);
          running = fee.after;
        }
        expect(total.eq(rate(p, { units: running.units }).amount)).toBe(true);
      }),
    );
  });

  it("percentage: rating the next transaction against the allowance left is rate(all) − rate(all before)", () => {
    const percentage = fc.record({
      rate: fc.constantFrom("0", "1.5", "3"),
      fixed_amount: fc.constantFrom("0", "0.25"),
      free_units_per_events: fc.option(fc.integer({ min: 1, max: 5 }), { nil: undefined }),
      free_units_per_total_aggregation: fc.option(fc.constantFrom("50", "120.5", "1000"), { nil: undefined }),
      per_transaction_min_amount: fc.option(fc.constantFrom("0.3"), { nil: undefined }),
      per_transaction_max_amount: fc.option(fc.constantFrom("4", "20"), { nil: undefined }),
    });
    const amount = fc.integer({ min: -2_000, max: 30_000 }).map((c) => d(c).div(100));
    fc.assert(
      fc.property(percentage, fc.array(amount, { minLength: 1, maxLength: 25 }), (props, xs) => {
        const p = price("percentage", JSON.parse(JSON.stringify(props)));
        let running: AdvanceRunning = NO_ADVANCE_USAGE;
        const seen: Decimal[] = [];
        for (const x of xs) {
          const before = ratePercentage(p, seen).amount;
          seen.push(x);
          const expected = ratePercentage(p, seen).amount.minus(before);
          expect(ratePercentage(remainingAllowance(p, running), [x]).amount.toString()).toBe(expected.toString());
          running = advanceFee(p, running, { units: x, amount: x }).after;
        }
      }),
    );
  });
});

describe("the arrears invoice leaves advance charges out", () => {
  const usageOf = (payInAdvance: boolean, code: string) => ({ charge: { payInAdvance, metric: { code } }, amountCents: 100n }) as unknown as ChargeUsage;
  it("keeps only charges in arrears, and a usage without advance charges as it is", () => {
    const charges = [usageOf(true, "storage"), usageOf(false, "calls")];
    expect(arrearsCharges(charges).map((c) => c.charge.metric.code)).toEqual(["calls"]);
    const usage = { charges } as unknown as SubscriptionUsage;
    expect(withoutAdvanceCharges(usage).charges.map((c) => c.charge.metric.code)).toEqual(["calls"]);
    const arrears = { charges: [usageOf(false, "calls")] } as unknown as SubscriptionUsage;
    expect(withoutAdvanceCharges(arrears)).toBe(arrears);
  });
});
