import { describe, expect, it } from "vitest";
import { type Charge, type Plan, checkPlanCreate, checkPlanUpdate, metricRefs } from "../../../src/modules/catalog/core/index.ts";
import { parsePrice, type Price } from "../../../src/modules/pricing/index.ts";
import { lookup, metric } from "./helpers.ts";

const calls = metric({ code: "calls", filters: [{ key: "region", values: ["eu", "us"] }] });
const amount = metric({ code: "amount", aggregationType: "sum_agg", fieldName: "amount", recurring: true });
const metrics = lookup(calls, amount);

const plan = (fields: Record<string, unknown> = {}) => ({
  name: "Startup",
  code: "startup",
  interval: "monthly",
  amount_cents: 1000,
  amount_currency: "USD",
  ...fields,
});
const errorsOf = (raw: unknown) => {
  const checked = checkPlanCreate(raw, metrics);
  return checked.ok ? {} : checked.errors;
};
const draftOf = (raw: unknown) => {
  const checked = checkPlanCreate(raw, metrics);
  if (!checked.ok) throw new Error(JSON.stringify(checked.errors));
  return checked.value;
};

describe("a plan is accepted", () => {
  it.each([
    ["a free pay-as-you-go plan", { amount_cents: 0 }, { amountCents: 0n, payInAdvance: false, charges: [] }],
    ["an amount sent as a string of digits, as Rails casts it", { amount_cents: "1500" }, { amountCents: 1500n }],
    ["the largest exact amount", { amount_cents: Number.MAX_SAFE_INTEGER }, { amountCents: BigInt(Number.MAX_SAFE_INTEGER) }],
    ["a fractional trial", { trial_period: 0.5 }, { trialPeriod: 0.5 }],
    ["a zero-decimal currency", { amount_currency: "JPY" }, { amountCurrency: "JPY" }],
    ["a yearly plan billing charges monthly", { interval: "yearly", bill_charges_monthly: true }, { billChargesMonthly: true }],
    ["a yearly plan without bill_charges_monthly", { interval: "yearly" }, { billChargesMonthly: false }],
    ["bill_charges_monthly dropped on a monthly plan (Lago stores null)", { bill_charges_monthly: true }, { billChargesMonthly: null }],
    ["a weekly plan paid in advance", { interval: "weekly", pay_in_advance: true }, { interval: "weekly", payInAdvance: true }],
    ["charges sent as null", { charges: null }, { charges: [] }],
  ])("%s", (_case, fields, expected) => {
    expect(draftOf(plan(fields))).toMatchObject(expected);
  });
});

describe("a plan is refused, naming the field", () => {
  it.each([
    ["a negative amount", { amount_cents: -1 }, { amount_cents: ["value_is_out_of_range"] }],
    ["a fractional amount", { amount_cents: 10.5 }, { amount_cents: ["value_is_invalid"] }],
    ["an amount past 2^53", { amount_cents: "9007199254740993" }, { amount_cents: ["value_is_invalid"] }],
    ["a missing amount", { amount_cents: null }, { amount_cents: ["value_is_mandatory"] }],
    ["an unknown currency", { amount_currency: "usd" }, { amount_currency: ["value_is_invalid"] }],
    ["an unknown interval", { interval: "daily" }, { interval: ["value_is_invalid"] }],
    ["a semiannual interval, which billing cannot compute yet", { interval: "semiannual" }, { interval: ["value_is_invalid"] }],
    ["a negative trial", { trial_period: -1 }, { trial_period: ["value_is_out_of_range"] }],
    ["a trial sent as a string", { trial_period: "5" }, { trial_period: ["value_is_invalid"] }],
    ["pay_in_advance that is not a boolean", { pay_in_advance: "true" }, { pay_in_advance: ["value_is_invalid"] }],
    ["charges that are not a list", { charges: { a: 1 } }, { charges: ["value_is_invalid"] }],
  ])("%s", (_case, fields, details) => {
    expect(errorsOf(plan(fields))).toEqual(details);
  });
});

const charge = (fields: Record<string, unknown>) => plan({ charges: [{ billable_metric_id: calls.lagoId, charge_model: "standard", properties: { amount: "1" }, ...fields }] });

describe("a charge", () => {
  it("keeps only its model's properties and reads grouped_by as pricing_group_keys", () => {
    const draft = draftOf(charge({ charge_model: "package", properties: { amount: "5", package_size: 10, rate: "3", grouped_by: ["agent"] } }));
    expect(draft.charges![0]!.properties).toEqual({ amount: "5", package_size: 10, pricing_group_keys: ["agent"] });
  });

  it("without properties takes Lago's defaults for its model", () => {
    expect(draftOf(charge({ charge_model: "percentage", properties: undefined })).charges![0]!.properties).toEqual({ rate: "0" });
    expect(draftOf(charge({ properties: {} })).charges![0]!.properties).toEqual({ amount: "0" });
  });

  it("finds its metric by Lago id or by code", () => {
    const draft = draftOf(plan({
      charges: [
        { billable_metric_id: calls.lagoId.toUpperCase(), charge_model: "standard" },
        { billable_metric_code: "amount", charge_model: "standard" },
      ],
    }));
    expect(draft.charges!.map((c) => c.metric.code)).toEqual(["calls", "amount"]);
  });

  it.each([
    ["an unknown metric id", { billable_metric_id: "00000000-0000-4000-8000-999999999999" }, { "charges[0].billable_metric_id": ["billable_metric_not_found"] }],
    ["a metric id that is not a uuid", { billable_metric_id: "calls" }, { "charges[0].billable_metric_id": ["billable_metric_not_found"] }],
    ["no metric at all", { billable_metric_id: undefined }, { "charges[0].billable_metric_id": ["value_is_mandatory"] }],
    ["an id and a code naming different metrics", { billable_metric_code: "amount" }, { "charges[0].billable_metric_code": ["value_is_invalid"] }],
    ["no charge model", { charge_model: undefined }, { "charges[0].charge_model": ["value_is_mandatory"] }],
    ["a charge model we do not price (dynamic)", { charge_model: "dynamic" }, { "charges[0].charge_model": ["value_is_invalid"] }],
    ["properties that are not an object", { properties: "1" }, { "charges[0].properties": ["value_is_invalid"] }],
    ["a negative price", { properties: { amount: "-1" } }, { "charges[0].properties.amount": ["invalid_amount"] }],
    ["grouping keys that are not strings", { properties: { amount: "1", pricing_group_keys: [1] } }, { "charges[0].properties.pricing_group_keys": ["value_is_invalid"] }],
    ["gapped tiers", { charge_model: "volume", properties: { volume_ranges: [
      { from_value: 0, to_value: 10, per_unit_amount: "1" }, { from_value: 12, to_value: null, per_unit_amount: "1" },
    ] } }, { "charges[0].properties.volume_ranges[1].from_value": ["invalid_volume_ranges"] }],
    ["a negative minimum", { min_amount_cents: -100 }, { "charges[0].min_amount_cents": ["value_is_out_of_range"] }],
    ["regroup_paid_fees other than invoice", { regroup_paid_fees: "later" }, { "charges[0].regroup_paid_fees": ["value_is_invalid"] }],
    ["a volume charge paid in advance", { charge_model: "volume", pay_in_advance: true, properties: undefined }, { "charges[0].pay_in_advance": ["invalid_aggregation_type_or_charge_model"] }],
    ["a filter on a key the metric does not have", { filters: [{ values: { cloud: ["aws"] }, properties: { amount: "1" } }] }, { "charges[0].filters[0].values.cloud": ["value_is_invalid"] }],
    ["a filter value the metric does not offer", { filters: [{ values: { region: ["eu", "mars"] }, properties: { amount: "1" } }] }, { "charges[0].filters[0].values.region": ["value_is_invalid"] }],
    ["a filter without values", { filters: [{ values: {}, properties: { amount: "1" } }] }, { "charges[0].filters[0].values": ["value_is_mandatory"] }],
    ["a filter without its price", { filters: [{ values: { region: ["eu"] } }] }, { "charges[0].filters[0].properties.amount": ["invalid_amount"] }],
    ["two filters on the same values", { filters: [
      { values: { region: ["eu", "us"] }, properties: { amount: "1" } }, { values: { region: ["us", "eu"] }, properties: { amount: "2" } },
    ] }, { "charges[0].filters[1].values": ["value_already_exist"] }],
  ])("is refused with %s", (_case, fields, details) => {
    expect(errorsOf(charge(fields))).toEqual(details);
  });

  it("accepts the all-values wildcard as a filter's only value", () => {
    const draft = draftOf(charge({ filters: [{ values: { region: ["__ALL_FILTER_VALUES__"] }, properties: { amount: "1" } }] }));
    expect(draft.charges![0]!.filters).toEqual([{ invoiceDisplayName: null, values: { region: ["__ALL_FILTER_VALUES__"] }, properties: { amount: "1" } }]);
  });

  it("codes are unique within the plan", () => {
    expect(errorsOf(plan({
      charges: [
        { billable_metric_id: calls.lagoId, charge_model: "standard", code: "a" },
        { billable_metric_id: calls.lagoId, charge_model: "standard", code: "a" },
      ],
    }))).toEqual({ "charges[1].code": ["value_already_exist"] });
  });
});

describe("metricRefs", () => {
  it("collects the metric ids and codes a plan names, ignoring what cannot match", () => {
    expect(metricRefs(plan({
      charges: [
        { billable_metric_id: calls.lagoId.toUpperCase() },
        { billable_metric_id: "not-a-uuid", billable_metric_code: "amount" },
        "junk",
      ],
    }))).toEqual({ lagoIds: [calls.lagoId], codes: ["amount"] });
  });
});

function existingCharge(fields: Partial<Charge> = {}): Charge {
  const properties = { amount: "1" };
  return {
    id: 7,
    lagoId: "11111111-1111-4111-8111-111111111111",
    code: null,
    invoiceDisplayName: "Calls",
    metric: calls,
    chargeModel: "standard",
    payInAdvance: false,
    invoiceable: true,
    regroupPaidFees: null,
    prorated: false,
    minAmountCents: 300n,
    properties,
    price: (parsePrice("standard", properties) as { ok: true; value: Price }).value,
    pricingGroupKeys: null,
    filters: [{
      id: 9,
      invoiceDisplayName: "EU",
      values: { region: ["eu"] },
      properties: { amount: "2" },
      price: (parsePrice("standard", { amount: "2" }) as { ok: true; value: Price }).value,
      pricingGroupKeys: null,
    }],
    createdAt: new Date(0),
    ...fields,
  };
}

const currentPlan: Plan = {
  id: 3,
  orgId: 1,
  lagoId: "22222222-2222-4222-8222-222222222222",
  code: "startup",
  name: "Startup",
  invoiceDisplayName: null,
  description: "d",
  interval: "yearly",
  amountCents: 5000n,
  amountCurrency: "EUR",
  trialPeriod: 7,
  payInAdvance: true,
  billChargesMonthly: true,
  charges: [existingCharge()],
  createdAt: new Date(0),
  deletedAt: null,
};

const update = (raw: unknown) => {
  const checked = checkPlanUpdate(raw, currentPlan, metrics);
  if (!checked.ok) throw new Error(JSON.stringify(checked.errors));
  return checked.value;
};

describe("a plan update", () => {
  it("changes only the fields sent and leaves the charges alone without `charges`", () => {
    expect(update({ name: "Scale" })).toEqual({
      code: "startup",
      name: "Scale",
      invoiceDisplayName: null,
      description: "d",
      interval: "yearly",
      amountCents: 5000n,
      amountCurrency: "EUR",
      trialPeriod: 7,
      payInAdvance: true,
      billChargesMonthly: true,
      charges: null,
      taxCodes: [],
      minimumCommitment: null,
      usageThresholds: [],
    });
  });

  it("clears bill_charges_monthly when the interval leaves yearly", () => {
    expect(update({ interval: "monthly" }).billChargesMonthly).toBeNull();
  });

  it("leaves the charges alone with `charges: null` and removes them all with `[]`", () => {
    expect(update({ charges: null }).charges).toBeNull();
    expect(update({ charges: [] }).charges).toEqual([]);
  });

  it("updates the charge whose id it names, keeping what is not sent (price, filters, minimum)", () => {
    const [c] = update({ charges: [{ id: existingCharge().lagoId, invoice_display_name: "API" }] }).charges!;
    expect(c).toMatchObject({
      existingId: 7,
      metric: calls,
      chargeModel: "standard",
      invoiceDisplayName: "API",
      minAmountCents: 300n,
      properties: { amount: "1" },
      filters: null,
    });
  });

  it("adds a charge for an id that is not one of the plan's", () => {
    const [c] = update({ charges: [{ id: "33333333-3333-4333-8333-333333333333", billable_metric_id: calls.lagoId, charge_model: "standard" }] }).charges!;
    expect(c).toMatchObject({ existingId: null, properties: { amount: "0" }, minAmountCents: 0n, filters: [] });
  });

  it("gives a charge whose model changes without properties Lago's defaults, and checks its kept filters against the new model", () => {
    const checked = checkPlanUpdate({ charges: [{ id: existingCharge().lagoId, charge_model: "package" }] }, currentPlan, metrics);
    expect(checked).toEqual({
      ok: false,
      errors: { "charges[0].filters[0].properties.package_size": ["invalid_package_size"] },
    });
  });

  it("refuses the same charge id twice", () => {
    const id = existingCharge().lagoId;
    const checked = checkPlanUpdate({ charges: [{ id }, { id }] }, currentPlan, metrics);
    expect(checked).toEqual({ ok: false, errors: { "charges[1].id": ["value_already_exist"] } });
  });
});
