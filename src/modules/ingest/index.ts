// Usage-event ingestion: validation, lifetime exactly-once identity, durable group commit with
// hourly rollups, and the events API (create, batch, list, get).
export { IngestService } from "./service.ts";
export { EventWriter, QueueFullError, type Outcome } from "./writer.ts";
export { Partitions } from "./store.ts";
export { dropExpiredPartitions, slimOldPartitions, runLifecycle, earliestNow, listPartitions, type ClockView, type DropResult, type LifecycleResult } from "./lifecycle.ts";
export { verifyRollups, type RollupDifference, type VerifyRange, type VerifySummary } from "./verify.ts";
// The SQL pieces metering shares with the ingest statement, so both derive identities, rollup
// values and code locks identically.
export { CODE_LOCK_KEY, KEY_DIGEST, METRIC_DIMS, METRIC_VALUE, ROLLED_UP_AGGREGATIONS } from "./store.ts";
export { eventColumns, renderEventRow, type EventJson, type EventRow } from "./service.ts";
export { isoFromMicros, propertiesProblem } from "./core/event.ts";
export { registerEventRoutes } from "./http.ts";
