// The catalog: billable metrics and plans with their charges, charge filters and prices (Lago's
// /billable_metrics and /plans), and the cached lookups metering, subscriptions and rating use on
// their hot paths (`getMetricByCode`, `getMetricsForCode`, `getPlanByCode`, `getPlanById`).
export {
  CatalogService,
  type CatalogOptions,
  type MetricChange,
  type MetricChangeListener,
  type ChargesChangeListener,
  type TaxCodeCheck,
  type MetricView,
  type Page,
  type Paged,
} from "./service.ts";
export { registerCatalogRoutes, chargeJson, metricJson, planJson, planTaxCodes, usageThresholdJson } from "./http.ts";
export type { TaxesJson, TaxesResolver } from "./http.ts";
export {
  AGGREGATION_TYPES,
  ALL_FILTER_VALUES,
  PLAN_INTERVALS,
  type AggregationType,
  type BillableMetric,
  type Charge,
  type ChargeFilter,
  type FilterValues,
  type MetricFilter,
  type MinimumCommitment,
  type Plan,
  type PlanInterval,
  type RoundingFunction,
  type UsageThreshold,
} from "./core/index.ts";
// The field readers and charge-property rules, for other modules that accept charge prices
// (subscriptions' plan_overrides) and must validate them exactly as plans do.
export {
  ErrorSink,
  Fields,
  chargeRuleErrors,
  isBlankProperties,
  isRecord,
  readChargeFilters,
  readProperties,
  type Checked,
  type FilterDraft,
  type CommitmentDraft,
  type ThresholdDraft,
  planExtrasOf,
  readCommitment,
  readThresholds,
} from "./core/index.ts";
