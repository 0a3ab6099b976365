// The two-tier cache (in-process LRU, Redis) with cache-aside reads, single-flight loads and
// invalidation across processes (Redis pub/sub, PostgreSQL LISTEN/NOTIFY as the fallback). Modules
// cache through a `Cache` built in app.ts; they call `invalidate` after their writes commit.
export { Cache, DEFAULT_CACHE_OPTIONS, type CacheDeps, type CacheLog, type CacheOptions, type CacheTarget } from "./cache.ts";
export { CACHE_KINDS, L2_TTL_MS, type CacheKey, type CacheKind } from "./kinds.ts";
export { createCacheMetrics, NO_CACHE_METRICS, type CacheMetrics, type Tier } from "./metrics.ts";
export { CodecError, decode, encode } from "./core/codec.ts";
export { Lru } from "./core/lru.ts";
