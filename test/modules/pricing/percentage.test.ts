import { describe, expect, it } from "vitest";
import { d } from "../../../src/shared/money.ts";
import { rate, ratePercentage } from "../../../src/modules/pricing/index.ts";
import { amounts, expectWellFormed, price } from "./helpers.ts";

const onePercentPlus20c = { rate: "1", fixed_amount: "0.20" };
const stripeCard = price("percentage", { rate: "2.9", fixed_amount: "0.30" });
const firstThreeFree = price("percentage", { ...onePercentPlus20c, free_units_per_events: 3 });
const first500Free = price("percentage", { ...onePercentPlus20c, free_units_per_total_aggregation: "500" });
// Lago's documented illustration: "the first 3 events or $500 are free".
const threeEventsOr500 = price("percentage", {
  ...onePercentPlus20c,
  free_units_per_events: 3,
  free_units_per_total_aggregation: "500",
});
const bounded = price("percentage", {
  ...onePercentPlus20c,
  per_transaction_min_amount: "1",
  per_transaction_max_amount: "5",
});

describe("percentage", () => {
  it.each([
    ["no transactions bill nothing", stripeCard, [], "0"],
    ["each transaction pays the rate and the fixed fee", stripeCard, ["100", "50"], "4.95"],
    ["fractional amounts stay exact", stripeCard, ["0.01"], "0.30029"],
    ["the first three transactions are free", firstThreeFree, ["100", "100", "100", "100"], "1.2"],
    ["the free amount covers whole transactions, then the part above it", first500Free, ["200", "200", "200"], "1.2"],
    ["a transaction that exactly uses up the free amount pays the fixed fee", first500Free, ["500"], "0.2"],
    ["a transaction inside the free amount pays nothing", first500Free, ["499.99"], "0"],
    ["with both allowances the amount can run out first", threeEventsOr500, ["200", "200", "200", "200"], "3.4"],
    ["with both allowances the event count can run out first", threeEventsOr500, ["100", "100", "100", "100"], "1.2"],
    ["a refund is billed as a zero-amount transaction", stripeCard, ["-50", "100"], "3.5"],
  ])("%s", (_case, p, events, total) => {
    const result = ratePercentage(p, amounts(events));
    expectWellFormed(result);
    expect(result.amount.toString()).toBe(total);
  });

  it.each([
    ["a small transaction is raised to the minimum", ["10"], "1"],
    ["a transaction within bounds pays rate and fixed fee", ["100"], "1.2"],
    ["a large transaction is cut to the maximum", ["1000"], "5"],
    ["each transaction is bounded on its own, not the total", ["10", "100", "1000"], "7.2"],
  ])("per-transaction bounds: %s", (_case, events, total) => {
    const result = ratePercentage(bounded, amounts(events));
    expectWellFormed(result);
    expect(result.amount.toString()).toBe(total);
  });

  it("free transactions are not raised to the minimum", () => {
    const p = price("percentage", { rate: "1", free_units_per_events: 1, per_transaction_min_amount: "1" });
    expect(ratePercentage(p, amounts(["10", "10"])).amount.toString()).toBe("1");
  });

  it("puts each transaction in exactly one line", () => {
    const { lines } = ratePercentage(bounded, amounts(["10", "100", "300", "1000"]));
    expect(lines.map((l) => [l.part, l.units.toString(), l.unitAmount.toString(), l.amount.toString()])).toEqual([
      ["percentage", "400", "0.01", "4"],
      ["fixed_fee", "2", "0.2", "0.4"],
      ["per_transaction_min", "1", "1", "1"],
      ["per_transaction_max", "1", "5", "5"],
    ]);
  });

  it("rates the aggregate as one transaction when no per-event amounts are given", () => {
    const p = price("percentage", onePercentPlus20c);
    expect(rate(p, { units: d(1000) }).amount.toString()).toBe("10.2");
    expect(rate(p, { units: d(0) }).lines).toEqual([]);
    expect(rate(p, { units: d(1000), eventAmounts: amounts(["600", "400"]) }).amount.toString()).toBe("10.4");
  });
});
