import type { AggregationType, BillableMetric, Charge, MetricLookup, UsageThreshold } from "../../../src/modules/catalog/core/index.ts";
import { parsePrice, type Price } from "../../../src/modules/pricing/index.ts";

let nextId = 1;

export function metric(fields: Partial<BillableMetric> & { aggregationType?: AggregationType } = {}): BillableMetric {
  const id = nextId++;
  return {
    id,
    orgId: 1,
    lagoId: `00000000-0000-4000-8000-${String(id).padStart(12, "0")}`,
    code: `metric_${id}`,
    name: `Metric ${id}`,
    description: null,
    aggregationType: "count_agg",
    fieldName: null,
    weightedInterval: null,
    recurring: false,
    roundingFunction: null,
    roundingPrecision: null,
    filters: [],
    createdAt: new Date(0),
    ...fields,
  };
}

export function lookup(...metrics: BillableMetric[]): MetricLookup {
  return {
    byLagoId: (id) => metrics.find((m) => m.lagoId === id),
    byCode: (code) => metrics.find((m) => m.code === code),
  };
}

/** A standard charge of `m` at `properties`, as the catalog reads one back (no filters, no minimum); `fields` override. */
export function standardCharge(m: BillableMetric, properties: Record<string, unknown>, fields: Partial<Charge> & { id: number; lagoId: string }): Charge {
  const parsed = parsePrice("standard", properties);
  if (!parsed.ok) throw new Error(JSON.stringify(parsed.errors));
  const price: Price = parsed.value;
  return {
    code: null,
    invoiceDisplayName: null,
    metric: m,
    chargeModel: "standard",
    payInAdvance: false,
    invoiceable: true,
    regroupPaidFees: null,
    prorated: false,
    minAmountCents: 0n,
    properties,
    price,
    pricingGroupKeys: null,
    filters: [],
    createdAt: new Date(0),
    ...fields,
  };
}

/** A usage threshold of `amountCents`, without a display name. */
export const threshold = (lagoId: string, amountCents: bigint, recurring = false): UsageThreshold => ({
  lagoId,
  amountCents,
  thresholdDisplayName: null,
  recurring,
  createdAt: new Date(0),
  updatedAt: new Date(0),
});
