import { describe, expect, it } from "vitest";
import { checkMetricCreate, checkMetricUpdate, type MetricDraft } from "../../../src/modules/catalog/core/index.ts";

const base = { name: "API calls", code: "calls" };
const errorsOf = (raw: unknown) => {
  const checked = checkMetricCreate(raw);
  return checked.ok ? {} : checked.errors;
};

describe("a billable metric is accepted", () => {
  it.each([
    ["a count needs no field name", { aggregation_type: "count_agg" }, { aggregationType: "count_agg", fieldName: null }],
    ["a sum aggregates its field", { aggregation_type: "sum_agg", field_name: "amount" }, { fieldName: "amount" }],
    ["a recurring sum carries units over", { aggregation_type: "sum_agg", field_name: "gb", recurring: true }, { recurring: true }],
    ["a recurring unique count is allowed", { aggregation_type: "unique_count_agg", field_name: "u", recurring: true }, { recurring: true }],
    ["a weighted sum weighs by seconds by default", { aggregation_type: "weighted_sum_agg", field_name: "gb" }, { weightedInterval: "seconds" }],
    ["a weighted interval on another aggregation is not kept", { aggregation_type: "sum_agg", field_name: "a", weighted_interval: "seconds" }, { weightedInterval: null }],
    ["rounding may have a negative precision", { aggregation_type: "count_agg", rounding_function: "round", rounding_precision: -2 }, { roundingFunction: "round", roundingPrecision: -2 }],
    ["an empty expression is no expression", { aggregation_type: "count_agg", expression: "" }, {}],
    ["a null description is kept null", { aggregation_type: "count_agg", description: null }, { description: null }],
    ["filters are sorted by key and their values deduplicated", {
      aggregation_type: "count_agg",
      filters: [{ key: "z", values: ["b", "a", "b"] }, { key: "a", values: ["x"] }],
    }, { filters: [{ key: "a", values: ["x"] }, { key: "z", values: ["b", "a"] }] }],
  ])("%s", (_case, fields, expected) => {
    const checked = checkMetricCreate({ ...base, ...fields });
    expect(checked.ok).toBe(true);
    if (checked.ok) expect(checked.value).toMatchObject(expected);
  });
});

describe("a billable metric is refused, naming the field", () => {
  it.each([
    ["a missing name", { code: "c", aggregation_type: "count_agg" }, { name: ["value_is_mandatory"] }],
    ["a blank code", { name: "n", code: "   ", aggregation_type: "count_agg" }, { code: ["value_is_invalid"] }],
    ["a code that is not a string", { name: "n", code: 12, aggregation_type: "count_agg" }, { code: ["value_is_invalid"] }],
    ["no aggregation type", base, { aggregation_type: ["value_is_mandatory"] }],
    ["an unknown aggregation type", { ...base, aggregation_type: "custom_agg" }, { aggregation_type: ["value_is_invalid"] }],
    ["a sum without a field name", { ...base, aggregation_type: "sum_agg" }, { field_name: ["value_is_mandatory"] }],
    ["a max with an empty field name", { ...base, aggregation_type: "max_agg", field_name: "" }, { field_name: ["value_is_mandatory"] }],
    ["a latest without a field name", { ...base, aggregation_type: "latest_agg" }, { field_name: ["value_is_mandatory"] }],
    ["a recurring count", { ...base, aggregation_type: "count_agg", recurring: true }, { recurring: ["not_compatible_with_aggregation_type"] }],
    ["a recurring max", { ...base, aggregation_type: "max_agg", field_name: "a", recurring: true }, { recurring: ["not_compatible_with_aggregation_type"] }],
    ["a recurring latest", { ...base, aggregation_type: "latest_agg", field_name: "a", recurring: true }, { recurring: ["not_compatible_with_aggregation_type"] }],
    ["a weighted interval other than seconds", { ...base, aggregation_type: "weighted_sum_agg", field_name: "a", weighted_interval: "hours" }, { weighted_interval: ["value_is_invalid"] }],
    ["an unknown rounding function", { ...base, aggregation_type: "count_agg", rounding_function: "up" }, { rounding_function: ["value_is_invalid"] }],
    ["a fractional rounding precision", { ...base, aggregation_type: "count_agg", rounding_precision: 1.5 }, { rounding_precision: ["value_is_invalid"] }],
    ["an expression, which is not evaluated", { ...base, aggregation_type: "count_agg", expression: "a + b" }, { expression: ["expression_not_supported"] }],
    ["filters that are not a list", { ...base, aggregation_type: "count_agg", filters: { region: ["eu"] } }, { filters: ["value_is_invalid"] }],
    ["a filter that is not an object", { ...base, aggregation_type: "count_agg", filters: ["region"] }, { "filters[0]": ["value_is_invalid"] }],
    ["a filter without values", { ...base, aggregation_type: "count_agg", filters: [{ key: "r" }] }, { "filters[0].values": ["value_is_mandatory"] }],
    ["a filter with a non-string value", { ...base, aggregation_type: "count_agg", filters: [{ key: "r", values: [1] }] }, { "filters[0].values": ["value_is_invalid"] }],
    ["a filter key given twice", { ...base, aggregation_type: "count_agg", filters: [{ key: "r", values: ["a"] }, { key: "r", values: ["b"] }] }, { "filters[1].key": ["value_already_exist"] }],
  ])("%s", (_case, raw, details) => {
    expect(errorsOf(raw)).toEqual(details);
  });

  it("every broken field at once", () => {
    expect(Object.keys(errorsOf({ name: 1, aggregation_type: "x", recurring: "no" })).sort()).toEqual(
      ["aggregation_type", "code", "name", "recurring"],
    );
  });

  it("a body that is not an object as missing fields", () => {
    expect(errorsOf("metric")).toEqual({
      name: ["value_is_mandatory"],
      code: ["value_is_mandatory"],
      aggregation_type: ["value_is_mandatory"],
    });
  });
});

describe("a billable metric update", () => {
  const current: MetricDraft = {
    code: "storage",
    name: "Storage",
    description: "GB",
    aggregationType: "sum_agg",
    fieldName: "gb",
    weightedInterval: null,
    recurring: true,
    roundingFunction: null,
    roundingPrecision: null,
    filters: [{ key: "region", values: ["eu"] }],
  };

  it("changes only the fields sent", () => {
    const checked = checkMetricUpdate({ name: "Disk" }, current, false);
    expect(checked).toEqual({ ok: true, value: { ...current, name: "Disk" } });
  });

  it("clears a field sent as null", () => {
    const checked = checkMetricUpdate({ description: null, filters: null }, current, false);
    expect(checked).toEqual({ ok: true, value: { ...current, description: null, filters: [] } });
  });

  it("checks the result as a whole: a new aggregation is judged with the kept field name and recurrence", () => {
    expect(checkMetricUpdate({ aggregation_type: "max_agg" }, current, false)).toEqual({
      ok: false,
      errors: { recurring: ["not_compatible_with_aggregation_type"] },
    });
    expect(checkMetricUpdate({ field_name: null }, current, false)).toEqual({ ok: false, errors: { field_name: ["value_is_mandatory"] } });
  });

  it("ignores all but name, description and filters once a plan uses the metric, as Lago does", () => {
    const checked = checkMetricUpdate(
      { name: "Disk", code: "disk", aggregation_type: "count_agg", field_name: null, recurring: false, filters: [] },
      current,
      true,
    );
    expect(checked).toEqual({ ok: true, value: { ...current, name: "Disk", filters: [] } });
  });

  it("still refuses a broken name on a metric a plan uses", () => {
    expect(checkMetricUpdate({ name: "" }, current, true)).toEqual({ ok: false, errors: { name: ["value_is_mandatory"] } });
  });
});
