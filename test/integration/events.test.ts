// The events API against a real database: Lago's shapes, lifetime exactly-once identity, batches,
// hourly rollups, listing and lookup.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DB_KIND } from "../helpers/db.ts";
import { startTestApp, type TestApp } from "../helpers/app.ts";
import { T0, T0_S, client, json, rollupCount, scalar, storedEvents, tableCounts, uid } from "./support.ts";

const BATCH_MAX = 25;
const UUID_SHAPE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const HOUR_S = 3600;

let t: TestApp;
let api: ReturnType<typeof client>;

beforeAll(async () => {
  t = await startTestApp({ env: { INGEST_BATCH_REQUEST_MAX: String(BATCH_MAX) } });
  api = client(t);
});
afterAll(async () => {
  await t?.close();
});

const conflictBody = {
  status: 422,
  error: "Unprocessable Entity",
  code: "validation_errors",
  error_details: { transaction_id: ["value_already_exist"] },
};

describe(`POST /api/v1/events on ${DB_KIND}`, () => {
  it("stores a new event and answers 200 with Lago's EventObject", async () => {
    const tx = uid("tx");
    const sub = uid("sub");
    const before = await tableCounts(t.db);
    const r = await api.postEvent({
      transaction_id: tx,
      external_subscription_id: sub,
      code: "storage",
      timestamp: T0_S - 60,
      properties: { gb: 10, region: "eu" },
      precise_total_amount_cents: "1234.56",
    });
    expect(r.statusCode).toBe(200);
    expect(r.headers["content-type"]).toMatch(/^application\/json/);
    expect(json(r)).toEqual({
      event: {
        lago_id: expect.stringMatching(UUID_SHAPE),
        transaction_id: tx,
        lago_customer_id: null,
        code: "storage",
        timestamp: "2026-03-15T11:59:00.000Z",
        precise_total_amount_cents: "1234.56",
        properties: { gb: 10, region: "eu" },
        lago_subscription_id: null,
        external_subscription_id: sub,
        created_at: new Date(T0).toISOString(),
      },
    });
    expect(await tableCounts(t.db)).toEqual({ events: before.events + 1, identities: before.identities + 1, rollup: before.rollup + 1 });
    expect(await storedEvents(t.db, sub)).toEqual([
      { transaction_id: tx, code: "storage", properties: { gb: 10, region: "eu" }, amount: "1234.56", ts: "2026-03-15 11:59:00+00" },
    ]);
  });

  it("answers a retry with the same payload 200 and stores nothing new", async () => {
    const event = { transaction_id: uid("tx"), external_subscription_id: uid("sub"), code: "calls", timestamp: T0_S, properties: { n: 1 } };
    const first = await api.postEvent(event);
    expect(first.statusCode).toBe(200);
    const before = await tableCounts(t.db);
    // Same payload, keys in another order, timestamp as a string: still the same event.
    const { transaction_id, external_subscription_id } = event;
    const retry = await api.postEvent({ properties: { n: 1 }, timestamp: String(T0_S), code: "calls", external_subscription_id, transaction_id });
    expect(retry.statusCode).toBe(200);
    expect(json(retry).event).toEqual(json(first).event);
    expect(await tableCounts(t.db)).toEqual(before);
    expect(await storedEvents(t.db, event.external_subscription_id)).toHaveLength(1);
    expect(await scalar(t.db, "SELECT count(*)::text AS n FROM events WHERE transaction_id = $1", [event.transaction_id])).toBe(1);
    expect(await rollupCount(t.db, event.external_subscription_id)).toBe(1);
  });

  it("refuses the same identity with another payload (422 value_already_exist) and keeps the stored event", async () => {
    const event = { transaction_id: uid("tx"), external_subscription_id: uid("sub"), code: "calls", timestamp: T0_S, properties: { n: 1 } };
    expect((await api.postEvent(event)).statusCode).toBe(200);
    const stored = await storedEvents(t.db, event.external_subscription_id);
    const before = await tableCounts(t.db);
    for (const change of [{ properties: { n: 2 } }, { code: "other" }, { timestamp: T0_S - 1 }, { precise_total_amount_cents: "1" }, { properties: null }]) {
      const r = await api.postEvent({ ...event, ...change });
      expect(r.statusCode, JSON.stringify(change)).toBe(422);
      expect(json(r)).toEqual(conflictBody);
    }
    expect(await tableCounts(t.db)).toEqual(before);
    expect(await storedEvents(t.db, event.external_subscription_id)).toEqual(stored);
  });

  it("treats the same transaction_id on another subscription as another event", async () => {
    const tx = uid("tx");
    const [subA, subB] = [uid("sub"), uid("sub")];
    const a = await api.postEvent({ transaction_id: tx, external_subscription_id: subA, code: "calls", properties: { n: 1 } });
    const b = await api.postEvent({ transaction_id: tx, external_subscription_id: subB, code: "calls", properties: { n: 2 } });
    expect([a.statusCode, b.statusCode]).toEqual([200, 200]);
    expect(json(a).event.lago_id).not.toBe(json(b).event.lago_id);
    expect(await scalar(t.db, "SELECT count(*)::text AS n FROM events WHERE transaction_id = $1", [tx])).toBe(2);
    expect((await storedEvents(t.db, subA))[0]!.properties).toEqual({ n: 1 });
    expect((await storedEvents(t.db, subB))[0]!.properties).toEqual({ n: 2 });
  });

  it("dates an event without timestamp at the organization's now, and a later retry without timestamp is a duplicate", async () => {
    const event = { transaction_id: uid("tx"), external_subscription_id: uid("sub"), code: "calls" };
    try {
      t.clock.set(T0 + 5 * 60_000);
      const first = await api.postEvent(event);
      expect(first.statusCode).toBe(200);
      expect(json(first).event.timestamp).toBe("2026-03-15T12:05:00.000Z");

      t.clock.advance(2 * 3_600_000); // the retry arrives two hours later
      const retry = await api.postEvent(event);
      expect(retry.statusCode).toBe(200);
      expect(json(retry).event.timestamp).toBe("2026-03-15T12:05:00.000Z");
      expect(await storedEvents(t.db, event.external_subscription_id)).toEqual([
        { transaction_id: event.transaction_id, code: "calls", properties: null, amount: null, ts: "2026-03-15 12:05:00+00" },
      ]);
      expect(await rollupCount(t.db, event.external_subscription_id)).toBe(1);
    } finally {
      t.clock.set(T0);
    }
  });

  it("holds the identity across time partitions: the same id in another month is a conflict, stored once", async () => {
    const event = { transaction_id: uid("tx"), external_subscription_id: uid("sub"), code: "calls" };
    const march = Date.UTC(2026, 2, 10) / 1000;
    const february = Date.UTC(2026, 1, 20) / 1000;
    expect((await api.postEvent({ ...event, timestamp: march })).statusCode).toBe(200);
    const r = await api.postEvent({ ...event, timestamp: february });
    expect(r.statusCode).toBe(422);
    expect(json(r)).toEqual(conflictBody);
    const { rows } = await t.db.query<{ part: string }>("SELECT tableoid::regclass::text AS part FROM events WHERE transaction_id = $1", [
      event.transaction_id,
    ]);
    expect(rows).toEqual([{ part: "events_p2026_03" }]);
    // The February partition was created on demand for the attempt but holds nothing of it.
    expect(await scalar(t.db, "SELECT count(*)::text AS n FROM events_p2026_02 WHERE transaction_id = $1", [event.transaction_id])).toBe(0);
  });

  it("stores an event in a month whose partition did not exist yet", async () => {
    const sub = uid("sub");
    const r = await api.postEvent({ transaction_id: uid("tx"), external_subscription_id: sub, code: "calls", timestamp: Date.UTC(2025, 5, 1) / 1000 });
    expect(r.statusCode).toBe(200);
    expect(json(r).event.timestamp).toBe("2025-06-01T00:00:00.000Z");
    const { rows } = await t.db.query<{ part: string }>("SELECT tableoid::regclass::text AS part FROM events WHERE external_subscription_id = $1", [sub]);
    expect(rows).toEqual([{ part: "events_p2025_06" }]);
  });

  it("keeps a timestamp's microseconds through storage, the response and GET", async () => {
    const event = { transaction_id: uid("tx"), external_subscription_id: uid("sub"), code: "calls", timestamp: `${T0_S - 10}.123456` };
    const r = await api.postEvent(event);
    expect(json(r).event.timestamp).toBe("2026-03-15T11:59:50.123456Z");
    expect((await storedEvents(t.db, event.external_subscription_id))[0]!.ts).toBe("2026-03-15 11:59:50.123456+00");
    const got = await api.get(event.transaction_id);
    expect(got.statusCode).toBe(200);
    expect(json(got).event.timestamp).toBe("2026-03-15T11:59:50.123456Z");
    // and a retry is judged against the exact instant
    expect((await api.postEvent(event)).statusCode).toBe(200);
    expect((await api.postEvent({ ...event, timestamp: `${T0_S - 10}.123457` })).statusCode).toBe(422);
  });

  it("accepts ids of the full 255 characters, any unicode, and reads them back", async () => {
    for (const tx of ["t".repeat(255), "é".repeat(255), "😀".repeat(127), "a/b?c#d%e f+g&h=i"]) {
      const sub = uid("sub");
      const r = await api.postEvent({ transaction_id: tx, external_subscription_id: sub, code: "calls" });
      expect(r.statusCode).toBe(200);
      const got = await api.get(tx, `external_subscription_id=${encodeURIComponent(sub)}`);
      expect(got.statusCode, tx).toBe(200);
      expect(json(got).event.transaction_id).toBe(tx);
    }
  });

  it("accepts numeric ids as their string form", async () => {
    const n = Math.floor(Math.random() * 1e12);
    const sub = uid("sub");
    const r = await api.postEvent({ transaction_id: n, external_subscription_id: sub, code: "calls" });
    expect(r.statusCode).toBe(200);
    expect(json(r).event.transaction_id).toBe(String(n));
    expect((await api.postEvent({ transaction_id: String(n), external_subscription_id: sub, code: "calls" })).statusCode).toBe(200);
    expect(await storedEvents(t.db, sub)).toHaveLength(1);
  });
});

describe(`POST /api/v1/events/batch on ${DB_KIND}`, () => {
  const batchOf = (n: number, sub: string) =>
    Array.from({ length: n }, (_, i) => ({ transaction_id: `${sub}-tx-${i}`, external_subscription_id: sub, code: "calls", timestamp: T0_S - i, properties: { i } }));

  it(`accepts up to the configured maximum (${BATCH_MAX}) and answers the events in order`, async () => {
    const sub = uid("sub");
    const events = batchOf(BATCH_MAX, sub);
    const r = await api.postBatch(events);
    expect(r.statusCode).toBe(200);
    const body = json(r);
    expect(body.events.map((e: { transaction_id: string }) => e.transaction_id)).toEqual(events.map((e) => e.transaction_id));
    expect(body.events[3]).toMatchObject({ external_subscription_id: sub, code: "calls", properties: { i: 3 }, timestamp: "2026-03-15T11:59:57.000Z" });
    expect(await storedEvents(t.db, sub)).toHaveLength(BATCH_MAX);
    expect(await rollupCount(t.db, sub)).toBe(BATCH_MAX);
  });

  it("refuses a batch over the maximum with 413 naming the limit, storing nothing", async () => {
    const sub = uid("sub");
    const r = await api.postBatch(batchOf(BATCH_MAX + 1, sub));
    expect(r.statusCode).toBe(413);
    expect(json(r)).toMatchObject({ status: 413, error: "Payload Too Large", code: "too_many_events" });
    expect(json(r).message).toContain(String(BATCH_MAX));
    expect(await storedEvents(t.db, sub)).toHaveLength(0);
  });

  it("refuses an empty batch with 422", async () => {
    const r = await api.postBatch([]);
    expect(r.statusCode).toBe(422);
    expect(json(r)).toEqual({ status: 422, error: "Unprocessable Entity", code: "validation_errors", error_details: { events: ["must_not_be_empty"] } });
  });

  it("refuses `events` that is not an array with 422", async () => {
    for (const events of [{}, "x", 1, null]) {
      const r = await api.postBatch(events);
      expect(r.statusCode, JSON.stringify(events)).toBe(422);
      expect(json(r).error_details).toEqual({ events: ["must_be_an_array"] });
    }
  });

  it("refuses the whole batch when any event is invalid: errors keyed by index, nothing stored", async () => {
    const sub = uid("sub");
    const events: unknown[] = batchOf(6, sub);
    events[2] = { ...(events[2] as object), code: "" };
    events[4] = { ...(events[4] as object), timestamp: "tomorrow", properties: [1] };
    events[5] = "not an event";
    const before = await tableCounts(t.db);
    const r = await api.postBatch(events);
    expect(r.statusCode).toBe(422);
    expect(json(r)).toEqual({
      status: 422,
      error: "Unprocessable Entity",
      code: "validation_errors",
      error_details: {
        "2": { code: ["value_is_mandatory"] },
        "4": { timestamp: [expect.stringMatching(/^invalid_format/)], properties: ["must_be_an_object"] },
        "5": { event: ["must_be_an_object"] },
      },
    });
    expect(await tableCounts(t.db)).toEqual(before);
  });

  it("accepts the same event twice in one batch and stores it once", async () => {
    const sub = uid("sub");
    const [a, b] = batchOf(2, sub);
    const r = await api.postBatch([a, b, { ...a }]);
    expect(r.statusCode).toBe(200);
    expect(json(r).events).toHaveLength(3);
    expect(json(r).events[2]).toEqual(json(r).events[0]);
    expect(await storedEvents(t.db, sub)).toHaveLength(2);
    expect(await rollupCount(t.db, sub)).toBe(2);
  });

  it("answers a whole batch retried 200 and stores nothing new", async () => {
    const sub = uid("sub");
    const events = batchOf(10, sub);
    expect((await api.postBatch(events)).statusCode).toBe(200);
    const before = await tableCounts(t.db);
    const retry = await api.postBatch(events);
    expect(retry.statusCode).toBe(200);
    expect(json(retry).events).toHaveLength(10);
    expect(await tableCounts(t.db)).toEqual(before);
  });

  it("refuses conflicting payloads inside one batch by index and stores the others", async () => {
    const sub = uid("sub");
    const [a, b, c] = batchOf(3, sub);
    const r = await api.postBatch([a, { ...a, properties: { i: 99 } }, b, { ...b, code: "storage" }, c]);
    expect(r.statusCode).toBe(422);
    const body = json(r);
    expect(body).toMatchObject({ status: 422, error: "Unprocessable Entity", code: "validation_errors" });
    expect(body.error_details).toEqual({ "1": { transaction_id: ["value_already_exist"] }, "3": { transaction_id: ["value_already_exist"] } });
    expect(body.events.map((e: { transaction_id: string }) => e.transaction_id)).toEqual([a!.transaction_id, b!.transaction_id, c!.transaction_id]);
    const stored = await storedEvents(t.db, sub);
    expect(stored.map((e) => [e.transaction_id, e.code, e.properties])).toEqual([
      [a!.transaction_id, "calls", { i: 0 }],
      [b!.transaction_id, "calls", { i: 1 }],
      [c!.transaction_id, "calls", { i: 2 }],
    ]);
    expect(await rollupCount(t.db, sub)).toBe(3);
  });

  it("refuses events conflicting with stored ones by index and stores the others", async () => {
    const sub = uid("sub");
    const [a, b, c, d] = batchOf(4, sub);
    expect((await api.postEvent(a)).statusCode).toBe(200);
    expect((await api.postEvent(c)).statusCode).toBe(200);
    const r = await api.postBatch([b, { ...a, properties: { i: "changed" } }, c, d]);
    expect(r.statusCode).toBe(422);
    expect(json(r).error_details).toEqual({ "1": { transaction_id: ["value_already_exist"] } });
    const stored = await storedEvents(t.db, sub);
    expect(stored.map((e) => [e.transaction_id, e.properties])).toEqual([
      [a!.transaction_id, { i: 0 }],
      [b!.transaction_id, { i: 1 }],
      [c!.transaction_id, { i: 2 }],
      [d!.transaction_id, { i: 3 }],
    ]);
    expect(await rollupCount(t.db, sub)).toBe(4);
  });
});

describe(`hourly rollups on ${DB_KIND}`, () => {
  it("count the distinct events per organization, subscription, code and hour; duplicates excluded", async () => {
    const [s1, s2] = [uid("sub"), uid("sub")];
    const hour = (h: number, s: number) => T0_S - h * HOUR_S + s; // h hours before 12:00, s seconds into it
    const events = [
      { transaction_id: "a", external_subscription_id: s1, code: "calls", timestamp: hour(0, 1) },
      { transaction_id: "b", external_subscription_id: s1, code: "calls", timestamp: hour(0, 3599) },
      { transaction_id: "c", external_subscription_id: s1, code: "calls", timestamp: hour(1, 0) },
      { transaction_id: "d", external_subscription_id: s1, code: "storage", timestamp: hour(0, 5) },
      { transaction_id: "a", external_subscription_id: s2, code: "calls", timestamp: hour(0, 1) },
      { transaction_id: "e", external_subscription_id: s2, code: "calls", timestamp: hour(2, 10) },
    ];
    expect((await api.postBatch(events)).statusCode).toBe(200);
    // Duplicates: the whole batch again, single retries, an inner duplicate; and one conflict.
    expect((await api.postBatch([...events, events[0]])).statusCode).toBe(200);
    for (const e of events) expect((await api.postEvent(e)).statusCode).toBe(200);
    expect((await api.postEvent({ ...events[1], timestamp: hour(3, 0) })).statusCode).toBe(422);

    const { rows } = await t.db.query<{ sub: string; code: string; hour: string; n: string }>(
      // Summed per group: a group may be spread over several rows (one per writer slot).
      `SELECT external_subscription_id AS sub, code, hour::text AS hour, sum(events_count)::text AS n
         FROM event_counts_hourly WHERE external_subscription_id IN ($1, $2) GROUP BY 1, 2, 3 ORDER BY 1, 2, 3`,
      [s1, s2],
    );
    const expected = [
      { sub: s1, code: "calls", hour: "2026-03-15 11:00:00+00", n: "1" },
      { sub: s1, code: "calls", hour: "2026-03-15 12:00:00+00", n: "2" },
      { sub: s1, code: "storage", hour: "2026-03-15 12:00:00+00", n: "1" },
      { sub: s2, code: "calls", hour: "2026-03-15 10:00:00+00", n: "1" },
      { sub: s2, code: "calls", hour: "2026-03-15 12:00:00+00", n: "1" },
    ].sort((x, y) => (x.sub + x.code + x.hour < y.sub + y.code + y.hour ? -1 : 1));
    expect(rows).toEqual(expected);

    // And they agree with the raw events, group by group.
    const raw = await t.db.query<{ sub: string; code: string; hour: string; n: string }>(
      `SELECT external_subscription_id AS sub, code, date_trunc('hour', ts)::text AS hour, count(*)::text AS n
         FROM events WHERE external_subscription_id IN ($1, $2) GROUP BY 1, 2, 3 ORDER BY 1, 2, 3`,
      [s1, s2],
    );
    expect(raw.rows).toEqual(rows);
  });

  it("match the raw events for the whole organization after everything this file sent", async () => {
    const mismatches = await scalar(
      t.db,
      `SELECT count(*)::text AS n FROM (
         SELECT org_id, external_subscription_id, code, date_trunc('hour', ts) AS hour, count(*) AS n FROM events GROUP BY 1, 2, 3, 4
       ) e FULL JOIN (
         SELECT org_id, external_subscription_id, code, hour, sum(events_count) AS events_count FROM event_counts_hourly GROUP BY 1, 2, 3, 4
       ) r USING (org_id, external_subscription_id, code, hour)
       WHERE e.n IS DISTINCT FROM r.events_count`,
    );
    expect(mismatches).toBe(0);
    const counts = await tableCounts(t.db);
    expect(counts.rollup).toBe(counts.events);
    expect(counts.identities).toBe(counts.events);
  });
});

describe(`GET /api/v1/events on ${DB_KIND}`, () => {
  const sub = uid("sub");
  const other = uid("sub");
  // 5 "calls" one hour apart (10:00 … 06:00 — newest first), 2 "storage", and one on another subscription.
  const calls = Array.from({ length: 5 }, (_, i) => ({ transaction_id: `call-${i}`, external_subscription_id: sub, code: "calls", timestamp: T0_S - (2 + i) * HOUR_S }));
  const storage = [0, 1].map((i) => ({ transaction_id: `st-${i}`, external_subscription_id: sub, code: "storage", timestamp: T0_S - (2 + i) * HOUR_S + 30 }));

  beforeAll(async () => {
    const r = await api.postBatch([...calls, ...storage, { transaction_id: "x", external_subscription_id: other, code: "calls", timestamp: T0_S }]);
    expect(r.statusCode).toBe(200);
  });

  it("filters by external_subscription_id, newest first, with Lago's pagination meta", async () => {
    const r = await api.list(`external_subscription_id=${sub}`);
    expect(r.statusCode).toBe(200);
    const body = json(r);
    expect(body.meta).toEqual({ current_page: 1, next_page: null, prev_page: null, total_pages: 1, total_count: 7 });
    expect(body.events.map((e: { transaction_id: string }) => e.transaction_id)).toEqual(["st-0", "call-0", "st-1", "call-1", "call-2", "call-3", "call-4"]);
    expect(body.events[1]).toMatchObject({ external_subscription_id: sub, code: "calls", timestamp: "2026-03-15T10:00:00.000Z", lago_customer_id: null });
  });

  it("filters by code", async () => {
    const body = json(await api.list(`external_subscription_id=${sub}&code=storage`));
    expect(body.events.map((e: { transaction_id: string }) => e.transaction_id)).toEqual(["st-0", "st-1"]);
    expect(body.meta.total_count).toBe(2);
  });

  it("filters by timestamp_from and timestamp_to (inclusive)", async () => {
    const body = json(await api.list(`external_subscription_id=${sub}&code=calls&timestamp_from=2026-03-15T07:00:00Z&timestamp_to=2026-03-15T09:00:00Z`));
    expect(body.events.map((e: { transaction_id: string }) => e.transaction_id)).toEqual(["call-1", "call-2", "call-3"]);
    expect(body.meta.total_count).toBe(3);
    const fromOnly = json(await api.list(`external_subscription_id=${sub}&timestamp_from=2026-03-15T09:00:00Z`));
    expect(fromOnly.meta.total_count).toBe(4);
    const toOnly = json(await api.list(`external_subscription_id=${sub}&timestamp_to=2026-03-15`));
    expect(toOnly.meta.total_count).toBe(0);
  });

  it("paginates with page and per_page", async () => {
    const q = `external_subscription_id=${sub}&per_page=3`;
    const p1 = json(await api.list(`${q}&page=1`));
    const p2 = json(await api.list(`${q}&page=2`));
    const p3 = json(await api.list(`${q}&page=3`));
    expect(p1.meta).toEqual({ current_page: 1, next_page: 2, prev_page: null, total_pages: 3, total_count: 7 });
    expect(p2.meta).toEqual({ current_page: 2, next_page: 3, prev_page: 1, total_pages: 3, total_count: 7 });
    expect(p3.meta).toEqual({ current_page: 3, next_page: null, prev_page: 2, total_pages: 3, total_count: 7 });
    const ids = [...p1.events, ...p2.events, ...p3.events].map((e: { transaction_id: string }) => e.transaction_id);
    expect(ids).toEqual(["st-0", "call-0", "st-1", "call-1", "call-2", "call-3", "call-4"]);
    const beyond = json(await api.list(`${q}&page=9`));
    expect(beyond.events).toEqual([]);
    expect(beyond.meta).toMatchObject({ current_page: 9, next_page: null, total_count: 7 });
  });

  it("answers an empty page for a subscription without events", async () => {
    const body = json(await api.list(`external_subscription_id=${uid("none")}`));
    expect(body).toEqual({ events: [], meta: { current_page: 1, next_page: null, prev_page: null, total_pages: 0, total_count: 0 } });
  });

  it.each([
    ["page=0", ["page"]],
    ["page=-1", ["page"]],
    ["page=two", ["page"]],
    ["per_page=0", ["per_page"]],
    ["per_page=1001", ["per_page"]],
    ["per_page=1.5", ["per_page"]],
    ["timestamp_from=yesterday", ["timestamp_from"]],
    ["timestamp_to=2026-13-45", ["timestamp_to"]],
    ["timestamp_from=0000-01-01", ["timestamp_from"]],
    ["timestamp_to=9999-12-31T23:00:00-05:00", ["timestamp_to"]],
    ["code=a&code=b", ["code"]],
    ["external_subscription_id=%00", ["external_subscription_id"]],
    [`external_subscription_id=${"s".repeat(256)}`, ["external_subscription_id"]],
    ["page=0&per_page=x&timestamp_from=x&timestamp_to=y", ["page", "per_page", "timestamp_from", "timestamp_to"]],
  ])("refuses %s with 422 naming the parameter", async (query, names) => {
    const r = await api.list(query);
    expect(r.statusCode).toBe(422);
    const body = json(r);
    expect(body).toMatchObject({ status: 422, error: "Unprocessable Entity", code: "validation_errors" });
    expect(Object.keys(body.error_details).sort()).toEqual([...names].sort());
  });
});

describe(`GET /api/v1/events/:transaction_id on ${DB_KIND}`, () => {
  it("finds a stored event", async () => {
    const event = { transaction_id: uid("tx"), external_subscription_id: uid("sub"), code: "calls", timestamp: T0_S - 5, properties: { a: [1, { b: 2 }] }, precise_total_amount_cents: "0.001" };
    const posted = json(await api.postEvent(event)).event;
    const r = await api.get(event.transaction_id);
    expect(r.statusCode).toBe(200);
    expect(json(r)).toEqual({ event: posted });
  });

  it("answers 404 with Lago's body for an unknown transaction_id", async () => {
    const r = await api.get(uid("unknown"));
    expect(r.statusCode).toBe(404);
    expect(json(r)).toEqual({ status: 404, error: "Not Found", code: "event_not_found" });
  });

  it("picks the subscription given by external_subscription_id when the id is shared", async () => {
    const tx = uid("tx");
    const [s1, s2] = [uid("sub"), uid("sub")];
    await api.postEvent({ transaction_id: tx, external_subscription_id: s1, code: "calls", timestamp: T0_S - 100, properties: { s: 1 } });
    await api.postEvent({ transaction_id: tx, external_subscription_id: s2, code: "calls", timestamp: T0_S - 50, properties: { s: 2 } });
    expect(json(await api.get(tx)).event.external_subscription_id).toBe(s1); // the earliest
    expect(json(await api.get(tx, `external_subscription_id=${s2}`)).event.properties).toEqual({ s: 2 });
    const r = await api.get(tx, `external_subscription_id=${uid("sub")}`);
    expect(r.statusCode).toBe(404);
  });
});
