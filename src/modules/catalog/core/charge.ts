// Charge rules: which properties each charge model keeps, Lago's defaults, the combinations Lago
// refuses (pay in advance, proration, invoiceable, minimums) and charge filter values.
import { type ChargeModel, validatePrice } from "../../pricing/index.ts";
import { Fields, INVALID, MANDATORY, TAKEN, hasNul, isRecord } from "./fields.ts";
import { PAYABLE_IN_ADVANCE } from "./metric.ts";
import { ALL_FILTER_VALUES, type BillableMetric, type FilterValues } from "./types.ts";

// Lago keeps only the keys of the charge model (ChargeModels::FilterPropertiesService) plus the
// grouping keys; anything else sent in `properties` is dropped, never stored.
const MODEL_KEYS: { readonly [M in ChargeModel]: readonly string[] } = {
  standard: ["amount"],
  graduated: ["graduated_ranges"],
  volume: ["volume_ranges"],
  package: ["amount", "free_units", "package_size"],
  percentage: [
    "rate",
    "fixed_amount",
    "free_units_per_events",
    "free_units_per_total_aggregation",
    "per_transaction_min_amount",
    "per_transaction_max_amount",
  ],
  graduated_percentage: ["graduated_percentage_ranges"],
};

const openTier = (prices: Record<string, string>) => [{ from_value: 0, to_value: null, flat_amount: "0", ...prices }];

/** Lago's properties for a charge sent without any (ChargeModels::BuildDefaultPropertiesService): free. */
export function defaultProperties(model: ChargeModel): Record<string, unknown> {
  switch (model) {
    case "standard":
      return { amount: "0" };
    case "graduated":
      return { graduated_ranges: openTier({ per_unit_amount: "0" }) };
    case "volume":
      return { volume_ranges: openTier({ per_unit_amount: "0" }) };
    case "package":
      return { amount: "0", package_size: 1, free_units: 0 };
    case "percentage":
      return { rate: "0" };
    case "graduated_percentage":
      return { graduated_percentage_ranges: openTier({ rate: "0" }) };
  }
}

/**
 * The properties to store for `model`: its own keys, `pricing_group_keys` (Lago's deprecated
 * `grouped_by` read as the same), validated with the pricing core. Errors are named under `f`'s
 * prefix + `key` (`charges[0].properties.graduated_ranges[1].from_value`).
 */
export function readProperties(f: Fields, key: string, model: ChargeModel, raw: unknown): Record<string, unknown> | undefined {
  if (!isRecord(raw)) {
    f.fail(key, INVALID);
    return undefined;
  }
  const props: Record<string, unknown> = {};
  const unstorable = MODEL_KEYS[model].filter((k) => hasNul(raw[k]));
  for (const k of unstorable) f.sink.add(`${f.path(key)}.${k}`, INVALID);
  if (unstorable.length > 0) return undefined;
  for (const k of MODEL_KEYS[model]) if (raw[k] !== undefined) props[k] = raw[k];
  const group = new Fields(raw, f.sink, `${f.path(key)}.`);
  const groupKey = raw["pricing_group_keys"] !== undefined && raw["pricing_group_keys"] !== null ? "pricing_group_keys" : "grouped_by";
  const keys = group.stringList(groupKey);
  if (keys) props["pricing_group_keys"] = keys;
  for (const e of validatePrice(model, props)) f.sink.add(`${f.path(key)}.${e.field}`, e.code);
  return props;
}

/** Properties absent, null or `{}` take the model's defaults, as in Lago (`properties.presence`). */
export const isBlankProperties = (raw: unknown) =>
  raw === undefined || raw === null || (isRecord(raw) && Object.keys(raw).length === 0);

export interface ChargeShape {
  readonly metric: Pick<BillableMetric, "aggregationType" | "recurring">;
  readonly chargeModel: ChargeModel;
  readonly payInAdvance: boolean;
  readonly invoiceable: boolean;
  readonly regroupPaidFees: "invoice" | null;
  readonly prorated: boolean;
  readonly minAmountCents: bigint;
}

/**
 * The combinations Lago's Charge model refuses, as `{field, code}` (its error codes). Lago reserves
 * `graduated_percentage`, `invoiceable` and `min_amount_cents` for premium licences; here they are
 * plain features.
 */
export function chargeRuleErrors(c: ChargeShape): { field: string; code: string }[] {
  const errors: { field: string; code: string }[] = [];
  const agg = c.metric.aggregationType;
  // An in-advance fee is billed per event from that event's increment: volume pricing depends on
  // the period's final total, and max/latest/weighted sums are not increments of one event.
  if (c.payInAdvance && (c.chargeModel === "volume" || !PAYABLE_IN_ADVANCE.has(agg))) {
    errors.push({ field: "pay_in_advance", code: "invalid_aggregation_type_or_charge_model" });
  }
  if (c.payInAdvance && c.minAmountCents > 0n) errors.push({ field: "min_amount_cents", code: "not_compatible_with_pay_in_advance" });
  if (!c.payInAdvance && !c.invoiceable) errors.push({ field: "invoiceable", code: "must_be_true_unless_pay_in_advance" });
  if (c.regroupPaidFees !== null && !(c.payInAdvance && !c.invoiceable)) {
    errors.push({ field: "regroup_paid_fees", code: "only_compatible_with_pay_in_advance_and_non_invoiceable" });
  }
  if (c.prorated) {
    // Proration needs units that persist across periods (recurring); weighted sums prorate already.
    const models: readonly ChargeModel[] = c.payInAdvance ? ["standard"] : ["standard", "volume", "graduated"];
    const allowed = agg !== "weighted_sum_agg" && c.metric.recurring && models.includes(c.chargeModel);
    if (!allowed) errors.push({ field: "prorated", code: "invalid_billable_metric_or_charge_model" });
  }
  return errors;
}

export interface FilterDraft {
  /** Internal id of the charge's filter this entry rewrites; absent: the live filter with the same values, if any. */
  readonly existingId?: number | null;
  readonly invoiceDisplayName: string | null;
  readonly values: FilterValues;
  readonly properties: Record<string, unknown>;
}

export const canonicalFilterValues = (values: FilterValues) =>
  JSON.stringify(Object.keys(values).sort().map((k) => [k, [...values[k]!].sort()]));

/**
 * A charge's `filters`: each names values of the metric's filter keys (or Lago's
 * `__ALL_FILTER_VALUES__` alone) and carries its own properties for the charge model.
 */
export function readChargeFilters(
  f: Fields,
  list: unknown[],
  metric: BillableMetric,
  model: ChargeModel,
): FilterDraft[] {
  const allowed = new Map(metric.filters.map((mf) => [mf.key, new Set(mf.values)]));
  const seen = new Set<string>();
  const out: FilterDraft[] = [];
  list.forEach((item, j) => {
    const at = `filters[${j}]`;
    if (!isRecord(item)) return f.fail(at, INVALID);
    const g = new Fields(item, f.sink, `${f.prefix}${at}.`);
    const invoiceDisplayName = g.optionalText("invoice_display_name", 255) ?? null;
    const values = readFilterValues(g, allowed);
    const properties = readProperties(g, "properties", model, item["properties"] ?? {});
    if (values === undefined || properties === undefined) return;
    const key = canonicalFilterValues(values);
    if (seen.has(key)) return g.fail("values", TAKEN);
    seen.add(key);
    out.push({ invoiceDisplayName, values, properties });
  });
  return out;
}

function readFilterValues(g: Fields, allowed: ReadonlyMap<string, ReadonlySet<string>>): FilterValues | undefined {
  const raw = g.obj["values"];
  if (raw === undefined || raw === null || (isRecord(raw) && Object.keys(raw).length === 0)) {
    g.fail("values", MANDATORY);
    return undefined;
  }
  if (!isRecord(raw)) {
    g.fail("values", INVALID);
    return undefined;
  }
  const out: Record<string, string[]> = {};
  let ok = true;
  for (const [key, list] of Object.entries(raw)) {
    const permitted = allowed.get(key);
    const valid =
      permitted !== undefined &&
      Array.isArray(list) &&
      list.length > 0 &&
      list.every((v) => typeof v === "string") &&
      ((list.length === 1 && list[0] === ALL_FILTER_VALUES) || list.every((v: string) => permitted.has(v)));
    if (!valid) {
      g.sink.add(`${g.path("values")}.${key}`, INVALID);
      ok = false;
      continue;
    }
    out[key] = [...new Set(list as string[])];
  }
  return ok ? out : undefined;
}

/**
 * What is left of a charge filter when its metric's filters change (Lago's
 * BillableMetricFilters::CreateOrUpdateBatchService): values no longer offered are dropped, a key
 * left without values is dropped, and a filter left without keys is deleted (null).
 */
export function narrowFilterValues(values: FilterValues, metric: Pick<BillableMetric, "filters">): FilterValues | null {
  const allowed = new Map(metric.filters.map((mf) => [mf.key, new Set(mf.values)]));
  const out: Record<string, string[]> = {};
  for (const [key, list] of Object.entries(values)) {
    const permitted = allowed.get(key);
    if (permitted === undefined) continue;
    const kept = list.length === 1 && list[0] === ALL_FILTER_VALUES ? [...list] : list.filter((v) => permitted.has(v));
    if (kept.length > 0) out[key] = kept;
  }
  return Object.keys(out).length > 0 ? out : null;
}
