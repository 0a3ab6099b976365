// One charge or one charge filter changed (Lago's /plans/:code/charges and …/filters routes), said
// as the whole-plan update body that makes the same change: every other charge is sent as its `id`
// alone (kept as it is), so the change goes through the very rules, codes and saves of PUT /plans.
import type { FieldErrors } from "../../../shared/errors.ts";
import type { Charge, ChargeFilter, Plan } from "./types.ts";

/** Where the edited charge sits in the body, and how its errors are named back to the caller. */
export interface PlanEdit {
  /** The update body for checkPlanUpdate. */
  readonly body: { charges: Record<string, unknown>[] };
  /** Index of the edited charge in `body.charges`. */
  readonly index: number;
}

const keep = (c: Charge): Record<string, unknown> => ({ id: c.lagoId });

// Lago's `cascade_updates` reaches children plans, which we do not have (overrides sit beside the plan).
function chargeFields(input: Record<string, unknown>): Record<string, unknown> {
  const { id: _id, cascade_updates: _cascade, ...rest } = input;
  return rest;
}

export function chargeIndex(plan: Plan, chargeCode: string): number {
  return plan.charges.findIndex((c) => c.code === chargeCode);
}

export function addCharge(plan: Plan, input: Record<string, unknown>): PlanEdit {
  return { body: { charges: [...plan.charges.map(keep), chargeFields(input)] }, index: plan.charges.length };
}

/** Fields sent are changed; absent ones keep their values (as for a charge entry of PUT /plans with its `id`). */
export function changeCharge(plan: Plan, index: number, input: Record<string, unknown>): PlanEdit {
  const charges = plan.charges.map(keep);
  charges[index] = { ...chargeFields(input), id: plan.charges[index]!.lagoId };
  return { body: { charges }, index };
}

export function removeCharge(plan: Plan, index: number): PlanEdit {
  return { body: { charges: plan.charges.filter((_, i) => i !== index).map(keep) }, index };
}

/** A stored filter as a filter entry of a plan body. */
const filterEntry = (f: ChargeFilter): Record<string, unknown> => ({
  invoice_display_name: f.invoiceDisplayName,
  values: f.values,
  properties: f.properties,
});

function filterFields(input: Record<string, unknown>): Record<string, unknown> {
  const { cascade_updates: _cascade, ...rest } = input;
  return rest;
}

/** The charge at `index` with its filter list replaced by `filters` (entries of a plan body). */
function withFilters(plan: Plan, index: number, filters: Record<string, unknown>[]): PlanEdit {
  const charges = plan.charges.map(keep);
  charges[index] = { id: plan.charges[index]!.lagoId, filters };
  return { body: { charges }, index };
}

export function addFilter(plan: Plan, index: number, input: Record<string, unknown>): PlanEdit {
  return withFilters(plan, index, [...plan.charges[index]!.filters.map(filterEntry), filterFields(input)]);
}

/** `invoice_display_name`, `values` and `properties` sent replace the filter's; absent ones are kept. */
export function changeFilter(plan: Plan, index: number, filterIndex: number, input: Record<string, unknown>): PlanEdit {
  const filters = plan.charges[index]!.filters.map(filterEntry);
  const sent = filterFields(input);
  const current = filters[filterIndex]!;
  filters[filterIndex] = {
    invoice_display_name: sent["invoice_display_name"] !== undefined ? sent["invoice_display_name"] : current["invoice_display_name"],
    values: sent["values"] !== undefined ? sent["values"] : current["values"],
    properties: sent["properties"] !== undefined ? sent["properties"] : current["properties"],
  };
  return withFilters(plan, index, filters);
}

export function removeFilter(plan: Plan, index: number, filterIndex: number): PlanEdit {
  return withFilters(plan, index, plan.charges[index]!.filters.filter((_, j) => j !== filterIndex).map(filterEntry));
}

/**
 * Error fields named as the single-resource route sees them: `charges[2].properties.amount` is
 * `properties.amount` for the charge routes; for a filter route, `charges[2].filters[1].values`
 * is `values` when filter 1 is the one edited (other entries keep `filters[k].`).
 */
export function renameErrors(details: FieldErrors, index: number, filterIndex: number | null = null): FieldErrors {
  const charge = `charges[${index}].`;
  const filter = filterIndex === null ? null : `${charge}filters[${filterIndex}].`;
  const out: FieldErrors = {};
  for (const [field, codes] of Object.entries(details)) {
    let name = field;
    if (filter !== null && field.startsWith(filter)) name = field.slice(filter.length);
    else if (field.startsWith(charge)) name = field.slice(charge.length);
    out[name] = [...(out[name] ?? []), ...codes.filter((c) => !(out[name] ?? []).includes(c))];
  }
  return out;
}
