// Readiness, Prometheus metrics and request ids.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildApp, type App } from "../../src/app.ts";
import type { Db } from "../../src/db/db.ts";
import { ManualClock } from "../../src/shared/clock.ts";
import { loadConfig } from "../../src/shared/config.ts";
import { DB_KIND, openTestDb } from "../helpers/db.ts";
import { T0, T0_S, bearer, json, parseMetrics, uid } from "./support.ts";

const API_KEY = "observability-test-key-0123456789";
const auth = bearer(API_KEY);
let db: Db;
let app: App;
const clock = new ManualClock(T0);

beforeAll(async () => {
  db = await openTestDb();
  app = buildApp(loadConfig({ LOG_LEVEL: "silent", VALUEVERSE_API_KEY: API_KEY }), { db, clock });
});
afterAll(async () => {
  if (app?.ready) await app.close();
  else await db?.close();
});

const post = (event: unknown) => app.http.inject({ method: "POST", url: "/api/v1/events", headers: auth, payload: { event } });
const postBatch = (events: unknown[]) => app.http.inject({ method: "POST", url: "/api/v1/events/batch", headers: auth, payload: { events } });
async function metrics(): Promise<Map<string, number>> {
  const r = await app.http.inject({ method: "GET", url: "/metrics" });
  expect(r.statusCode).toBe(200);
  return parseMetrics(r.body);
}
const value = (m: Map<string, number>, key: string) => m.get(key) ?? 0;

describe(`readiness on ${DB_KIND}`, () => {
  it("a server built but not started answers 503 on /health", async () => {
    const r = await app.http.inject({ method: "GET", url: "/health" });
    expect(r.statusCode).toBe(503);
    expect(json(r)).toEqual({ status: "starting" });
  });

  it("a server built but not started answers 503 with Retry-After on API routes, storing nothing", async () => {
    for (const [method, url, payload] of [
      ["POST", "/api/v1/events", { event: { transaction_id: "early", external_subscription_id: "s", code: "c" } }],
      ["POST", "/api/v1/events/batch", { events: [{ transaction_id: "early", external_subscription_id: "s", code: "c" }] }],
      ["GET", "/api/v1/events", undefined],
      ["GET", "/api/v1/events/early", undefined],
    ] as const) {
      const r = await app.http.inject({ method, url, headers: auth, ...(payload ? { payload } : {}) });
      expect(r.statusCode, `${method} ${url}`).toBe(503);
      expect(r.headers["retry-after"]).toBe("1");
      expect(json(r)).toMatchObject({ status: 503, error: "Service Unavailable", code: "starting" });
    }
  });

  it("answers 200 on /health once started, with the database kind", async () => {
    await app.start();
    expect(app.ready).toBe(true);
    const r = await app.http.inject({ method: "GET", url: "/health" });
    expect(r.statusCode).toBe(200);
    expect(json(r)).toEqual({ status: "ok", database: DB_KIND });
    expect((await post({ transaction_id: "after-start", external_subscription_id: "s", code: "c" })).statusCode).toBe(200);
    expect((await app.http.inject({ method: "GET", url: "/api/v1/events/early", headers: auth })).statusCode).toBe(404);
  });

  it("a second server started on the same, already initialised database is ready and serves the stored events", async () => {
    const second = buildApp(loadConfig({ LOG_LEVEL: "silent", VALUEVERSE_API_KEY: API_KEY }), { db, clock });
    await second.start();
    try {
      expect((await second.http.inject({ method: "GET", url: "/health" })).statusCode).toBe(200);
      const r = await second.http.inject({ method: "GET", url: "/api/v1/events/after-start", headers: auth });
      expect(r.statusCode).toBe(200);
      // The bootstrap key still names one organization.
      const { rows } = await db.query<{ n: string }>("SELECT count(*)::text AS n FROM organizations");
      expect(rows[0]!.n).toBe("1");
    } finally {
      await second.http.close(); // the database stays with the first server
    }
  });
});

describe(`GET /metrics on ${DB_KIND}`, () => {
  it("is Prometheus text with the brief's names", async () => {
    await post({ transaction_id: uid("tx"), external_subscription_id: "m", code: "c" });
    const r = await app.http.inject({ method: "GET", url: "/metrics" });
    expect(r.headers["content-type"]).toMatch(/^text\/plain/);
    for (const name of [
      "http_request_duration_seconds",
      "http_requests_total",
      "billing_usage_events_total",
      "billing_usage_events_duplicates_total",
      "billing_usage_events_conflicts_total",
      "billing_usage_events_rejected_total",
      "billing_ingest_batch_size",
      "billing_ingest_commit_seconds",
      "db_pool_connections",
      "db_pool_idle_connections",
      "db_pool_waiting_requests",
      "db_pool_max_connections",
    ]) {
      expect(r.body, name).toMatch(new RegExp(`^# TYPE ${name} `, "m"));
    }
    expect(r.body).toMatch(/^# TYPE http_request_duration_seconds histogram$/m);
    expect(r.body).toMatch(/^# TYPE http_requests_total counter$/m);
  });

  it("counts accepted new events only; duplicates, conflicts and rejected events separately", async () => {
    const m0 = await metrics();
    const sub = uid("sub");
    const a = { transaction_id: "a", external_subscription_id: sub, code: "c", timestamp: T0_S };
    const b = { transaction_id: "b", external_subscription_id: sub, code: "c", timestamp: T0_S };
    expect((await post(a)).statusCode).toBe(200); // +1 accepted
    expect((await post(a)).statusCode).toBe(200); // +1 duplicate
    expect((await post({ ...a, code: "other" })).statusCode).toBe(422); // +1 conflict
    expect((await post({ ...a, timestamp: "bad" })).statusCode).toBe(422); // +1 rejected
    expect((await postBatch([b, a, { ...b }, { ...a, properties: { x: 1 } }])).statusCode).toBe(422); // +1 accepted, +2 duplicates, +1 conflict
    expect((await postBatch([b, { code: "" }, { transaction_id: "z" }])).statusCode).toBe(422); // +2 rejected, nothing else
    const m1 = await metrics();
    const delta = (k: string) => value(m1, k) - value(m0, k);
    expect(delta("billing_usage_events_total")).toBe(2);
    expect(delta("billing_usage_events_duplicates_total")).toBe(3);
    expect(delta("billing_usage_events_conflicts_total")).toBe(2);
    expect(delta("billing_usage_events_rejected_total")).toBe(3);
  });

  it("observes group-commit batch sizes and commit latency", async () => {
    const m0 = await metrics();
    const sub = uid("sub");
    const events = Array.from({ length: 7 }, (_, i) => ({ transaction_id: `t${i}`, external_subscription_id: sub, code: "c" }));
    expect((await postBatch(events)).statusCode).toBe(200);
    const m1 = await metrics();
    const delta = (k: string) => value(m1, k) - value(m0, k);
    expect(delta("billing_ingest_batch_size_sum")).toBe(7);
    expect(delta("billing_ingest_batch_size_count")).toBe(1);
    expect(delta("billing_ingest_commit_seconds_count")).toBe(1);
    expect(delta('billing_ingest_batch_size_bucket{le="5"}')).toBe(0);
    expect(delta('billing_ingest_batch_size_bucket{le="10"}')).toBe(1);
  });

  it("counts HTTP requests by route template, method and status", async () => {
    const m0 = await metrics();
    await app.http.inject({ method: "GET", url: "/api/v1/events/some-id", headers: auth }); // 404
    await app.http.inject({ method: "GET", url: "/api/v1/events/other-id", headers: auth }); // 404
    await app.http.inject({ method: "GET", url: "/api/v1/events", headers: { authorization: "Bearer nope" } }); // 401
    await app.http.inject({ method: "GET", url: "/no/such/route" });
    const m1 = await metrics();
    const delta = (k: string) => value(m1, k) - value(m0, k);
    expect(delta('http_requests_total{method="GET",route="/api/v1/events/:transaction_id",status="404"}')).toBe(2);
    expect(delta('http_requests_total{method="GET",route="/api/v1/events",status="401"}')).toBe(1);
    expect(delta('http_requests_total{method="GET",route="unmatched",status="404"}')).toBe(1);
    expect(delta('http_request_duration_seconds_count{method="GET",route="/api/v1/events/:transaction_id",status="404"}')).toBe(2);
    // One series per route template: the ids never become labels.
    expect([...m1.keys()].some((k) => k.includes("some-id"))).toBe(false);
  });

  it("reports the pool gauges", async () => {
    const m = await metrics();
    expect(m.get("db_pool_max_connections")).toBeGreaterThanOrEqual(1);
    expect(m.get("db_pool_connections")).toBeGreaterThanOrEqual(0);
    expect(m.has("db_pool_idle_connections")).toBe(true);
    expect(m.get("db_pool_waiting_requests")).toBe(0);
    expect(m.get("billing_ingest_queue_events")).toBe(0);
  });
});

describe(`x-request-id on ${DB_KIND}`, () => {
  it("echoes the id a client sends", async () => {
    const r = await app.http.inject({ method: "GET", url: "/health", headers: { "x-request-id": "client-req-42" } });
    expect(r.headers["x-request-id"]).toBe("client-req-42");
    const e = await app.http.inject({ method: "POST", url: "/api/v1/events", headers: { ...auth, "x-request-id": "client-req-43" }, payload: {} });
    expect(e.statusCode).toBe(400);
    expect(e.headers["x-request-id"]).toBe("client-req-43");
  });

  it("generates a distinct id otherwise, on successes and errors alike", async () => {
    const ids = [];
    for (const url of ["/health", "/api/v1/events", "/nowhere"]) {
      const r = await app.http.inject({ method: "GET", url });
      expect(typeof r.headers["x-request-id"]).toBe("string");
      expect((r.headers["x-request-id"] as string).length).toBeGreaterThan(0);
      ids.push(r.headers["x-request-id"]);
    }
    expect(new Set(ids).size).toBe(3);
  });
});
