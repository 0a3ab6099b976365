// Metering: exact hourly rollups per billable metric (kept by the ingest statement, rebuilt from
// raw events when a metric is created or changes meaning, or when the pricing group keys its
// charges price by change: the rollups keep those keys' values), the aggregation engine behind usage and
// invoices (charge filters, pricing group keys, prorated recurring charges), live and past usage
// (Lago's current_usage / past_usage), and the unmatched events.
export {
  MeteringService,
  batchableCharge,
  type UsageTaxes,
  NO_SUBSCRIPTIONS,
  type PastUsageQuery,
  type SubscriptionLookup,
  type UsageSubscription,
} from "./service.ts";
export { registerMeteringRoutes, registerUnmatchedGauge } from "./http.ts";
export { UNMATCHED_REASONS, type UnmatchedEvent, type UnmatchedQuery, type UnmatchedReason } from "./store.ts";
export {
  type Aggregate,
  type BucketAggregate,
  type BucketInput,
  type ChargeUsage,
  type FeeUsage,
  type GroupAggregate,
  type GroupedBy,
  type Span,
  type SubscriptionUsage,
  type UsageWindow,
  Bucketer,
  applyRounding,
  chargeUsageJson,
  previousWindows,
  resolveFilter,
  splitByHours,
  usageJson,
  usageWindowAt,
} from "./core/index.ts";
