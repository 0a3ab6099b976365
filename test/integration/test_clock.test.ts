// Test clocks (VALUEVERSE_TEST_CLOCK=on): an organization's frozen "now", what it changes (event
// timestamps, creation times), the forward-only rule, isolation between organizations, the work
// registered with onAdvance, and agreement between worker processes.
import type { InjectOptions } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildApp } from "../../src/app.ts";
import { ConfigError, loadConfig } from "../../src/shared/config.ts";
import { DB_KIND } from "../helpers/db.ts";
import { startTestApp, type TestApp } from "../helpers/app.ts";
import { T0, bearer, client, json, uid } from "./support.ts";

const ADMIN_TOKEN = "admin-token-for-tests-0123456789";
const iso = (ms: number) => new Date(ms).toISOString();

type Method = "GET" | "PUT" | "POST";
const call = (t: TestApp, method: Method, url: string, key: string, payload?: unknown) =>
  t.app.http.inject({ method, url, headers: bearer(key), ...(payload === undefined ? {} : { payload: payload as InjectOptions["payload"] }) });
const freeze = (t: TestApp, key: string, frozenTime: unknown) => call(t, "PUT", "/api/v1/test_clock", key, { test_clock: { frozen_time: frozenTime } });
const readClock = (t: TestApp, key: string) => call(t, "GET", "/api/v1/test_clock", key);

async function createOrg(t: TestApp): Promise<{ key: string; orgId: number }> {
  const r = await t.app.http.inject({
    method: "POST",
    url: "/admin/v1/organizations",
    headers: bearer(ADMIN_TOKEN),
    payload: { organization: { name: uid("Org") } },
  });
  expect(r.statusCode).toBe(200);
  const key: string = json(r).api_key;
  const orgId = await t.app.orgs.authenticate(key);
  return { key, orgId: orgId! };
}

describe("VALUEVERSE_TEST_CLOCK configuration", () => {
  it("is off by default, on only when asked, and refuses anything else", () => {
    expect(loadConfig({}).testClock).toBe(false);
    expect(loadConfig({ VALUEVERSE_TEST_CLOCK: "off" }).testClock).toBe(false);
    expect(loadConfig({ VALUEVERSE_TEST_CLOCK: "on" }).testClock).toBe(true);
    expect(() => loadConfig({ VALUEVERSE_TEST_CLOCK: "yes" })).toThrow(ConfigError);
    let problems: string[] = [];
    try {
      loadConfig({ VALUEVERSE_TEST_CLOCK: "true" });
    } catch (err) {
      problems = (err as ConfigError).problems;
    }
    expect(problems).toEqual(['VALUEVERSE_TEST_CLOCK="true": must be one of on, off']);
  });
});

describe(`test clocks off (the default) on ${DB_KIND}`, () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp();
  });
  afterAll(async () => {
    await t?.close();
  });

  it("has no test clock routes (404) and follows the base clock", async () => {
    for (const r of [await readClock(t, t.apiKey), await freeze(t, t.apiKey, "2024-01-01T00:00:00Z")]) {
      expect(r.statusCode).toBe(404);
    }
    expect(t.app.testClock.enabled).toBe(false);
    const e = json(await client(t).postEvent({ transaction_id: uid("tx"), external_subscription_id: "s", code: "c" })).event;
    expect(e.timestamp).toBe(iso(T0));
    expect(await t.db.query("SELECT * FROM test_clocks")).toMatchObject({ rows: [] });
  });
});

describe(`test clocks on ${DB_KIND}`, () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp({ env: { VALUEVERSE_TEST_CLOCK: "on", VALUEVERSE_ADMIN_TOKEN: ADMIN_TOKEN } });
  });
  afterAll(async () => {
    await t?.close();
  });

  it("follows the wall clock until frozen", async () => {
    const { key } = await createOrg(t);
    const r = await readClock(t, key);
    expect(r.statusCode).toBe(200);
    expect(json(r)).toEqual({ test_clock: { frozen_time: null, current_time: iso(T0) } });
  });

  it("freezes into the past: events without a timestamp and new customers get the frozen time", async () => {
    const { key, orgId } = await createOrg(t);
    const past = Date.UTC(2024, 0, 15, 10, 30, 0);
    const r = await freeze(t, key, "2024-01-15T10:30:00Z");
    expect(r.statusCode).toBe(200);
    expect(json(r)).toEqual({ test_clock: { frozen_time: iso(past), current_time: iso(past) } });
    expect(json(await readClock(t, key))).toEqual({ test_clock: { frozen_time: iso(past), current_time: iso(past) } });
    expect(t.app.testClock.now(orgId)).toBe(past);

    // The wall clock moving does not move a frozen organization.
    t.clock.advance(3_600_000);
    try {
      const tx = uid("tx");
      const posted = await client(t, key).postEvent({ transaction_id: tx, external_subscription_id: "sub-1", code: "api_calls" });
      expect(posted.statusCode).toBe(200);
      expect(json(posted).event.timestamp).toBe(iso(past));
      const read = await client(t, key).get(tx);
      expect(read.statusCode).toBe(200);
      expect(json(read).event.timestamp).toBe(iso(past));

      const customer = await call(t, "POST", "/api/v1/customers", key, { customer: { external_id: uid("cus") } });
      expect(json(customer).customer.created_at).toBe("2024-01-15T10:30:00Z");
    } finally {
      t.clock.set(T0);
    }
  });

  it("only moves forward after the first freeze: backwards is a 422 naming frozen_time", async () => {
    const { key } = await createOrg(t);
    expect((await freeze(t, key, "2030-06-01T00:00:00Z")).statusCode).toBe(200);

    const back = await freeze(t, key, "2030-05-31T23:59:59Z");
    expect(back.statusCode).toBe(422);
    expect(json(back)).toEqual({
      status: 422,
      error: "Unprocessable Entity",
      code: "validation_errors",
      error_details: { frozen_time: ["cannot_move_backwards (the clock is frozen at 2030-06-01T00:00:00.000Z)"] },
    });
    expect(json(await readClock(t, key)).test_clock.frozen_time).toBe("2030-06-01T00:00:00.000Z");

    // Staying put and moving forward are fine; an offset is read as the instant it names.
    expect((await freeze(t, key, "2030-06-01T00:00:00Z")).statusCode).toBe(200);
    const forward = await freeze(t, key, "2030-07-01T02:00:00+02:00");
    expect(forward.statusCode).toBe(200);
    expect(json(forward).test_clock.frozen_time).toBe("2030-07-01T00:00:00.000Z");
  });

  it.each([
    ["no test_clock", {}, 400, undefined],
    ["a test_clock that is not an object", { test_clock: "2024-01-01" }, 422, { test_clock: ["must_be_an_object"] }],
    ["no frozen_time", { test_clock: {} }, 422, { frozen_time: ["value_is_mandatory"] }],
    ["a unix timestamp", { test_clock: { frozen_time: 1704067200 } }, 422, { frozen_time: ["invalid_date (ISO 8601 with an offset, e.g. 2024-03-01T00:00:00Z)"] }],
    ["a time without an offset", { test_clock: { frozen_time: "2024-01-01T00:00:00" } }, 422, { frozen_time: ["invalid_date (ISO 8601 with an offset, e.g. 2024-03-01T00:00:00Z)"] }],
  ])("refuses %s", async (_case, payload, status, details) => {
    const { key } = await createOrg(t);
    const r = await call(t, "PUT", "/api/v1/test_clock", key, payload);
    expect(r.statusCode).toBe(status);
    if (details) expect(json(r).error_details).toEqual(details);
    expect(json(await readClock(t, key)).test_clock.frozen_time).toBeNull();
  });

  it("needs an API key", async () => {
    expect((await t.app.http.inject({ method: "GET", url: "/api/v1/test_clock" })).statusCode).toBe(401);
    expect((await t.app.http.inject({ method: "PUT", url: "/api/v1/test_clock", payload: { test_clock: { frozen_time: "2024-01-01" } } })).statusCode).toBe(401);
  });

  it("leaves every other organization on its own clock", async () => {
    const a = await createOrg(t);
    const b = await createOrg(t);
    expect((await freeze(t, a.key, "2025-01-01T00:00:00Z")).statusCode).toBe(200);
    expect(json(await readClock(t, b.key))).toEqual({ test_clock: { frozen_time: null, current_time: iso(T0) } });
    expect(t.app.testClock.now(b.orgId)).toBe(T0);
    const e = json(await client(t, b.key).postEvent({ transaction_id: uid("tx"), external_subscription_id: "s", code: "c" })).event;
    expect(e.timestamp).toBe(iso(T0));

    // B's first freeze may go earlier than A's: clocks are per organization.
    expect((await freeze(t, b.key, "2020-01-01T00:00:00Z")).statusCode).toBe(200);
    expect(json(await readClock(t, a.key)).test_clock.frozen_time).toBe("2025-01-01T00:00:00.000Z");
  });

  it("runs onAdvance listeners, in order and awaited, before the PUT answers", async () => {
    const { key, orgId } = await createOrg(t);
    const calls: string[] = [];
    const seen: { from: string; to: string; now: string }[] = [];
    const removeFirst = t.app.testClock.onAdvance(async (id, from, to) => {
      if (id !== orgId) return;
      await new Promise((r) => setTimeout(r, 30));
      seen.push({ from: from.toISOString(), to: to.toISOString(), now: iso(t.app.testClock.now(id)) });
      calls.push("first");
    });
    const removeSecond = t.app.testClock.onAdvance(async (id) => {
      if (id === orgId) calls.push("second");
    });
    try {
      expect((await freeze(t, key, "2026-04-01T00:00:00Z")).statusCode).toBe(200);
      expect(calls).toEqual(["first", "second"]);
      expect((await freeze(t, key, "2026-05-01T00:00:00Z")).statusCode).toBe(200);
      expect(calls).toEqual(["first", "second", "first", "second"]);
      // The first move starts from the wall clock; later ones from the previous frozen time. The
      // organization's clock already reads `to` while listeners run.
      expect(seen).toEqual([
        { from: iso(T0), to: "2026-04-01T00:00:00.000Z", now: "2026-04-01T00:00:00.000Z" },
        { from: "2026-04-01T00:00:00.000Z", to: "2026-05-01T00:00:00.000Z", now: "2026-05-01T00:00:00.000Z" },
      ]);
      // A refused move runs nothing.
      expect((await freeze(t, key, "2026-01-01T00:00:00Z")).statusCode).toBe(422);
      expect(calls).toHaveLength(4);
    } finally {
      removeFirst();
      removeSecond();
    }
  });

  it("fails the PUT when a listener fails, with the clock moved, and runs listeners again on a retry", async () => {
    const { key, orgId } = await createOrg(t);
    let failures = 1;
    let runs = 0;
    const remove = t.app.testClock.onAdvance(async (id) => {
      if (id !== orgId) return;
      runs++;
      if (failures-- > 0) throw new Error("billing failed");
    });
    try {
      expect((await freeze(t, key, "2027-01-01T00:00:00Z")).statusCode).toBe(500);
      expect(json(await readClock(t, key)).test_clock.frozen_time).toBe("2027-01-01T00:00:00.000Z");
      expect((await freeze(t, key, "2027-01-01T00:00:00Z")).statusCode).toBe(200);
      expect(runs).toBe(2);
    } finally {
      remove();
    }
  });

  it("serializes concurrent moves of one organization: the clock ends at the latest time", async () => {
    const { key, orgId } = await createOrg(t);
    expect((await readClock(t, key)).statusCode).toBe(200);
    const days = ["2028-01-03", "2028-01-01", "2028-01-05", "2028-01-02", "2028-01-04"];
    const results = await Promise.all(days.map((day) => freeze(t, key, day)));
    for (const r of results) {
      expect([200, 422]).toContain(r.statusCode);
      if (r.statusCode === 422) expect(Object.keys(json(r).error_details)).toEqual(["frozen_time"]);
    }
    // The latest time always wins; an earlier one can only have been applied before it.
    expect(results[2]!.statusCode).toBe(200);
    expect(t.app.testClock.now(orgId)).toBe(Date.UTC(2028, 0, 5));
    expect(json(await readClock(t, key)).test_clock.frozen_time).toBe("2028-01-05T00:00:00.000Z");
  });

  it("agrees across worker processes: another process sees a move at its next refresh, GET at once", async () => {
    const { key, orgId } = await createOrg(t);
    const config = loadConfig({ LOG_LEVEL: "silent", VALUEVERSE_TEST_CLOCK: "on" });
    const other = buildApp(config, { db: t.db, clock: t.clock });
    await other.start();
    try {
      expect((await freeze(t, key, "2029-03-01T00:00:00Z")).statusCode).toBe(200);
      // The other process answers GET from the database, exactly.
      const r = await other.http.inject({ method: "GET", url: "/api/v1/test_clock", headers: bearer(key) });
      expect(json(r).test_clock.frozen_time).toBe("2029-03-01T00:00:00.000Z");

      expect((await freeze(t, key, "2029-04-01T00:00:00Z")).statusCode).toBe(200);
      await other.testClock.refresh();
      expect(other.testClock.now(orgId)).toBe(Date.UTC(2029, 3, 1));
      const e = await other.http.inject({
        method: "POST",
        url: "/api/v1/events",
        headers: bearer(key),
        payload: { event: { transaction_id: uid("tx"), external_subscription_id: "s", code: "c" } },
      });
      expect(json(e).event.timestamp).toBe("2029-04-01T00:00:00.000Z");
    } finally {
      // The database belongs to `t`: only the second server's clock refresh and HTTP side stop.
      other.testClock.stop();
      await other.http.close();
    }
  });
});
