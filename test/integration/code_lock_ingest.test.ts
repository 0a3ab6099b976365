// A metric's rollup rebuild holds its code's lock exclusively (seconds on a large code). Ingest
// must not stall behind it: events of other codes, even in the same batch request, commit at once;
// the busy code's events wait aside and commit, exactly once, when the lock is released.
// PostgreSQL only: on PGlite (one connection) a transaction holding the lock blocks every statement,
// so there is no "other code" to keep flowing.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CODE_LOCK_KEY } from "../../src/modules/ingest/store.ts";
import { DB_KIND } from "../helpers/db.ts";
import { startTestApp, type TestApp } from "../helpers/app.ts";
import { T0_S, client, holdTransaction, json, scalar, storedEvents, uid, waitFor } from "./support.ts";

let t: TestApp;
let orgId: number;
beforeAll(async () => {
  t = await startTestApp({ env: { INGEST_WRITERS: "2" } });
  orgId = (await t.app.orgs.authenticate(t.apiKey))!;
});
afterAll(async () => {
  await t?.close();
});

/** Holds the code's lock exclusively in a transaction of its own, as rebuildMetricRollups does. */
const holdCodeLock = (code: string) => holdTransaction(t.db, `SELECT pg_advisory_xact_lock(${CODE_LOCK_KEY("$1::int", "$2::text")})`, [orgId, code]);

const waiting = async () => (await t.app.metrics.registry.getSingleMetric("billing_ingest_code_lock_waiting_events")!.get()).values[0]?.value ?? -1;

describe.skipIf(DB_KIND === "pglite")("ingest while a code's lock is held", () => {
  it("commits the other codes at once, the busy code's events once the lock is released, each exactly once", async () => {
    const api = client(t);
    const sub = uid("sub");
    const busy = uid("busy");
    const free = uid("free");
    const ev = (tx: string, code: string) => ({ transaction_id: tx, external_subscription_id: sub, code, timestamp: T0_S });
    expect((await api.postEvent(ev("warm", free))).statusCode).toBe(200);

    const lock = await holdCodeLock(busy);
    let mixedAnswered = false;
    let mixed: ReturnType<typeof api.postBatch>;
    let busyAlone: ReturnType<typeof api.postEvent>;
    try {
      mixed = api.postBatch([ev("m-busy-1", busy), ev("m-free-1", free), ev("m-busy-2", busy)]);
      void mixed.then(() => (mixedAnswered = true));
      busyAlone = api.postEvent(ev("s-busy", busy));
      // A request for another code answers while the lock is held ...
      const other = await api.postEvent(ev("s-free", free));
      expect(other.statusCode).toBe(200);
      // ... and the other code's events of the mixed batch are stored already; the busy code's are not.
      await waitFor(async () => (await storedEvents(t.db, sub)).some((e) => e.transaction_id === "m-free-1"), "the mixed batch's free event");
      expect((await storedEvents(t.db, sub)).filter((e) => e.code === busy)).toEqual([]);
      expect(mixedAnswered).toBe(false);
      // The busy events wait aside, and the gauge shows them.
      await waitFor(async () => (await waiting()) > 0, "events set aside in the gauge");
      await new Promise((r) => setTimeout(r, 300));
      expect(mixedAnswered).toBe(false);
    } finally {
      await lock.release();
    }
    const answer = await mixed!;
    expect(answer.statusCode, answer.body).toBe(200);
    expect(json(answer).events.map((e: { transaction_id: string }) => e.transaction_id)).toEqual(["m-busy-1", "m-free-1", "m-busy-2"]);
    expect((await busyAlone!).statusCode).toBe(200);
    expect(await waiting()).toBe(0);
    // A retry after the release is a duplicate: nothing new.
    expect((await api.postEvent(ev("m-busy-1", busy))).statusCode).toBe(200);

    const stored = (await storedEvents(t.db, sub)).map((e) => `${e.code === busy ? "busy" : "free"}:${e.transaction_id}`);
    expect(stored.sort()).toEqual(["busy:m-busy-1", "busy:m-busy-2", "busy:s-busy", "free:m-free-1", "free:s-free", "free:warm"]);
    // The hourly counts saw each event once.
    const counted = await scalar(
      t.db,
      "SELECT sum(events_count)::text AS n FROM event_counts_hourly WHERE org_id = $1 AND external_subscription_id = $2",
      [orgId, sub],
    );
    expect(counted).toBe(6);
  });
});
