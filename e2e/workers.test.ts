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
