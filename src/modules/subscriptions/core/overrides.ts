// Lago's per-subscription `plan_overrides`: reading a request against the plan it overrides (every
// broken field reported, with the same property rules as plans), merging it into what the
// subscription already overrides, and the effective plan (the plan with the overrides applied).
// Lago copies the plan into a child plan; we keep the overrides beside the plan instead, so a later
// change to the plan reaches the subscription wherever the subscription did not override it.
import { isCurrency } from "../../../shared/money.ts";
import {
  type Charge,
  type ChargeFilter,
  type Checked,
  ErrorSink,
  Fields,
  type FilterValues,
  type Plan,
  chargeRuleErrors,
  isBlankProperties,
  planExtrasOf,
  readChargeFilters,
  // The plan's own readers (same rules and error codes as on /plans).
  readCommitment,
  readProperties,
  readThresholds,
} from "../../catalog/index.ts";
import { parsePrice } from "../../pricing/index.ts";
import type {
  ChargeFilterOverride,
  ChargeOverride,
  ChargeOverridePatch,
  OverrideStamp,
  PlanOverrides,
  PlanOverridesPatch,
} from "./types.ts";

const MANDATORY = "value_is_mandatory";
const INVALID = "value_is_invalid";
const TAKEN = "value_already_exist";
// Same bound as plans: a trial longer than ten years is a typo.
const MAX_TRIAL_DAYS = 3660;

const isRecord = (x: unknown): x is Record<string, unknown> => typeof x === "object" && x !== null && !Array.isArray(x);

/** Filter values in one canonical spelling, so an override finds the plan's filter whatever the key order. */
export const filterKey = (values: FilterValues): string =>
  JSON.stringify(
    Object.keys(values)
      .sort()
      .map((k) => [k, [...values[k]!].sort()]),
  );

/**
 * A `plan_overrides` object read against `plan` and the overrides the subscription has (`current`).
 * Accepted and ignored, as features we do not have: `fixed_charges`, `metadata`.
 * `tax_codes`, `minimum_commitment` and `usage_thresholds` follow the plan's rules; whether the tax
 * codes exist is checked by the service. Errors are named under `prefix`
 * (`plan_overrides.charges[0].properties.amount`, `plan_overrides.minimum_commitment.amount_cents`).
 */
export function readPlanOverrides(raw: unknown, plan: Plan, prefix = "plan_overrides.", current: PlanOverrides | null = null): Checked<PlanOverridesPatch> {
  const sink = new ErrorSink();
  if (!isRecord(raw)) {
    sink.add(prefix.replace(/\.$/, ""), INVALID);
    return sink.result({});
  }
  const f = new Fields(raw, sink, prefix);
  const patch: { -readonly [K in keyof PlanOverridesPatch]: PlanOverridesPatch[K] } = {};

  if (f.has("amount_cents")) {
    const v = f.cents("amount_cents");
    if (v !== undefined) patch.amountCents = v;
    else if (raw["amount_cents"] === null) patch.amountCents = null;
  }
  if (f.has("amount_currency")) {
    const v = raw["amount_currency"];
    if (v === null || v === "") patch.amountCurrency = null;
    else if (!isCurrency(v)) f.fail("amount_currency", INVALID);
    else patch.amountCurrency = v;
  }
  for (const [key, field, max] of [
    ["name", "name", 255],
    ["description", "description", 10_000],
    ["invoice_display_name", "invoiceDisplayName", 255],
  ] as const) {
    if (!f.has(key)) continue;
    const v = f.optionalText(key, max);
    if (v !== undefined) patch[field] = v;
  }
  if (f.has("trial_period")) {
    const v = f.nonNegativeNumber("trial_period", MAX_TRIAL_DAYS);
    if (v !== undefined) patch.trialPeriod = v;
  }
  const list = f.array("charges");
  if (list) patch.charges = readChargeOverrides(f, list, plan);
  if (f.has("tax_codes")) {
    const v = raw["tax_codes"];
    // null: the plan's taxes again; []: the subscription has no plan-level taxes.
    if (v === null) patch.taxCodes = null;
    else if (Array.isArray(v) && v.length === 0) patch.taxCodes = [];
    else {
      const codes = f.stringList("tax_codes");
      if (codes) patch.taxCodes = codes;
    }
  }
  if (f.has("minimum_commitment")) readCommitmentOverride(f, raw["minimum_commitment"], plan, current, patch);
  if (f.has("usage_thresholds")) {
    // null: the plan's thresholds again; []: none for this subscription. Ids are kept only from the
    // thresholds the subscription already overrode with (the plan's stay the plan's).
    if (raw["usage_thresholds"] === null) patch.usageThresholds = null;
    else patch.usageThresholds = readThresholds(f, { ...plan, usageThresholds: current?.usageThresholds ?? [] });
  }
  return sink.result(patch);
}

/**
 * The commitment the subscription gets: the fields sent over the one it has (its own override, else
 * the plan's), so `{"amount_cents": ...}` alone keeps the plan's display name and taxes. null or
 * `{}` drops the override (the plan's commitment shows again; Lago ignores a blank one). A
 * commitment taken over from the plan gets its own id.
 */
function readCommitmentOverride(f: Fields, v: unknown, plan: Plan, current: PlanOverrides | null, patch: Mutable<PlanOverridesPatch>): void {
  if (v === null || (isRecord(v) && Object.keys(v).length === 0)) {
    patch.minimumCommitment = null;
    return;
  }
  const own = current?.minimumCommitment;
  const read = readCommitment(f, { ...plan, minimumCommitment: own ?? plan.minimumCommitment ?? null });
  if (read === null) return;
  patch.minimumCommitment = own !== undefined && read.lagoId === own.lagoId ? read : { ...read, lagoId: null, createdAt: null };
}

function readChargeOverrides(f: Fields, list: unknown[], plan: Plan): Record<string, ChargeOverridePatch> {
  const byLagoId = new Map(plan.charges.map((c) => [c.lagoId, c]));
  const out: Record<string, ChargeOverridePatch> = {};
  list.forEach((item, i) => {
    const at = `charges[${i}]`;
    if (!isRecord(item)) return f.fail(at, INVALID);
    const g = new Fields(item, f.sink, `${f.prefix}${at}.`);
    const id = item["id"];
    if (id === undefined || id === null || id === "") return g.fail("id", MANDATORY);
    const charge = typeof id === "string" ? byLagoId.get(id.toLowerCase()) : undefined;
    if (charge === undefined) return g.fail("id", "charge_not_found");
    if (out[charge.lagoId] !== undefined) return g.fail("id", TAKEN);
    out[charge.lagoId] = readChargeOverride(g, item, charge);
  });
  return out;
}

function readChargeOverride(g: Fields, item: Record<string, unknown>, charge: Charge): ChargeOverridePatch {
  const patch: { -readonly [K in keyof ChargeOverridePatch]: ChargeOverridePatch[K] } = {};
  // An override prices the charge differently; it cannot make it another charge.
  const metricId = item["billable_metric_id"];
  if (metricId !== undefined && metricId !== null && (typeof metricId !== "string" || metricId.toLowerCase() !== charge.metric.lagoId)) {
    g.fail("billable_metric_id", INVALID);
  }
  const model = item["charge_model"];
  if (model !== undefined && model !== null && model !== charge.chargeModel) g.fail("charge_model", INVALID);

  if (g.has("min_amount_cents")) {
    const v = g.cents("min_amount_cents");
    if (v !== undefined) {
      patch.minAmountCents = v;
      for (const e of chargeRuleErrors({ ...charge, minAmountCents: v })) if (e.field === "min_amount_cents") g.fail(e.field, e.code);
    } else if (item["min_amount_cents"] === null) patch.minAmountCents = null;
  }
  if (g.has("invoice_display_name")) {
    const v = g.optionalText("invoice_display_name", 255);
    if (v !== undefined) patch.invoiceDisplayName = v;
  }
  const rawProps = item["properties"];
  if (rawProps === null) patch.properties = null;
  else if (!isBlankProperties(rawProps)) {
    const props = readProperties(g, "properties", charge.chargeModel, rawProps);
    if (props !== undefined) patch.properties = props;
  }
  const filters = g.array("filters");
  if (filters) patch.filters = readFilterOverrides(g, filters, charge);
  return patch;
}

/** Each filter override must name the values of one of the charge's filters: it re-prices that filter. */
function readFilterOverrides(g: Fields, list: unknown[], charge: Charge): ChargeFilterOverride[] {
  const before = Object.keys(g.sink.details).length;
  const drafts = readChargeFilters(g, list, charge.metric, charge.chargeModel);
  // With no error, the drafts are the list's entries, in order.
  if (Object.keys(g.sink.details).length > before) return [];
  const known = new Set(charge.filters.map((cf) => filterKey(cf.values)));
  drafts.forEach((d, j) => {
    if (!known.has(filterKey(d.values))) g.sink.add(`${g.prefix}filters[${j}].values`, "charge_filter_not_found");
  });
  return drafts.map((d) => ({ values: d.values, properties: d.properties, invoiceDisplayName: d.invoiceDisplayName }));
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

function mergeField<T extends object, K extends keyof T>(out: Mutable<T>, key: K, value: T[K] | null | undefined): void {
  if (value === undefined) return;
  if (value === null) delete out[key];
  else out[key] = value;
}

/**
 * `patch` applied over the overrides a subscription has (null: none); null when nothing is left
 * overridden. New commitments and thresholds get their ids and times from `stamp`.
 */
export function mergeOverrides(base: PlanOverrides | null, patch: PlanOverridesPatch, stamp: OverrideStamp): PlanOverrides | null {
  const out: Mutable<PlanOverrides> = { ...(base ?? {}) };
  mergeField(out, "amountCents", patch.amountCents);
  mergeField(out, "amountCurrency", patch.amountCurrency);
  mergeField(out, "name", patch.name);
  mergeField(out, "description", patch.description);
  mergeField(out, "invoiceDisplayName", patch.invoiceDisplayName);
  mergeField(out, "trialPeriod", patch.trialPeriod);
  mergeField(out, "taxCodes", patch.taxCodes);
  const extras = planExtrasOf({ minimumCommitment: patch.minimumCommitment ?? null, usageThresholds: patch.usageThresholds ?? [] }, stamp.newId, stamp.now);
  if (patch.minimumCommitment !== undefined) mergeField(out, "minimumCommitment", extras.minimumCommitment);
  if (patch.usageThresholds !== undefined) mergeField(out, "usageThresholds", patch.usageThresholds === null ? null : extras.usageThresholds);
  if (patch.charges !== undefined) {
    const charges: Record<string, ChargeOverride> = { ...(out.charges ?? {}) };
    for (const [id, p] of Object.entries(patch.charges)) {
      const c: Mutable<ChargeOverride> = { ...(charges[id] ?? {}) };
      mergeField(c, "minAmountCents", p.minAmountCents);
      mergeField(c, "invoiceDisplayName", p.invoiceDisplayName);
      mergeField(c, "properties", p.properties);
      if (p.filters !== undefined && p.filters.length > 0) {
        const byValues = new Map((c.filters ?? []).map((fo) => [filterKey(fo.values), fo]));
        for (const fo of p.filters) byValues.set(filterKey(fo.values), fo);
        c.filters = [...byValues.values()];
      }
      if (Object.keys(c).length > 0) charges[id] = c;
      else delete charges[id];
    }
    if (Object.keys(charges).length > 0) out.charges = charges;
    else delete out.charges;
  }
  return Object.keys(out).length > 0 ? out : null;
}

const groupKeysOf = (properties: Readonly<Record<string, unknown>>): string[] | null =>
  Array.isArray(properties["pricing_group_keys"]) ? (properties["pricing_group_keys"] as string[]) : null;

/**
 * Properties priced with the charge's current model, or null when they no longer fit it (the plan
 * changed the charge's model after the override was made: the plan's own price applies).
 */
function repriced(model: string, properties: Readonly<Record<string, unknown>>) {
  const parsed = parsePrice(model, properties);
  return parsed.ok ? { properties, price: parsed.value, pricingGroupKeys: groupKeysOf(properties) } : null;
}

function applyFilter(filter: ChargeFilter, override: ChargeFilterOverride | undefined, model: string): ChargeFilter {
  if (override === undefined) return filter;
  const priced = repriced(model, override.properties);
  return {
    ...filter,
    ...(priced ?? {}),
    invoiceDisplayName: override.invoiceDisplayName ?? filter.invoiceDisplayName,
  };
}

function applyCharge(charge: Charge, o: ChargeOverride | undefined): Charge {
  if (o === undefined) return charge;
  const priced = o.properties === undefined ? null : repriced(charge.chargeModel, o.properties);
  const filterOverrides = new Map((o.filters ?? []).map((fo) => [filterKey(fo.values), fo]));
  return {
    ...charge,
    ...(priced ?? {}),
    minAmountCents: o.minAmountCents ?? charge.minAmountCents,
    invoiceDisplayName: o.invoiceDisplayName ?? charge.invoiceDisplayName,
    filters: filterOverrides.size === 0 ? charge.filters : charge.filters.map((cf) => applyFilter(cf, filterOverrides.get(filterKey(cf.values)), charge.chargeModel)),
  };
}

/** The plan a subscription is billed on: `plan` with `overrides` applied (the plan itself when there are none). */
export function effectivePlan(plan: Plan, overrides: PlanOverrides | null): Plan {
  if (overrides === null) return plan;
  const charges = overrides.charges;
  return {
    ...plan,
    amountCents: overrides.amountCents ?? plan.amountCents,
    amountCurrency: overrides.amountCurrency ?? plan.amountCurrency,
    name: overrides.name ?? plan.name,
    description: overrides.description ?? plan.description,
    invoiceDisplayName: overrides.invoiceDisplayName ?? plan.invoiceDisplayName,
    trialPeriod: overrides.trialPeriod ?? plan.trialPeriod,
    charges: charges === undefined ? plan.charges : plan.charges.map((c) => applyCharge(c, charges[c.lagoId])),
    ...(overrides.taxCodes !== undefined ? { taxCodes: overrides.taxCodes } : {}),
    ...(overrides.minimumCommitment !== undefined ? { minimumCommitment: overrides.minimumCommitment } : {}),
    ...(overrides.usageThresholds !== undefined ? { usageThresholds: overrides.usageThresholds } : {}),
  };
}

// Stored as JSON with Lago's field names; amounts as strings so no digit is lost.
type StoredFilter = { values: FilterValues; properties: Record<string, unknown>; invoice_display_name: string | null };
type StoredCharge = { min_amount_cents?: string; invoice_display_name?: string; properties?: Record<string, unknown>; filters?: StoredFilter[] };
export type StoredOverrides = {
  amount_cents?: string;
  amount_currency?: string;
  name?: string;
  description?: string;
  invoice_display_name?: string;
  trial_period?: number;
  charges?: Record<string, StoredCharge>;
  tax_codes?: string[];
  minimum_commitment?: StoredCommitment;
  usage_thresholds?: StoredThreshold[];
};
type StoredCommitment = {
  lago_id: string;
  amount_cents: string;
  invoice_display_name: string | null;
  tax_codes: string[];
  created_at: string;
  updated_at: string;
};
type StoredThreshold = {
  lago_id: string;
  amount_cents: string;
  threshold_display_name: string | null;
  recurring: boolean;
  created_at: string;
  updated_at: string;
};

export function overridesToJson(o: PlanOverrides): StoredOverrides {
  const out: StoredOverrides = {};
  if (o.amountCents !== undefined) out.amount_cents = o.amountCents.toString();
  if (o.amountCurrency !== undefined) out.amount_currency = o.amountCurrency;
  if (o.name !== undefined) out.name = o.name;
  if (o.description !== undefined) out.description = o.description;
  if (o.invoiceDisplayName !== undefined) out.invoice_display_name = o.invoiceDisplayName;
  if (o.trialPeriod !== undefined) out.trial_period = o.trialPeriod;
  if (o.charges !== undefined) {
    out.charges = {};
    for (const [id, c] of Object.entries(o.charges)) {
      const sc: StoredCharge = {};
      if (c.minAmountCents !== undefined) sc.min_amount_cents = c.minAmountCents.toString();
      if (c.invoiceDisplayName !== undefined) sc.invoice_display_name = c.invoiceDisplayName;
      if (c.properties !== undefined) sc.properties = { ...c.properties };
      if (c.filters !== undefined) {
        sc.filters = c.filters.map((fo) => ({ values: fo.values, properties: { ...fo.properties }, invoice_display_name: fo.invoiceDisplayName }));
      }
      out.charges[id] = sc;
    }
  }
  if (o.taxCodes !== undefined) out.tax_codes = [...o.taxCodes];
  const c = o.minimumCommitment;
  if (c !== undefined) {
    out.minimum_commitment = {
      lago_id: c.lagoId,
      amount_cents: c.amountCents.toString(),
      invoice_display_name: c.invoiceDisplayName,
      tax_codes: [...c.taxCodes],
      created_at: c.createdAt.toISOString(),
      updated_at: c.updatedAt.toISOString(),
    };
  }
  if (o.usageThresholds !== undefined) {
    out.usage_thresholds = o.usageThresholds.map((t) => ({
      lago_id: t.lagoId,
      amount_cents: t.amountCents.toString(),
      threshold_display_name: t.thresholdDisplayName,
      recurring: t.recurring,
      created_at: t.createdAt.toISOString(),
      updated_at: t.updatedAt.toISOString(),
    }));
  }
  return out;
}

export function overridesFromJson(s: StoredOverrides): PlanOverrides {
  const out: Mutable<PlanOverrides> = {};
  if (s.amount_cents !== undefined) out.amountCents = BigInt(s.amount_cents);
  if (s.amount_currency !== undefined) out.amountCurrency = s.amount_currency;
  if (s.name !== undefined) out.name = s.name;
  if (s.description !== undefined) out.description = s.description;
  if (s.invoice_display_name !== undefined) out.invoiceDisplayName = s.invoice_display_name;
  if (s.trial_period !== undefined) out.trialPeriod = s.trial_period;
  if (s.charges !== undefined) {
    const charges: Record<string, ChargeOverride> = {};
    for (const [id, sc] of Object.entries(s.charges)) {
      const c: Mutable<ChargeOverride> = {};
      if (sc.min_amount_cents !== undefined) c.minAmountCents = BigInt(sc.min_amount_cents);
      if (sc.invoice_display_name !== undefined) c.invoiceDisplayName = sc.invoice_display_name;
      if (sc.properties !== undefined) c.properties = sc.properties;
      if (sc.filters !== undefined) {
        c.filters = sc.filters.map((sf) => ({ values: sf.values, properties: sf.properties, invoiceDisplayName: sf.invoice_display_name }));
      }
      charges[id] = c;
    }
    out.charges = charges;
  }
  if (s.tax_codes !== undefined) out.taxCodes = s.tax_codes;
  const c = s.minimum_commitment;
  if (c !== undefined) {
    out.minimumCommitment = {
      lagoId: c.lago_id,
      amountCents: BigInt(c.amount_cents),
      invoiceDisplayName: c.invoice_display_name,
      taxCodes: c.tax_codes,
      createdAt: new Date(c.created_at),
      updatedAt: new Date(c.updated_at),
    };
  }
  if (s.usage_thresholds !== undefined) {
    out.usageThresholds = s.usage_thresholds.map((t) => ({
      lagoId: t.lago_id,
      amountCents: BigInt(t.amount_cents),
      thresholdDisplayName: t.threshold_display_name,
      recurring: t.recurring,
      createdAt: new Date(t.created_at),
      updatedAt: new Date(t.updated_at),
    }));
  }
  return out;
}
