// What is cached, and how long Redis keeps each kind (the brief's TTLs). The in-process tier keeps
// every kind for CACHE_L1_TTL_MS at most.
// `clock` is never stored: its "invalidations" carry a test clock's move to the other processes.
export const CACHE_KINDS = ["metric", "plan", "subscription", "usage", "invoice", "clock"] as const;
export type CacheKind = (typeof CACHE_KINDS)[number];

const MINUTE = 60_000;

export const L2_TTL_MS: Readonly<Record<CacheKind, number>> = {
  // Pricing rules: billable metrics and plans (with their charges).
  metric: 30 * MINUTE,
  plan: 30 * MINUTE,
  subscription: 10 * MINUTE,
  usage: 5 * MINUTE,
  invoice: 60 * MINUTE,
  clock: MINUTE,
};

export interface CacheKey {
  readonly kind: CacheKind;
  readonly key: string;
}
