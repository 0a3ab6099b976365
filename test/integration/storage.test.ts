// Storage efficiency (migration 0015, slimOldPartitions): the 32-bit transaction hash (existing
// identities converted by the migration), per-partition query indexes, and old partitions slimmed
// to a deduplicated (org, code, subscription) btree plus BRIN on time, with reads, late events and
// duplicate detection still working on them.
import { afterEach, describe, expect, it } from "vitest";
import type { Db } from "../../src/db/db.ts";
import { listMigrations, migrate } from "../../src/db/migrate.ts";
import { openPglite } from "../../src/db/pglite.ts";
import { openPostgres } from "../../src/db/postgres.ts";
import { slimOldPartitions } from "../../src/modules/ingest/index.ts";
import { TX_HASH } from "../../src/modules/ingest/store.ts";
import { startTestApp, type TestApp } from "../helpers/app.ts";
import { createPostgresDatabase, DB_KIND, TEST_DATABASE_URL } from "../helpers/db.ts";
import { client, json, scalar, uid } from "./support.ts";

const T = (iso: string) => Date.parse(iso) / 1000;
const indexesOf = async (db: Db, table: string) =>
  (
    await db.query<{ name: string }>(
      "SELECT c.relname AS name FROM pg_index x JOIN pg_class c ON c.oid = x.indexrelid WHERE x.indrelid = $1::regclass ORDER BY 1",
      [table],
    )
  ).rows.map((r) => r.name);

let t: TestApp | undefined;
afterEach(async () => {
  await t?.close();
  t = undefined;
});

describe(`storage efficiency on ${DB_KIND}`, () => {
  it("slims an old partition to a deduplicated subscription index and BRIN on time; reads, late events and duplicates still work", async () => {
    t = await startTestApp(); // wall clock 2026-03-15T12:00Z
    const api = client(t);
    const code = uid("c");
    const [s1, s2] = [uid("sub"), uid("sub")];
    const shared = uid("tx");
    const old = { transaction_id: shared, external_subscription_id: s1, code, timestamp: T("2026-01-20T10:00:00.123456Z"), properties: { n: 1 } };
    expect((await api.postEvent(old)).statusCode).toBe(200);
    const second = { ...old, external_subscription_id: s2, timestamp: T("2026-01-21T10:00:00Z"), properties: { n: 2 } };
    expect((await api.postEvent(second)).statusCode).toBe(200);
    expect((await api.postEvent({ ...old, transaction_id: uid("tx"), timestamp: T("2026-03-10T10:00:00Z") })).statusCode).toBe(200);
    const before = json(await api.get(shared)).event;

    expect(await indexesOf(t.db, "events_p2026_01")).toEqual(["events_p2026_01_main_idx", "events_p2026_01_recent_idx"]);
    expect(await slimOldPartitions(t.db, t.clock)).toEqual(["events_p2026_01_recent_idx"]);
    expect(await indexesOf(t.db, "events_p2026_01")).toEqual(["events_p2026_01_sub_idx", "events_p2026_01_ts_brin"]);
    expect(await indexesOf(t.db, "events_p2026_03")).toEqual(["events_p2026_03_main_idx", "events_p2026_03_recent_idx"]);
    expect(await slimOldPartitions(t.db, t.clock)).toEqual([]); // idempotent
    expect(await indexesOf(t.db, "events_p2026_01")).toEqual(["events_p2026_01_sub_idx", "events_p2026_01_ts_brin"]);

    // Lookups by transaction id (the earliest, or the subscription's) and lists over the slimmed partition.
    expect(json(await api.get(shared))).toEqual({ event: before });
    expect(json(await api.get(shared, `external_subscription_id=${s2}`)).event.properties).toEqual({ n: 2 });
    const listed = json(await api.list(`external_subscription_id=${s1}&code=${code}&timestamp_from=2026-01-01T00:00:00Z&timestamp_to=2026-01-31T00:00:00Z`));
    expect(listed.events.map((e: { transaction_id: string }) => e.transaction_id)).toEqual([shared]);

    // A late event still goes into the slimmed partition; a retry stays one event; a conflict is refused.
    const late = { ...old, transaction_id: uid("tx"), timestamp: T("2026-01-25T00:00:00Z") };
    expect((await api.postEvent(late)).statusCode).toBe(200);
    expect((await api.postEvent(old)).statusCode).toBe(200);
    expect((await api.postEvent({ ...old, properties: { n: 9 } })).statusCode).toBe(422);
    expect(await scalar(t.db, "SELECT count(*) AS n FROM events_p2026_01 WHERE code = $1", [code])).toBe(3);
    expect(json(await api.get(late.transaction_id)).event.timestamp).toBe("2026-01-25T00:00:00.000Z");
  });

  it("migration 0015 converts stored identities to the 32-bit transaction hash and indexes existing partitions", async () => {
    let db: Db;
    let drop = async () => {};
    if (TEST_DATABASE_URL) {
      const created = await createPostgresDatabase(TEST_DATABASE_URL);
      db = openPostgres({ url: created.url, size: 2, maxOverflow: 0, timeoutMs: 10_000, recycleMs: 60_000 });
      drop = created.drop;
    } else {
      db = await openPglite();
    }
    try {
      await migrate(db, listMigrations().filter((m) => m.version < 15));
      // The layout before 0015: the 64-bit hash, an index attached to the partitioned table.
      await db.query("CREATE TABLE events_p2026_01 PARTITION OF events FOR VALUES FROM ('2026-01-01') TO ('2026-02-01')");
      const txs = ["tx-a", "tx-b", "tx-é", "tx-" + "z".repeat(200)];
      for (const [i, tx] of txs.entries()) {
        await db.query(
          `INSERT INTO event_identities (org_id, tx_hash, key_digest, payload_hash, ts, code)
           VALUES (1, ('x' || left(md5($1::text), 16))::bit(64)::int8, md5($1::text)::uuid, $2, '2026-01-05', 'c')`,
          [tx, i],
        );
      }
      expect(await migrate(db)).toContain(15);
      for (const tx of txs) {
        expect(await scalar(db, `SELECT count(*) AS n FROM event_identities WHERE org_id = 1 AND tx_hash = ${TX_HASH("$1::text")}`, [tx])).toBe(1);
      }
      expect(await indexesOf(db, "events_p2026_01")).toEqual(["events_p2026_01_main_idx"]);
      expect(await scalar(db, "SELECT count(*) AS n FROM pg_class WHERE relname = 'events_org_metric_time_idx'")).toBe(0);
    } finally {
      await db.close();
      await drop();
    }
  });
});
