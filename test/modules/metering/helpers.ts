import type { BillableMetric, Charge, ChargeFilter, FilterValues } from "../../../src/modules/catalog/index.ts";
import { type Price, parsePrice } from "../../../src/modules/pricing/index.ts";
import { metric } from "../catalog/helpers.ts";

export { metric };

export function price(model: Price["model"], properties: Record<string, unknown>): Price {
  const parsed = parsePrice(model, properties);
  if (!parsed.ok) throw new Error(`invalid ${model} properties: ${JSON.stringify(parsed.errors)}`);
  return parsed.value;
}

let nextId = 1;

export function chargeFilter(values: FilterValues, model: Price["model"] = "standard", properties: Record<string, unknown> = { amount: "1" }): ChargeFilter {
  return { id: nextId++, invoiceDisplayName: null, values, properties, price: price(model, properties), pricingGroupKeys: null };
}

export function charge(
  m: BillableMetric,
  model: Price["model"],
  properties: Record<string, unknown>,
  filters: readonly ChargeFilter[] = [],
): Charge {
  const id = nextId++;
  return {
    id,
    lagoId: `10000000-0000-4000-8000-${String(id).padStart(12, "0")}`,
    code: null,
    invoiceDisplayName: null,
    metric: m,
    chargeModel: model,
    payInAdvance: false,
    invoiceable: true,
    regroupPaidFees: null,
    prorated: false,
    minAmountCents: 0n,
    properties,
    price: price(model, properties),
    pricingGroupKeys: null,
    filters,
    createdAt: new Date(0),
  };
}

export const at = (iso: string) => new Date(iso);
export const us = (iso: string) => Date.parse(iso) * 1000;
