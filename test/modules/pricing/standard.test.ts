import { describe, expect, it } from "vitest";
import { d } from "../../../src/shared/money.ts";
import { rateStandard } from "../../../src/modules/pricing/index.ts";
import { expectWellFormed, price } from "./helpers.ts";

const perCall = price("standard", { amount: "0.0025" });

describe("standard", () => {
  it.each([
    ["zero usage bills nothing", "0", "0", 0],
    ["negative usage bills nothing", "-3", "0", 0],
    ["one unit bills the unit price", "1", "0.0025", 1],
    ["fractional units bill pro rata", "2.5", "0.00625", 1],
    ["a million units stay exact", "1000000", "2500", 1],
  ])("%s (%s units → %s)", (_case, units, total, lines) => {
    const result = rateStandard(perCall, d(units));
    expectWellFormed(result);
    expect(result.amount.toString()).toBe(total);
    expect(result.lines).toHaveLength(lines);
  });

  it("keeps many decimals unrounded", () => {
    expect(rateStandard(price("standard", { amount: "0.000000123" }), d(7)).amount.toString()).toBe("0.000000861");
  });
});
