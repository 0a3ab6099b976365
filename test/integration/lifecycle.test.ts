// Data lifecycle (RETENTION_DAYS): expired partitions dropped with their identities while rollups
// stay, never while a frozen test clock still needs them, never with RETENTION_DAYS=0; old
// partitions slimmed; verify-rollups finds no difference after ingest, and finds a tampered row.
import { afterEach, describe, expect, it } from "vitest";
import { dropExpiredPartitions, listPartitions, slimOldPartitions, verifyRollups } from "../../src/modules/ingest/index.ts";
import { DB_KIND, openTestDb } from "../helpers/db.ts";
import { KEY_HASH, TX_HASH } from "../../src/modules/ingest/store.ts";
import { startTestApp, type TestApp } from "../helpers/app.ts";
import { bearer, client, scalar, uid } from "./support.ts";

const T = (iso: string) => Date.parse(iso) / 1000;
const relExists = (t: TestApp, name: string) => scalar(t.db, "SELECT count(*) AS n FROM pg_class WHERE relname = $1", [name]);
const partitionNames = async (t: TestApp) => (await listPartitions(t.db)).map((p) => p.name);

/** Transaction ids posted per code (all on subscription "sub"), to count their identity rows. */
const sent = new Map<string, string[]>();
async function post(t: TestApp, code: string, isoTime: string, properties?: Record<string, unknown>, key = t.apiKey) {
  const tx = uid("tx");
  sent.set(code, [...(sent.get(code) ?? []), tx]);
  const r = await client(t, key).postEvent({ transaction_id: tx, external_subscription_id: "sub", code, timestamp: T(isoTime), properties });
  return r;
}
const identitiesOf = (t: TestApp, code: string) =>
  scalar(
    t.db,
    `SELECT count(*) AS n FROM event_identities i JOIN unnest($1::text[]) AS k(tx)
        ON i.tx_hash = ${TX_HASH("k.tx")} AND i.key_hash = ${KEY_HASH("'sub'::text", "k.tx")}`,
    [sent.get(code) ?? []],
  );

let t: TestApp | undefined;
afterEach(async () => {
  await t?.close();
  t = undefined;
});

describe(`data lifecycle on ${DB_KIND}`, () => {
  it("drops a partition past retention with its identities, keeping the rollups", async () => {
    t = await startTestApp({ env: { RETENTION_DAYS: "60" } }); // wall clock 2026-03-15T12:00Z
    const code = uid("c");
    for (const at of ["2026-01-20T10:00:00Z", "2026-01-25T10:00:00Z", "2026-03-10T10:00:00Z"]) expect((await post(t, code, at)).statusCode).toBe(200);
    expect(await partitionNames(t)).toContain("events_p2026_01");
    // Nothing is past retention yet.
    expect(await dropExpiredPartitions(t.db, t.clock, 60)).toEqual({ dropped: [], identitiesDeleted: 0 });

    t.clock.set(Date.parse("2026-04-15T00:00:00Z")); // cutoff 2026-02-14: January is past, February is not
    const r = await dropExpiredPartitions(t.db, t.clock, 60);
    expect(r).toEqual({ dropped: ["events_p2026_01"], identitiesDeleted: 2 });
    expect(await relExists(t, "events_p2026_01")).toBe(0);
    expect(await relExists(t, "events_p2026_03")).toBe(1);
    expect(await identitiesOf(t, code)).toBe(1);
    expect(await scalar(t.db, "SELECT count(*) AS n FROM events WHERE code = $1", [code])).toBe(1);
    // Rollups kept: two January hours, one March hour.
    expect(await scalar(t.db, "SELECT sum(events_count) AS n FROM event_rollups_hourly WHERE code = $1", [code])).toBe(3);
    // The month is also refused at ingest (older than retention), and a second pass drops nothing.
    expect((await post(t, code, "2026-01-20T10:00:00Z")).statusCode).toBe(422);
    expect((await dropExpiredPartitions(t.db, t.clock, 60)).dropped).toEqual([]);
    // Dropped months are not checked by verify-rollups (their rollups are kept on purpose).
    expect((await verifyRollups(t.db)).differences).toEqual([]);
  });

  it("keeps a partition while a frozen test clock still has it within retention", async () => {
    t = await startTestApp({ env: { RETENTION_DAYS: "60", VALUEVERSE_TEST_CLOCK: "on" } });
    const freeze = (at: string) =>
      t!.app.http.inject({ method: "PUT", url: "/api/v1/test_clock", headers: bearer(t!.apiKey), payload: { test_clock: { frozen_time: at } } });
    expect((await freeze("2026-03-15T12:00:00Z")).statusCode).toBe(200);
    const code = uid("c");
    expect((await post(t, code, "2026-01-20T10:00:00Z")).statusCode).toBe(200);

    t.clock.set(Date.parse("2026-06-01T00:00:00Z")); // the wall clock has January past retention...
    expect((await dropExpiredPartitions(t.db, t.clock, 60)).dropped).toEqual([]); // ...the organization's clock has not
    expect(await relExists(t, "events_p2026_01")).toBe(1);
    expect(await identitiesOf(t, code)).toBe(1);

    expect((await freeze("2026-04-15T00:00:00Z")).statusCode).toBe(200);
    expect(await dropExpiredPartitions(t.db, t.clock, 60)).toEqual({ dropped: ["events_p2026_01"], identitiesDeleted: 1 });
    expect(await scalar(t.db, "SELECT count(*) AS n FROM event_rollups_hourly WHERE code = $1", [code])).toBe(1);
  });

  it("keeps everything with RETENTION_DAYS=0, also at start", async () => {
    const db = await openTestDb();
    // The first app leaves the database open for the second (a restart).
    const keepOpen = new Proxy(db, {
      get: (target, key) => {
        if (key === "close") return async () => undefined;
        const v: unknown = Reflect.get(target, key, target);
        return typeof v === "function" ? v.bind(target) : v;
      },
    });
    t = await startTestApp({ env: { RETENTION_DAYS: "0" }, db: keepOpen });
    const code = uid("c");
    expect((await post(t, code, "2024-01-20T10:00:00Z")).statusCode).toBe(200);
    t.clock.set(Date.parse("2030-01-01T00:00:00Z"));
    expect(await dropExpiredPartitions(t.db, t.clock, 0)).toEqual({ dropped: [], identitiesDeleted: 0 });
    await t.close();
    // A restart runs the lifecycle at start: still nothing dropped.
    t = await startTestApp({ env: { RETENTION_DAYS: "0" }, db, clock: t.clock });
    expect(await relExists(t, "events_p2024_01")).toBe(1);
    expect(await identitiesOf(t, code)).toBe(1);
  });

  it("drops the recent index of partitions more than 7 days old", async () => {
    t = await startTestApp(); // 2026-03-15T12:00Z
    expect((await post(t, uid("c"), "2026-01-20T10:00:00Z")).statusCode).toBe(200);
    expect((await post(t, uid("c"), "2026-02-20T10:00:00Z")).statusCode).toBe(200);
    expect(await relExists(t, "events_p2026_01_recent_idx")).toBe(1);
    expect(await slimOldPartitions(t.db, t.clock)).toEqual(["events_p2026_01_recent_idx", "events_p2026_02_recent_idx"]);
    expect(await relExists(t, "events_p2026_01_recent_idx")).toBe(0);
    expect(await relExists(t, "events_p2026_03_recent_idx")).toBe(1);
    t.clock.set(Date.parse("2026-04-08T00:00:01Z")); // March ended 7 days and 1 second ago
    expect(await slimOldPartitions(t.db, t.clock)).toEqual(["events_p2026_03_recent_idx"]);
    expect(await slimOldPartitions(t.db, t.clock)).toEqual([]);
  });

  it("a code's hourly counts survive retention while its metric is created, changed and deleted", async () => {
    t = await startTestApp({ env: { RETENTION_DAYS: "60" } }); // wall clock 2026-03-15T12:00Z
    const code = uid("c");
    for (const at of ["2026-01-20T10:00:00Z", "2026-01-25T10:00:00Z", "2026-03-10T10:00:00Z"]) expect((await post(t, code, at, { k: "a" })).statusCode).toBe(200);
    const api = (method: "POST" | "PUT" | "DELETE", url: string, payload?: unknown) =>
      t!.app.http.inject({ method, url, headers: bearer(t!.apiKey), ...(payload === undefined ? {} : { payload: payload as object }) });
    const byHour = async () =>
      Object.fromEntries(
        (
          await t!.db.query<{ hour: string; n: string }>(
            "SELECT to_char(hour AT TIME ZONE 'UTC', 'MM-DD HH24') AS hour, sum(events_count)::text AS n FROM event_counts_hourly WHERE code = $1 GROUP BY 1",
            [code],
          )
        ).rows.map((r) => [r.hour, Number(r.n)]),
      );
    const where = async () => ({
      events: await scalar(t!.db, "SELECT coalesce(sum(events_count), 0) AS n FROM event_rollups_hourly WHERE code = $1", [code]),
      metric: await scalar(t!.db, "SELECT coalesce(sum(all_count), 0) AS n FROM metric_rollups_hourly r JOIN billable_metrics m ON m.id = r.metric_id WHERE m.code = $1", [code]),
    });
    const all = { "01-20 10": 1, "01-25 10": 1, "03-10 10": 1 };
    expect(await byHour()).toEqual(all);
    expect(await where()).toEqual({ events: 3, metric: 0 });

    // The metric takes the counts of every hour its events still cover.
    expect((await api("POST", "/api/v1/billable_metrics", { billable_metric: { name: "n", code, aggregation_type: "count_agg" } })).statusCode).toBe(200);
    expect(await where()).toEqual({ events: 0, metric: 3 });
    expect(await byHour()).toEqual(all);

    // January's events go (retention); their counts stay, in the metric's rollups.
    t.clock.set(Date.parse("2026-04-15T00:00:00Z"));
    expect((await dropExpiredPartitions(t.db, t.clock, 60)).dropped).toEqual(["events_p2026_01"]);
    expect(await byHour()).toEqual(all);

    // A rebuild (new filters) cannot recount January from raw events: those counts move back to
    // event_rollups_hourly, the hours still covered are rebuilt into the metric.
    const upd = await api("PUT", `/api/v1/billable_metrics/${code}`, { billable_metric: { filters: [{ key: "k", values: ["a"] }] } });
    expect(upd.statusCode, upd.body).toBe(200);
    expect(await where()).toEqual({ events: 2, metric: 1 });
    expect(await byHour()).toEqual(all);

    expect((await api("DELETE", `/api/v1/billable_metrics/${code}`)).statusCode).toBe(200);
    expect(await where()).toEqual({ events: 3, metric: 0 });
    expect(await byHour()).toEqual(all);
    expect((await verifyRollups(t.db)).differences).toEqual([]);
  });

  it("verify-rollups: no difference after ingest, every tampered row reported", async () => {
    t = await startTestApp();
    const code = uid("c");
    const metric = await t.app.http.inject({
      method: "POST",
      url: "/api/v1/billable_metrics",
      headers: bearer(t.apiKey),
      payload: { billable_metric: { name: "n", code, aggregation_type: "sum_agg", field_name: "v", filters: [{ key: "k", values: ["a", "b"] }] } },
    });
    expect(metric.statusCode, metric.body).toBe(200);
    for (const [i, p] of [{ v: "1.5", k: "a" }, { v: "2", k: "b" }, { v: "x", k: "a" }, { v: "3" }].entries()) {
      expect((await post(t, code, `2026-03-10T0${i}:30:00Z`, p)).statusCode).toBe(200);
    }
    const clean = await verifyRollups(t.db);
    expect(clean.differences).toEqual([]);
    expect(clean.summary.event_rollup_hours_checked).toBe(4);
    expect(clean.summary.metric_rollup_hours_checked).toBe(3);

    // The metric keeps its code's counts (all_count, migration 0021): tamper with those.
    expect(await scalar(t.db, "SELECT count(*) AS n FROM event_rollups_hourly WHERE code = $1", [code])).toBe(0);
    await t.db.query(
      "UPDATE metric_rollups_hourly SET all_count = all_count + 1 WHERE hour = '2026-03-10T01:00:00Z' AND metric_id = (SELECT id FROM billable_metrics WHERE code = $1)",
      [code],
    );
    await t.db.query("UPDATE metric_rollups_hourly SET value_sum = 9 WHERE hour = '2026-03-10T00:00:00Z'");
    const { differences, summary } = await verifyRollups(t.db, { from: new Date("2026-03-10T00:00:00Z"), to: new Date("2026-03-11T00:00:00Z") });
    expect(summary.differences).toBe(2);
    expect(differences).toEqual([
      expect.objectContaining({ table: "event_counts_hourly", code, hour: "2026-03-10T01:00:00.000Z", expected: { events_count: "1" }, actual: { events_count: "2" } }),
      expect.objectContaining({
        table: "metric_rollups_hourly",
        dims: '{"k": "a"}',
        hour: "2026-03-10T00:00:00.000Z",
        expected: { events_count: "1", value_sum: "1.5", value_max: "1.5" },
        actual: { events_count: "1", value_sum: "9", value_max: "1.5" },
      }),
    ]);
    // Outside the range, or another organization: nothing to report.
    expect((await verifyRollups(t.db, { from: new Date("2026-03-11T00:00:00Z") })).differences).toEqual([]);
    expect((await verifyRollups(t.db, { orgId: 999_999 })).differences).toEqual([]);
    // A rollup row with no events behind it is a difference too (in both tables).
    await t.db.query("DELETE FROM events WHERE code = $1 AND ts = '2026-03-10T03:30:00Z'", [code]);
    const gone = (await verifyRollups(t.db)).differences.filter((d) => d.hour === "2026-03-10T03:00:00.000Z");
    expect(gone.map((d) => [d.table, d.expected, d.actual])).toEqual([
      ["event_counts_hourly", null, { events_count: "1" }],
      ["metric_rollups_hourly", null, { events_count: "1", value_sum: "3", value_max: "3" }],
    ]);
    // A code without a metric counts in event_rollups_hourly; tampering there is reported the same way.
    const bare = uid("bare");
    expect((await post(t, bare, "2026-03-10T05:30:00Z", {})).statusCode).toBe(200);
    await t.db.query("UPDATE event_rollups_hourly SET events_count = events_count + 2 WHERE code = $1", [bare]);
    expect((await verifyRollups(t.db)).differences.filter((d) => d.code === bare)).toEqual([
      expect.objectContaining({ table: "event_counts_hourly", hour: "2026-03-10T05:00:00.000Z", expected: { events_count: "1" }, actual: { events_count: "3" } }),
    ]);
  });
});
