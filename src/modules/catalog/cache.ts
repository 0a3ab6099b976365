// The catalog's cached lookups for the hot paths (rating, usage, subscriptions), over the shared
// two-tier cache (src/modules/cache): billable metrics by code and plans by code and by id, kept in
// the in-process tier and in Redis for 30 minutes (the brief's "pricing rules").
//
// Invariants:
// - Every write invalidates what it changed after its transaction committed and before it answers,
//   in every process (see Cache.invalidate): the next read anywhere loads the new version.
// - A plan embeds its charges' metrics: a metric's change also invalidates every plan that has (or,
//   for a deletion, had) a charge on it; the service finds those plans inside its transaction.
// - Absence is cached too (an unknown code costs no query per lookup); creating the object
//   invalidates its absence.
import type { Cache } from "../cache/index.ts";
import type { CacheKey } from "../cache/index.ts";
import type { BillableMetric, Plan } from "./core/index.ts";

/** A plan as the cache knows it: by code (live plans) and by id (deleted ones too). */
export interface PlanRef {
  readonly id: number;
  readonly code: string;
}

const metricKey = (orgId: number, code: string): CacheKey => ({ kind: "metric", key: `${orgId}:${code}` });
const planCodeKey = (orgId: number, code: string): CacheKey => ({ kind: "plan", key: `${orgId}:c:${code}` });
const planIdKey = (orgId: number, id: number): CacheKey => ({ kind: "plan", key: `${orgId}:i:${id}` });

export class CatalogCache {
  constructor(private readonly cache: Cache) {}

  metric(orgId: number, code: string, load: () => Promise<BillableMetric | null>): Promise<BillableMetric | null> {
    return this.cache.get("metric", metricKey(orgId, code).key, load);
  }

  planByCode(orgId: number, code: string, load: () => Promise<Plan | null>): Promise<Plan | null> {
    return this.cache.get("plan", planCodeKey(orgId, code).key, load);
  }

  planById(orgId: number, id: number, load: () => Promise<Plan | null>): Promise<Plan | null> {
    return this.cache.get("plan", planIdKey(orgId, id).key, load);
  }

  /** A metric's codes (before and after a rename) and the plans it is or was priced in. */
  invalidateMetric(orgId: number, codes: readonly string[], plans: readonly PlanRef[]): Promise<void> {
    return this.cache.invalidate([...codes.map((c) => metricKey(orgId, c)), ...plans.flatMap((p) => this.planKeys(orgId, [p.code], p.id))]);
  }

  /** A plan's codes (before and after a rename) and its id. */
  invalidatePlan(orgId: number, codes: readonly string[], id: number | null): Promise<void> {
    return this.cache.invalidate(this.planKeys(orgId, codes, id));
  }

  private planKeys(orgId: number, codes: readonly string[], id: number | null): CacheKey[] {
    const keys = codes.map((c) => planCodeKey(orgId, c));
    if (id !== null) keys.push(planIdKey(orgId, id));
    return keys;
  }
}
