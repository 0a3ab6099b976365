// The in-process tier on its own (no Redis, no channel): cache-aside, single flight, invalidation
// racing a load, TTL, the LRU bound and the metrics. Redis and cross-process behaviour are in
// test/integration/cache*.test.ts.
import client from "prom-client";
import { describe, expect, it } from "vitest";
import { Cache, createCacheMetrics, DEFAULT_CACHE_OPTIONS } from "../../../src/modules/cache/index.ts";

const deferred = <T>() => {
  let resolve!: (v: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
};

function setup(options = DEFAULT_CACHE_OPTIONS) {
  let now = 0;
  const registry = new client.Registry();
  const cache = new Cache(options, { now: () => now, metrics: createCacheMetrics(registry) });
  let loads = 0;
  let value = "v1";
  const load = async () => (loads++, value);
  const metric = async (name: string, labels: string) => {
    const m = (await registry.getMetricsAsJSON()).find((x) => x.name === name)!;
    return (m.values as { value: number; labels: Record<string, string> }[])
      .filter((v) => `${v.labels.tier}/${v.labels.kind}` === labels)
      .reduce((a, v) => a + v.value, 0);
  };
  return {
    cache,
    load,
    metric,
    get loads() {
      return loads;
    },
    set value(v: string) {
      value = v;
    },
    advance: (ms: number) => (now += ms),
  };
}

describe("the two-tier cache, in-process tier", () => {
  it("loads once, then answers from memory, counting a miss and a hit", async () => {
    const s = setup();
    expect(await s.cache.get("plan", "1:c:pro", s.load)).toBe("v1");
    expect(await s.cache.get("plan", "1:c:pro", s.load)).toBe("v1");
    expect(s.loads).toBe(1);
    expect(await s.metric("cache_misses_total", "l1/plan")).toBe(1);
    expect(await s.metric("cache_hits_total", "l1/plan")).toBe(1);
  });

  it("keeps kinds apart under the same key", async () => {
    const s = setup();
    await s.cache.get("plan", "1", s.load);
    await s.cache.get("metric", "1", s.load);
    expect(s.loads).toBe(2);
  });

  it("shares one load among concurrent readers of a key", async () => {
    const s = setup();
    const gate = deferred<string>();
    let loads = 0;
    const load = () => (loads++, gate.promise);
    const reads = [s.cache.get("metric", "a", load), s.cache.get("metric", "a", load), s.cache.get("metric", "a", load)];
    gate.resolve("x");
    expect(await Promise.all(reads)).toEqual(["x", "x", "x"]);
    expect(loads).toBe(1);
  });

  it("a failed load reaches every waiter and is not cached", async () => {
    const s = setup();
    const boom = async () => {
      throw new Error("db down");
    };
    await expect(Promise.all([s.cache.get("metric", "a", boom), s.cache.get("metric", "a", boom)])).rejects.toThrow("db down");
    expect(await s.cache.get("metric", "a", s.load)).toBe("v1");
  });

  it("reloads after an invalidation", async () => {
    const s = setup();
    await s.cache.get("subscription", "1:sub", s.load);
    s.value = "v2";
    await s.cache.invalidate([{ kind: "subscription", key: "1:sub" }]);
    expect(await s.cache.get("subscription", "1:sub", s.load)).toBe("v2");
  });

  it("never stores what a load read before a write that committed while it ran, and new readers do not join it", async () => {
    const s = setup();
    const gate = deferred<string>();
    const racing = s.cache.get("plan", "pro", () => gate.promise);
    await s.cache.invalidate([{ kind: "plan", key: "pro" }]);
    // A reader after the invalidation starts its own load instead of waiting for the stale one.
    expect(await s.cache.get("plan", "pro", s.load)).toBe("v1");
    gate.resolve("stale");
    expect(await racing).toBe("stale");
    expect(await s.cache.get("plan", "pro", s.load)).toBe("v1");
    expect(s.loads).toBe(1);
  });

  it("an entry past the L1 TTL is loaded again", async () => {
    const s = setup({ ...DEFAULT_CACHE_OPTIONS, l1TtlMs: 1000 });
    await s.cache.get("metric", "a", s.load);
    s.value = "v2";
    s.advance(999);
    expect(await s.cache.get("metric", "a", s.load)).toBe("v1");
    s.advance(1);
    expect(await s.cache.get("metric", "a", s.load)).toBe("v2");
  });

  it("holds at most l1MaxItems, evicting the least recently used and counting it", async () => {
    const s = setup({ ...DEFAULT_CACHE_OPTIONS, l1MaxItems: 3 });
    for (const key of ["a", "b", "c", "d"]) await s.cache.get("metric", key, s.load);
    expect(s.cache.l1Size).toBe(3);
    expect(await s.metric("cache_evictions_total", "l1/metric")).toBe(1);
    await s.cache.get("metric", "a", s.load);
    expect(s.loads).toBe(5);
  });

  it("caches absence like any value", async () => {
    const s = setup();
    let loads = 0;
    const missing = async () => (loads++, null);
    expect(await s.cache.get("metric", "nope", missing)).toBeNull();
    expect(await s.cache.get("metric", "nope", missing)).toBeNull();
    expect(loads).toBe(1);
  });

  it("getMany answers cached keys from memory and loads the rest in one call", async () => {
    const s = setup();
    await s.cache.get("plan", "1", async () => "one");
    const calls: string[][] = [];
    const got = await s.cache.getMany("plan", ["1", "2", "3", "2"], async (keys) => {
      calls.push(keys);
      return new Map(keys.map((k) => [k, `loaded ${k}`]));
    });
    expect([...got.entries()].sort()).toEqual([
      ["1", "one"],
      ["2", "loaded 2"],
      ["3", "loaded 3"],
    ]);
    expect(calls).toEqual([["2", "3"]]);
    expect(await s.cache.get("plan", "3", s.load)).toBe("loaded 3");
  });

  it("CACHE=off loads every time", async () => {
    const s = setup({ ...DEFAULT_CACHE_OPTIONS, enabled: false });
    await s.cache.get("metric", "a", s.load);
    await s.cache.get("metric", "a", s.load);
    expect(s.loads).toBe(2);
  });
});
