import { describe, expect, it } from "vitest";
import type { Charge, ChargeFilter, Plan } from "../../../src/modules/catalog/index.ts";
import { parsePrice, type Price } from "../../../src/modules/pricing/index.ts";
import {
  type PlanOverrides,
  effectivePlan,
  mergeOverrides,
  overridesFromJson,
  overridesToJson,
  readPlanOverrides,
} from "../../../src/modules/subscriptions/core/index.ts";
import { metric } from "../catalog/helpers.ts";

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
const charge = (fields: Partial<Charge> & { lagoId: string }): Charge => ({
  id: 1,
  code: null,
  invoiceDisplayName: null,
  metric: calls,
  chargeModel: "standard",
  payInAdvance: false,
  invoiceable: true,
  regroupPaidFees: null,
  prorated: false,
  minAmountCents: 0n,
  properties: { amount: "1" },
  price: price("standard", { amount: "1" }),
  pricingGroupKeys: null,
  filters: [],
  createdAt: new Date(0),
  ...fields,
});
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

const read = (raw: unknown) => readPlanOverrides(raw, plan);
const patchOf = (raw: unknown) => {
  const r = read(raw);
  if (!r.ok) throw new Error(JSON.stringify(r.errors));
  return r.value;
};
const effective = (raw: unknown) => effectivePlan(plan, mergeOverrides(null, patchOf(raw)));

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
    expect(mergeOverrides(null, patchOf({}))).toBeNull();
  });

  it("ignores what Lago offers that we do not have (taxes, commitments, thresholds)", () => {
    expect(read({ tax_codes: ["vat"], minimum_commitment: { amount_cents: 1 }, usage_thresholds: [] })).toEqual({ ok: true, value: {} });
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
  const base = mergeOverrides(null, patchOf({ amount_cents: 5000, trial_period: 3, charges: [{ id: STANDARD, properties: { amount: "0.2" }, min_amount_cents: 100 }] }));

  it("keeps fields the update does not send", () => {
    expect(mergeOverrides(base, patchOf({ name: "Deal" }))).toEqual({ ...base, name: "Deal" });
  });

  it("removes an override sent as null, so the plan's value shows again", () => {
    const merged = mergeOverrides(base, patchOf({ trial_period: null, charges: [{ id: STANDARD, min_amount_cents: null }] }));
    expect(merged).toEqual({ amountCents: 5000n, charges: { [STANDARD]: { properties: { amount: "0.2" } } } });
    expect(effectivePlan(plan, merged).trialPeriod).toBeNull();
  });

  it("merges charge overrides field by field", () => {
    const merged = mergeOverrides(base, patchOf({ charges: [{ id: STANDARD, properties: { amount: "0.3" } }] }));
    expect(merged?.charges?.[STANDARD]).toEqual({ properties: { amount: "0.3" }, minAmountCents: 100n });
  });

  it("is null once every override is removed", () => {
    expect(mergeOverrides(mergeOverrides(null, patchOf({ amount_cents: 1 })), patchOf({ amount_cents: null }))).toBeNull();
  });

  it("survives its JSON form exactly (amounts as strings)", () => {
    const big = mergeOverrides(base, patchOf({ amount_cents: Number.MAX_SAFE_INTEGER, charges: [{ id: STANDARD, filters: [{ values: { region: ["eu"] }, properties: { amount: "9" } }] }] }))!;
    expect(overridesFromJson(JSON.parse(JSON.stringify(overridesToJson(big))))).toEqual(big);
  });
});
