// cache_{hits,misses,errors,evictions}_total{tier,kind}: every series exists from the start (at 0),
// so dashboards and alert ratios have something to divide before the first lookup.
import client from "prom-client";
import { CACHE_KINDS, type CacheKind } from "./kinds.ts";

export type Tier = "l1" | "l2";
export type CacheOutcome = "hit" | "miss" | "error" | "eviction";

export interface CacheMetrics {
  count(outcome: CacheOutcome, tier: Tier, kind: CacheKind | "all", n?: number): void;
}

const TIERS: readonly Tier[] = ["l1", "l2"];

export function createCacheMetrics(registry: client.Registry): CacheMetrics {
  const counters: Record<CacheOutcome, client.Counter<"tier" | "kind">> = {
    hit: new client.Counter({ name: "cache_hits_total", help: "Cache lookups answered by the tier", labelNames: ["tier", "kind"], registers: [registry] }),
    miss: new client.Counter({ name: "cache_misses_total", help: "Cache lookups the tier could not answer", labelNames: ["tier", "kind"], registers: [registry] }),
    error: new client.Counter({
      name: "cache_errors_total",
      help: "Failed cache operations (l2: Redis commands failed or timed out; l1: an invalidation could not be delivered to other processes)",
      labelNames: ["tier", "kind"],
      registers: [registry],
    }),
    eviction: new client.Counter({
      name: "cache_evictions_total",
      // Redis evicts under maxmemory without telling clients which key or kind: see its evicted_keys.
      help: "Entries the in-process LRU evicted for room (tier l1 only)",
      labelNames: ["tier", "kind"],
      registers: [registry],
    }),
  };
  const children = new Map<string, client.Counter.Internal>();
  const child = (outcome: CacheOutcome, tier: Tier, kind: string) => {
    const key = `${outcome} ${tier} ${kind}`;
    let c = children.get(key);
    if (c === undefined) children.set(key, (c = counters[outcome].labels({ tier, kind })));
    return c;
  };
  for (const outcome of Object.keys(counters) as CacheOutcome[]) {
    for (const tier of TIERS) {
      if (outcome === "eviction" && tier === "l2") continue;
      for (const kind of CACHE_KINDS) child(outcome, tier, kind).inc(0);
      if (outcome === "error") child(outcome, tier, "all").inc(0);
    }
  }
  return {
    count(outcome, tier, kind, n = 1) {
      child(outcome, tier, kind).inc(n);
    },
  };
}

/** For tests and tools that build a cache without a registry. */
export const NO_CACHE_METRICS: CacheMetrics = { count() {} };
