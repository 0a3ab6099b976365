import { describe, expect, it } from "vitest";
import { parsePrice, validatePrice } from "../../../src/modules/pricing/index.ts";

const fieldsOf = (model: string, properties: unknown) => validatePrice(model, properties).map((e) => e.field);
const tiers = (key: string, ...ranges: object[]) => ({ [key]: ranges });

describe("validatePrice accepts", () => {
  it.each([
    ["a standard price", "standard", { amount: "0.5" }],
    ["a free standard price", "standard", { amount: "0" }],
    ["a package with free units", "package", { amount: "5", package_size: 100, free_units: 100 }],
    ["a package without free units", "package", { amount: "5", package_size: 1 }],
    ["a percentage with every option", "percentage", {
      rate: "2.9", fixed_amount: "0.30", free_units_per_events: 3, free_units_per_total_aggregation: "500",
      per_transaction_min_amount: "1", per_transaction_max_amount: "5",
    }],
    ["a percentage with null options", "percentage", {
      rate: "1", fixed_amount: null, free_units_per_events: null, free_units_per_total_aggregation: null,
      per_transaction_min_amount: null, per_transaction_max_amount: null,
    }],
    ["a graduated price with a single open tier", "graduated", tiers("graduated_ranges",
      { from_value: 0, to_value: null, per_unit_amount: "1", flat_amount: "0" })],
    ["volume tiers without flat amounts", "volume", tiers("volume_ranges",
      { from_value: 0, to_value: 10, per_unit_amount: "1" },
      { from_value: 11, to_value: null, per_unit_amount: "0.5" })],
    ["graduated percentage tiers up to 100%", "graduated_percentage", tiers("graduated_percentage_ranges",
      { from_value: 0, to_value: 1000, rate: "1", flat_amount: "200" },
      { from_value: 1001, to_value: null, rate: "100", flat_amount: "0" })],
  ])("%s", (_case, model, properties) => {
    expect(validatePrice(model, properties)).toEqual([]);
  });
});

describe("validatePrice names the broken field", () => {
  it.each([
    ["standard: a missing amount", "standard", {}, "amount", "invalid_amount"],
    ["standard: a negative amount", "standard", { amount: "-1" }, "amount", "invalid_amount"],
    ["standard: a non-numeric amount", "standard", { amount: "abc" }, "amount", "invalid_amount"],
    ["standard: an amount sent as a JSON number", "standard", { amount: 1.5 }, "amount", "invalid_amount"],
    ["standard: an amount of NaN", "standard", { amount: "NaN" }, "amount", "invalid_amount"],
    ["package: a package size below 1", "package", { amount: "5", package_size: 0 }, "package_size", "invalid_package_size"],
    ["package: a fractional package size", "package", { amount: "5", package_size: 2.5 }, "package_size", "invalid_package_size"],
    ["package: a missing package size", "package", { amount: "5" }, "package_size", "invalid_package_size"],
    ["package: negative free units", "package", { amount: "5", package_size: 10, free_units: -1 }, "free_units", "invalid_free_units"],
    ["percentage: a rate above 100", "percentage", { rate: "150" }, "rate", "invalid_rate"],
    ["percentage: a negative rate", "percentage", { rate: "-1" }, "rate", "invalid_rate"],
    ["percentage: a missing rate", "percentage", {}, "rate", "invalid_rate"],
    ["percentage: a non-numeric fixed amount", "percentage", { rate: "1", fixed_amount: "x" }, "fixed_amount", "invalid_fixed_amount"],
    ["percentage: fractional free events", "percentage", { rate: "1", free_units_per_events: 1.5 }, "free_units_per_events", "invalid_free_units_per_events"],
    ["percentage: a negative free amount", "percentage", { rate: "1", free_units_per_total_aggregation: "-5" }, "free_units_per_total_aggregation", "invalid_free_units_per_total_aggregation"],
    ["percentage: a negative minimum", "percentage", { rate: "1", per_transaction_min_amount: "-1" }, "per_transaction_min_amount", "invalid_amount"],
    ["percentage: a maximum below the minimum", "percentage", { rate: "1", per_transaction_min_amount: "5", per_transaction_max_amount: "1" }, "per_transaction_max_amount", "per_transaction_max_lower_than_per_transaction_min"],
    ["graduated: no ranges", "graduated", {}, "graduated_ranges", "missing_graduated_ranges"],
    ["graduated: an empty range list", "graduated", { graduated_ranges: [] }, "graduated_ranges", "missing_graduated_ranges"],
    ["graduated: a range that is not an object", "graduated", { graduated_ranges: [42] }, "graduated_ranges[0]", "invalid_graduated_ranges"],
    ["volume: a first tier not starting at 0", "volume", tiers("volume_ranges",
      { from_value: 1, to_value: null, per_unit_amount: "1" }), "volume_ranges[0].from_value", "invalid_volume_ranges"],
    ["graduated: a gap between tiers", "graduated", tiers("graduated_ranges",
      { from_value: 0, to_value: 10, per_unit_amount: "1" },
      { from_value: 12, to_value: null, per_unit_amount: "1" }), "graduated_ranges[1].from_value", "invalid_graduated_ranges"],
    ["graduated: overlapping tiers", "graduated", tiers("graduated_ranges",
      { from_value: 0, to_value: 10, per_unit_amount: "1" },
      { from_value: 10, to_value: null, per_unit_amount: "1" }), "graduated_ranges[1].from_value", "invalid_graduated_ranges"],
    ["graduated: a last tier that is not open-ended", "graduated", tiers("graduated_ranges",
      { from_value: 0, to_value: 10, per_unit_amount: "1" }), "graduated_ranges[0].to_value", "invalid_graduated_ranges"],
    ["graduated: an open-ended tier before the last", "graduated", tiers("graduated_ranges",
      { from_value: 0, to_value: null, per_unit_amount: "1" },
      { from_value: 1, to_value: null, per_unit_amount: "1" }), "graduated_ranges[0].to_value", "invalid_graduated_ranges"],
    ["graduated: a tier ending before it starts", "graduated", tiers("graduated_ranges",
      { from_value: 0, to_value: 0, per_unit_amount: "1" },
      { from_value: 1, to_value: null, per_unit_amount: "1" }), "graduated_ranges[0].to_value", "invalid_graduated_ranges"],
    ["graduated: a negative bound", "graduated", tiers("graduated_ranges",
      { from_value: -1, to_value: null, per_unit_amount: "1" }), "graduated_ranges[0].from_value", "invalid_graduated_ranges"],
    ["graduated: a bound sent as a string", "graduated", tiers("graduated_ranges",
      { from_value: "0", to_value: null, per_unit_amount: "1" }), "graduated_ranges[0].from_value", "invalid_graduated_ranges"],
    ["graduated: a negative per-unit amount", "graduated", tiers("graduated_ranges",
      { from_value: 0, to_value: null, per_unit_amount: "-0.1" }), "graduated_ranges[0].per_unit_amount", "invalid_amount"],
    ["volume: a non-numeric flat amount", "volume", tiers("volume_ranges",
      { from_value: 0, to_value: null, per_unit_amount: "1", flat_amount: "ten" }), "volume_ranges[0].flat_amount", "invalid_amount"],
    ["graduated percentage: a tier rate above 100", "graduated_percentage", tiers("graduated_percentage_ranges",
      { from_value: 0, to_value: null, rate: "101" }), "graduated_percentage_ranges[0].rate", "invalid_rate"],
    ["an unknown charge model", "dynamic", {}, "charge_model", "invalid_charge_model"],
    ["properties that are not an object", "standard", "0.5", "properties", "invalid_properties"],
  ])("%s", (_case, model, properties, field, code) => {
    expect(validatePrice(model, properties)).toContainEqual(expect.objectContaining({ field, code }));
  });
});

describe("validatePrice collects every broken field", () => {
  it("reports all of a package's broken fields at once", () => {
    expect(fieldsOf("package", { amount: "x", package_size: 0, free_units: -1 })).toEqual([
      "amount",
      "package_size",
      "free_units",
    ]);
  });

  it("reports every broken field of a percentage at once", () => {
    expect(
      fieldsOf("percentage", {
        rate: "101", fixed_amount: "-1", free_units_per_events: "3", free_units_per_total_aggregation: "x",
        per_transaction_min_amount: "1e3", per_transaction_max_amount: "Infinity",
      }),
    ).toEqual([
      "rate", "fixed_amount", "free_units_per_events", "free_units_per_total_aggregation",
      "per_transaction_min_amount", "per_transaction_max_amount",
    ]);
  });

  it("reports broken bounds and amounts across all tiers", () => {
    expect(
      fieldsOf("graduated", tiers("graduated_ranges",
        { from_value: 5, to_value: 10, per_unit_amount: "-1", flat_amount: "0" },
        { from_value: 20, to_value: 15, per_unit_amount: "1", flat_amount: "abc" },
        { from_value: 16, to_value: 30, per_unit_amount: "1", flat_amount: "0" },
      )),
    ).toEqual([
      "graduated_ranges[0].from_value",
      "graduated_ranges[0].per_unit_amount",
      "graduated_ranges[1].from_value",
      "graduated_ranges[1].to_value",
      "graduated_ranges[1].flat_amount",
      "graduated_ranges[2].to_value",
    ]);
  });

  it("says why a tier boundary is wrong", () => {
    const reasons = validatePrice("graduated", tiers("graduated_ranges",
      { from_value: 0, to_value: 10, per_unit_amount: "1" },
      { from_value: 10, to_value: 20, per_unit_amount: "1" },
      { from_value: 25, to_value: null, per_unit_amount: "1" },
    )).map((e) => e.reason);
    expect(reasons).toEqual([
      "overlaps the previous tier: must be 11 (previous to_value + 1)",
      "leaves a gap after the previous tier: must be 21 (previous to_value + 1)",
    ]);
  });
});

describe("parsePrice", () => {
  it("turns Lago properties into a typed price over decimals", () => {
    const parsed = parsePrice("package", { amount: "5", package_size: 100 });
    expect(parsed.ok && parsed.value.model === "package" && parsed.value.free_units.toString()).toBe("0");
  });

  it("reads a zero free allowance as none, as Lago does", () => {
    const parsed = parsePrice("percentage", { rate: "1", free_units_per_events: 0, free_units_per_total_aggregation: "0" });
    expect(parsed.ok && parsed.value.model === "percentage" && [
      parsed.value.free_units_per_events,
      parsed.value.free_units_per_total_aggregation,
    ]).toEqual([null, null]);
  });
});
