// Worker processes (node:cluster) on PostgreSQL: by default one per core, all answering on one port;
// and a graceful SIGTERM under load with two workers: the primary stops both, each drains its
// in-flight batches, and every acknowledged event is stored exactly once. PGlite runs one process.
import crypto from "node:crypto";
import http from "node:http";
import os from "node:os";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mapConcurrent } from "./helpers/http.ts";
import { runLoad, summarize, type LoadControl } from "./helpers/load.ts";
import { createDataTarget, E2E_DB_KIND, killAllServers, randomKey, sleep, startServer, type DataTarget } from "./helpers/server.ts";
import { checkDatabase } from "./helpers/verify.ts";

/** The process that answered: request ids start with the worker's pid in base 36. */
const workerOf = (requestId: string | null) => Number.parseInt((requestId ?? "").split("-")[0] ?? "", 36);

/** GET on a new connection (no keep-alive: a reused connection always reaches the same worker). */
function getFresh(url: string, path: string, apiKey?: string): Promise<{ status: number; worker: number }> {
  return new Promise((resolve, reject) => {
    const req = http.get(`${url}${path}`, { agent: false, headers: apiKey ? { authorization: `Bearer ${apiKey}` } : {}, timeout: 10_000 }, (res) => {
      res.resume();
      res.on("end", () => resolve({ status: res.statusCode ?? 0, worker: workerOf(String(res.headers["x-request-id"] ?? "")) }));
    });
    req.on("timeout", () => req.destroy(new Error(`GET ${path} timed out`)));
    req.on("error", reject);
  });
}

/** Until `count` distinct workers have answered /health 200 (startServer waits for the first one only). */
async function waitAllWorkersReady(url: string, count: number, timeoutMs = 60_000): Promise<void> {
  const ready = new Set<number>();
  const deadline = performance.now() + timeoutMs;
  while (ready.size < count) {
    if (performance.now() > deadline) throw new Error(`only ${ready.size} of ${count} workers ready after ${timeoutMs} ms`);
    const answers = await mapConcurrent(Array.from({ length: 8 }), 8, () => getFresh(url, "/health"));
    for (const a of answers) if (a.status === 200) ready.add(a.worker);
    if (ready.size < count) await sleep(100);
  }
}

describe.skipIf(E2E_DB_KIND !== "postgres")("worker processes (PostgreSQL only: the embedded database belongs to one process; runs with TEST_DATABASE_URL)", () => {
  const run = crypto.randomBytes(3).toString("hex");
  const apiKey = randomKey();
  let target: DataTarget;

  beforeAll(async () => {
    target = await createDataTarget("postgres");
  });
  afterAll(async () => {
    await killAllServers();
    await target?.cleanup();
  });

  it("without WORKERS, runs one worker per core, all answering on the same port", { timeout: 120_000 }, async () => {
    const server = await startServer({ target, apiKey, readyTimeoutMs: 60_000 });
    try {
      const cores = os.availableParallelism();
      await waitAllWorkersReady(server.url, cores);
      expect(server.logs()).toContain(`starting ${cores} worker processes`);
      // Concurrent requests open several connections, which the primary hands out in turn.
      const seen = new Set<number>();
      const answers = await mapConcurrent(Array.from({ length: 8 * cores }), 8, () => getFresh(server.url, "/api/v1/customers", apiKey));
      for (const a of answers) {
        expect(a.status).toBe(200);
        seen.add(a.worker);
      }
      expect(seen.size).toBe(cores);
      expect(seen.has(server.pid)).toBe(false); // the primary only hands out connections
    } finally {
      expect((await server.stop(15_000)).code).toBe(0);
    }
  });

  it("a test clock moved through one worker is every worker's now by the time PUT /test_clock answers", { timeout: 120_000 }, async () => {
    // An organization of its own: the SIGTERM test below checks every event of `apiKey`'s.
    const apiKey = randomKey();
    const server = await startServer({ target, apiKey, env: { WORKERS: "2", VALUEVERSE_TEST_CLOCK: "on" }, readyTimeoutMs: 60_000 });
    try {
      await waitAllWorkersReady(server.url, 2);
      const send = (method: string, path: string, body: unknown) =>
        new Promise<{ status: number; worker: number; json: any }>((resolve, reject) => {
          const payload = JSON.stringify(body);
          const req = http.request(`${server.url}${path}`, {
            method, agent: false, timeout: 10_000,
            headers: { authorization: `Bearer ${apiKey}`, "content-type": "application/json", "content-length": Buffer.byteLength(payload) },
          }, (res) => {
            let text = "";
            res.setEncoding("utf8");
            res.on("data", (c) => (text += c));
            res.on("end", () => resolve({ status: res.statusCode ?? 0, worker: workerOf(String(res.headers["x-request-id"] ?? "")), json: text ? JSON.parse(text) : null }));
          });
          req.on("timeout", () => req.destroy(new Error(`${method} ${path} timed out`)));
          req.on("error", reject);
          req.end(payload);
        });
      // Each step: move the clock (one connection, one worker), then at once an event without a
      // timestamp on a new connection, so over the steps both workers answer both; the event's
      // timestamp is the organization's now where it landed, which must be the moved clock.
      const workers = new Set<number>();
      let frozen = Date.parse("2024-03-01T00:00:00.000Z");
      for (let i = 0; i < 12; i++) {
        frozen += 3_600_000;
        const iso = new Date(frozen).toISOString();
        const moved = await send("PUT", "/api/v1/test_clock", { test_clock: { frozen_time: iso } });
        expect(moved.status).toBe(200);
        const ev = await send("POST", "/api/v1/events", { event: { transaction_id: `clock-${run}-${i}`, external_subscription_id: `clock-${run}`, code: "calls" } });
        expect(ev.status, JSON.stringify(ev.json)).toBe(200);
        expect(new Date(ev.json.event.timestamp).toISOString()).toBe(iso);
        workers.add(moved.worker).add(ev.worker);
      }
      expect(workers.size).toBe(2);
    } finally {
      expect((await server.stop(15_000)).code).toBe(0);
    }
  });

  it("SIGTERM under load with 2 workers: both drain, the primary exits 0, every acknowledged event is stored exactly once", { timeout: 120_000 }, async () => {
    const server = await startServer({ target, apiKey, env: { WORKERS: "2" }, readyTimeoutMs: 60_000 });
    await waitAllWorkersReady(server.url, 2);
    const control: LoadControl = { stop: false };
    const loading = runLoad({ url: server.url, apiKey, prefix: `workers-${run}`, clients: 16, durationMs: 8_000, maxNewEvents: 50_000, control, conflictEvery: 0 });
    const started = performance.now();
    while ((control.acked ?? 0) < 300 && performance.now() - started < 5_000) await sleep(10);
    await sleep(300 + Math.random() * 300);
    control.killedAt = performance.now();
    const exit = await server.stop(20_000);
    const load = await loading;
    console.log(`[workers] SIGTERM after ${Math.round(control.killedAt - started)} ms; exit ${JSON.stringify(exit)}; load: ${summarize(load)}`);

    expect(exit, `the server did not exit cleanly on SIGTERM:\n${server.logs().slice(-3000)}`).toEqual({ code: 0, signal: null });
    // Both workers drained (each logs its shutdown), nothing was logged as an error.
    expect(server.logs().match(/shutting down: finishing in-flight requests and batches/g)?.length).toBe(2);
    expect(server.logLines(50), "no error logged").toEqual([]);
    expect(load.problems, load.problems.join("\n")).toEqual([]);
    expect(load.acked.size).toBeGreaterThan(100);

    const db = await target.openDb();
    try {
      const check = await checkDatabase(db, { apiKey, acked: load.acked, attempted: load.attempted });
      console.log(`[workers] after SIGTERM: ${JSON.stringify({ ...check, storedUnackedIds: undefined, problems: check.problems.length })}`);
      expect(check.problems, check.problems.join("\n")).toEqual([]);
      expect(check.missing).toBe(0);
      expect(check.duplicated).toBe(0);
      // Refused with 503 while stopping ("retry"): not stored.
      expect(check.storedUnackedIds.filter((id) => load.refusedWhileStopping.has(id))).toEqual([]);
    } finally {
      await db.close();
    }
  });
});
