// End to end through the official Lago client: the real server (`node bin/valueverse.mjs serve`) in a
// child process on 127.0.0.1, on a fresh embedded PGlite DATA_DIR, or on a fresh PostgreSQL database
// when TEST_DATABASE_URL is set. Also the life cycle: /health during start-up, one server per
// DATA_DIR, and a graceful shutdown (SIGTERM) under load that keeps every acknowledged event.
import crypto from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { Client, type ApiErrorUnprocessableEntity, type EventInputObject } from "lago-javascript-client";
import { lagoError } from "./helpers/lago.ts";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { call } from "./helpers/http.ts";
import { runLoad, summarize, type LoadControl } from "./helpers/load.ts";
import {
  createDataTarget,
  E2E_DB_KIND,
  killAllServers,
  randomKey,
  sleep,
  startServer,
  type DataTarget,
  type ServerProcess,
} from "./helpers/server.ts";
import { checkDatabase, checkViaApi } from "./helpers/verify.ts";

type LagoClient = ReturnType<typeof Client>;


const nowSeconds = () => Number((Date.now() / 1000).toFixed(3));
const msOf = (ts: number) => Math.round(ts * 1000);

describe(`events API through lago-javascript-client, real server on ${E2E_DB_KIND}`, () => {
  const run = crypto.randomBytes(3).toString("hex");
  const apiKey = randomKey();
  const adminToken = randomKey("e2e_admin_");
  let target: DataTarget;
  let server: ServerProcess;
  let lago: LagoClient;
  const clientFor = (key: string) => Client(key, { baseUrl: `${server.url}/api/v1` });

  beforeAll(async () => {
    target = await createDataTarget();
    // Waits longer than the 30 s the first test asserts, so a slow start fails there, with its timing.
    server = await startServer({ target, apiKey, adminToken, readyTimeoutMs: 90_000 });
    lago = clientFor(apiKey);
  });

  afterAll(async () => {
    await killAllServers();
    await target?.cleanup();
  });

  it("starts on fresh data: /health answers 503 until ready, then 200, within 30 s", async () => {
    const trace = server.healthTrace;
    console.log(`[events ${E2E_DB_KIND}] ready after ${Math.round(server.readyAfterMs!)} ms; /health answers: ${JSON.stringify(countStatuses(trace.map((p) => p.status)))}`);
    expect(server.readyAfterMs).toBeLessThan(30_000);
    const answered = trace.filter((p) => p.status !== 0); // 0: not listening yet
    expect(answered.at(-1)?.status).toBe(200);
    // Before the first 200, only 503 (never a 200 that turns back into a 503, never an error).
    expect(answered.slice(0, -1).every((p) => p.status === 503)).toBe(true);
    // The embedded database takes seconds to initialise: the 503 phase is always visible there.
    if (E2E_DB_KIND === "pglite") expect(answered.length).toBeGreaterThan(1);
    const health = await call(server.url, "GET", "/health");
    expect(health.status).toBe(200);
    expect(health.headers.get("x-request-id")).toBeTruthy();
  });

  it("createEvent stores an event; a retry with the same payload succeeds; another payload is a 422 value_already_exist", async () => {
    const ts = nowSeconds() - 3600;
    const event: EventInputObject = {
      transaction_id: `single-${run}`,
      external_subscription_id: `sub-single-${run}`,
      code: "api_calls",
      timestamp: ts,
      properties: { region: "eu", calls: 3, nested: { a: [1, 2] } },
      precise_total_amount_cents: "1234.56",
    };
    const created = await lago.events.createEvent({ event });
    expect(created.status).toBe(200);
    expect(created.data.event).toMatchObject({
      transaction_id: event.transaction_id,
      external_subscription_id: event.external_subscription_id,
      code: "api_calls",
      properties: event.properties,
      lago_customer_id: null,
    });
    expect(Date.parse(created.data.event.timestamp)).toBe(msOf(ts));
    expect(Number(created.data.event.precise_total_amount_cents)).toBe(1234.56);
    expect(typeof created.data.event.lago_id).toBe("string");

    const retry = await lago.events.createEvent({ event });
    expect(retry.status).toBe(200);
    expect(retry.data.event.lago_id).toBe(created.data.event.lago_id);

    const conflict = await lagoError<ApiErrorUnprocessableEntity>(
      lago.events.createEvent({ event: { ...event, properties: { region: "us", calls: 4 } } }),
    );
    expect(conflict.status).toBe(422);
    expect(conflict.body).toMatchObject({ status: 422, code: "validation_errors", error_details: { transaction_id: ["value_already_exist"] } });

    // The stored event is the first one, unchanged, and stored once.
    const found = await lago.events.findEvent(event.transaction_id);
    expect(found.status).toBe(200);
    expect(found.data.event).toMatchObject({ transaction_id: event.transaction_id, code: "api_calls", properties: event.properties });
    expect(Date.parse(found.data.event.timestamp)).toBe(msOf(ts));
    const listed = await lago.events.findAllEvents({ external_subscription_id: event.external_subscription_id });
    expect(listed.data.meta.total_count).toBe(1);

    // No timestamp: the server's now.
    const before = Date.now();
    const untimed = await lago.events.createEvent({ event: { transaction_id: `untimed-${run}`, external_subscription_id: event.external_subscription_id, code: "api_calls" } });
    expect(untimed.status).toBe(200);
    const t = Date.parse(untimed.data.event.timestamp);
    expect(t).toBeGreaterThanOrEqual(before - 5_000);
    expect(t).toBeLessThanOrEqual(Date.now() + 5_000);

    const missing = await lagoError(lago.events.findEvent(`nothing-${run}`));
    expect(missing.status).toBe(404);
    expect(missing.body).toMatchObject({ status: 404, code: "event_not_found" });
  });

  it("createBatchEvents stores a batch; a retried batch succeeds; a conflicting event in a batch is a 422 naming its index", async () => {
    const base = nowSeconds() - 5 * 86_400;
    const events: EventInputObject[] = Array.from({ length: 100 }, (_, i) => ({
      transaction_id: `batch-${run}-${i}`,
      external_subscription_id: `sub-batch-${run}`,
      code: i % 2 === 0 ? "api_calls" : "storage_gb",
      timestamp: base + i * 60,
      properties: { i },
    }));
    const created = await lago.events.createBatchEvents({ events });
    expect(created.status).toBe(200);
    expect(created.data.events.map((e) => e.transaction_id)).toEqual(events.map((e) => e.transaction_id));

    const retried = await lago.events.createBatchEvents({ events });
    expect(retried.status).toBe(200);
    expect(retried.data.events).toHaveLength(100);

    const mixed = [
      { ...events[0]!, transaction_id: `batch-${run}-new-a` },
      { ...events[1]! }, // an exact retry
      { ...events[2]!, properties: { i: "changed" } }, // a conflict
      { ...events[3]!, transaction_id: `batch-${run}-new-b` },
    ];
    const conflict = await lagoError<ApiErrorUnprocessableEntity>(lago.events.createBatchEvents({ events: mixed }));
    expect(conflict.status).toBe(422);
    expect(conflict.body.error_details).toEqual({ "2": { transaction_id: ["value_already_exist"] } });

    const listed = await lago.events.findAllEvents({ external_subscription_id: `sub-batch-${run}`, per_page: 1 });
    // 100, plus the two new events of the mixed batch (accepted event by event); never the conflict.
    expect(listed.data.meta.total_count).toBe(102);
    const kept = await lago.events.findEvent(events[2]!.transaction_id);
    expect(kept.data.event.properties).toEqual({ i: 2 });
  });

  it("findAllEvents filters by subscription, code and time, and paginates with meta.total_count", async () => {
    const sub = `sub-list-${run}`;
    const other = `sub-list-other-${run}`;
    const base = Math.floor(Date.now() / 1000) - 3 * 86_400;
    const events: EventInputObject[] = Array.from({ length: 50 }, (_, i) => ({
      transaction_id: `list-${run}-${i}`,
      external_subscription_id: sub,
      code: i < 30 ? "api_calls" : "seats",
      timestamp: base + i * 3600,
      properties: { i },
    }));
    const noise = Array.from({ length: 7 }, (_, i) => ({ ...events[i]!, external_subscription_id: other }));
    expect((await lago.events.createBatchEvents({ events: [...events, ...noise] })).status).toBe(200);

    const all = await lago.events.findAllEvents({ external_subscription_id: sub, per_page: 100 });
    expect(all.data.meta.total_count).toBe(50);
    expect(all.data.events).toHaveLength(50);
    expect(new Set(all.data.events.map((e) => e.external_subscription_id))).toEqual(new Set([sub]));

    const seats = await lago.events.findAllEvents({ external_subscription_id: sub, code: "seats" });
    expect(seats.data.meta.total_count).toBe(20);
    expect(seats.data.events.every((e) => e.code === "seats")).toBe(true);

    // Hours 10..29 (bounds between events, so inclusivity does not matter).
    const iso = (s: number) => new Date(s * 1000).toISOString();
    const windowed = await lago.events.findAllEvents({
      external_subscription_id: sub,
      timestamp_from: iso(base + 9.5 * 3600),
      timestamp_to: iso(base + 29.5 * 3600),
      per_page: 100,
    });
    expect(windowed.data.meta.total_count).toBe(20);
    expect(windowed.data.events.map((e) => e.properties?.i).sort((a, b) => a - b)).toEqual(Array.from({ length: 20 }, (_, k) => k + 10));

    const both = await lago.events.findAllEvents({ external_subscription_id: other });
    expect(both.data.meta.total_count).toBe(7);

    // Pages of 20: 20, 20, 10, then an empty page; together every event exactly once.
    const seen: string[] = [];
    for (let page = 1; page <= 4; page++) {
      const r = await lago.events.findAllEvents({ external_subscription_id: sub, per_page: 20, page });
      expect(r.data.meta).toMatchObject({
        current_page: page,
        total_count: 50,
        total_pages: 3,
        prev_page: page > 1 ? page - 1 : null,
        next_page: page < 3 ? page + 1 : null,
      });
      expect(r.data.events).toHaveLength([20, 20, 10, 0][page - 1]!);
      seen.push(...r.data.events.map((e) => e.transaction_id));
    }
    expect(seen.sort()).toEqual(events.map((e) => e.transaction_id).sort());
  });

  it("a wrong API key gets 401 with Lago's body", async () => {
    const wrong = clientFor(randomKey("wrong_"));
    const post = await lagoError(wrong.events.createEvent({ event: { transaction_id: `x-${run}`, external_subscription_id: "s", code: "c" } }));
    expect(post.status).toBe(401);
    expect(post.body).toEqual({ status: 401, error: "Unauthorized" });
    expect((await lagoError(wrong.events.findAllEvents())).status).toBe(401);
    expect((await lagoError(wrong.events.findEvent(`single-${run}`))).status).toBe(401);
    expect((await lagoError(wrong.events.createBatchEvents({ events: [] }))).status).toBe(401);
    const noHeader = await call(server.url, "GET", "/api/v1/events");
    expect(noHeader.status).toBe(401);
    // Nothing was stored by the refused request.
    expect((await lagoError(lago.events.findEvent(`x-${run}`))).status).toBe(404);
  });

  it("one organization cannot read another's events, and each has its own transaction ids", async () => {
    const created = await call<{ api_key: string; organization: { id: string } }>(server.url, "POST", "/admin/v1/organizations", {
      apiKey: adminToken,
      body: { organization: { name: `other-${run}` } },
    });
    expect(created.status).toBe(200);
    const other = clientFor(created.body.api_key);
    expect((await lagoError(other.events.findEvent(`single-${run}`))).status).toBe(404);
    expect((await other.events.findAllEvents()).data.meta.total_count).toBe(0);
    expect((await other.events.findAllEvents({ external_subscription_id: `sub-single-${run}` })).data.meta.total_count).toBe(0);
    // The same identity in another organization is another event (no conflict, no overwrite).
    const same = await other.events.createEvent({
      event: { transaction_id: `single-${run}`, external_subscription_id: `sub-single-${run}`, code: "other_code", properties: { org: "other" } },
    });
    expect(same.status).toBe(200);
    expect((await lago.events.findEvent(`single-${run}`)).data.event.code).toBe("api_calls");
    expect((await other.events.findEvent(`single-${run}`)).data.event.code).toBe("other_code");
  });

  if (E2E_DB_KIND === "pglite") {
    it("refuses a second server on the same DATA_DIR with a clear message, and the first one keeps serving", async () => {
      const second = await startServer({ target, apiKey, waitReady: false });
      const exit = await Promise.race([second.exited, sleep(30_000).then(() => null)]);
      expect(exit, `the second server is still running:\n${second.logs()}`).not.toBeNull();
      expect(exit!.code).not.toBe(0);
      // A message naming the directory and the process that holds it.
      const refusal = second.logs().split("\n").find((l) => /in use/i.test(l)) ?? "";
      expect(refusal, second.logs()).toContain(target.dataDir);
      expect(refusal).toContain(String(server.pid));
      console.log(`[events pglite] second server refused: exit ${JSON.stringify(exit)}`);
      // The first server and its lock are untouched.
      expect(fs.readFileSync(path.join(target.dataDir, "valueverse.pid"), "utf8").trim()).toBe(String(server.pid));
      expect((await call(server.url, "GET", "/health")).status).toBe(200);
      const r = await lago.events.createEvent({ event: { transaction_id: `after-refusal-${run}`, external_subscription_id: "s", code: "c" } });
      expect(r.status).toBe(200);
    });
  } else {
    it("two servers share one PostgreSQL database: the same event sent to both at once is stored once", async () => {
      const second = await startServer({ target, apiKey });
      const firstClient = clientFor(apiKey);
      const secondClient = Client(apiKey, { baseUrl: `${second.url}/api/v1` });
      const event: EventInputObject = { transaction_id: `shared-${run}`, external_subscription_id: `sub-shared-${run}`, code: "api_calls", timestamp: nowSeconds(), properties: { n: 1 } };
      const answers = await Promise.all(
        Array.from({ length: 20 }, (_, i) => (i % 2 === 0 ? firstClient : secondClient).events.createEvent({ event }).then((r) => r.status)),
      );
      expect(answers).toEqual(new Array(20).fill(200));
      const conflict = await lagoError(secondClient.events.createEvent({ event: { ...event, properties: { n: 2 } } }));
      expect(conflict.status).toBe(422);
      expect((await lago.events.findAllEvents({ external_subscription_id: event.external_subscription_id })).data.meta.total_count).toBe(1);
      expect((await second.stop()).code).toBe(0);
    });
  }

  it("SIGTERM under load: the server drains, exits 0, and every acknowledged event is stored exactly once after a restart", { timeout: 120_000 }, async () => {
    // A separate organization, so the database check covers exactly what this load sent.
    const org = await call<{ api_key: string }>(server.url, "POST", "/admin/v1/organizations", {
      apiKey: adminToken,
      body: { organization: { name: `sigterm-${run}` } },
    });
    expect(org.status).toBe(200);
    const loadKey = org.body.api_key;
    const control: LoadControl = { stop: false };
    const loading = runLoad({ url: server.url, apiKey: loadKey, prefix: `term-${run}`, clients: 12, durationMs: 5_000, maxNewEvents: 50_000, control, conflictEvery: 0 });
    const started = performance.now();
    while ((control.acked ?? 0) < 200 && performance.now() - started < 2_500) await sleep(10);
    await sleep(500 + Math.random() * 500);
    control.killedAt = performance.now();
    // A drain commits at most a few batches: 15 s is plenty (orchestrators send SIGKILL after ~30 s).
    const stopping = performance.now();
    const exit = await server.stop(15_000);
    const stopMs = performance.now() - stopping;
    const load = await loading;
    console.log(
      `[events ${E2E_DB_KIND}] SIGTERM after ${Math.round(control.killedAt - started)} ms of load; exit ${JSON.stringify(exit)} after ${Math.round(stopMs)} ms; load: ${summarize(load)}`,
    );
    // Soft: when the server fails to exit in time (it was SIGKILLed), the checks below still tell
    // whether what it acknowledged survived.
    expect.soft(exit, `the server did not exit on SIGTERM within 15 s:\n${server.logs().slice(-3000)}`).toEqual({ code: 0, signal: null });
    expect(server.logs()).toContain("shutting down");
    expect(server.logLines(50), "no error logged").toEqual([]);
    expect(load.problems, load.problems.join("\n")).toEqual([]);
    expect(load.acked.size).toBeGreaterThan(0);
    if (target.kind === "pglite" && exit.code === 0) expect(fs.existsSync(path.join(target.dataDir, "valueverse.pid")), "DATA_DIR lock released").toBe(false);

    // Restart on the same data: every acknowledged event is there, through the API...
    server = await startServer({ target, apiKey, adminToken });
    lago = clientFor(apiKey);
    const api = await checkViaApi(server.url, loadKey, load.acked);
    expect(api.problems, api.problems.join("\n")).toEqual([]);
    // ...events from before the load too, and the restarted server takes new ones.
    expect((await lago.events.findEvent(`single-${run}`)).status).toBe(200);
    expect((await lago.events.createEvent({ event: { transaction_id: `after-sigterm-${run}`, external_subscription_id: "s", code: "c" } })).status).toBe(200);

    // ...and in the database, stored exactly once (PGlite: opened here once the server is stopped).
    const stopped = await server.stop();
    expect(stopped.code).toBe(0);
    const db = await target.openDb();
    try {
      const check = await checkDatabase(db, { apiKey: loadKey, acked: load.acked, attempted: load.attempted });
      console.log(`[events ${E2E_DB_KIND}] after SIGTERM and restart: ${JSON.stringify({ ...check, storedUnackedIds: undefined, problems: check.problems.length })}`);
      expect(check.problems, check.problems.join("\n")).toEqual([]);
      expect(check.missing).toBe(0);
      expect(check.duplicated).toBe(0);
      expect(api.totalCount).toBe(check.eventRows);
      // Events refused with 503 while shutting down ("retry") were not stored.
      const refusedButStored = check.storedUnackedIds.filter((id) => load.refusedWhileStopping.has(id));
      console.log(`[events ${E2E_DB_KIND}] ${load.refusedWhileStopping.size} events refused with 503 while stopping; ${check.storedUnacked} stored without a 2xx`);
      expect(refusedButStored).toEqual([]);
    } finally {
      await db.close();
    }
  });
});

function countStatuses(statuses: number[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const s of statuses) out[String(s)] = (out[String(s)] ?? 0) + 1;
  return out;
}
