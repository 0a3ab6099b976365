// The crash test: SIGKILL the real server in the middle of an ingest load, restart it on the same
// data, and prove that every event acknowledged with a 2xx before the kill is stored exactly once
// (database and API), that nothing is stored twice, that hourly rollups agree with the raw events,
// and that the restarted server takes new events. Runs on embedded PGlite (a DATA_DIR), or on
// PostgreSQL (a fresh database) when TEST_DATABASE_URL is set.
import crypto from "node:crypto";
import { afterAll, describe, expect, it } from "vitest";
import { call, mapConcurrent } from "./helpers/http.ts";
import { identityOf, runLoad, summarize, type EventPayload, type LoadControl, type LoadReport } from "./helpers/load.ts";
import { createDataTarget, E2E_DB_KIND, killAllServers, randomKey, sleep, startServer, type DataTarget } from "./helpers/server.ts";
import { checkDatabase, checkViaApi } from "./helpers/verify.ts";

const LOAD_MS = 5_000;
const CLIENTS = 12;

describe(`crash test: kill -9 under load, restart, exactly once (${E2E_DB_KIND})`, () => {
  let target: DataTarget | undefined;

  afterAll(async () => {
    await killAllServers();
    await target?.cleanup();
  });

  it("stores every acknowledged event exactly once after SIGKILL and a restart", { timeout: 150_000 }, async () => {
    target = await createDataTarget();
    const apiKey = randomKey();
    const run = crypto.randomBytes(3).toString("hex");
    const log = (msg: string) => console.log(`[crash ${E2E_DB_KIND}] ${msg}`);

    // 1. A server on fresh data, and a bounded load against it.
    const first = await startServer({ target, apiKey });
    log(`server ready after ${Math.round(first.readyAfterMs!)} ms (pid ${first.pid}, ${first.url})`);
    const control: LoadControl = { stop: false };
    const loading = runLoad({ url: first.url, apiKey, prefix: `crash-${run}`, clients: CLIENTS, durationMs: LOAD_MS, maxNewEvents: 100_000, control });

    // 2. SIGKILL in the middle of it: at a random moment 2-3 s into the load (later if it is slow to
    // get going), while every client has a request in flight.
    const started = performance.now();
    const killAt = 2_000 + Math.random() * 1_000;
    while ((control.acked ?? 0) < 200 && performance.now() - started < LOAD_MS / 2) await sleep(10);
    await sleep(Math.max(0, killAt - (performance.now() - started)));
    const ackedAtKill = control.acked ?? 0;
    control.killedAt = performance.now();
    const killed = await first.kill();
    const load: LoadReport = await loading;
    log(`killed at ${Math.round(control.killedAt - started)} ms with ${ackedAtKill} events acknowledged; load: ${summarize(load)}`);

    expect(killed.signal).toBe("SIGKILL");
    expect(load.problems, load.problems.join("\n")).toEqual([]);
    expect(load.noAnswerBeforeKill).toBe(0);
    expect(load.noAnswer, "requests were in flight when the server was killed").toBeGreaterThan(0);
    expect(load.acked.size).toBeGreaterThanOrEqual(100);
    expect(load.retriesAcked, "acknowledged events were retried and answered 200").toBeGreaterThan(0);
    expect(load.conflictsRefused, "conflicting payloads were refused with 422").toBeGreaterThan(0);
    expect(first.logLines(50), "no error logged by the server").toEqual([]);

    // 3. On PostgreSQL the database can be read as the crash left it, before any restart.
    if (target.kind === "postgres") {
      const db = await target.openDb();
      try {
        const atCrash = await checkDatabase(db, { apiKey, acked: load.acked, attempted: load.attempted });
        log(`database as the crash left it: ${JSON.stringify({ ...atCrash, storedUnackedIds: undefined, problems: atCrash.problems.length })}`);
        expect(atCrash.problems, atCrash.problems.join("\n")).toEqual([]);
        expect(atCrash.missing).toBe(0);
        expect(atCrash.duplicated).toBe(0);
      } finally {
        await db.close();
      }
    }

    // 4. Restart on the same data (the server recovers the database and the stale DATA_DIR lock).
    const second = await startServer({ target, apiKey });
    log(`restarted, ready after ${Math.round(second.readyAfterMs!)} ms`);

    // Every acknowledged event is there, as sent, through GET /api/v1/events/:transaction_id.
    const api = await checkViaApi(second.url, apiKey, load.acked);
    expect(api.problems, api.problems.join("\n")).toEqual([]);

    // Events sent without a 2xx (in flight at the kill) may or may not be stored...
    const unacked = [...load.attempted].filter(([id]) => !load.acked.has(id)).map(([, e]) => e);
    const storedBefore = await mapConcurrent(unacked, 8, async (e) => {
      const r = await call(second.url, "GET", eventPath(e), { apiKey });
      expect([200, 404]).toContain(r.status);
      return r.status === 200;
    });
    const unackedStored = storedBefore.filter(Boolean).length;
    const listed = await call<{ meta: { total_count: number } }>(second.url, "GET", "/api/v1/events?per_page=5", { apiKey });
    expect(listed.status).toBe(200);
    expect(listed.body.meta.total_count).toBe(load.acked.size + unackedStored);
    log(`after restart: ${load.acked.size} acknowledged events found; of ${unacked.length} unacknowledged, ${unackedStored} stored`);

    // ...and a client that retries them all now gets 200 for each (stored once, whichever way).
    for (let i = 0; i < unacked.length; i += 50) {
      const r = await call(second.url, "POST", "/api/v1/events/batch", { apiKey, body: { events: unacked.slice(i, i + 50) } });
      expect(r.status, JSON.stringify(r.body)).toBe(200);
    }
    // Retrying acknowledged events after the restart is still a success that stores nothing new.
    const sample = [...load.acked.values()].filter((_, i) => i % 25 === 0);
    for (const e of sample.slice(0, 40)) {
      const r = await call(second.url, "POST", "/api/v1/events", { apiKey, body: { event: e } });
      expect(r.status, JSON.stringify(r.body)).toBe(200);
    }

    // The restarted server takes new events.
    const fresh: EventPayload[] = Array.from({ length: 11 }, (_, i) => ({
      transaction_id: `after-restart-${run}-${i}`,
      external_subscription_id: `crash-${run}_sub_0`,
      code: "api_calls",
      timestamp: Number((Date.now() / 1000).toFixed(3)),
      properties: { after: true, i },
    }));
    const one = await call(second.url, "POST", "/api/v1/events", { apiKey, body: { event: fresh[0] } });
    expect(one.status, JSON.stringify(one.body)).toBe(200);
    const batch = await call(second.url, "POST", "/api/v1/events/batch", { apiKey, body: { events: fresh.slice(1) } });
    expect(batch.status, JSON.stringify(batch.body)).toBe(200);
    for (const e of fresh) expect((await call(second.url, "GET", eventPath(e), { apiKey })).status).toBe(200);

    const stopped = await second.stop();
    expect(stopped, second.logs().slice(-2000)).toEqual({ code: 0, signal: null });
    expect(second.logLines(50), "no error logged by the restarted server").toEqual([]);

    // 5. Straight in the database (PGlite: the data dir opened here, now that no server holds it):
    // everything sent is stored exactly once, as sent, with rollups that match.
    const everything = new Map(load.attempted);
    const acknowledged = new Map(load.attempted); // by now every attempted event got a 200
    for (const e of fresh) {
      everything.set(identityOf(e), e);
      acknowledged.set(identityOf(e), e);
    }
    const db = await target.openDb();
    try {
      const final = await checkDatabase(db, { apiKey, acked: acknowledged, attempted: everything });
      log(`database after restart: ${JSON.stringify({ ...final, storedUnackedIds: undefined, problems: final.problems.length })}`);
      expect(final.problems, final.problems.join("\n")).toEqual([]);
      expect(final.missing).toBe(0);
      expect(final.duplicated).toBe(0);
      expect(final.eventRows).toBe(everything.size);
      expect(final.identityRows).toBe(everything.size);
      expect(final.rollupSum).toBe(everything.size);
    } finally {
      await db.close();
    }
  });
});

function eventPath(e: EventPayload): string {
  return `/api/v1/events/${encodeURIComponent(e.transaction_id)}?external_subscription_id=${encodeURIComponent(e.external_subscription_id)}`;
}
