import { describe, expect, it } from "vitest";
import {
  type AggregationType,
  type ChargeShape,
  chargeRuleErrors,
  defaultProperties,
  narrowFilterValues,
} from "../../../src/modules/catalog/core/index.ts";
import { CHARGE_MODELS, type ChargeModel, validatePrice } from "../../../src/modules/pricing/index.ts";

const shape = (
  aggregationType: AggregationType,
  chargeModel: ChargeModel,
  fields: Partial<Omit<ChargeShape, "metric" | "chargeModel">> & { recurring?: boolean } = {},
): ChargeShape => ({
  metric: { aggregationType, recurring: fields.recurring ?? false },
  chargeModel,
  payInAdvance: false,
  invoiceable: true,
  regroupPaidFees: null,
  prorated: false,
  minAmountCents: 0n,
  ...fields,
});

const fieldsOf = (s: ChargeShape) => chargeRuleErrors(s).map((e) => `${e.field}:${e.code}`);

describe("Lago's charge combination rules", () => {
  it.each<[string, ChargeShape, string[]]>([
    ["a standard charge in arrears on a count is fine", shape("count_agg", "standard"), []],
    ["a graduated charge on a sum paid in advance is fine", shape("sum_agg", "graduated", { payInAdvance: true }), []],
    ["a package charge on a unique count paid in advance is fine", shape("unique_count_agg", "package", { payInAdvance: true }), []],
    ["a percentage charge in advance, not invoiced, regrouped on an invoice, is fine",
      shape("sum_agg", "percentage", { payInAdvance: true, invoiceable: false, regroupPaidFees: "invoice" }), []],
    ["a volume charge cannot be paid in advance", shape("sum_agg", "volume", { payInAdvance: true }),
      ["pay_in_advance:invalid_aggregation_type_or_charge_model"]],
    ["a max metric cannot back an in-advance charge", shape("max_agg", "standard", { payInAdvance: true }),
      ["pay_in_advance:invalid_aggregation_type_or_charge_model"]],
    ["a latest metric cannot back an in-advance charge", shape("latest_agg", "standard", { payInAdvance: true }),
      ["pay_in_advance:invalid_aggregation_type_or_charge_model"]],
    ["a weighted sum cannot back an in-advance charge", shape("weighted_sum_agg", "standard", { payInAdvance: true }),
      ["pay_in_advance:invalid_aggregation_type_or_charge_model"]],
    ["a minimum amount cannot be set on an in-advance charge", shape("count_agg", "standard", { payInAdvance: true, minAmountCents: 1n }),
      ["min_amount_cents:not_compatible_with_pay_in_advance"]],
    ["a minimum amount is fine in arrears", shape("count_agg", "standard", { minAmountCents: 1000n }), []],
    ["a charge in arrears must be invoiceable", shape("count_agg", "standard", { invoiceable: false }),
      ["invoiceable:must_be_true_unless_pay_in_advance"]],
    ["regrouping paid fees needs an in-advance charge that is not invoiceable", shape("count_agg", "standard", { payInAdvance: true, regroupPaidFees: "invoice" }),
      ["regroup_paid_fees:only_compatible_with_pay_in_advance_and_non_invoiceable"]],
    ["a recurring sum prorates a standard charge in arrears", shape("sum_agg", "standard", { recurring: true, prorated: true }), []],
    ["a recurring sum prorates a volume charge in arrears", shape("sum_agg", "volume", { recurring: true, prorated: true }), []],
    ["a recurring sum prorates a graduated charge in arrears", shape("sum_agg", "graduated", { recurring: true, prorated: true }), []],
    ["a recurring sum prorates a standard charge paid in advance", shape("sum_agg", "standard", { recurring: true, prorated: true, payInAdvance: true }), []],
    ["a graduated charge paid in advance cannot be prorated", shape("sum_agg", "graduated", { recurring: true, prorated: true, payInAdvance: true }),
      ["prorated:invalid_billable_metric_or_charge_model"]],
    ["a package charge cannot be prorated", shape("sum_agg", "package", { recurring: true, prorated: true }),
      ["prorated:invalid_billable_metric_or_charge_model"]],
    ["a charge on a metric that is not recurring cannot be prorated", shape("sum_agg", "standard", { prorated: true }),
      ["prorated:invalid_billable_metric_or_charge_model"]],
    ["a weighted sum is never prorated again", shape("weighted_sum_agg", "standard", { recurring: true, prorated: true }),
      ["prorated:invalid_billable_metric_or_charge_model"]],
    ["every broken rule is reported together", shape("max_agg", "volume", { payInAdvance: true, minAmountCents: 5n, prorated: true }), [
      "pay_in_advance:invalid_aggregation_type_or_charge_model",
      "min_amount_cents:not_compatible_with_pay_in_advance",
      "prorated:invalid_billable_metric_or_charge_model",
    ]],
  ])("%s", (_case, s, expected) => {
    expect(fieldsOf(s)).toEqual(expected);
  });
});

describe("Lago's default properties", () => {
  it.each(CHARGE_MODELS.map((m) => [m]))("the %s default is a valid, free price", (model) => {
    expect(validatePrice(model, defaultProperties(model))).toEqual([]);
  });
});

describe("narrowing charge filter values to a metric's filters", () => {
  const metric = { filters: [{ key: "region", values: ["eu", "us"] }, { key: "tier", values: ["gold"] }] };
  it.each<[string, Record<string, string[]>, Record<string, string[]> | null]>([
    ["values still offered are kept", { region: ["eu", "us"] }, { region: ["eu", "us"] }],
    ["a value no longer offered is dropped", { region: ["eu", "asia"] }, { region: ["eu"] }],
    ["a key left without values is dropped", { region: ["asia"], tier: ["gold"] }, { tier: ["gold"] }],
    ["a key the metric no longer has is dropped", { cloud: ["aws"], tier: ["gold"] }, { tier: ["gold"] }],
    ["a filter left without keys is deleted", { region: ["asia"] }, null],
    ["the all-values wildcard stays while its key exists", { region: ["__ALL_FILTER_VALUES__"] }, { region: ["__ALL_FILTER_VALUES__"] }],
  ])("%s", (_case, values, expected) => {
    expect(narrowFilterValues(values, metric)).toEqual(expected);
  });
});
