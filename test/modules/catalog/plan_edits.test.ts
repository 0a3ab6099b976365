import { describe, expect, it } from "vitest";
import {
  type Charge,
  type ChargeDraft,
  type Plan,
  addCharge,
  addFilter,
  changeCharge,
  changeFilter,
  checkPlanCreate,
  checkPlanUpdate,
  removeCharge,
  removeFilter,
  renameErrors,
  withChargeCodes,
} from "../../../src/modules/catalog/core/index.ts";
import { parsePrice, type Price } from "../../../src/modules/pricing/index.ts";
import { lookup, metric, standardCharge } from "./helpers.ts";

const calls = metric({ code: "calls", filters: [{ key: "region", values: ["eu", "us", "ap"] }] });
const gb = metric({ code: "gb", aggregationType: "sum_agg", fieldName: "gb" });
const metrics = lookup(calls, gb);

const price = (properties: Record<string, unknown>): Price => (parsePrice("standard", properties) as { ok: true; value: Price }).value;

function charge(id: number, code: string, fields: Partial<Charge> = {}): Charge {
  return standardCharge(calls, { amount: String(id) }, { id, lagoId: `11111111-1111-4111-8111-${String(id).padStart(12, "0")}`, code, taxCodes: [], ...fields });
}

const eu = { id: 31, lagoId: "22222222-2222-4222-8222-000000000031", invoiceDisplayName: "EU", values: { region: ["eu"] }, properties: { amount: "5" }, price: price({ amount: "5" }), pricingGroupKeys: null };
const us = { id: 32, lagoId: "22222222-2222-4222-8222-000000000032", invoiceDisplayName: null, values: { region: ["us"] }, properties: { amount: "6" }, price: price({ amount: "6" }), pricingGroupKeys: null };

const base: Plan = {
  id: 1,
  orgId: 1,
  lagoId: "33333333-3333-4333-8333-000000000001",
  code: "pro",
  name: "Pro",
  invoiceDisplayName: null,
  description: null,
  interval: "monthly",
  amountCents: 0n,
  amountCurrency: "EUR",
  trialPeriod: null,
  payInAdvance: false,
  billChargesMonthly: null,
  charges: [charge(1, "calls", { filters: [eu, us] }), charge(2, "storage", { metric: gb })],
  createdAt: new Date(0),
  deletedAt: null,
};

const drafted = (body: unknown) => {
  const checked = checkPlanUpdate(body, base, metrics);
  if (!checked.ok) throw new Error(JSON.stringify(checked.errors));
  return checked.value.charges!;
};
const errorsOf = (body: unknown) => {
  const checked = checkPlanUpdate(body, base, metrics);
  return checked.ok ? {} : checked.errors;
};

describe("a charge without a code gets one from its metric", () => {
  const drafts = (codes: (string | null)[], metricsOf: ("calls" | "gb")[] = codes.map(() => "calls")) => {
    const checked = checkPlanCreate(
      {
        name: "P",
        code: "p",
        interval: "monthly",
        amount_cents: 0,
        amount_currency: "EUR",
        charges: codes.map((code, i) => ({ billable_metric_code: metricsOf[i], charge_model: "standard", ...(code === null ? {} : { code }) })),
      },
      metrics,
    );
    if (!checked.ok) throw new Error(JSON.stringify(checked.errors));
    return checked.value.charges!;
  };
  it.each<[string, (string | null)[], ("calls" | "gb")[] | undefined, string[]]>([
    ["one charge takes the metric's code", [null], undefined, ["calls"]],
    ["later charges on the same metric count up from _2", [null, null, null], undefined, ["calls", "calls_2", "calls_3"]],
    ["codes sent are kept and skipped over, wherever they sit in the list", [null, null, "calls_2"], undefined, ["calls", "calls_3", "calls_2"]],
    ["a code sent equal to the metric's pushes the derived one on", [null, "calls"], undefined, ["calls_2", "calls"]],
    ["each metric counts on its own", [null, null, null, null], ["calls", "gb", "calls", "gb"], ["calls", "gb", "calls_2", "gb_2"]],
  ])("%s", (_name, codes, metricsOf, expected) => {
    expect(withChargeCodes(drafts(codes, metricsOf)).map((c: ChargeDraft) => c.code)).toEqual(expected);
  });
});

describe("one charge or filter edited, said as a whole-plan update", () => {
  it("adding a charge keeps every other charge as it is and ignores `id` and `cascade_updates`", () => {
    const edit = addCharge(base, { id: base.charges[0]!.lagoId, cascade_updates: true, billable_metric_code: "gb", charge_model: "standard", code: "more" });
    expect(edit.index).toBe(2);
    const charges = drafted(edit.body);
    expect(charges.map((c) => [c.existingId, c.code])).toEqual([[1, "calls"], [2, "storage"], [null, "more"]]);
    expect(charges[0]!.filters).toBeNull();
  });

  it("changing a charge sends its id with the fields; absent fields keep their values", () => {
    const charges = drafted(changeCharge(base, 1, { properties: { amount: "9" } }).body);
    expect(charges[1]).toMatchObject({ existingId: 2, code: "storage", properties: { amount: "9" }, metric: gb });
    expect(charges[0]).toMatchObject({ existingId: 1, properties: { amount: "1" } });
  });

  it("removing a charge leaves it out of the list", () => {
    expect(drafted(removeCharge(base, 0).body).map((c) => c.existingId)).toEqual([2]);
  });

  it.each([
    ["adding", addFilter(base, 0, { values: { region: ["ap"] }, properties: { amount: "7" } }), [["eu"], ["us"], ["ap"]], ["5", "6", "7"]],
    ["changing values only", changeFilter(base, 0, 1, { values: { region: ["us", "ap"] } }), [["eu"], ["us", "ap"]], ["5", "6"]],
    ["changing properties only", changeFilter(base, 0, 0, { properties: { amount: "8" } }), [["eu"], ["us"]], ["8", "6"]],
    ["removing", removeFilter(base, 0, 0), [["us"]], ["6"]],
  ])("%s a filter rewrites the charge's whole filter list", (_name, edit, regions, amounts) => {
    const filters = drafted(edit.body)[0]!.filters!;
    expect(filters.map((f) => f.values["region"])).toEqual(regions);
    expect(filters.map((f) => f.properties["amount"])).toEqual(amounts);
  });

  it("a filter change keeps the name unless one is sent (null clears it)", () => {
    expect(drafted(changeFilter(base, 0, 0, { properties: { amount: "8" } }).body)[0]!.filters![0]!.invoiceDisplayName).toBe("EU");
    expect(drafted(changeFilter(base, 0, 0, { invoice_display_name: null }).body)[0]!.filters![0]!.invoiceDisplayName).toBeNull();
  });
});

describe("errors are named as the route sees them", () => {
  it("a charge's errors lose their charges[i]. prefix", () => {
    const edit = changeCharge(base, 1, { code: "calls", properties: { amount: "-1" } });
    const errors = errorsOf(edit.body);
    expect(Object.keys(errors).sort()).toEqual(["charges[1].code", "charges[1].properties.amount"]);
    expect(Object.keys(renameErrors(errors, edit.index)).sort()).toEqual(["code", "properties.amount"]);
  });

  it("a filter's errors lose the charge's and the filter's prefixes; other filters keep theirs", () => {
    const edit = changeFilter(base, 0, 0, { values: { region: ["us"] }, properties: { amount: "x" } });
    const errors = errorsOf(edit.body);
    // The duplicate is reported on the later entry (the charge's other filter).
    expect(renameErrors(errors, 0, 0)).toEqual({ "properties.amount": errors["charges[0].filters[0].properties.amount"], "filters[1].values": ["value_already_exist"] });
  });

  it.each([
    [{ "charges[2].code": ["a"], code: ["b", "a"] }, 2, null, { code: ["a", "b"] }],
    [{ "charges[20].code": ["a"] }, 2, null, { "charges[20].code": ["a"] }],
    [{ "charges[0].filters[3].values.region": ["a"] }, 0, 3, { "values.region": ["a"] }],
    [{ "charges[0].filters[3].values.region": ["a"] }, 0, 1, { "filters[3].values.region": ["a"] }],
  ])("%j for charge %i, filter %s reads %j", (details, index, filterIndex, expected) => {
    expect(renameErrors(details, index, filterIndex)).toEqual(expected);
  });
});
