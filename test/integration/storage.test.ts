// Storage efficiency (migration 0015, slimOldPartitions): the 32-bit transaction hash (existing
// identities converted by the migration), per-partition query indexes, and old partitions slimmed
// to a deduplicated (org, code, subscription) btree plus BRIN on time, with reads, late events and
// duplicate detection still working on them; migration 0019 (64-bit identity key without code,
// events reordered) on existing data, and a digest-key match never taken for a retry.
import { afterEach, describe, expect, it } from "vitest";
import type { Db } from "../../src/db/db.ts";
import { listMigrations, migrate } from "../../src/db/migrate.ts";
import { openPglite } from "../../src/db/pglite.ts";
import { openPostgres } from "../../src/db/postgres.ts";
import { slimOldPartitions } from "../../src/modules/ingest/index.ts";
import { validateEvent } from "../../src/modules/ingest/core/event.ts";
import { KEY_DIGEST, KEY_HASH, TX_HASH } from "../../src/modules/ingest/store.ts";
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
  it("migration 0019 narrows stored identities and reorders events: retries, conflicts, reads and lago ids of earlier events still work", async () => {
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
      await migrate(db, listMigrations().filter((m) => m.version < 19));
      // Events stored before 0019 (organization 1, the first the app creates): rows and identities
      // as the ingest statement of that layout wrote them (128-bit digest, code).
      await db.query("CREATE TABLE events_p2026_03 PARTITION OF events FOR VALUES FROM ('2026-03-01') TO ('2026-04-01')");
      await db.query("CREATE INDEX events_p2026_03_main_idx ON events_p2026_03 (org_id, code, external_subscription_id, ts)");
      await db.query("CREATE INDEX events_p2026_03_recent_idx ON events_p2026_03 (org_id, ts)");
      const window = { nowMs: Date.parse("2026-03-15T12:00:00Z"), oldestMs: null, retentionDays: 0 };
      const raws = [
        { transaction_id: "tx-shared", external_subscription_id: "s1", code: "calls", timestamp: T("2026-03-02T10:00:00.123456Z"), properties: { n: 1 } },
        { transaction_id: "tx-shared", external_subscription_id: "s2", code: "calls", timestamp: T("2026-03-03T10:00:00Z"), properties: { n: 2 } },
        { transaction_id: "tx-é", external_subscription_id: "s-ü", code: "calls", timestamp: T("2026-03-04T10:00:00Z") },
      ];
      for (const raw of raws) {
        const v = validateEvent(raw, 1, window);
        if (!v.ok) throw new Error(JSON.stringify(v.errors));
        const e = v.event;
        const ts = new Date(e.tsMicros / 1000).toISOString().replace("Z", String(e.tsMicros % 1000).padStart(3, "0") + "Z");
        await db.query(
          `INSERT INTO events (org_id, ts, code, external_subscription_id, transaction_id, properties, created_at)
           VALUES (1, $1, $2, $3, $4, $5::jsonb, '2026-03-05')`,
          [ts, e.code, e.subscriptionId, e.transactionId, e.propertiesJson],
        );
        await db.query(
          `INSERT INTO event_identities (org_id, tx_hash, key_digest, payload_hash, ts, code)
           VALUES (1, ${TX_HASH("$1::text")}, ${KEY_DIGEST("$2::text", "$1::text")}, $3, $4, $5)`,
          [e.transactionId, e.subscriptionId, e.payloadHash, ts, e.code],
        );
      }
      expect(await migrate(db)).toContain(19);
      const columns = await db.query<{ name: string }>(
        "SELECT attname AS name FROM pg_attribute WHERE attrelid = 'event_identities'::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum",
      );
      expect(columns.rows.map((r) => r.name)).toEqual(["org_id", "tx_hash", "key_hash", "payload_hash", "ts"]);
      const columnsOf = async (table: string) =>
        (
          await db.query<{ name: string }>(
            "SELECT attname AS name FROM pg_attribute WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum",
            [table],
          )
        ).rows.map((r) => r.name);
      // events reordered (no padding); the existing partition moved under the new parent as it was.
      const reordered = ["ts", "created_at", "org_id", "code", "external_subscription_id", "transaction_id", "properties", "precise_total_amount_cents"];
      expect(await columnsOf("events")).toEqual(reordered);
      expect((await columnsOf("events_p2026_03"))[0]).toBe("org_id");
      expect(await scalar(db, "SELECT count(*) AS n FROM pg_inherits WHERE inhparent = 'events'::regclass")).toBe(1);
      expect(await indexesOf(db, "events_p2026_03")).toEqual(["events_p2026_03_main_idx", "events_p2026_03_recent_idx"]);
      for (const raw of raws) {
        const n = await scalar(
          db,
          `SELECT count(*) AS n FROM event_identities WHERE org_id = 1 AND tx_hash = ${TX_HASH("$1::text")} AND key_hash = ${KEY_HASH("$2::text", "$1::text")}`,
          [raw.transaction_id, raw.external_subscription_id],
        );
        expect(n).toBe(1);
      }

      t = await startTestApp({ db });
      expect(await scalar(db, "SELECT min(id) AS n FROM organizations")).toBe(1);
      const api = client(t);
      const lagoId = async (sub: string, tx: string) =>
        (await db.query<{ d: string }>(`SELECT ${KEY_DIGEST("$1::text", "$2::text")}::text AS d`, [sub, tx])).rows[0]!.d;
      // Reads: the earliest event of the transaction id, or the subscription's; lago ids as before.
      const first = json(await api.get("tx-shared")).event;
      expect(first).toMatchObject({ external_subscription_id: "s1", timestamp: "2026-03-02T10:00:00.123Z", lago_id: await lagoId("s1", "tx-shared") });
      expect(json(await api.get("tx-shared", "external_subscription_id=s2")).event.properties).toEqual({ n: 2 });
      expect(json(await api.get("tx-é", "external_subscription_id=s-ü")).event.lago_id).toBe(await lagoId("s-ü", "tx-é"));
      // A retry of a stored event stores nothing and answers its lago id; another payload is refused.
      const retry = await api.postEvent(raws[0]);
      expect(retry.statusCode, retry.body).toBe(200);
      expect(json(retry).event.lago_id).toBe(first.lago_id);
      expect((await api.postBatch([raws[1], raws[2]])).statusCode).toBe(200);
      const conflict = await api.postEvent({ ...raws[1], properties: { n: 3 } });
      expect(conflict.statusCode).toBe(422);
      expect(json(conflict).error_details).toEqual({ transaction_id: ["value_already_exist"] });
      expect(await scalar(db, "SELECT count(*) AS n FROM events")).toBe(3);
      expect(await scalar(db, "SELECT count(*) AS n FROM event_identities")).toBe(3);
      // New events go in under the new layout: into the moved partition, and into a new one.
      expect((await api.postEvent({ ...raws[0], transaction_id: "tx-new" })).statusCode).toBe(200);
      const february = { ...raws[0], transaction_id: "tx-feb", timestamp: T("2026-02-10T10:00:00Z"), properties: { n: 5 } };
      expect((await api.postEvent(february)).statusCode).toBe(200);
      expect(await columnsOf("events_p2026_02")).toEqual(reordered);
      expect(await scalar(db, "SELECT count(*) AS n FROM event_identities")).toBe(5);
      expect(json(await api.get("tx-new")).event).toMatchObject({ external_subscription_id: "s1", properties: { n: 1 } });
      expect(json(await api.get("tx-feb")).event).toMatchObject({ timestamp: "2026-02-10T10:00:00.000Z", properties: { n: 5 } });
      const listed = json(await api.list("external_subscription_id=s1"));
      expect(listed.events.map((e: { transaction_id: string }) => e.transaction_id).sort()).toEqual(["tx-feb", "tx-new", "tx-shared"]);
    } finally {
      // The app closes the database it was given.
      if (t) await t.close();
      else await db.close();
      t = undefined;
      await drop();
    }
  });

  it("a digest match without the stored event is refused, never taken for a retry", async () => {
    t = await startTestApp(); // 2026-03-15T12:00Z
    const api = client(t);
    const code = uid("c");
    const stored = { transaction_id: uid("tx"), external_subscription_id: uid("sub"), code, timestamp: T("2026-03-10T10:00:00Z"), properties: { n: 1 } };
    expect((await api.postEvent(stored)).statusCode).toBe(200);
    // Another identity whose key equals the stored one's (a 96-bit digest collision, forged here by
    // rewriting the stored identity's key), sent with the very same payload otherwise.
    const other = { ...stored, transaction_id: uid("tx") };
    const orgId = (await t.db.query<{ id: number }>("SELECT min(id) AS id FROM organizations")).rows[0]!.id;
    const forged = await t.db.query(
      `UPDATE event_identities SET tx_hash = ${TX_HASH("$2::text")}, key_hash = ${KEY_HASH("$3::text", "$2::text")}
        WHERE org_id = $1 AND tx_hash = ${TX_HASH("$4::text")} AND key_hash = ${KEY_HASH("$3::text", "$4::text")}`,
      [orgId, other.transaction_id, other.external_subscription_id, stored.transaction_id],
    );
    expect(forged.rowCount).toBe(1);
    const r = await api.postEvent(other);
    expect(r.statusCode).toBe(422);
    expect(await scalar(t.db, "SELECT count(*) AS n FROM events WHERE code = $1", [code])).toBe(1);
    // Within one batch too (the batch path reports it by index).
    const batch = await api.postBatch([{ ...stored, transaction_id: uid("tx") }, other]);
    expect(batch.statusCode).toBe(422);
    expect(Object.keys(json(batch).error_details)).toEqual(["1"]);
    expect(await scalar(t.db, "SELECT count(*) AS n FROM events WHERE code = $1", [code])).toBe(2);
  });
});
