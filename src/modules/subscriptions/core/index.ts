// Subscriptions core: request rules, the lifecycle (status, upgrades and downgrades, the
// transitions time makes due, current billing period, trial) and plan overrides. Pure: no IO, no clock.
export * from "./types.ts";
export * from "./lifecycle.ts";
export * from "./overrides.ts";
export * from "./input.ts";
