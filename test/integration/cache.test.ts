// The two-tier cache against a real Redis (a private redis-server per file) and the real database,
// with two app instances on one database standing for two processes: values cross Redis exactly,
// a write in one instance is seen by the other's next read, a load racing a write never parks a
// stale value, and Redis killed mid-run changes nothing in the answers. On PGlite by default,
// PostgreSQL with TEST_DATABASE_URL (which adds the LISTEN/NOTIFY channel and its fallback).
// Copies to Redis are not awaited by readers: tests wait for `l2Storing` to drain, never sleep.
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { App } from "../../src/app.ts";
import { Cache, DEFAULT_CACHE_OPTIONS } from "../../src/modules/cache/index.ts";
import { DB_KIND } from "../helpers/db.ts";
import { startRedis, type RedisServer } from "../helpers/redis.ts";
import { api, pricedSubscription, reprice, startPair, type Pair } from "./cache_support.ts";
import { T0, uid, waitFor } from "./support.ts";

async function counter(app: App, name: string, tier: string, kind?: string): Promise<number> {
  const m = (await app.metrics.registry.getMetricsAsJSON()).find((x) => x.name === name);
  if (m === undefined) throw new Error(`${name} is not registered`);
  return (m.values as { value: number; labels: Record<string, string> }[])
    .filter((v) => v.labels.tier === tier && (kind === undefined || v.labels.kind === kind))
    .reduce((a, v) => a + v.value, 0);
}

const deferred = <T>() => {
  let resolve!: (v: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
};
const healthy = (p: Pair) => p.a.cache.l2Up && p.b.cache.l2Up && p.a.cache.l1Usable && p.b.cache.l1Usable;
/** Every copy `app` sent to Redis was answered (stored or refused). */
const copied = (cache: Cache) => waitFor(() => cache.l2Storing === 0, "the copies to Redis");

describe(`two-tier cache with Redis, two instances on one ${DB_KIND} database`, () => {
  let redis: RedisServer;
  let p: Pair;
  let orgId: number;

  beforeAll(async () => {
    redis = await startRedis();
    p = await startPair({ REDIS_URL: redis.url });
    orgId = (await p.a.orgs.authenticate(p.apiKey))!;
    await waitFor(() => healthy(p), "both instances on Redis");
  });
  afterAll(async () => {
    await p?.close();
    await redis?.stop();
  });

  it("the other instance reads a plan from Redis, its money exact (bigint cents, decimal prices, dates)", async () => {
    const s = await pricedSubscription(p.a, p.apiKey, "0.000001234567890123456789", 0);
    const fromDb = await p.a.catalog.getPlanByCode(orgId, s.plan.code);
    await copied(p.a.cache);
    const l2Hits = await counter(p.b, "cache_hits_total", "l2", "plan");
    const fromRedis = await p.b.catalog.getPlanByCode(orgId, s.plan.code);
    expect(await counter(p.b, "cache_hits_total", "l2", "plan")).toBe(l2Hits + 1);
    expect(fromRedis).not.toBe(fromDb);
    expect(fromRedis).toEqual(fromDb);
    expect(fromRedis!.amountCents).toBe(1000n);
    expect(fromRedis!.createdAt).toBeInstanceOf(Date);
    const price = fromRedis!.charges[0]!.price as { model: string; amount: { toString(): string; times(x: number): { toString(): string } } };
    expect(price.amount.toString()).toBe("0.000001234567890123456789");
    expect(price.amount.times(3).toString()).toBe("0.000003703703670370370367");
  });

  it("a plan price change in one instance shows on the other's next current_usage read, both ways", async () => {
    const s = await pricedSubscription(p.a, p.apiKey, "0.5", 4);
    const a = api(p.a, p.apiKey);
    const b = api(p.b, p.apiKey);
    expect((await b.usage(s.customer, s.sub)).amount_cents).toBe(200);
    const hits = await counter(p.b, "cache_hits_total", "l1", "plan");
    expect((await b.usage(s.customer, s.sub)).amount_cents).toBe(200);
    expect(await counter(p.b, "cache_hits_total", "l1", "plan"), "b answered from its own cache").toBeGreaterThan(hits);

    await reprice(p.a, p.apiKey, s, "0.75");
    expect((await b.usage(s.customer, s.sub)).amount_cents).toBe(300);
    expect((await a.usage(s.customer, s.sub)).amount_cents).toBe(300);

    await reprice(p.b, p.apiKey, s, "1");
    expect((await a.usage(s.customer, s.sub)).amount_cents).toBe(400);
    expect((await b.usage(s.customer, s.sub)).amount_cents).toBe(400);
  });

  it("a subscription change in one instance shows on the other's next read", async () => {
    const s = await pricedSubscription(p.a, p.apiKey, "1", 1);
    const a = api(p.a, p.apiKey);
    const b = api(p.b, p.apiKey);
    expect((await b.usage(s.customer, s.sub)).amount_cents).toBe(100);
    a.ok(await a.call("PUT", `/api/v1/subscriptions/${s.sub}`, { subscription: { name: "Renamed" } }));
    expect((await a.subscription(s.sub)).name).toBe("Renamed");
    expect((await b.subscription(s.sub)).name).toBe("Renamed");
    a.ok(await a.call("DELETE", `/api/v1/subscriptions/${s.sub}`));
    const goneA = await a.call("GET", `/api/v1/customers/${s.customer}/current_usage?external_subscription_id=${s.sub}`);
    expect(goneA.statusCode, goneA.body).toBe(405);
    const gone = await b.call("GET", `/api/v1/customers/${s.customer}/current_usage?external_subscription_id=${s.sub}`);
    expect(gone.statusCode).toBe(405);
  });

  it("a load that raced a write never parks its stale value in Redis (and without the race it does)", async () => {
    const key = uid("race");
    const loading = deferred<string>();
    let loaderCalled = false;
    const racing = p.a.cache.get("plan", key, () => ((loaderCalled = true), loading.promise));
    await waitFor(() => loaderCalled, "a's load to start (after its Redis read)");
    // b's write commits and invalidates while a's load is still reading the old version.
    await p.b.cache.invalidate([{ kind: "plan", key }]);
    loading.resolve("stale");
    expect(await racing).toBe("stale");
    await copied(p.a.cache);
    expect(await p.b.cache.get("plan", key, async () => "fresh")).toBe("fresh");
    expect(await p.a.cache.get("plan", key, async () => "fresh")).toBe("fresh");

    const calm = uid("calm");
    expect(await p.a.cache.get("plan", calm, async () => "stored")).toBe("stored");
    await copied(p.a.cache);
    expect(await p.b.cache.get("plan", calm, async () => "not from Redis")).toBe("stored");
  });

  it("Redis killed mid-run: answers stay correct, it is logged once, and the cache recovers after a restart", async () => {
    const s = await pricedSubscription(p.a, p.apiKey, "1", 2);
    const a = api(p.a, p.apiKey);
    const b = api(p.b, p.apiKey);
    expect((await a.usage(s.customer, s.sub)).amount_cents).toBe(200);
    expect((await b.usage(s.customer, s.sub)).amount_cents).toBe(200);
    const errorsBefore = await counter(p.a, "cache_errors_total", "l2");
    p.logs.a.length = 0;
    p.logs.b.length = 0;

    await redis.kill();
    await waitFor(() => !p.a.cache.l1Usable && !p.b.cache.l1Usable, "both instances to notice Redis is gone");
    await reprice(p.a, p.apiKey, s, "2");
    for (let i = 0; i < 5; i++) {
      expect((await b.usage(s.customer, s.sub)).amount_cents).toBe(400);
      expect((await a.usage(s.customer, s.sub)).amount_cents).toBe(400);
    }
    await reprice(p.b, p.apiKey, s, "3");
    expect((await a.usage(s.customer, s.sub)).amount_cents).toBe(600);
    b.ok(await b.call("POST", "/api/v1/events", { event: { transaction_id: uid("tx"), external_subscription_id: s.sub, code: s.code, timestamp: T0 / 1000 - 60 } }));
    expect((await a.usage(s.customer, s.sub)).amount_cents).toBe(900);
    expect(await counter(p.a, "cache_errors_total", "l2")).toBeGreaterThan(errorsBefore);
    const down = (logs: Record<string, unknown>[]) => logs.filter((l) => /redis cache unavailable/.test(String(l.msg)));
    expect(down(p.logs.a)).toHaveLength(1);
    expect(down(p.logs.b)).toHaveLength(1);

    await redis.restart();
    await waitFor(() => healthy(p), "both instances back on Redis", 30_000);
    expect(p.logs.a.filter((l) => /redis cache available again/.test(String(l.msg)))).toHaveLength(1);
    await reprice(p.b, p.apiKey, s, "4");
    expect((await a.usage(s.customer, s.sub)).amount_cents).toBe(1200);
    await copied(p.a.cache);
    const l2Hits = await counter(p.b, "cache_hits_total", "l2", "plan");
    expect((await b.usage(s.customer, s.sub)).amount_cents).toBe(1200);
    expect(await counter(p.b, "cache_hits_total", "l2", "plan"), "b read the plan a loaded from Redis again").toBeGreaterThan(l2Hits);
  });

  it.skipIf(DB_KIND === "pglite")("an invalidation Redis never took: no instance reads the old value from Redis afterwards", async () => {
    await waitFor(() => healthy(p), "both instances on Redis");
    const key = uid("missed");
    expect(await p.b.cache.get("plan", key, async () => "old")).toBe("old");
    await copied(p.b.cache);
    expect(await p.a.cache.get("plan", key, async () => "not from Redis"), "the old value is in Redis").toBe("old");
    const admin = new Redis(redis.url);
    try {
      await admin.call("CLIENT", "PAUSE", "1000", "ALL");
      // Three timeouts open a's circuit: its invalidation is then not sent to Redis at all, only
      // over PostgreSQL NOTIFY (b drops the key from its L1 before a answers).
      for (let i = 0; i < 3; i++) expect(await p.a.cache.get("plan", uid("other"), async () => "db")).toBe("db");
      expect(p.a.cache.l2Up).toBe(false);
      await p.a.cache.invalidate([{ kind: "plan", key }]);
      expect(await admin.ping()).toBe("PONG");
    } finally {
      admin.disconnect();
    }
    // Redis answers again and still holds "old" under the epoch it was stored in; the write was
    // answered, so no instance may serve it from there again.
    expect(await p.b.cache.get("plan", key, async () => "new")).toBe("new");
    expect(await p.a.cache.get("plan", key, async () => "new")).toBe("new");
    await waitFor(() => healthy(p), "Redis answering again");
    await copied(p.a.cache);
    await copied(p.b.cache);
    p.a.cache.clearLocal();
    p.b.cache.clearLocal();
    expect(await p.b.cache.get("plan", key, async () => "new")).toBe("new");
    expect(await p.a.cache.get("plan", key, async () => "new")).toBe("new");
  });

  it.skipIf(DB_KIND === "pglite")("Redis paused (slow, connection kept): an invalidation falls back to PostgreSQL NOTIFY", async () => {
    const s = await pricedSubscription(p.a, p.apiKey, "1", 1);
    const a = api(p.a, p.apiKey);
    const b = api(p.b, p.apiKey);
    expect((await b.usage(s.customer, s.sub)).amount_cents).toBe(100);
    expect((await b.usage(s.customer, s.sub)).amount_cents).toBe(100);
    const admin = new Redis(redis.url);
    try {
      await admin.call("CLIENT", "PAUSE", "1500", "ALL");
      await reprice(p.a, p.apiKey, s, "5");
      expect((await b.usage(s.customer, s.sub)).amount_cents).toBe(500);
      expect((await a.usage(s.customer, s.sub)).amount_cents).toBe(500);
      // Answered once the pause is over (the admin connection is paused too).
      expect(await admin.ping()).toBe("PONG");
    } finally {
      admin.disconnect();
    }
    await waitFor(() => healthy(p), "Redis answering again");
    expect((await b.usage(s.customer, s.sub)).amount_cents).toBe(500);
    expect((await a.usage(s.customer, s.sub)).amount_cents).toBe(500);
  });

  it("an epoch move this process did not hear of (its subscription was not back yet): nothing is read or left under the old epoch", async () => {
    // What a move by a process recovering from an outage leaves in Redis, its announcement missed by
    // a and b (as when their subscriptions reconnect after it was published). A process started
    // afterwards learns the new epoch from Redis.
    const admin = new Redis(redis.url);
    const late = new Cache({ ...DEFAULT_CACHE_OPTIONS, redisUrl: redis.url, namespace: p.namespace }, {});
    try {
      await admin.incr(`vv:${p.namespace}:epoch`);
      await late.start({ dbKind: "pglite" });
      await waitFor(() => late.l2Up && late.l1Usable, "the late process on Redis");
      const key = uid("epoch");
      expect(await late.get("plan", key, async () => "old")).toBe("old");
      await copied(late);
      // a writes: its invalidation must reach the copy under the epoch current in Redis.
      await p.a.cache.invalidate([{ kind: "plan", key }]);
      expect(await late.get("plan", key, async () => "new")).toBe("new");
      expect(await p.b.cache.get("plan", key, async () => "new")).toBe("new");
      // And a and b read the current epoch: what the late process copied there.
      const calm = uid("calm");
      expect(await late.get("plan", calm, async () => "stored")).toBe("stored");
      await copied(late);
      expect(await p.a.cache.get("plan", calm, async () => "not from Redis")).toBe("stored");
      expect(await p.b.cache.get("plan", calm, async () => "not from Redis")).toBe("stored");
    } finally {
      await late.close();
      admin.disconnect();
    }
  });
});

describe(`cache invalidation without Redis on ${DB_KIND}`, () => {
  // Two instances on one embedded database cannot be two processes (PGlite belongs to one), and
  // without Redis there is no channel between them: only PostgreSQL has one (LISTEN/NOTIFY).
  it.skipIf(DB_KIND === "pglite")("PostgreSQL LISTEN/NOTIFY carries a plan price change to the other instance's next read", async () => {
    const p = await startPair();
    try {
      await waitFor(() => p.a.cache.l1Usable && p.b.cache.l1Usable, "both instances listening");
      const s = await pricedSubscription(p.a, p.apiKey, "0.5", 2);
      const b = api(p.b, p.apiKey);
      expect((await b.usage(s.customer, s.sub)).amount_cents).toBe(100);
      const hits = await counter(p.b, "cache_hits_total", "l1", "plan");
      expect((await b.usage(s.customer, s.sub)).amount_cents).toBe(100);
      expect(await counter(p.b, "cache_hits_total", "l1", "plan")).toBeGreaterThan(hits);
      await reprice(p.a, p.apiKey, s, "2");
      expect((await b.usage(s.customer, s.sub)).amount_cents).toBe(400);
    } finally {
      await p.close();
    }
  });
});
