import { describe, expect, it } from "vitest";
import { Cache, DEFAULT_CACHE_OPTIONS } from "../../../src/modules/cache/index.ts";
import { CatalogCache } from "../../../src/modules/catalog/cache.ts";
import type { BillableMetric, Plan } from "../../../src/modules/catalog/index.ts";

// Values stand in for catalog objects: the cache never looks inside them.
const metric = (v: string) => ({ code: v }) as unknown as BillableMetric;
const plan = (v: string) => ({ code: v }) as unknown as Plan;

function setup() {
  const cache = new CatalogCache(new Cache(DEFAULT_CACHE_OPTIONS, { now: () => 0 }));
  let loads = 0;
  let value = "v1";
  return {
    cache,
    metric: async () => (loads++, metric(value)),
    plan: async () => (loads++, plan(value)),
    get loads() {
      return loads;
    },
    set value(v: string) {
      value = v;
    },
  };
}

describe("the catalog cache", () => {
  it("keeps organizations and kinds apart", async () => {
    const s = setup();
    await s.cache.metric(1, "x", s.metric);
    await s.cache.metric(2, "x", s.metric);
    await s.cache.planByCode(1, "x", s.plan);
    await s.cache.planById(1, 1, s.plan);
    await s.cache.metric(1, "x", s.metric);
    expect(s.loads).toBe(4);
  });

  it("reloads a metric after its invalidation, and the plans named with it", async () => {
    const s = setup();
    await s.cache.metric(1, "calls", s.metric);
    await s.cache.planByCode(1, "pro", s.plan);
    await s.cache.planById(1, 7, s.plan);
    await s.cache.planByCode(1, "other", s.plan);
    s.value = "v2";
    await s.cache.invalidateMetric(1, ["calls"], [{ id: 7, code: "pro" }]);
    expect((await s.cache.metric(1, "calls", s.metric))!.code).toBe("v2");
    expect((await s.cache.planByCode(1, "pro", s.plan))!.code).toBe("v2");
    expect((await s.cache.planById(1, 7, s.plan))!.code).toBe("v2");
    expect((await s.cache.planByCode(1, "other", s.plan))!.code).toBe("v1");
  });

  it("reloads a plan by both codes of a rename and by id, and leaves other plans cached", async () => {
    const s = setup();
    await s.cache.planByCode(1, "old", s.plan);
    await s.cache.planByCode(1, "new", async () => null);
    await s.cache.planById(1, 7, s.plan);
    await s.cache.planByCode(1, "other", s.plan);
    s.value = "v2";
    await s.cache.invalidatePlan(1, ["old", "new"], 7);
    expect((await s.cache.planByCode(1, "new", s.plan))!.code).toBe("v2");
    expect((await s.cache.planByCode(1, "old", async () => null))).toBeNull();
    expect((await s.cache.planById(1, 7, s.plan))!.code).toBe("v2");
    expect((await s.cache.planByCode(1, "other", s.plan))!.code).toBe("v1");
  });

  it("forgets a new metric's cached absence", async () => {
    const s = setup();
    expect(await s.cache.metric(1, "new", async () => null)).toBeNull();
    await s.cache.invalidateMetric(1, ["new"], []);
    expect((await s.cache.metric(1, "new", s.metric))!.code).toBe("v1");
  });
});
