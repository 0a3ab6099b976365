import { describe, expect, it } from "vitest";
import { d } from "../../../src/shared/money.ts";
import { rateGraduatedPercentage } from "../../../src/modules/pricing/index.ts";
import { expectWellFormed, price } from "./helpers.ts";

// Lago's documented example: 1% + $200 up to 1,000; 2% + $300 up to 10,000; 3% + $400 beyond.
const lagoExample = price("graduated_percentage", {
  graduated_percentage_ranges: [
    { from_value: 0, to_value: 1000, rate: "1", flat_amount: "200" },
    { from_value: 1001, to_value: 10000, rate: "2", flat_amount: "300" },
    { from_value: 10001, to_value: null, rate: "3", flat_amount: "400" },
  ],
});
const total = (units: string) => rateGraduatedPercentage(lagoExample, d(units)).amount;

describe("graduated percentage", () => {
  it.each([
    ["zero usage bills nothing", "0", "0"],
    ["an amount inside the first tier pays its rate and flat fee", "500", "205"],
    ["an amount exactly at the first bound stays in the first tier", "1000", "210"],
    ["one unit past the bound adds the second tier's flat fee", "1001", "510.02"],
    ["a fractional amount past the bound belongs to the second tier", "1000.5", "510.01"],
    ["an amount in the open tier touches all three tiers", "20000", "1390"],
  ])("%s (%s → %s)", (_case, units, expected) => {
    const result = rateGraduatedPercentage(lagoExample, d(units));
    expectWellFormed(result);
    expect(result.amount.toString()).toBe(expected);
  });

  it("reproduces Lago's three transactions of $500, $550 and $4,000: $205, $306, $80", () => {
    expect(total("500").toString()).toBe("205");
    expect(total("1050").minus(total("500")).toString()).toBe("306");
    expect(total("5050").minus(total("1050")).toString()).toBe("80");
  });

  it("shows each tier's slice at its rate as a fraction", () => {
    const lines = rateGraduatedPercentage(lagoExample, d(1050)).lines;
    expect(lines.map((l) => [l.units.toString(), l.unitAmount.toString(), l.flatAmount.toString()])).toEqual([
      ["1000", "0.01", "200"],
      ["50", "0.02", "300"],
    ]);
  });
});
