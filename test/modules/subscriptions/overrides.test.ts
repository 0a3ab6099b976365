import { describe, expect, it } from "vitest";
import type { Charge, ChargeFilter, Plan } from "../../../src/modules/catalog/index.ts";
import { parsePrice, type Price } from "../../../src/modules/pricing/index.ts";
import {
  type PlanOverrides,
  type PlanOverridesPatch,
  effectivePlan,
  mergeOverrides,
  overridesFromJson,
  overridesToJson,
  readPlanOverrides,
} from "../../../src/modules/subscriptions/core/index.ts";
import { metric, standardCharge } from "../catalog/helpers.ts";

const price = (model: string, properties: Record<string, unknown>): Price => {
  const parsed = parsePrice(model, properties);
  if (!parsed.ok) throw new Error(JSON.stringify(parsed.errors));
  return parsed.value;
};

const calls = metric({ code: "calls", filters: [{ key: "region", values: ["eu", "us"] }] });
const euFilter: ChargeFilter = {
  id: 7,
  invoiceDisplayName: "EU calls",
  values: { region: ["eu"] },
  properties: { amount: "0.5" },
  price: price("standard", { amount: "0.5" }),
  pricingGroupKeys: null,
};
const charge = (fields: Partial<Charge> & { lagoId: string }): Charge => standardCharge(calls, { amount: "1" }, { id: 1, ...fields });
const STANDARD = "11111111-1111-4111-8111-111111111111";
const ADVANCE = "22222222-2222-4222-8222-222222222222";
const plan: Plan = {
  id: 1,
  orgId: 1,
  lagoId: "33333333-3333-4333-8333-333333333333",
  code: "startup",
  name: "Startup",
  invoiceDisplayName: null,
  description: "For startups",
  interval: "monthly",
  amountCents: 10_000n,
  amountCurrency: "USD",
  trialPeriod: null,
  payInAdvance: false,
  billChargesMonthly: null,
  charges: [
    charge({ lagoId: STANDARD, filters: [euFilter] }),
    charge({ id: 2, lagoId: ADVANCE, payInAdvance: true, invoiceable: true }),
  ],
  createdAt: new Date(0),
  deletedAt: null,
};

let ids = 0;
const stamp = { newId: () => `00000000-0000-4000-8000-${String(++ids).padStart(12, "0")}`, now: new Date("2024-03-01T00:00:00Z") };
const merge = (base: PlanOverrides | null, patch: PlanOverridesPatch) => mergeOverrides(base, patch, stamp);
const read = (raw: unknown) => readPlanOverrides(raw, plan);
const patchOf = (raw: unknown) => {
  const r = read(raw);
  if (!r.ok) throw new Error(JSON.stringify(r.errors));
  return r.value;
};
const effective = (raw: unknown) => effectivePlan(plan, merge(null, patchOf(raw)));

describe("plan_overrides change the effective plan", () => {
  it("overrides the amount, currency, trial and names", () => {
    const p = effective({ amount_cents: 5000, amount_currency: "EUR", trial_period: 7, name: "Startup (deal)", invoice_display_name: "Deal" });
    expect(p).toMatchObject({ amountCents: 5000n, amountCurrency: "EUR", trialPeriod: 7, name: "Startup (deal)", invoiceDisplayName: "Deal", description: "For startups" });
    expect(p.code).toBe("startup");
  });

  it("re-prices a charge by its id, leaving the others as the plan has them", () => {
    const p = effective({ charges: [{ id: STANDARD, properties: { amount: "0.25" }, min_amount_cents: 300, invoice_display_name: "Calls" }] });
    expect(p.charges[0]).toMatchObject({ properties: { amount: "0.25" }, minAmountCents: 300n, invoiceDisplayName: "Calls" });
    expect(p.charges[0]!.price).toEqual(price("standard", { amount: "0.25" }));
    expect(p.charges[1]).toBe(plan.charges[1]);
  });

  it("re-prices a charge filter matched by its values, in any key order", () => {
    const p = effective({ charges: [{ id: STANDARD, filters: [{ values: { region: ["eu"] }, properties: { amount: "0.1" } }] }] });
    expect(p.charges[0]!.filters[0]).toMatchObject({ id: 7, properties: { amount: "0.1" }, invoiceDisplayName: "EU calls" });
    expect(p.charges[0]!.price).toBe(plan.charges[0]!.price);
  });

  it("is the plan itself when nothing is overridden", () => {
    expect(effectivePlan(plan, null)).toBe(plan);
    expect(merge(null, patchOf({}))).toBeNull();
  });

  it("ignores what Lago offers that we do not have (fixed charges, metadata)", () => {
    expect(read({ fixed_charges: [{ id: "x" }], metadata: { a: "b" } })).toEqual({ ok: true, value: {} });
  });

  it("keeps a charge override that no longer fits the charge's model out of the price", () => {
    const stale: PlanOverrides = { charges: { [STANDARD]: { properties: { graduated_ranges: [] } } } };
    expect(effectivePlan(plan, stale).charges[0]!.price).toEqual(plan.charges[0]!.price);
  });
});

describe("plan_overrides are refused, naming the field", () => {
  it.each([
    ["a negative amount", { amount_cents: -1 }, { "plan_overrides.amount_cents": ["value_is_out_of_range"] }],
    ["an unknown currency", { amount_currency: "XXX1" }, { "plan_overrides.amount_currency": ["value_is_invalid"] }],
    ["a trial sent as a string", { trial_period: "5" }, { "plan_overrides.trial_period": ["value_is_invalid"] }],
    ["a charge without id", { charges: [{ properties: { amount: "1" } }] }, { "plan_overrides.charges[0].id": ["value_is_mandatory"] }],
    ["a charge that is not the plan's", { charges: [{ id: "44444444-4444-4444-8444-444444444444" }] }, { "plan_overrides.charges[0].id": ["charge_not_found"] }],
    ["the same charge twice", { charges: [{ id: STANDARD }, { id: STANDARD }] }, { "plan_overrides.charges[1].id": ["value_already_exist"] }],
    ["a broken price", { charges: [{ id: STANDARD, properties: { amount: "-1" } }] }, { "plan_overrides.charges[0].properties.amount": ["invalid_amount"] }],
    ["another charge model", { charges: [{ id: STANDARD, charge_model: "graduated" }] }, { "plan_overrides.charges[0].charge_model": ["value_is_invalid"] }],
    ["a minimum on a charge paid in advance", { charges: [{ id: ADVANCE, min_amount_cents: 100 }] }, { "plan_overrides.charges[0].min_amount_cents": ["not_compatible_with_pay_in_advance"] }],
    ["a filter the charge does not have", { charges: [{ id: STANDARD, filters: [{ values: { region: ["us"] }, properties: { amount: "1" } }] }] }, { "plan_overrides.charges[0].filters[0].values": ["charge_filter_not_found"] }],
    ["overrides that are not an object", [], { plan_overrides: ["value_is_invalid"] }],
  ])("%s", (_case, raw, errors) => {
    expect(read(raw)).toEqual({ ok: false, errors });
  });

  it("reports every broken field at once", () => {
    const r = read({ amount_cents: "x", amount_currency: 1, charges: [{ id: STANDARD, properties: { amount: "a" } }, 3] });
    expect(r.ok ? {} : Object.keys(r.errors).sort()).toEqual([
      "plan_overrides.amount_cents",
      "plan_overrides.amount_currency",
      "plan_overrides.charges[0].properties.amount",
      "plan_overrides.charges[1]",
    ]);
  });
});

describe("an update merges into what the subscription already overrides", () => {
  const base = merge(null, patchOf({ amount_cents: 5000, trial_period: 3, charges: [{ id: STANDARD, properties: { amount: "0.2" }, min_amount_cents: 100 }] }));

  it("keeps fields the update does not send", () => {
    expect(merge(base, patchOf({ name: "Deal" }))).toEqual({ ...base, name: "Deal" });
  });

  it("removes an override sent as null, so the plan's value shows again", () => {
    const merged = merge(base, patchOf({ trial_period: null, charges: [{ id: STANDARD, min_amount_cents: null }] }));
    expect(merged).toEqual({ amountCents: 5000n, charges: { [STANDARD]: { properties: { amount: "0.2" } } } });
    expect(effectivePlan(plan, merged).trialPeriod).toBeNull();
  });

  it("merges charge overrides field by field", () => {
    const merged = merge(base, patchOf({ charges: [{ id: STANDARD, properties: { amount: "0.3" } }] }));
    expect(merged?.charges?.[STANDARD]).toEqual({ properties: { amount: "0.3" }, minAmountCents: 100n });
  });

  it("is null once every override is removed", () => {
    expect(merge(merge(null, patchOf({ amount_cents: 1 })), patchOf({ amount_cents: null }))).toBeNull();
  });

  it("survives its JSON form exactly (amounts as strings)", () => {
    const big = merge(base, patchOf({ amount_cents: Number.MAX_SAFE_INTEGER, charges: [{ id: STANDARD, filters: [{ values: { region: ["eu"] }, properties: { amount: "9" } }] }] }))!;
    expect(overridesFromJson(JSON.parse(JSON.stringify(overridesToJson(big))))).toEqual(big);
  });
});

describe("plan_overrides of taxes, the minimum commitment and usage thresholds", () => {
  const T0 = new Date("2024-01-01T00:00:00Z");
  const PLAN_COMMITMENT = "55555555-5555-4555-8555-555555555555";
  const committed: Plan = {
    ...plan,
    taxCodes: ["vat"],
    minimumCommitment: { lagoId: PLAN_COMMITMENT, amountCents: 10_000n, invoiceDisplayName: "Minimum", taxCodes: ["vat_low"], createdAt: T0, updatedAt: T0 },
    usageThresholds: [
      { lagoId: "66666666-6666-4666-8666-666666666666", amountCents: 5_000n, thresholdDisplayName: "Half", recurring: false, createdAt: T0, updatedAt: T0 },
    ],
  };
  const readOn = (raw: unknown, current: PlanOverrides | null = null) => {
    const r = readPlanOverrides(raw, committed, "plan_overrides.", current);
    if (!r.ok) throw new Error(JSON.stringify(r.errors));
    return r.value;
  };
  const overridesOf = (raw: unknown, current: PlanOverrides | null = null) => merge(current, readOn(raw, current));

  it("replaces the plan's tax codes; [] leaves the subscription without plan-level taxes", () => {
    expect(effectivePlan(committed, overridesOf({ tax_codes: ["gst", "gst"] })).taxCodes).toEqual(["gst"]);
    expect(effectivePlan(committed, overridesOf({ tax_codes: [] })).taxCodes).toEqual([]);
  });

  it("takes a commitment over from the plan field by field, with its own id and the stamp's times", () => {
    const o = overridesOf({ minimum_commitment: { amount_cents: 25_000 } })!;
    const c = effectivePlan(committed, o).minimumCommitment!;
    expect(c).toMatchObject({ amountCents: 25_000n, invoiceDisplayName: "Minimum", taxCodes: ["vat_low"], createdAt: stamp.now, updatedAt: stamp.now });
    expect(c.lagoId).not.toBe(PLAN_COMMITMENT);
    expect(committed.minimumCommitment!.amountCents).toBe(10_000n);
  });

  it("gives a plan without commitment one, amount_cents then being mandatory", () => {
    expect(effectivePlan(plan, merge(null, patchOf({ minimum_commitment: { amount_cents: 700, tax_codes: ["vat"] } }))).minimumCommitment).toMatchObject({ amountCents: 700n, taxCodes: ["vat"] });
    expect(read({ minimum_commitment: { invoice_display_name: "Min" } })).toEqual({ ok: false, errors: { "plan_overrides.minimum_commitment.amount_cents": ["value_is_mandatory"] } });
  });

  it("keeps the id and creation time of the subscription's own commitment when it is changed again", () => {
    const first = overridesOf({ minimum_commitment: { amount_cents: 25_000 } })!;
    const later = { ...stamp, now: new Date("2024-05-01T00:00:00Z") };
    const second = mergeOverrides(first, readOn({ minimum_commitment: { invoice_display_name: "Floor" } }, first), later)!;
    expect(second.minimumCommitment).toEqual({ ...first.minimumCommitment, invoiceDisplayName: "Floor", updatedAt: later.now });
  });

  it("replaces the plan's thresholds with the whole list sent, [] meaning none", () => {
    const o = overridesOf({ usage_thresholds: [{ amount_cents: 9_000, recurring: true }, { amount_cents: 2_000, threshold_display_name: "Early" }] });
    expect(effectivePlan(committed, o).usageThresholds).toMatchObject([
      { amountCents: 2_000n, thresholdDisplayName: "Early", recurring: false },
      { amountCents: 9_000n, thresholdDisplayName: null, recurring: true },
    ]);
    expect(effectivePlan(committed, overridesOf({ usage_thresholds: [] })).usageThresholds).toEqual([]);
  });

  it("keeps the ids of the subscription's own thresholds that stay, not the plan's", () => {
    const first = overridesOf({ usage_thresholds: [{ amount_cents: 5_000 }] })!;
    expect(first.usageThresholds![0]!.lagoId).not.toBe(committed.usageThresholds![0]!.lagoId);
    const second = overridesOf({ usage_thresholds: [{ amount_cents: 5_000 }, { amount_cents: 8_000 }] }, first)!;
    expect(second.usageThresholds![0]!.lagoId).toBe(first.usageThresholds![0]!.lagoId);
  });

  it("null (and a blank commitment) removes each override, so the plan's shows again", () => {
    const o = overridesOf({ tax_codes: ["gst"], minimum_commitment: { amount_cents: 1 }, usage_thresholds: [] });
    expect(merge(o, readOn({ tax_codes: null, minimum_commitment: null, usage_thresholds: null }, o))).toBeNull();
    const blank = merge(o, readOn({ minimum_commitment: {} }, o));
    expect(effectivePlan(committed, blank).minimumCommitment).toBe(committed.minimumCommitment);
    expect(effectivePlan(committed, blank).usageThresholds).toEqual([]);
    expect(effectivePlan(committed, blank).taxCodes).toEqual(["gst"]);
  });

  it("leaves them alone when an update does not send them", () => {
    const o = overridesOf({ tax_codes: ["gst"], minimum_commitment: { amount_cents: 1 }, usage_thresholds: [{ amount_cents: 3 }] })!;
    expect(merge(o, readOn({ name: "Deal" }, o))).toEqual({ ...o, name: "Deal" });
  });

  it.each([
    ["a commitment of 0", { minimum_commitment: { amount_cents: 0 } }, { "plan_overrides.minimum_commitment.amount_cents": ["value_is_out_of_range"] }],
    ["a commitment that is not an object", { minimum_commitment: 5 }, { "plan_overrides.minimum_commitment": ["value_is_invalid"] }],
    ["commitment tax codes that are not strings", { minimum_commitment: { amount_cents: 5, tax_codes: [1] } }, { "plan_overrides.minimum_commitment.tax_codes": ["value_is_invalid"] }],
    ["tax codes that are not a list", { tax_codes: "vat" }, { "plan_overrides.tax_codes": ["value_is_invalid"] }],
    ["a threshold without amount", { usage_thresholds: [{ recurring: false }] }, { "plan_overrides.usage_thresholds[0].amount_cents": ["value_is_mandatory"] }],
    ["the same threshold twice", { usage_thresholds: [{ amount_cents: 5 }, { amount_cents: 5 }] }, { "plan_overrides.usage_thresholds[1].amount_cents": ["value_already_exist"] }],
    ["two recurring thresholds", { usage_thresholds: [{ amount_cents: 5, recurring: true }, { amount_cents: 6, recurring: true }] }, { "plan_overrides.usage_thresholds[1].recurring": ["value_already_exist"] }],
    ["thresholds that are not a list", { usage_thresholds: {} }, { "plan_overrides.usage_thresholds": ["value_is_invalid"] }],
  ])("refuses %s, naming the field", (_case, raw, errors) => {
    expect(readPlanOverrides(raw, committed)).toEqual({ ok: false, errors });
  });

  it("survives its JSON form exactly", () => {
    const o = overridesOf({ tax_codes: ["gst"], minimum_commitment: { amount_cents: Number.MAX_SAFE_INTEGER }, usage_thresholds: [{ amount_cents: 3, recurring: true }] })!;
    expect(overridesFromJson(JSON.parse(JSON.stringify(overridesToJson(o))))).toEqual(o);
  });
});
