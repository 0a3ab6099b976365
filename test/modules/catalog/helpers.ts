import type { AggregationType, BillableMetric, MetricLookup } from "../../../src/modules/catalog/core/index.ts";

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
