// Monthly event partitions: naming, bounds, and creation that is safe to repeat (restarts, several
// processes, concurrent batches).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Db } from "../../../src/db/db.ts";
import { Partitions } from "../../../src/modules/ingest/index.ts";
import { monthOf, partitionBounds } from "../../../src/modules/ingest/store.ts";
import { DB_KIND, openTestDb } from "../../helpers/db.ts";

const micros = (iso: string) => Date.parse(iso) * 1000;

describe("monthOf", () => {
  it.each([
    ["2026-03-15T12:00:00Z", "2026_03"],
    ["2026-03-01T00:00:00Z", "2026_03"],
    ["2026-02-28T23:59:59.999Z", "2026_02"],
    ["2025-12-31T23:59:59.999Z", "2025_12"],
    ["1970-01-01T00:00:00Z", "1970_01"],
  ])("puts %s in %s (UTC)", (iso, month) => {
    expect(monthOf(micros(iso))).toBe(month);
  });

  it("puts the last microsecond of a month in that month", () => {
    expect(monthOf(micros("2026-04-01T00:00:00Z") - 1)).toBe("2026_03");
  });
});

describe("partitionBounds", () => {
  it("covers the month from its first instant, up to the next month's", () => {
    expect(partitionBounds("2026_03")).toEqual({ name: "events_p2026_03", from: "2026-03-01T00:00:00.000Z", to: "2026-04-01T00:00:00.000Z" });
  });

  it("rolls December over to January of the next year", () => {
    expect(partitionBounds("2025_12")).toMatchObject({ from: "2025-12-01T00:00:00.000Z", to: "2026-01-01T00:00:00.000Z" });
  });
});

describe(`Partitions on ${DB_KIND}`, () => {
  let db: Db;
  beforeAll(async () => {
    db = await openTestDb();
  });
  afterAll(async () => {
    await db?.close();
  });

  const partitionsOfEvents = async () =>
    (
      await db.query<{ name: string }>(
        "SELECT c.relname AS name FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'events'::regclass ORDER BY 1",
      )
    ).rows.map((r) => r.name);

  it("creates the current month and the next two", async () => {
    await new Partitions(db).ensureAround(Date.UTC(2026, 10, 20)); // 2026-11-20
    expect(await partitionsOfEvents()).toEqual(expect.arrayContaining(["events_p2026_11", "events_p2026_12", "events_p2027_01"]));
  });

  it("is safe to repeat from a fresh instance, as after a restart", async () => {
    await new Partitions(db).ensure(["2024_05"]);
    await new Partitions(db).ensure(["2024_05"]);
    await new Partitions(db).ensureAround(Date.UTC(2026, 10, 20));
    expect((await partitionsOfEvents()).filter((n) => n === "events_p2024_05")).toHaveLength(1);
  });

  it("creates each partition once when asked concurrently", async () => {
    const a = new Partitions(db);
    const b = new Partitions(db);
    await Promise.all([a.ensure(["2023_01", "2023_02"]), a.ensure(["2023_02"]), b.ensure(["2023_01", "2023_02"])]);
    const names = await partitionsOfEvents();
    expect(names.filter((n) => n === "events_p2023_01")).toHaveLength(1);
    expect(names.filter((n) => n === "events_p2023_02")).toHaveLength(1);
  });

  it("routes a row to its month's partition, bounds inclusive at the start and exclusive at the end", async () => {
    await new Partitions(db).ensure(["2023_03", "2023_04"]);
    await db.query(
      `INSERT INTO events (org_id, ts, code, external_subscription_id, transaction_id, created_at)
       VALUES (1, '2023-04-01T00:00:00Z', 'c', 's', 'start-of-april', now()), (1, '2023-03-31T23:59:59.999999Z', 'c', 's', 'end-of-march', now())`,
    );
    const { rows } = await db.query<{ tx: string; part: string }>(
      "SELECT transaction_id AS tx, tableoid::regclass::text AS part FROM events WHERE org_id = 1 AND external_subscription_id = 's' ORDER BY 1",
    );
    expect(rows).toEqual([
      { tx: "end-of-march", part: "events_p2023_03" },
      { tx: "start-of-april", part: "events_p2023_04" },
    ]);
  });

  it("gives every partition the recent-data (org, time) index", async () => {
    await new Partitions(db).ensure(["2022_07"]);
    const { rows } = await db.query<{ n: string }>("SELECT count(*)::text AS n FROM pg_indexes WHERE tablename = 'events_p2022_07' AND indexdef LIKE '%(org_id, ts)%'");
    expect(rows[0]!.n).toBe("1");
  });
});
