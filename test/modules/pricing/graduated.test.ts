import { describe, expect, it } from "vitest";
import { d } from "../../../src/shared/money.ts";
import { rate, rateGraduated } from "../../../src/modules/pricing/index.ts";
import { expectWellFormed, price } from "./helpers.ts";

// Lago's documented example: $1 per unit for the first 100 units, $0.50 for the next 100, $0.10 after.
const lagoExample = price("graduated", {
  graduated_ranges: [
    { from_value: 0, to_value: 100, per_unit_amount: "1", flat_amount: "0" },
    { from_value: 101, to_value: 200, per_unit_amount: "0.50", flat_amount: "0" },
    { from_value: 201, to_value: null, per_unit_amount: "0.10", flat_amount: "0" },
  ],
});

const withFlatFees = price("graduated", {
  graduated_ranges: [
    { from_value: 0, to_value: 100, per_unit_amount: "1", flat_amount: "10" },
    { from_value: 101, to_value: 200, per_unit_amount: "0.50", flat_amount: "20" },
    { from_value: 201, to_value: null, per_unit_amount: "0.10", flat_amount: "30" },
  ],
});

describe("graduated", () => {
  it.each([
    ["zero usage bills nothing", "0", "0"],
    ["usage inside the first tier bills only its units", "50", "50"],
    ["usage exactly at the first bound stays in the first tier", "100", "100"],
    ["one unit past the bound bills it at the second tier's price", "101", "100.5"],
    ["a fractional unit past the bound belongs to the second tier", "100.5", "100.25"],
    ["usage exactly at the second bound fills two tiers", "200", "150"],
    ["one unit into the open tier bills it at $0.10", "201", "150.1"],
    ["Lago's example: 250 units bill 100 + 50 + 5", "250", "155"],
  ])("%s (%s units → %s)", (_case, units, total) => {
    const result = rateGraduated(lagoExample, d(units));
    expectWellFormed(result);
    expect(result.amount.toString()).toBe(total);
  });

  it.each([
    ["zero usage adds no flat fee", "0", "0", 0],
    ["the first unit adds the first tier's flat fee", "1", "11", 1],
    ["usage at the first bound adds only the first flat fee", "100", "110", 1],
    ["one unit past the bound adds the second flat fee", "101", "130.5", 2],
    ["usage in the open tier adds every flat fee", "250", "215", 3],
  ])("%s (%s units → %s over %i tiers)", (_case, units, total, tiers) => {
    const result = rateGraduated(withFlatFees, d(units));
    expectWellFormed(result);
    expect(result.amount.toString()).toBe(total);
    expect(result.lines).toHaveLength(tiers);
  });

  it("shows each touched tier with its units, unit price and flat fee", () => {
    const { lines } = rate(withFlatFees, { units: d("250") });
    expect(
      lines.map((l) => [l.part, l.tier?.index, l.units.toString(), l.unitAmount.toString(), l.flatAmount.toString(), l.amount.toString()]),
    ).toEqual([
      ["tier", 0, "100", "1", "10", "110"],
      ["tier", 1, "100", "0.5", "20", "70"],
      ["tier", 2, "50", "0.1", "30", "35"],
    ]);
    expect(lines[2]?.tier?.to_value).toBeNull();
  });

  it("bills negative usage as nothing", () => {
    expect(rateGraduated(lagoExample, d(-5)).lines).toEqual([]);
  });
});
