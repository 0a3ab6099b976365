// Catalog core: billable metric and plan input rules as pure functions (Lago's validations, error
// codes and defaults), and the catalog's domain types. No IO.
export * from "./types.ts";
export { type Checked, ErrorSink, Fields, INVALID, MANDATORY, isRecord } from "./fields.ts";
export { type MetricDraft, PAYABLE_IN_ADVANCE, checkMetricCreate, checkMetricUpdate, draftOf } from "./metric.ts";
export {
  type ChargeShape,
  type FilterDraft,
  canonicalFilterValues,
  chargeRuleErrors,
  defaultProperties,
  isBlankProperties,
  narrowFilterValues,
  readChargeFilters,
  readProperties,
} from "./charge.ts";
export {
  type ChargeDraft,
  type CommitmentDraft,
  type MetricLookup,
  type PlanDraft,
  type ThresholdDraft,
  checkPlanCreate,
  checkPlanUpdate,
  metricRefs,
  planExtrasOf,
  readCommitment,
  readThresholds,
  withChargeCodes,
} from "./plan.ts";
export {
  type PlanEdit,
  addCharge,
  addFilter,
  changeCharge,
  changeFilter,
  chargeIndex,
  removeCharge,
  removeFilter,
  renameErrors,
} from "./plan_edits.ts";
