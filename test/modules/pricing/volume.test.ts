import { describe, expect, it } from "vitest";
import { d } from "../../../src/shared/money.ts";
import { rateVolume } from "../../../src/modules/pricing/index.ts";
import { expectWellFormed, price } from "./helpers.ts";

// Lago's documented example: 65,000 API calls cost 65,000 × $0.0006 + $10 = $49.
const lagoExample = price("volume", {
  volume_ranges: [
    { from_value: 0, to_value: 10000, per_unit_amount: "0.0010", flat_amount: "10" },
    { from_value: 10001, to_value: 50000, per_unit_amount: "0.0008", flat_amount: "10" },
    { from_value: 50001, to_value: 100000, per_unit_amount: "0.0006", flat_amount: "10" },
    { from_value: 100001, to_value: null, per_unit_amount: "0.0004", flat_amount: "10" },
  ],
});

describe("volume", () => {
  it.each([
    ["zero usage bills nothing, not even the flat fee", "0", "0", null],
    ["one unit uses the first tier", "1", "10.001", 0],
    ["usage exactly at the first bound uses the first tier", "10000", "20", 0],
    ["one unit past the bound prices every unit at the second tier", "10001", "18.0008", 1],
    ["a fractional unit past the bound uses the second tier", "10000.5", "18.0004", 1],
    ["Lago's example: 65,000 units cost $49", "65000", "49", 2],
    ["usage in the open tier uses the last tier", "200000", "90", 3],
  ])("%s (%s units → %s)", (_case, units, total, tier) => {
    const result = rateVolume(lagoExample, d(units));
    expectWellFormed(result);
    expect(result.amount.toString()).toBe(total);
    expect(result.lines.map((l) => l.tier?.index ?? null)).toEqual(tier === null ? [] : [tier]);
  });

  it("shows the tier reached with all units at its price", () => {
    const [only] = rateVolume(lagoExample, d(65000)).lines;
    expect([only?.units.toString(), only?.unitAmount.toString(), only?.flatAmount.toString()]).toEqual(["65000", "0.0006", "10"]);
    expect([only?.tier?.from_value.toString(), only?.tier?.to_value?.toString()]).toEqual(["50001", "100000"]);
  });
});
