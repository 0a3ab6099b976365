import { describe, expect, it } from "vitest";
import { CatalogCache } from "../../../src/modules/catalog/cache.ts";

function setup(options = { ttlMs: 1000, maxEntries: 100 }) {
  let now = 0;
  const cache = new CatalogCache(() => now, options);
  let loads = 0;
  let value = "v1";
  const load = async () => {
    loads++;
    return value;
  };
  return {
    cache,
    load,
    get loads() {
      return loads;
    },
    set value(v: string) {
      value = v;
    },
    advance: (ms: number) => (now += ms),
  };
}

const deferred = <T>() => {
  let resolve!: (v: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
};

describe("the catalog cache", () => {
  it("serves a second read from memory", async () => {
    const s = setup();
    expect(await s.cache.read(1, "metric", "calls", s.load)).toBe("v1");
    expect(await s.cache.read(1, "metric", "calls", s.load)).toBe("v1");
    expect(s.loads).toBe(1);
  });

  it("keeps organizations and kinds apart", async () => {
    const s = setup();
    await s.cache.read(1, "metric", "x", s.load);
    await s.cache.read(2, "metric", "x", s.load);
    await s.cache.read(1, "planCode", "x", s.load);
    expect(s.loads).toBe(3);
  });

  it("reloads a metric after its invalidation, and drops the organization's plans with it", async () => {
    const s = setup();
    await s.cache.read(1, "metric", "calls", s.load);
    await s.cache.read(1, "planCode", "pro", s.load);
    await s.cache.read(1, "planId", "7", s.load);
    s.value = "v2";
    s.cache.invalidateMetric(1, ["calls"]);
    expect(await s.cache.read(1, "metric", "calls", s.load)).toBe("v2");
    expect(await s.cache.read(1, "planCode", "pro", s.load)).toBe("v2");
    expect(await s.cache.read(1, "planId", "7", s.load)).toBe("v2");
    expect(s.cache.entries).toBe(3);
  });

  it("reloads a plan by code and by id after its invalidation, and leaves other plans cached", async () => {
    const s = setup();
    await s.cache.read(1, "planCode", "pro", s.load);
    await s.cache.read(1, "planId", "7", s.load);
    await s.cache.read(1, "planCode", "other", s.load);
    s.value = "v2";
    s.cache.invalidatePlan(1, ["pro"], 7);
    expect(await s.cache.read(1, "planCode", "pro", s.load)).toBe("v2");
    expect(await s.cache.read(1, "planId", "7", s.load)).toBe("v2");
    expect(await s.cache.read(1, "planCode", "other", s.load)).toBe("v1");
  });

  it("never stores what a load read before a write that landed while it ran", async () => {
    const s = setup();
    const gate = deferred<string>();
    const racing = s.cache.read(1, "planCode", "pro", () => gate.promise);
    s.cache.invalidatePlan(1, ["pro"], null);
    gate.resolve("stale");
    expect(await racing).toBe("stale");
    expect(await s.cache.read(1, "planCode", "pro", s.load)).toBe("v1");
    expect(s.loads).toBe(1);
  });

  it("shares one load among concurrent readers of a key", async () => {
    const s = setup();
    const gate = deferred<string>();
    let loads = 0;
    const load = () => (loads++, gate.promise);
    const reads = [s.cache.read(1, "metric", "a", load), s.cache.read(1, "metric", "a", load)];
    gate.resolve("x");
    expect(await Promise.all(reads)).toEqual(["x", "x"]);
    expect(loads).toBe(1);
  });

  it("answers an expired entry at once while one background load refreshes it", async () => {
    const s = setup();
    await s.cache.read(1, "metric", "a", s.load);
    s.value = "v2";
    s.advance(1001);
    expect(await s.cache.read(1, "metric", "a", s.load)).toBe("v1");
    await new Promise((r) => setTimeout(r, 0));
    expect(await s.cache.read(1, "metric", "a", s.load)).toBe("v2");
    expect(s.loads).toBe(2);
  });

  it("caches absence like any value", async () => {
    const s = setup();
    let loads = 0;
    const missing = async () => (loads++, null);
    expect(await s.cache.read(1, "metric", "nope", missing)).toBeNull();
    expect(await s.cache.read(1, "metric", "nope", missing)).toBeNull();
    expect(loads).toBe(1);
  });

  it("starts over past its bound instead of growing", async () => {
    const s = setup({ ttlMs: 1000, maxEntries: 3 });
    for (const key of ["a", "b", "c", "d"]) await s.cache.read(1, "metric", key, s.load);
    expect(s.cache.entries).toBeLessThanOrEqual(3);
    await s.cache.read(1, "metric", "a", s.load);
    expect(s.loads).toBe(5);
  });
});

describe("the catalog cache on a new metric", () => {
  it("forgets the code's cached absence and keeps the organization's plans", async () => {
    const s = setup();
    await s.cache.read(1, "metric", "new", async () => null);
    await s.cache.read(1, "planCode", "pro", s.load);
    s.cache.invalidateMetric(1, ["new"], false);
    expect(await s.cache.read(1, "metric", "new", s.load)).toBe("v1");
    await s.cache.read(1, "planCode", "pro", s.load);
    expect(s.loads).toBe(2);
  });
});
