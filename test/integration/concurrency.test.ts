// Concurrent retries and overlapping batches. Several writers and small group-commit batches make
// concurrent requests land in different transactions, so the database (not the in-memory batch)
// has to keep each identity once.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DB_KIND } from "../helpers/db.ts";
import { startTestApp, type TestApp } from "../helpers/app.ts";
import { T0_S, client, json, rollupCount, scalar, storedEvents, uid } from "./support.ts";

let t: TestApp;
let api: ReturnType<typeof client>;

beforeAll(async () => {
  t = await startTestApp({ env: { INGEST_WRITERS: "4", INGEST_BATCH_MAX: "3" } });
  api = client(t);
});
afterAll(async () => {
  await t?.close();
});

describe(`concurrent ingestion on ${DB_KIND}`, () => {
  it("50 concurrent POSTs of the same event store exactly one row", async () => {
    const event = { transaction_id: uid("tx"), external_subscription_id: uid("sub"), code: "calls", timestamp: T0_S, properties: { n: 1 } };
    const responses = await Promise.all(Array.from({ length: 50 }, () => api.postEvent(event)));
    expect(responses.map((r) => r.statusCode)).toEqual(Array(50).fill(200));
    const ids = new Set(responses.map((r) => json(r).event.lago_id));
    expect(ids.size).toBe(1);
    expect(await storedEvents(t.db, event.external_subscription_id)).toHaveLength(1);
    expect(await rollupCount(t.db, event.external_subscription_id)).toBe(1);
  });

  it("50 concurrent POSTs of the same event without timestamp store exactly one row", async () => {
    const event = { transaction_id: uid("tx"), external_subscription_id: uid("sub"), code: "calls" };
    const responses = await Promise.all(Array.from({ length: 50 }, () => api.postEvent(event)));
    expect(responses.map((r) => r.statusCode)).toEqual(Array(50).fill(200));
    expect(await storedEvents(t.db, event.external_subscription_id)).toHaveLength(1);
  });

  it("concurrent conflicting payloads: exactly one wins, every other one gets 422, the winner is what is stored", async () => {
    const sub = uid("sub");
    const base = { transaction_id: uid("tx"), external_subscription_id: sub, code: "calls", timestamp: T0_S };
    const responses = await Promise.all(Array.from({ length: 30 }, (_, i) => api.postEvent({ ...base, properties: { attempt: i } })));
    const winners = responses.filter((r) => r.statusCode === 200);
    const losers = responses.filter((r) => r.statusCode !== 200);
    expect(winners).toHaveLength(1);
    expect(losers).toHaveLength(29);
    for (const r of losers) expect(json(r).error_details).toEqual({ transaction_id: ["value_already_exist"] });
    const stored = await storedEvents(t.db, sub);
    expect(stored).toHaveLength(1);
    expect(stored[0]!.properties).toEqual(json(winners[0]!).event.properties);
    expect(await rollupCount(t.db, sub)).toBe(1);
  });

  it("concurrent conflicting payloads in a mix of single POSTs and batches still store one", async () => {
    const sub = uid("sub");
    const base = { transaction_id: uid("tx"), external_subscription_id: sub, code: "calls", timestamp: T0_S };
    const requests = Array.from({ length: 20 }, (_, i) =>
      i % 2 === 0 ? api.postEvent({ ...base, properties: { v: i } }) : api.postBatch([{ ...base, properties: { v: i } }]),
    );
    const responses = await Promise.all(requests);
    expect(responses.filter((r) => r.statusCode === 200)).toHaveLength(1);
    expect(responses.filter((r) => r.statusCode === 422)).toHaveLength(19);
    expect(await storedEvents(t.db, sub)).toHaveLength(1);
  });

  it("concurrent batches with overlapping ids store each id once; rollups count the distinct events", async () => {
    const sub = uid("sub");
    const distinct = 40;
    const event = (i: number) => ({ transaction_id: `tx-${i}`, external_subscription_id: sub, code: i % 2 ? "calls" : "storage", timestamp: T0_S - (i % 5) * 3600, properties: { i } });
    // Batch k carries ids k*5 … k*5+14 (in a shuffled order): every id is in up to three batches.
    const batches = Array.from({ length: 6 }, (_, k) => {
      const ids = Array.from({ length: 15 }, (_, j) => (k * 5 + j) % distinct);
      return ids.sort((a, b) => ((a * 7 + k) % 11) - ((b * 7 + k) % 11)).map(event);
    });
    const responses = await Promise.all(batches.map((b) => api.postBatch(b)));
    expect(responses.map((r) => r.statusCode)).toEqual(Array(6).fill(200));
    const sent = new Set(batches.flat().map((e) => e.transaction_id));
    const stored = await storedEvents(t.db, sub);
    expect(stored.map((e) => e.transaction_id).sort()).toEqual([...sent].sort());
    expect(await rollupCount(t.db, sub)).toBe(sent.size);
    expect(await rollupCount(t.db, sub, "calls")).toBe([...sent].filter((id) => Number(id.slice(3)) % 2 === 1).length);
    // Every retry answered with the stored event's timestamp.
    for (const r of responses) for (const e of json(r).events) expect(e.external_subscription_id).toBe(sub);
  });

  it("many distinct events sent concurrently are all stored, none twice", async () => {
    const sub = uid("sub");
    const responses = await Promise.all(
      Array.from({ length: 100 }, (_, i) => api.postEvent({ transaction_id: `tx-${i}`, external_subscription_id: sub, code: "calls", timestamp: T0_S - i })),
    );
    expect(responses.every((r) => r.statusCode === 200)).toBe(true);
    expect(await storedEvents(t.db, sub)).toHaveLength(100);
    expect(await rollupCount(t.db, sub)).toBe(100);
    expect(await scalar(t.db, "SELECT count(DISTINCT transaction_id)::text AS n FROM events WHERE external_subscription_id = $1", [sub])).toBe(100);
  });
});
