// Metering against a real database: metric rollups kept by the ingest statement and rebuilt when a
// metric is created or changes, exact under concurrent ingestion; live usage priced from them in
// Lago's shapes; unmatched events; tenancy. On PGlite by default, PostgreSQL with TEST_DATABASE_URL.
import type { InjectOptions, LightMyRequestResponse } from "fastify";
import { Client } from "lago-javascript-client";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { Decimal } from "../../src/shared/money.ts";
import { DB_KIND } from "../helpers/db.ts";
import { startTestApp, type TestApp } from "../helpers/app.ts";
import { T0, bearer, json, parseMetrics, uid } from "./support.ts";

const ADMIN_TOKEN = "admin-token-for-metering-tests-0123456789";
let t: TestApp;
let key: string;
let orgId: number;

beforeAll(async () => {
  // Several writers and small batches: concurrent requests commit in concurrent transactions.
  t = await startTestApp({ env: { VALUEVERSE_ADMIN_TOKEN: ADMIN_TOKEN, INGEST_WRITERS: "4", INGEST_BATCH_MAX: "20" }, listen: true });
  key = t.apiKey;
  orgId = (await t.app.orgs.authenticate(key))!;
});
afterAll(async () => {
  await t?.close();
});
// Tests that need a later "now" move the clock; every test starts at T0.
afterEach(() => t.clock.set(T0));

type Method = "GET" | "POST" | "PUT" | "DELETE";
const call = (method: Method, url: string, payload?: unknown, apiKey = key) =>
  t.app.http.inject({ method, url, headers: bearer(apiKey), ...(payload === undefined ? {} : { payload: payload as InjectOptions["payload"] }) });
const ok = (r: LightMyRequestResponse) => {
  expect(r.statusCode, r.body).toBe(200);
  return json(r);
};

interface Ev {
  transaction_id?: string;
  external_subscription_id: string;
  code: string;
  timestamp: string | number;
  properties?: Record<string, unknown>;
}
const send = async (events: Ev[], apiKey = key) => {
  for (let i = 0; i < events.length; i += 100) {
    const chunk = events.slice(i, i + 100).map((e) => ({ transaction_id: uid("tx"), ...e }));
    ok(await call("POST", "/api/v1/events/batch", { events: chunk }, apiKey));
  }
};
const createMetric = async (fields: Record<string, unknown>, apiKey = key) =>
  ok(await call("POST", "/api/v1/billable_metrics", { billable_metric: { name: String(fields["code"]), ...fields } }, apiKey)).billable_metric;
const updateMetric = async (code: string, fields: Record<string, unknown>) =>
  ok(await call("PUT", `/api/v1/billable_metrics/${code}`, { billable_metric: fields })).billable_metric;

async function newOrg(): Promise<string> {
  const r = await t.app.http.inject({ method: "POST", url: "/admin/v1/organizations", headers: bearer(ADMIN_TOKEN), payload: { organization: { name: uid("Org") } } });
  expect(r.statusCode, r.body).toBe(200);
  return json(r).api_key as string;
}

// ---- rollups against an independent computation from the stored events --------------------------

interface MetricDef {
  code: string;
  aggregation_type: "count_agg" | "sum_agg" | "max_agg";
  field_name?: string;
  filters?: { key: string; values: string[] }[];
}

type Row = { count: number; sum: string | null; max: string | null };

/** What the metric's rollups must hold: computed in JS from the stored raw events. */
async function expectedRollups(m: MetricDef): Promise<Map<string, Row>> {
  const { rows } = await t.db.query<{ sub: string; ts: Date; properties: Record<string, unknown> | null }>(
    "SELECT external_subscription_id AS sub, ts, properties FROM events WHERE org_id = $1 AND code = $2",
    [orgId, m.code],
  );
  const out = new Map<string, { count: number; sum: Decimal | null; max: Decimal | null }>();
  for (const r of rows) {
    const props = r.properties ?? {};
    const raw = m.field_name === undefined ? undefined : props[m.field_name];
    const text = typeof raw === "string" || typeof raw === "number" ? String(raw) : undefined;
    const value = text !== undefined && /^-?\d+(\.\d+)?$/.test(text) ? new Decimal(text) : null;
    if (m.aggregation_type !== "count_agg" && value === null) continue;
    const dims: Record<string, string> = {};
    for (const f of m.filters ?? []) {
      const v = props[f.key];
      if (typeof v === "string" && f.values.includes(v)) dims[f.key] = v;
    }
    const hour = Math.floor(new Date(r.ts).getTime() / 3_600_000) * 3_600_000;
    const k = `${r.sub}|${JSON.stringify(Object.fromEntries(Object.entries(dims).sort()))}|${new Date(hour).toISOString()}`;
    const acc = out.get(k) ?? { count: 0, sum: null, max: null };
    acc.count += 1;
    if (m.aggregation_type !== "count_agg") {
      acc.sum = (acc.sum ?? new Decimal(0)).plus(value!);
      acc.max = acc.max === null || value!.gt(acc.max) ? value! : acc.max;
    }
    out.set(k, acc);
  }
  return new Map([...out].map(([k, v]) => [k, { count: v.count, sum: v.sum?.toString() ?? null, max: v.max?.toString() ?? null }]));
}

/** The metric's rollups, summed over writer slots. */
async function storedRollups(code: string): Promise<Map<string, Row>> {
  const { rows } = await t.db.query<{ sub: string; dims: string; hour: Date; n: string; s: string | null; mx: string | null }>(
    `SELECT r.external_subscription_id AS sub, r.dims, r.hour, sum(r.events_count)::text AS n, sum(r.value_sum)::text AS s, max(r.value_max)::text AS mx
       FROM metric_rollups_hourly r JOIN billable_metrics m ON m.id = r.metric_id AND m.org_id = r.org_id
      WHERE m.org_id = $1 AND m.code = $2 AND m.deleted_at IS NULL GROUP BY 1, 2, 3
     HAVING sum(r.events_count) > 0`,
    [orgId, code],
  );
  return new Map(
    rows.map((r) => {
      const dims = r.dims === "" ? {} : (JSON.parse(r.dims) as Record<string, string>);
      const k = `${r.sub}|${JSON.stringify(Object.fromEntries(Object.entries(dims).sort()))}|${new Date(r.hour).toISOString()}`;
      return [k, { count: Number(r.n), sum: r.s === null ? null : new Decimal(r.s).toString(), max: r.mx === null ? null : new Decimal(r.mx).toString() }];
    }),
  );
}

async function expectRollupsEqualRaw(m: MetricDef): Promise<number> {
  const expected = await expectedRollups(m);
  expect(Object.fromEntries(await storedRollups(m.code))).toEqual(Object.fromEntries(expected));
  await expectCodeCountsEqualRaw(m.code);
  return expected.size;
}

const scalarOf = async (sql: string, params: unknown[]) => Number((await t.db.query<{ n: string }>(sql, params)).rows[0]?.n ?? 0);

/**
 * The code's hourly counts (event_counts_hourly: event_rollups_hourly, or the all_count its metric
 * keeps, migration 0021) equal the raw events per subscription and hour, every event once.
 */
async function expectCodeCountsEqualRaw(code: string): Promise<void> {
  const q = (sql: string) =>
    t.db.query<{ sub: string; hour: string; n: string }>(sql, [orgId, code]).then((r) => Object.fromEntries(r.rows.map((x) => [`${x.sub}|${x.hour}`, x.n])));
  const raw = await q(
    "SELECT external_subscription_id AS sub, date_trunc('hour', ts)::text AS hour, count(*)::text AS n FROM events WHERE org_id = $1 AND code = $2 GROUP BY 1, 2",
  );
  const counted = await q(
    "SELECT external_subscription_id AS sub, hour::text AS hour, sum(events_count)::text AS n FROM event_counts_hourly WHERE org_id = $1 AND code = $2 GROUP BY 1, 2",
  );
  expect(counted).toEqual(raw);
}

const T = (iso: string) => Math.floor(Date.parse(iso) / 1000);

describe(`metric rollups on ${DB_KIND}`, () => {
  it("a metric created after its events counts them: rollups are backfilled and equal the raw events", async () => {
    const code = uid("storage");
    const sub = uid("sub");
    const events: Ev[] = [];
    for (let i = 0; i < 120; i++) {
      const gb = i % 10 === 0 ? "not a number" : i % 13 === 0 ? undefined : String((i % 7) + 0.25);
      events.push({
        external_subscription_id: i % 3 === 0 ? sub : `${sub}-b`,
        code,
        timestamp: T("2026-03-10T00:00:00Z") + i * 997,
        properties: { ...(gb === undefined ? {} : { gb }), region: ["eu", "us", "ap"][i % 3]! },
      });
    }
    await send(events);
    const before = ok(await call("GET", `/api/v1/unmatched_events?code=${code}&per_page=5`));
    expect(before.meta.total_count).toBe(120);
    expect(before.events[0].unmatched_reasons).toEqual(["billable_metric_not_found", "subscription_not_found"]);
    // The listing has its own path: every transaction_id, "unmatched" included, stays fetchable.
    ok(await call("POST", "/api/v1/events", { event: { transaction_id: "unmatched", external_subscription_id: sub, code, timestamp: T("2026-03-10T00:00:00Z") } }));
    expect(ok(await call("GET", `/api/v1/events/unmatched?external_subscription_id=${sub}`)).event.transaction_id).toBe("unmatched");

    const def: MetricDef = { code, aggregation_type: "sum_agg", field_name: "gb", filters: [{ key: "region", values: ["eu", "us"] }] };
    await createMetric({ ...def });
    expect(await expectRollupsEqualRaw(def)).toBeGreaterThan(10);
    // The metric exists now: its events are no longer "billable_metric_not_found".
    expect(ok(await call("GET", `/api/v1/unmatched_events?code=${code}&reason=billable_metric_not_found`)).meta.total_count).toBe(0);

    // New events keep the rollups exact through the ingest statement; a non-numeric value fails nothing.
    await send([
      { external_subscription_id: sub, code, timestamp: T("2026-03-11T10:00:00Z"), properties: { gb: "2.5", region: "eu" } },
      { external_subscription_id: sub, code, timestamp: T("2026-03-11T10:30:00Z"), properties: { gb: { nested: 1 }, region: "eu" } },
      { external_subscription_id: sub, code, timestamp: T("2026-03-11T10:45:00Z"), properties: { gb: 4, region: "ap" } },
    ]);
    await expectRollupsEqualRaw(def);
  });

  it("changing a metric's filters, field or aggregation rebuilds its rollups; deleting it drops them", async () => {
    const code = uid("calls");
    const sub = uid("sub");
    await send(
      Array.from({ length: 60 }, (_, i) => ({
        external_subscription_id: sub,
        code,
        timestamp: T("2026-03-12T00:00:00Z") + i * 1801,
        properties: { cloud: i % 2 === 0 ? "aws" : "gcp", region: ["eu", "us", "ap"][i % 3]!, size: String(i) },
      })),
    );
    let def: MetricDef = { code, aggregation_type: "count_agg", filters: [{ key: "region", values: ["eu"] }] };
    await createMetric({ ...def });
    await expectRollupsEqualRaw(def);

    def = { ...def, filters: [{ key: "cloud", values: ["aws", "gcp"] }, { key: "region", values: ["eu", "ap"] }] };
    await updateMetric(code, { filters: def.filters });
    await expectRollupsEqualRaw(def);
    const { rows } = await t.db.query<{ dims: string }>(
      "SELECT DISTINCT r.dims FROM metric_rollups_hourly r JOIN billable_metrics m ON m.id = r.metric_id WHERE m.code = $1 ORDER BY 1",
      [code],
    );
    expect(rows.map((r) => r.dims)).toEqual(['{"cloud": "aws"}', '{"cloud": "gcp"}', '{"cloud": "aws", "region": "ap"}', '{"cloud": "aws", "region": "eu"}', '{"cloud": "gcp", "region": "ap"}', '{"cloud": "gcp", "region": "eu"}'].sort());

    def = { code, aggregation_type: "max_agg", field_name: "size", filters: def.filters };
    await updateMetric(code, { aggregation_type: "max_agg", field_name: "size" });
    await expectRollupsEqualRaw(def);

    // An aggregation without rollups: the code's counts go back to event_rollups_hourly; with rollups again, back to the metric.
    const counts = (c: string) => scalarOf("SELECT coalesce(sum(events_count), 0)::text AS n FROM event_rollups_hourly WHERE code = $1", [c]);
    expect(await counts(code)).toBe(0);
    await updateMetric(code, { aggregation_type: "unique_count_agg", field_name: "size" });
    expect(await counts(code)).toBe(60);
    await expectCodeCountsEqualRaw(code);
    await updateMetric(code, { aggregation_type: "count_agg", field_name: null });
    expect(await counts(code)).toBe(0);
    await expectRollupsEqualRaw({ code, aggregation_type: "count_agg", filters: def.filters });

    // A new code: the old one's counts go back, the new one's (events sent before) move to the metric.
    const renamed = uid("renamed");
    await send([{ external_subscription_id: sub, code: renamed, timestamp: T("2026-03-12T05:00:00Z"), properties: { region: "eu" } }]);
    await updateMetric(code, { code: renamed });
    expect(await counts(code)).toBe(60);
    expect(await counts(renamed)).toBe(0);
    await expectCodeCountsEqualRaw(code);
    await expectRollupsEqualRaw({ code: renamed, aggregation_type: "count_agg", filters: def.filters });

    ok(await call("DELETE", `/api/v1/billable_metrics/${renamed}`));
    const left = await t.db.query("SELECT 1 FROM metric_rollups_hourly r JOIN billable_metrics m ON m.id = r.metric_id WHERE m.code = $1", [renamed]);
    expect(left.rows).toHaveLength(0);
    // Deleted: every event of the code still counted once, in event_rollups_hourly.
    expect(await counts(renamed)).toBe(1);
    await expectCodeCountsEqualRaw(renamed);
  });

  it("the naive ingest path (benchmark baseline) keeps the same rollups", async () => {
    const naive = await startTestApp({ env: { INGEST_MODE: "naive" } });
    try {
      const api = (method: Method, url: string, payload?: unknown) =>
        naive.app.http.inject({ method, url, headers: bearer(naive.apiKey), ...(payload === undefined ? {} : { payload: payload as InjectOptions["payload"] }) });
      const code = uid("naive");
      expect((await api("POST", "/api/v1/billable_metrics", { billable_metric: { name: "n", code, aggregation_type: "sum_agg", field_name: "v", filters: [{ key: "k", values: ["a"] }] } })).statusCode).toBe(200);
      const events = [
        { v: "1.5", k: "a" },
        { v: "2", k: "b" },
        { v: "x", k: "a" },
        { v: "3", k: "a" },
      ].map((properties, i) => ({ transaction_id: uid("tx"), external_subscription_id: "s", code, timestamp: T("2026-03-10T00:00:00Z") + i * 600, properties }));
      expect((await api("POST", "/api/v1/events/batch", { events })).statusCode).toBe(200);
      const { rows } = await naive.db.query<{ dims: string; n: string; s: string; mx: string }>(
        "SELECT dims, sum(events_count)::text AS n, sum(value_sum)::text AS s, max(value_max)::text AS mx FROM metric_rollups_hourly GROUP BY dims ORDER BY dims",
      );
      expect(rows.map((r) => [r.dims, r.n, new Decimal(r.s).toString(), new Decimal(r.mx).toString()])).toEqual([
        ["", "1", "2", "2"],
        ['{"k": "a"}', "2", "4.5", "3"],
      ]);
    } finally {
      await naive.close();
    }
  });

  it("events ingested concurrently with the metric's creation and a filter change are each counted once", async () => {
    // Several rounds, the catalog writes landing at different points of the ingest stream.
    for (const delayMs of [0, 3, 8, 15, 30]) {
      const code = uid("concurrent");
      const subs = [uid("sub"), uid("sub")];
      const def: MetricDef = { code, aggregation_type: "sum_agg", field_name: "n", filters: [{ key: "region", values: ["eu", "us"] }] };
      const batch = (b: number) =>
        Array.from({ length: 25 }, (_, i) => ({
          external_subscription_id: subs[(b + i) % 2]!,
          code,
          timestamp: T("2026-03-13T00:00:00Z") + b * 3600 + i * 61,
          properties: { n: String(b * 100 + i), region: ["eu", "us", "ap"][(b + i) % 3]! },
        }));
      const sends = Array.from({ length: 40 }, (_, b) => send(batch(b)));
      await new Promise((r) => setTimeout(r, delayMs));
      await createMetric({ code, aggregation_type: "sum_agg", field_name: "n", filters: [{ key: "region", values: ["eu"] }] });
      await updateMetric(code, { filters: def.filters });
      await Promise.all(sends);
      await expectRollupsEqualRaw(def); // the code's counts too: each event once, wherever it is counted
      const total = await t.db.query<{ n: string }>(
        "SELECT sum(events_count)::text AS n FROM metric_rollups_hourly r JOIN billable_metrics m ON m.id = r.metric_id WHERE m.code = $1",
        [code],
      );
      expect(Number(total.rows[0]!.n)).toBe(1000);
    }
  });
});

// ---- live usage ----------------------------------------------------------------------------------

async function setupSubscription(opts: { timezone?: string; apiKey?: string; charges: (metrics: Record<string, any>) => unknown[]; metrics: Record<string, unknown>[] }) {
  const apiKey = opts.apiKey ?? key;
  const metrics: Record<string, any> = {};
  for (const m of opts.metrics) metrics[String(m["code"])] = await createMetric(m, apiKey);
  const plan = ok(
    await call("POST", "/api/v1/plans", {
      plan: { name: "Usage", code: uid("plan"), interval: "monthly", amount_cents: 0, amount_currency: "EUR", charges: opts.charges(metrics) },
    }, apiKey),
  ).plan;
  const customer = ok(await call("POST", "/api/v1/customers", { customer: { external_id: uid("cus"), currency: "EUR", ...(opts.timezone ? { timezone: opts.timezone } : {}) } }, apiKey)).customer;
  const externalId = uid("sub");
  ok(
    await call("POST", "/api/v1/subscriptions", {
      subscription: { external_customer_id: customer.external_id, plan_code: plan.code, external_id: externalId, billing_time: "calendar", subscription_at: "2026-01-01T00:00:00Z" },
    }, apiKey),
  );
  return { customer: customer.external_id as string, sub: externalId, plan, metrics };
}

const currentUsage = (customer: string, sub: string, apiKey = key) =>
  call("GET", `/api/v1/customers/${encodeURIComponent(customer)}/current_usage?external_subscription_id=${encodeURIComponent(sub)}`, undefined, apiKey);

describe(`current usage on ${DB_KIND}`, () => {
  it("prices a graduated and a package charge as Lago's documented examples, and a late event changes it at once", async () => {
    const calls = uid("api_calls");
    const storage = uid("storage_gb");
    const s = await setupSubscription({
      metrics: [
        { code: calls, name: "API calls", aggregation_type: "count_agg" },
        { code: storage, name: "Storage", aggregation_type: "sum_agg", field_name: "gb" },
      ],
      charges: (m) => [
        {
          billable_metric_id: m[calls].lago_id,
          charge_model: "graduated",
          properties: {
            graduated_ranges: [
              { from_value: 0, to_value: 100, per_unit_amount: "1", flat_amount: "0" },
              { from_value: 101, to_value: 200, per_unit_amount: "0.50", flat_amount: "0" },
              { from_value: 201, to_value: null, per_unit_amount: "0.10", flat_amount: "0" },
            ],
          },
        },
        { billable_metric_id: m[storage].lago_id, charge_model: "package", properties: { amount: "5", package_size: 100, free_units: 100 } },
      ],
    });
    const march = (day: number, hour: number, minute = 0) => T(`2026-03-${String(day).padStart(2, "0")}T${String(hour).padStart(2, "0")}:${String(minute).padStart(2, "0")}:00Z`);
    // 250 calls spread over the month (whole hours and partial ones), 201 GB in 3 events.
    await send(Array.from({ length: 250 }, (_, i) => ({ external_subscription_id: s.sub, code: calls, timestamp: march(1 + (i % 14), i % 24, i % 60) })));
    await send([
      { external_subscription_id: s.sub, code: storage, timestamp: march(2, 0), properties: { gb: "100.5" } },
      { external_subscription_id: s.sub, code: storage, timestamp: march(9, 13, 30), properties: { gb: "100" } },
      { external_subscription_id: s.sub, code: storage, timestamp: march(15, 11, 59), properties: { gb: "0.5" } },
    ]);
    // Not counted: another subscription's events, and events of the previous period.
    await send([
      { external_subscription_id: uid("other"), code: calls, timestamp: march(3, 3) },
      { external_subscription_id: s.sub, code: calls, timestamp: T("2026-02-28T23:59:59Z") },
    ]);

    const usage = ok(await currentUsage(s.customer, s.sub)).customer_usage;
    expect(usage).toMatchObject({
      from_datetime: "2026-03-01T00:00:00Z",
      to_datetime: "2026-03-31T23:59:59Z",
      issuing_date: "2026-04-01",
      currency: "EUR",
      lago_invoice_id: null,
      // Graduated: 100 × $1 + 100 × $0.50 + 50 × $0.10 = $155; package: 201 GB - 100 free = 2 packages = $10.
      amount_cents: 16_500,
      taxes_amount_cents: 0,
      total_amount_cents: 16_500,
    });
    const byCode = Object.fromEntries(usage.charges_usage.map((c: any) => [c.billable_metric.code, c]));
    expect(byCode[calls]).toMatchObject({ units: "250", events_count: 250, amount_cents: 15_500, amount_currency: "EUR", charge: { charge_model: "graduated" }, filters: [] });
    expect(byCode[storage]).toMatchObject({ units: "201", events_count: 3, amount_cents: 1_000, billable_metric: { aggregation_type: "sum_agg", name: "Storage" } });
    // Lago lists charges by metric name.
    expect(usage.charges_usage.map((c: any) => c.billable_metric.name)).toEqual(["API calls", "Storage"]);

    // A late event (timestamp days ago, inside the open period) counts immediately.
    await send([{ external_subscription_id: s.sub, code: calls, timestamp: march(2, 5, 17) }]);
    const after = ok(await currentUsage(s.customer, s.sub)).customer_usage;
    expect(after.amount_cents).toBe(16_510);

    // The official client reads the same answer.
    const lago = Client(key, { baseUrl: `${t.url}/api/v1` });
    const viaClient = await lago.customers.findCustomerCurrentUsage(s.customer, { external_subscription_id: s.sub });
    expect(viaClient.data.customer_usage.amount_cents).toBe(16_510);
  });

  it("counts a :30 timezone's midnight exactly: partial edge hours come from raw events", async () => {
    const code = uid("calls");
    const s = await setupSubscription({
      timezone: "Asia/Kolkata",
      metrics: [{ code, name: "Calls", aggregation_type: "count_agg" }],
      charges: (m) => [{ billable_metric_id: m[code].lago_id, charge_model: "standard", properties: { amount: "1" } }],
    });
    // Late in March (still March in Kolkata), so the month's last second is not in the future.
    t.clock.set(Date.parse("2026-03-31T12:00:00Z"));
    await send([
      { external_subscription_id: s.sub, code, timestamp: T("2026-02-28T18:29:59Z") }, // February in Kolkata
      { external_subscription_id: s.sub, code, timestamp: T("2026-02-28T18:30:00Z") }, // March 1st, 00:00 in Kolkata
      { external_subscription_id: s.sub, code, timestamp: T("2026-02-28T18:45:00Z") },
      { external_subscription_id: s.sub, code, timestamp: T("2026-03-10T10:00:00Z") },
      { external_subscription_id: s.sub, code, timestamp: T("2026-03-31T18:29:59Z") }, // last second of March in Kolkata
      { external_subscription_id: s.sub, code, timestamp: T("2026-03-31T18:30:00Z") }, // April in Kolkata
    ]);
    const usage = ok(await currentUsage(s.customer, s.sub)).customer_usage;
    expect([usage.from_datetime, usage.to_datetime]).toEqual(["2026-02-28T18:30:00Z", "2026-03-31T18:29:59Z"]);
    expect(usage.charges_usage[0]).toMatchObject({ units: "4", events_count: 4, amount_cents: 400 });
  });

  it("splits usage by charge filters, the rest going to the charge's own price", async () => {
    const code = uid("compute");
    const s = await setupSubscription({
      metrics: [{ code, name: "Compute", aggregation_type: "sum_agg", field_name: "hours", filters: [{ key: "region", values: ["eu", "us"] }] }],
      charges: (m) => [
        {
          billable_metric_id: m[code].lago_id,
          charge_model: "standard",
          properties: { amount: "1" },
          filters: [
            { invoice_display_name: "Europe", properties: { amount: "0.10" }, values: { region: ["eu"] } },
            { invoice_display_name: "US", properties: { amount: "0.20" }, values: { region: ["us"] } },
          ],
        },
      ],
    });
    await send([
      { external_subscription_id: s.sub, code, timestamp: T("2026-03-05T10:00:00Z"), properties: { hours: "10", region: "eu" } },
      { external_subscription_id: s.sub, code, timestamp: T("2026-03-05T11:00:00Z"), properties: { hours: "5", region: "us" } },
      { external_subscription_id: s.sub, code, timestamp: T("2026-03-05T12:00:00Z"), properties: { hours: "2", region: "ap" } },
      { external_subscription_id: s.sub, code, timestamp: T("2026-03-05T12:30:00Z"), properties: { hours: "1" } },
    ]);
    const charge = ok(await currentUsage(s.customer, s.sub)).customer_usage.charges_usage[0];
    expect(charge).toMatchObject({ units: "18", events_count: 4, amount_cents: 100 + 100 + 300 });
    expect(charge.filters).toEqual([
      { units: "10", total_aggregated_units: "10", amount_cents: 100, events_count: 1, invoice_display_name: "Europe", values: { region: ["eu"] } },
      { units: "5", total_aggregated_units: "5", amount_cents: 100, events_count: 1, invoice_display_name: "US", values: { region: ["us"] } },
    ]);
  });

  it("computes unique count, latest and weighted sum from raw events", async () => {
    const users = uid("users");
    const latest = uid("latest");
    const seats = uid("seats");
    const s = await setupSubscription({
      metrics: [
        { code: users, name: "Users", aggregation_type: "unique_count_agg", field_name: "user" },
        { code: latest, name: "Latest", aggregation_type: "latest_agg", field_name: "gb" },
        { code: seats, name: "Seats", aggregation_type: "weighted_sum_agg", field_name: "seats" },
      ],
      charges: (m) => [users, latest, seats].map((c) => ({ billable_metric_id: m[c].lago_id, charge_model: "standard", properties: { amount: "1" } })),
    });
    t.clock.set(Date.parse("2026-03-25T00:00:00Z"));
    await send([
      { external_subscription_id: s.sub, code: users, timestamp: T("2026-03-02T00:00:00Z"), properties: { user: "a" } },
      { external_subscription_id: s.sub, code: users, timestamp: T("2026-03-03T00:00:00Z"), properties: { user: "a" } },
      { external_subscription_id: s.sub, code: users, timestamp: T("2026-03-04T00:00:00Z"), properties: { user: "b" } },
      { external_subscription_id: s.sub, code: users, timestamp: T("2026-03-05T00:00:00Z"), properties: { user: "b", operation_type: "remove" } },
      { external_subscription_id: s.sub, code: users, timestamp: T("2026-03-06T00:00:00Z"), properties: { user: "c" } },
      { external_subscription_id: s.sub, code: latest, timestamp: T("2026-03-02T00:00:00Z"), properties: { gb: "5" } },
      { external_subscription_id: s.sub, code: latest, timestamp: T("2026-03-04T00:00:00Z"), properties: { gb: "6" } },
      { external_subscription_id: s.sub, code: latest, timestamp: T("2026-03-03T00:00:00Z"), properties: { gb: "7" } },
      // 31 seats held for the last 10 days of March's 31: 31 × 10 / 31 = 10.
      { external_subscription_id: s.sub, code: seats, timestamp: T("2026-03-22T00:00:00Z"), properties: { seats: "31" } },
    ]);
    const byCode = Object.fromEntries(ok(await currentUsage(s.customer, s.sub)).customer_usage.charges_usage.map((c: any) => [c.billable_metric.code, c]));
    expect(byCode[users]).toMatchObject({ units: "2", events_count: 2, amount_cents: 200 });
    expect(byCode[latest]).toMatchObject({ units: "6", events_count: 3, amount_cents: 600 });
    expect(byCode[seats]).toMatchObject({ units: "10", events_count: 1, amount_cents: 1000 });
  });

  it("a recurring sum carries earlier periods over (Lago reads it without a lower bound)", async () => {
    const code = uid("seats");
    const s = await setupSubscription({
      metrics: [{ code, name: "Seats", aggregation_type: "sum_agg", field_name: "n", recurring: true }],
      charges: (m) => [{ billable_metric_id: m[code].lago_id, charge_model: "standard", properties: { amount: "1" } }],
    });
    await send([
      { external_subscription_id: s.sub, code, timestamp: T("2026-01-10T10:30:00Z"), properties: { n: "5" } },
      { external_subscription_id: s.sub, code, timestamp: T("2026-02-10T00:00:00Z"), properties: { n: "3" } },
      { external_subscription_id: s.sub, code, timestamp: T("2026-03-02T00:15:00Z"), properties: { n: "-2" } },
    ]);
    expect(ok(await currentUsage(s.customer, s.sub)).customer_usage.charges_usage[0]).toMatchObject({ units: "6", events_count: 3, amount_cents: 600 });
  });

  it("answers Lago's errors: unknown customer 404, no active subscription 405", async () => {
    const code = uid("calls");
    const s = await setupSubscription({ metrics: [{ code, aggregation_type: "count_agg" }], charges: () => [] });
    expect(json(await currentUsage(uid("nobody"), s.sub))).toEqual({ status: 404, error: "Not Found", code: "customer_not_found" });
    expect(json(await currentUsage(s.customer, uid("nosub")))).toEqual({ status: 405, error: "Method Not Allowed", code: "no_active_subscription" });
    const missing = await call("GET", `/api/v1/customers/${s.customer}/current_usage`);
    expect(missing.statusCode).toBe(422);
    expect(json(missing).error_details).toEqual({ external_subscription_id: ["value_is_mandatory"] });
  });

  it("lists past periods newest first, each with its own usage", async () => {
    const code = uid("calls");
    const s = await setupSubscription({
      metrics: [{ code, name: "Calls", aggregation_type: "count_agg" }],
      charges: (m) => [{ billable_metric_id: m[code].lago_id, charge_model: "standard", properties: { amount: "1" } }],
    });
    await send([
      { external_subscription_id: s.sub, code, timestamp: T("2026-01-15T00:00:00Z") },
      { external_subscription_id: s.sub, code, timestamp: T("2026-02-15T00:00:00Z") },
      { external_subscription_id: s.sub, code, timestamp: T("2026-02-16T00:00:00Z") },
    ]);
    const r = ok(await call("GET", `/api/v1/customers/${s.customer}/past_usage?external_subscription_id=${s.sub}&per_page=1`));
    expect(r.meta).toEqual({ current_page: 1, next_page: 2, prev_page: null, total_pages: 2, total_count: 2 });
    expect(r.usage_periods[0]).toMatchObject({ from_datetime: "2026-02-01T00:00:00Z", to_datetime: "2026-02-28T23:59:59Z", amount_cents: 200 });
    const page2 = ok(await call("GET", `/api/v1/customers/${s.customer}/past_usage?external_subscription_id=${s.sub}&per_page=1&page=2`));
    expect(page2.usage_periods[0]).toMatchObject({ from_datetime: "2026-01-01T00:00:00Z", amount_cents: 100 });
  });
});

describe(`unmatched events and tenancy on ${DB_KIND}`, () => {
  it("lists events no subscription matches until the subscription exists, then counts them in its period", async () => {
    const code = uid("calls");
    const s = await setupSubscription({
      metrics: [{ code, name: "Calls", aggregation_type: "count_agg" }],
      charges: (m) => [{ billable_metric_id: m[code].lago_id, charge_model: "standard", properties: { amount: "1" } }],
    });
    const future = uid("future-sub");
    await send([{ external_subscription_id: future, code, timestamp: T("2026-03-03T00:00:00Z") }]);
    const listed = ok(await call("GET", `/api/v1/unmatched_events?external_subscription_id=${future}`));
    expect(listed.events.map((e: any) => [e.code, e.external_subscription_id, e.unmatched_reasons])).toEqual([[code, future, ["subscription_not_found"]]]);
    const metrics = parseMetrics((await t.app.http.inject({ method: "GET", url: "/metrics" })).body);
    expect(metrics.get('billing_unmatched_events{reason="subscription_not_found"}')).toBeGreaterThanOrEqual(1);

    // The subscription arrives (same customer and plan): the event counts in its period.
    ok(
      await call("POST", "/api/v1/subscriptions", {
        subscription: { external_customer_id: s.customer, plan_code: s.plan.code, external_id: future, billing_time: "calendar", subscription_at: "2026-03-01T00:00:00Z" },
      }),
    );
    expect(ok(await call("GET", `/api/v1/unmatched_events?external_subscription_id=${future}`)).meta.total_count).toBe(0);
    expect(ok(await currentUsage(s.customer, future)).customer_usage.charges_usage[0]).toMatchObject({ units: "1", amount_cents: 100 });
  });

  it("another organization can read neither the usage nor the unmatched events", async () => {
    const code = uid("calls");
    const s = await setupSubscription({
      metrics: [{ code, name: "Calls", aggregation_type: "count_agg" }],
      charges: (m) => [{ billable_metric_id: m[code].lago_id, charge_model: "standard", properties: { amount: "1" } }],
    });
    await send([{ external_subscription_id: s.sub, code, timestamp: T("2026-03-03T00:00:00Z") }, { external_subscription_id: uid("lost"), code: uid("nometric"), timestamp: T("2026-03-03T00:00:00Z") }]);
    const other = await newOrg();
    expect(json(await currentUsage(s.customer, s.sub, other))).toEqual({ status: 404, error: "Not Found", code: "customer_not_found" });
    expect(ok(await call("GET", `/api/v1/unmatched_events`, undefined, other)).meta.total_count).toBe(0);
    // Same customer external id in the other organization: still not the first one's subscription.
    ok(await call("POST", "/api/v1/customers", { customer: { external_id: s.customer } }, other));
    expect(json(await currentUsage(s.customer, s.sub, other)).code).toBe("no_active_subscription");
    // The owner still reads it.
    expect(ok(await currentUsage(s.customer, s.sub)).customer_usage.amount_cents).toBe(100);
  });
});
