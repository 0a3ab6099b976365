// Grouped charges served from the hourly rollups (migration 0020): a metric's rollups keep the
// values of the pricing group keys its charges price by, kept in step with plan writes; grouped
// count/sum/max usage read from them equals the raw-event computation exactly, over random data
// and random windows, through current_usage, past_usage and the invoice; a key the rollups do not
// keep (a subscription override) is read from raw events. On PGlite by default, PostgreSQL with
// TEST_DATABASE_URL.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { verifyRollups } from "../../src/modules/ingest/verify.ts";
import { ChargeSlots, type Span, splitByHours } from "../../src/modules/metering/core/index.ts";
import { readGroupedPartials, readRawPartials } from "../../src/modules/metering/store.ts";
import { Decimal } from "../../src/shared/money.ts";
import { DB_KIND } from "../helpers/db.ts";
import { startTestApp, type TestApp } from "../helpers/app.ts";
import { uid } from "./support.ts";
import { BILLING_ENV, newUsageOrg, type UsageSub } from "./billing_support.ts";

let t: TestApp;

beforeAll(async () => {
  // Several writers and small batches: concurrent requests commit in concurrent transactions. The
  // rollups keep every group key (the bound has a test of its own): the small random data sets
  // here would otherwise leave high-cardinality keys to raw events.
  t = await startTestApp({
    env: {
      ...BILLING_ENV,
      INGEST_WRITERS: "4",
      INGEST_BATCH_MAX: "20",
      ROLLUP_GROUP_MAX_ROWS_PERCENT: "100",
    },
  });
});
afterAll(async () => {
  await t?.close();
});

const T = (iso: string) => Date.parse(iso);

async function newOrg() {
  const org = await newUsageOrg(t);
  const { api } = org;
  return {
    ...org,
    pastUsage: async (s: UsageSub) => (await api("GET", `/api/v1/customers/${s.customer}/past_usage?external_subscription_id=${s.sub}`)).usage_periods,
    invoices: async (customer: string) => {
      const list = (await api("GET", `/api/v1/invoices?external_customer_id=${customer}`)).invoices;
      return Promise.all(list.map(async (i: any) => (await api("GET", `/api/v1/invoices/${i.lago_id}`)).invoice));
    },
  };
}

async function groupKeysOf(orgId: number, code: string): Promise<string[]> {
  const { rows } = await t.db.query<{ keys: string[] }>("SELECT rollup_group_keys AS keys FROM billable_metrics WHERE org_id = $1 AND code = $2 AND deleted_at IS NULL", [
    orgId,
    code,
  ]);
  return rows[0]!.keys;
}

async function metricId(orgId: number, code: string): Promise<number> {
  const { rows } = await t.db.query<{ id: string }>("SELECT id::text AS id FROM billable_metrics WHERE org_id = $1 AND code = $2 AND deleted_at IS NULL", [orgId, code]);
  return Number(rows[0]!.id);
}

async function expectRollupsExact(orgId: number): Promise<void> {
  const { differences } = await verifyRollups(t.db, { orgId });
  expect(differences).toEqual([]);
}

/** mulberry32: reproducible random data (the seed is in the test name). */
function prng(seed: number) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let x = a;
    x = Math.imul(x ^ (x >>> 15), x | 1);
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
  return { next, int: (n: number) => Math.floor(next() * n), pick: <T>(list: readonly T[]): T => list[Math.floor(next() * list.length)]! };
}

// Property values that stress the dims: missing, JSON null, numbers (read back as their text),
// strings that look like numbers, quotes, backslashes and non-ASCII.
const ABSENT = Symbol("absent");
const REGIONS = ["eu", "us", "ap", null, 7, ABSENT] as const;
const USERS = ["u1", "u2", 'q"uote', "back\\slash", "ü-ß", "1", 1, 1.5, "", null, ABSENT] as const;
const MODELS = ["gpt", "claude", ABSENT] as const;
const TIERS = ["a", "b", ABSENT] as const;
const VALUES = ["1", "2.5", "-3", "0.001", "100", "12.340", "abc", 4, 2.25, null, ABSENT] as const;

function randomProps(r: ReturnType<typeof prng>): Record<string, unknown> {
  const props: Record<string, unknown> = {};
  const put = (k: string, v: unknown) => {
    if (v !== ABSENT) props[k] = v;
  };
  put("region", r.pick(REGIONS));
  put("user", r.pick(USERS));
  put("model", r.pick(MODELS));
  put("tier", r.pick(TIERS));
  put("v", r.pick(VALUES));
  return props;
}

type Row = { dims: string; groups: string; eventsCount: number; valueSum: Decimal | null; valueMax: Decimal | null };
const normal = (rows: readonly Row[]) =>
  Object.fromEntries(
    rows
      .filter((p) => p.eventsCount > 0)
      .map((p) => [`${p.dims}|${p.groups}`, [p.eventsCount, p.valueSum?.toString() ?? null, p.valueMax?.toString() ?? null]]),
  );

describe(`grouped usage from rollups equals raw events on ${DB_KIND}`, () => {
  for (const [agg, seed] of [
    ["count_agg", 11],
    ["sum_agg", 23],
    ["max_agg", 37],
  ] as const) {
    it(`${agg}: per dims and group, rollups plus raw edges give the raw answer over random data and windows (seed ${seed})`, async () => {
      const r = prng(seed);
      const org = await newOrg();
      await org.freeze("2024-03-10T00:00:00Z");
      const code = uid(agg);
      await org.metric({
        code,
        aggregation_type: agg,
        ...(agg === "count_agg" ? {} : { field_name: "v" }),
        filters: [
          { key: "region", values: ["eu", "us"] },
          { key: "tier", values: ["a"] },
        ],
      });
      const sub = uid("sub");
      const other = uid("sub");
      const base = T("2024-03-02T00:00:00Z");
      const spread = 3 * 86_400_000;
      const events = (n: number) => Array.from({ length: n }, () => ({ code, at: base + r.int(spread), properties: randomProps(r) }));
      // Events before any grouped charge exists: the plan's write rebuilds the rollups with them.
      await org.send(sub, events(300));
      await org.send(other, events(50));
      expect(await groupKeysOf(org.orgId, code)).toEqual([]);

      const plan = await org.plan([
        {
          billable_metric_id: (await org.api("GET", `/api/v1/billable_metrics/${code}`)).billable_metric.lago_id,
          charge_model: "standard",
          // region is a filter key too: grouped, it keeps any value.
          properties: { amount: "1", pricing_group_keys: ["region", "user"] },
          filters: [{ values: { tier: ["a"] }, properties: { amount: "2", pricing_group_keys: ["model"] } }],
        },
      ]);
      expect(await groupKeysOf(org.orgId, code)).toEqual(["model", "region", "user"]);
      // And after it: ingest keeps the group values.
      await org.send(sub, events(300));
      await org.send(other, events(50));
      await expectRollupsExact(org.orgId);

      const charge = (await t.app.catalog.getPlanByCode(org.orgId, plan.code))!.charges[0]!;
      const keys = new ChargeSlots(charge).groupKeys;
      expect([...keys].sort()).toEqual(["model", "region", "user"]);
      const scope = { orgId: org.orgId, metricId: await metricId(org.orgId, code), externalSubscriptionId: sub };

      const spans: Span[] = [
        { from: null, to: new Date(base + spread + 1) },
        { from: new Date(base), to: new Date(base + spread) },
      ];
      for (let i = 0; i < 40; i++) {
        const a = base - 3_600_000 + r.int(spread + 7_200_000);
        const b = base - 3_600_000 + r.int(spread + 7_200_000);
        // Some windows on whole hours, most anywhere (millisecond edges).
        const snap = (x: number) => (i % 4 === 0 ? x - (x % 3_600_000) : x);
        spans.push({ from: new Date(snap(Math.min(a, b))), to: new Date(snap(Math.max(a, b)) + 1) });
      }
      let fromRollups = 0;
      for (const span of spans) {
        const split = splitByHours(span);
        if (split.rollups !== null) fromRollups++;
        const rolled = await readGroupedPartials(t.db, scope, span, split, keys);
        const raw = await readRawPartials(t.db, scope, span, keys);
        expect(normal(rolled), `${span.from?.toISOString()}..${span.to.toISOString()}`).toEqual(normal(raw));
      }
      expect(fromRollups).toBeGreaterThan(20);
      // The grouped read did use the rollups: one rollup row altered changes its answer.
      const whole = spans[0]!;
      const before = normal(await readGroupedPartials(t.db, scope, whole, splitByHours(whole), keys));
      await t.db.query(
        `UPDATE metric_rollups_hourly SET events_count = events_count + 1000
          WHERE ctid = (SELECT ctid FROM metric_rollups_hourly WHERE org_id = $1 AND metric_id = $2 AND external_subscription_id = $3 LIMIT 1)`,
        [scope.orgId, scope.metricId, sub],
      );
      expect(normal(await readGroupedPartials(t.db, scope, whole, splitByHours(whole), keys))).not.toEqual(before);
      // Without every key listed, the same read is the raw one (the tampered row no longer counts;
      // dims now keep fewer keys, the groups are the same).
      await t.db.query("UPDATE billable_metrics SET rollup_group_keys = '[\"model\"]' WHERE id = $1", [scope.metricId]);
      const uncovered = normal(await readGroupedPartials(t.db, scope, whole, splitByHours(whole), keys));
      expect(uncovered).toEqual(normal(await readRawPartials(t.db, scope, whole, keys)));
      const byGroup = (rows: Record<string, unknown>) => Object.keys(rows).map((k) => k.split("|")[1]).sort();
      expect(byGroup(uncovered)).toEqual(byGroup(before));
    });
  }

  it("prices current usage the same from rollups as from raw events (percentage charges included)", async () => {
    const r = prng(5);
    const org = await newOrg();
    await org.freeze("2024-03-01T00:00:00Z");
    const calls = await org.metric({ code: uid("calls"), name: "A calls", aggregation_type: "count_agg", filters: [{ key: "tier", values: ["a", "b"] }] });
    const gb = await org.metric({ code: uid("gb"), name: "B gb", aggregation_type: "sum_agg", field_name: "v" });
    const peak = await org.metric({ code: uid("peak"), name: "C peak", aggregation_type: "max_agg", field_name: "v" });
    const pay = await org.metric({ code: uid("pay"), name: "D pay", aggregation_type: "sum_agg", field_name: "v" });
    const graduated = {
      graduated_ranges: [
        { from_value: 0, to_value: 10, per_unit_amount: "0.5", flat_amount: "1" },
        { from_value: 11, to_value: null, per_unit_amount: "0.25", flat_amount: "0" },
      ],
    };
    const plan = await org.plan([
      {
        billable_metric_id: calls.lago_id,
        charge_model: "graduated",
        properties: { ...graduated, pricing_group_keys: ["user"] },
        filters: [{ values: { tier: ["a"] }, properties: { ...graduated, pricing_group_keys: ["region", "user"] } }],
      },
      { billable_metric_id: gb.lago_id, charge_model: "package", properties: { amount: "3", package_size: 10, free_units: 5, pricing_group_keys: ["region"] } },
      { billable_metric_id: peak.lago_id, charge_model: "volume", properties: { volume_ranges: graduated.graduated_ranges, pricing_group_keys: ["model"] } },
      { billable_metric_id: pay.lago_id, charge_model: "percentage", properties: { rate: "1.5", fixed_amount: "0.1", pricing_group_keys: ["region"] } },
    ]);
    const s = await org.subscribe(plan.code, "2024-03-01T00:00:00Z");
    await org.freeze("2024-03-20T00:37:12Z");
    const base = T("2024-03-01T00:00:00Z");
    await org.send(
      s.sub,
      Array.from({ length: 800 }, () => ({
        code: r.pick([calls.code, gb.code, peak.code, pay.code]),
        at: base + r.int(19 * 86_400_000 + 37 * 60_000),
        properties: { ...randomProps(r), v: r.pick(["1", "2.5", "10", "0.75", "7", "abc"]) },
      })),
    );
    await expectRollupsExact(org.orgId);
    for (const m of [calls, gb, peak, pay]) expect((await groupKeysOf(org.orgId, m.code)).length).toBeGreaterThan(0);

    const fromRollups = await org.usage(s);
    expect(fromRollups.amount_cents).toBeGreaterThan(0);
    for (const c of fromRollups.charges_usage) expect(c.grouped_usage.length + c.filters.length, c.billable_metric.code).toBeGreaterThan(1);
    await t.db.query("UPDATE billable_metrics SET rollup_group_keys = '[]' WHERE org_id = $1", [org.orgId]);
    const fromRaw = await org.usage(s);
    expect(fromRollups).toEqual(fromRaw);
  });
});

describe(`grouped usage, past usage and invoices on ${DB_KIND}`, () => {
  it("bills grouped fees from rollups as worked out by hand, in current usage, past usage and the invoice", async () => {
    const org = await newOrg();
    await org.freeze("2024-03-01T00:00:00Z");
    const gb = await org.metric({ code: uid("gb"), name: "Storage", aggregation_type: "sum_agg", field_name: "gb", filters: [{ key: "tier", values: ["hot"] }] });
    const plan = await org.plan([
      {
        billable_metric_id: gb.lago_id,
        charge_model: "graduated",
        // Per region: €1/GB for the first 10 GB, €0.50 after; hot storage per customer at €2/GB.
        properties: {
          pricing_group_keys: ["region"],
          graduated_ranges: [
            { from_value: 0, to_value: 10, per_unit_amount: "1", flat_amount: "0" },
            { from_value: 11, to_value: null, per_unit_amount: "0.5", flat_amount: "0" },
          ],
        },
        filters: [
          {
            invoice_display_name: "Hot",
            values: { tier: ["hot"] },
            properties: { pricing_group_keys: ["customer"], graduated_ranges: [{ from_value: 0, to_value: null, per_unit_amount: "2", flat_amount: "0" }] },
          },
        ],
      },
    ]);
    expect(await groupKeysOf(org.orgId, gb.code)).toEqual(["customer", "region"]);
    const s = await org.subscribe(plan.code, "2024-03-01T00:00:00Z");
    await org.freeze("2024-03-20T10:30:00Z");
    const at = (iso: string) => T(iso);
    await org.send(s.sub, [
      { code: gb.code, at: at("2024-03-02T10:00:00Z"), properties: { gb: "8", region: "eu" } },
      { code: gb.code, at: at("2024-03-03T10:30:00Z"), properties: { gb: "6", region: "eu" } },
      { code: gb.code, at: at("2024-03-04T11:00:00Z"), properties: { gb: "4", region: "us" } },
      { code: gb.code, at: at("2024-03-05T12:00:00Z"), properties: { gb: "1" } },
      { code: gb.code, at: at("2024-03-06T12:00:00Z"), properties: { gb: "3", tier: "hot", customer: "acme" } },
      { code: gb.code, at: at("2024-03-07T12:00:00Z"), properties: { gb: "2", tier: "hot", customer: "acme", region: "eu" } },
      { code: gb.code, at: at("2024-03-08T12:00:00Z"), properties: { gb: "1.5", tier: "hot", customer: "zeta" } },
      // In the open hour (read from raw events at the window's edge).
      { code: gb.code, at: at("2024-03-20T10:10:00Z"), properties: { gb: "2", region: "us" } },
      // Not numeric: no usage, no event.
      { code: gb.code, at: at("2024-03-09T12:00:00Z"), properties: { gb: "lots", region: "eu" } },
    ]);
    // The rollups hold the group values.
    const { rows } = await t.db.query<{ dims: string }>(
      "SELECT DISTINCT r.dims FROM metric_rollups_hourly r JOIN billable_metrics m ON m.id = r.metric_id WHERE m.org_id = $1 ORDER BY 1",
      [org.orgId],
    );
    // (jsonb's canonical text: shorter keys first.)
    expect(rows.map((x) => x.dims)).toEqual([
      "",
      '{"region": "eu"}',
      '{"region": "us"}',
      '{"tier": "hot", "customer": "acme"}',
      '{"tier": "hot", "customer": "zeta"}',
      '{"tier": "hot", "region": "eu", "customer": "acme"}',
    ]);

    const usage = await org.usage(s);
    const charge = usage.charges_usage[0];
    // eu: 14 GB = 10 × €1 + 4 × €0.50 = €12; us: 6 GB = €6; no region: 1 GB = €1.
    // Hot: acme 5 GB × €2 = €10, zeta 1.5 GB × €2 = €3.
    expect(charge.grouped_usage.map((g: any) => [g.grouped_by, g.units, g.events_count, g.amount_cents])).toEqual([
      [{ customer: "acme" }, "5", 2, 1000],
      [{ customer: "zeta" }, "1.5", 1, 300],
      [{ region: "eu" }, "14", 2, 1200],
      [{ region: "us" }, "6", 2, 600],
      [{ region: null }, "1", 1, 100],
    ]);
    expect(usage.amount_cents).toBe(1000 + 300 + 1200 + 600 + 100);

    // A late event for a closed hour changes usage at once (the rollups take it).
    await org.send(s.sub, [{ code: gb.code, at: at("2024-03-10T09:00:00Z"), properties: { gb: "2", region: "us" } }]);
    const later = await org.usage(s);
    // us: 8 GB = €8.
    expect(later.amount_cents).toBe(usage.amount_cents + 200);

    // Period closes: past usage and the invoice carry the same grouped amounts.
    await org.freeze("2024-04-01T00:05:00Z");
    const [march] = await org.invoices(s.customer);
    expect(march.fees_amount_cents).toBe(later.amount_cents);
    expect(march.fees.filter((f: any) => f.item.code === gb.code).map((f: any) => [f.item.filter_invoice_display_name, f.item.grouped_by, f.units, f.amount_cents]).sort()).toEqual(
      [
        ["Hot", { customer: "acme" }, "5", 1000],
        ["Hot", { customer: "zeta" }, "1.5", 300],
        [null, { region: "eu" }, "14", 1200],
        [null, { region: "us" }, "8", 800],
        [null, { region: null }, "1", 100],
      ].sort(),
    );
    const [past] = await org.pastUsage(s);
    expect(past.amount_cents).toBe(later.amount_cents);
    expect(past.charges_usage[0].grouped_usage.map((g: any) => [g.grouped_by, g.units, g.amount_cents])).toEqual([
      [{ customer: "acme" }, "5", 1000],
      [{ customer: "zeta" }, "1.5", 300],
      [{ region: "eu" }, "14", 1200],
      [{ region: "us" }, "8", 800],
      [{ region: null }, "1", 100],
    ]);
  });

  it("a subscription override's group key is taken into the rollups when it is written; a key they lack is read from raw events, exactly", async () => {
    const org = await newOrg();
    await org.freeze("2024-03-01T00:00:00Z");
    const calls = await org.metric({ code: uid("calls"), aggregation_type: "count_agg" });
    const plan = await org.plan([{ billable_metric_id: calls.lago_id, charge_model: "standard", properties: { amount: "1", pricing_group_keys: ["region"] } }]);
    const chargeId = plan.charges[0].lago_id;
    const s = await org.subscribe(plan.code, "2024-03-01T00:00:00Z", {
      plan_overrides: { charges: [{ id: chargeId, properties: { amount: "2", pricing_group_keys: ["model"] } }] },
    });
    // POST /subscriptions with the override synced the metric's keys before it answered.
    expect(await groupKeysOf(org.orgId, calls.code)).toEqual(["model", "region"]);
    await org.freeze("2024-03-10T00:00:00Z");
    const at = T("2024-03-02T00:00:00Z");
    await org.send(s.sub, [
      ...Array.from({ length: 3 }, (_, i) => ({ code: calls.code, at: at + i * 3_600_000, properties: { model: "gpt", region: "eu", tier: "pro" } })),
      { code: calls.code, at: at + 5 * 3_600_000, properties: { model: "claude", region: "eu" } },
    ]);
    const usage = await org.usage(s);
    expect(usage.charges_usage[0].grouped_usage.map((g: any) => [g.grouped_by, g.units, g.amount_cents])).toEqual([
      [{ model: "claude" }, "1", 200],
      [{ model: "gpt" }, "3", 600],
    ]);
    await expectRollupsExact(org.orgId);

    // Rollups without the key (as before a sync): the same answer, from raw events.
    await t.db.query("UPDATE billable_metrics SET rollup_group_keys = '[\"region\"]'::jsonb WHERE org_id = $1 AND code = $2", [org.orgId, calls.code]);
    expect(await org.usage(s)).toEqual(usage);

    // PUT /subscriptions with another key: synced (and the rollups rebuilt) before it answers.
    await org.api("PUT", `/api/v1/subscriptions/${s.sub}`, {
      subscription: { plan_overrides: { charges: [{ id: chargeId, properties: { amount: "2", pricing_group_keys: ["tier"] } }] } },
    });
    expect(await groupKeysOf(org.orgId, calls.code)).toEqual(["region", "tier"]);
    await expectRollupsExact(org.orgId);
    const byTier = await org.usage(s);
    expect(byTier.charges_usage[0].grouped_usage.map((g: any) => [g.grouped_by, g.units, g.amount_cents])).toEqual([
      [{ tier: "pro" }, "3", 600],
      [{ tier: null }, "1", 200],
    ]);
  });
});

describe(`rollup group keys follow the catalog on ${DB_KIND}`, () => {
  it("plan writes add and drop group keys, rebuilding the rollups exactly while events arrive concurrently", async () => {
    for (const delayMs of [0, 5, 20]) {
      const org = await newOrg();
      await org.freeze("2024-03-05T00:00:00Z");
      const code = uid("tokens");
      const metric = await org.metric({ code, aggregation_type: "sum_agg", field_name: "n", filters: [{ key: "region", values: ["eu"] }] });
      const subs = [uid("sub"), uid("sub")];
      const batch = (b: number) =>
        Array.from({ length: 20 }, (_, i) => ({
          code,
          at: T("2024-03-02T00:00:00Z") + b * 3_600_000 + i * 61_000,
          properties: { n: String(b * 100 + i), region: ["eu", "us", "ap"][(b + i) % 3]!, user: `u${(b * 7 + i) % 5}` },
        }));
      const sends = Array.from({ length: 30 }, (_, b) => org.send(subs[b % 2]!, batch(b)));
      await new Promise((r) => setTimeout(r, delayMs));
      const grouped = (keys: string[]) => ({ billable_metric_id: metric.lago_id, charge_model: "standard", properties: { amount: "1", pricing_group_keys: keys } });
      const plan = await org.plan([grouped(["user"])]);
      expect(await groupKeysOf(org.orgId, code)).toEqual(["user"]);
      await org.api("PUT", `/api/v1/plans/${plan.code}`, { plan: { charges: [{ id: plan.charges[0].lago_id, ...grouped(["user", "region"]) }] } });
      expect(await groupKeysOf(org.orgId, code)).toEqual(["region", "user"]);
      // A metric update (its filters) keeps the keys and rebuilds with them.
      await org.api("PUT", `/api/v1/billable_metrics/${code}`, { billable_metric: { filters: [{ key: "region", values: ["eu", "us"] }] } });
      expect(await groupKeysOf(org.orgId, code)).toEqual(["region", "user"]);
      await Promise.all(sends);
      await expectRollupsExact(org.orgId);
      const total = await t.db.query<{ n: string }>(
        "SELECT sum(events_count)::text AS n FROM metric_rollups_hourly r JOIN billable_metrics m ON m.id = r.metric_id WHERE m.org_id = $1",
        [org.orgId],
      );
      expect(Number(total.rows[0]!.n)).toBe(600);
      // The charge goes: so do its keys (fewer rollup rows), still exact.
      const before = await t.db.query<{ n: string }>("SELECT count(*)::text AS n FROM metric_rollups_hourly WHERE org_id = $1", [org.orgId]);
      await org.api("PUT", `/api/v1/plans/${plan.code}`, { plan: { charges: [] } });
      expect(await groupKeysOf(org.orgId, code)).toEqual([]);
      const after = await t.db.query<{ n: string }>("SELECT count(*)::text AS n FROM metric_rollups_hourly WHERE org_id = $1", [org.orgId]);
      expect(Number(after.rows[0]!.n)).toBeLessThan(Number(before.rows[0]!.n));
      await expectRollupsExact(org.orgId);
    }
  });

  it("a key with a value per event (a user id) is left to raw events; usage stays exact", async () => {
    const org = await newOrg();
    await org.freeze("2024-03-10T00:00:00Z");
    const code = uid("requests");
    const metric = await org.metric({ code, aggregation_type: "sum_agg", field_name: "ms" });
    const at = T("2024-03-02T00:00:00Z");
    const events = Array.from({ length: 300 }, (_, i) => ({
      code,
      at: at + (i % 3) * 3_600_000 + i * 1000,
      properties: { ms: String(i % 7), region: ["eu", "us"][i % 2]!, request: `r${i}` },
    }));
    const plan = await org.plan([
      { billable_metric_id: metric.lago_id, charge_model: "standard", properties: { amount: "1", pricing_group_keys: ["region"] } },
    ]);
    const s = await org.subscribe(plan.code, "2024-03-01T00:00:00Z");
    await org.send(s.sub, events);
    // Another plan prices the metric by request too: one rollup row per event would buy nothing
    // (the default bound: at most 50 rows per 100 events).
    t.app.metering.boundRollupGroupKeys(0.5);
    await org.plan([{ billable_metric_id: metric.lago_id, charge_model: "standard", properties: { amount: "1", pricing_group_keys: ["region", "request"] } }]);
    t.app.metering.boundRollupGroupKeys(1);
    expect(await groupKeysOf(org.orgId, code)).toEqual(["region"]);
    await expectRollupsExact(org.orgId);
    const usage = await org.usage(s);
    const expected = (region: string) => events.filter((e) => e.properties.region === region).reduce((n, e) => n + Number(e.properties.ms), 0);
    expect(usage.charges_usage[0].grouped_usage.map((g: any) => [g.grouped_by.region, g.units])).toEqual([
      ["eu", String(expected("eu"))],
      ["us", String(expected("us"))],
    ]);
    // The request-grouped charge (raw events) is exact too.
    const other = await org.subscribe((await org.api("GET", "/api/v1/plans?per_page=1")).plans[0].code, "2024-03-01T00:00:00Z");
    await org.send(other.sub, events.slice(0, 5).map((e) => ({ ...e, properties: { ...e.properties } })));
    const grouped = (await org.usage(other)).charges_usage[0].grouped_usage;
    expect(grouped.map((g: any) => [g.grouped_by, g.units])).toEqual(
      events
        .slice(0, 5)
        .map((e) => [{ region: e.properties.region, request: e.properties.request }, e.properties.ms])
        .sort((a, b) => JSON.stringify(a[0]).localeCompare(JSON.stringify(b[0]))),
    );
  });

  it("rollups of hours whose events retention dropped are kept as they were when the keys change", async () => {
    const org = await newOrg();
    await org.freeze("2023-02-10T00:00:00Z");
    const code = uid("gb");
    const metric = await org.metric({ code, aggregation_type: "sum_agg", field_name: "gb" });
    const sub = uid("sub");
    await org.send(sub, [{ code, at: T("2023-01-05T10:00:00Z"), properties: { gb: "5", region: "eu" } }]);
    await org.send(sub, [{ code, at: T("2023-02-05T10:00:00Z"), properties: { gb: "7", region: "us" } }]);
    // What the lifecycle does once January is past retention: its identities and partition go, rollups stay.
    await t.db.query("DELETE FROM event_identities WHERE ts < '2023-02-01T00:00:00Z'");
    await t.db.query("DROP TABLE events_p2023_01");
    await org.plan([{ billable_metric_id: metric.lago_id, charge_model: "standard", properties: { amount: "1", pricing_group_keys: ["region"] } }]);
    expect(await groupKeysOf(org.orgId, code)).toEqual(["region"]);
    const { rows } = await t.db.query<{ hour: Date; dims: string; s: string }>(
      "SELECT hour, dims, value_sum::text AS s FROM metric_rollups_hourly WHERE org_id = $1 ORDER BY hour",
      [org.orgId],
    );
    expect(rows.map((r) => [new Date(r.hour).toISOString(), r.dims, r.s])).toEqual([
      ["2023-01-05T10:00:00.000Z", "", "5"],
      ["2023-02-05T10:00:00.000Z", '{"region": "us"}', "7"],
    ]);
  });

  it("aggregations without rollups never list group keys", async () => {
    const org = await newOrg();
    const code = uid("users");
    const metric = await org.metric({ code, aggregation_type: "unique_count_agg", field_name: "user" });
    await org.plan([{ billable_metric_id: metric.lago_id, charge_model: "standard", properties: { amount: "1", pricing_group_keys: ["region"] } }]);
    expect(await groupKeysOf(org.orgId, code)).toEqual([]);
  });
});
