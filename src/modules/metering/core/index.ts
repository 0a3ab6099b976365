// Metering core: windows of usage and their split into rollup hours and raw edges, charge-filter
// buckets, the aggregations (Lago's semantics, exact decimals), pricing of a charge's buckets and
// Lago's usage JSON. Pure: no IO, no clock.
export * from "./aggregate.ts";
export * from "./filters.ts";
export * from "./groups.ts";
export * from "./json.ts";
export * from "./proration.ts";
export * from "./rollups.ts";
export * from "./usage.ts";
export * from "./window.ts";
