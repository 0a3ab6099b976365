import { describe, expect, it } from "vitest";
import { d } from "../../../src/shared/money.ts";
import { ratePackage } from "../../../src/modules/pricing/index.ts";
import { expectWellFormed, price } from "./helpers.ts";

// Lago's documented example: $5 per 100 units, first 100 free; 201 units cost $0 + $5 + $5 = $10.
const lagoExample = price("package", { amount: "5", package_size: 100, free_units: 100 });
const noFreeUnits = price("package", { amount: "5", package_size: 100 });

describe("package", () => {
  it.each([
    ["zero usage bills nothing", "0", "0", lagoExample],
    ["usage within the free units bills nothing", "100", "0", lagoExample],
    ["the first unit after the free ones starts a package", "101", "5", lagoExample],
    ["a fractional unit after the free ones starts a package", "100.5", "5", lagoExample],
    ["usage filling a package exactly bills one", "200", "5", lagoExample],
    ["Lago's example: 201 units bill two packages", "201", "10", lagoExample],
    ["without free units one unit bills a package", "1", "5", noFreeUnits],
    ["without free units a full package bills one", "100", "5", noFreeUnits],
    ["without free units one unit past a package starts the next", "101", "10", noFreeUnits],
  ])("%s (%s units → %s)", (_case, units, total, p) => {
    const result = ratePackage(p, d(units));
    expectWellFormed(result);
    expect(result.amount.toString()).toBe(total);
  });

  it("shows the number of packages at the package price", () => {
    const [only] = ratePackage(lagoExample, d(201)).lines;
    expect([only?.part, only?.units.toString(), only?.unitAmount.toString()]).toEqual(["packages", "2", "5"]);
  });
});
