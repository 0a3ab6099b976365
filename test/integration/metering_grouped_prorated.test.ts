// Pricing group keys and prorated recurring charges against a real database, through the API under
// a test clock: current usage priced per group (Lago's grouped_usage) and prorated by the days each
// unit was present, and the invoice of the period carrying the same amounts (one fee per group,
// each listing its own events). Amounts worked out by hand in the comments. On PGlite by default,
// PostgreSQL with TEST_DATABASE_URL.
import type { InjectOptions, LightMyRequestResponse } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DB_KIND } from "../helpers/db.ts";
import { startTestApp, type TestApp } from "../helpers/app.ts";
import { bearer, json, uid } from "./support.ts";

const ADMIN_TOKEN = "admin-token-for-grouped-prorated-tests-0123456789";
let t: TestApp;

beforeAll(async () => {
  t = await startTestApp({ env: { VALUEVERSE_ADMIN_TOKEN: ADMIN_TOKEN, VALUEVERSE_TEST_CLOCK: "on", BILLING_SCHEDULER: "off" } });
});
afterAll(async () => {
  await t?.close();
});

type Method = "GET" | "POST" | "PUT" | "DELETE";
const T = (iso: string) => Math.floor(Date.parse(iso) / 1000);

async function newOrg() {
  const r = await t.app.http.inject({ method: "POST", url: "/admin/v1/organizations", headers: bearer(ADMIN_TOKEN), payload: { organization: { name: uid("Org") } } });
  expect(r.statusCode, r.body).toBe(200);
  const key = json(r).api_key as string;
  const raw = (method: Method, url: string, payload?: unknown): Promise<LightMyRequestResponse> =>
    t.app.http.inject({ method, url, headers: bearer(key), ...(payload === undefined ? {} : { payload: payload as InjectOptions["payload"] }) });
  const api = async (method: Method, url: string, payload?: unknown) => {
    const r = await raw(method, url, payload);
    expect(r.statusCode, r.body).toBe(200);
    return json(r);
  };
  return {
    api,
    freeze: (at: string) => api("PUT", "/api/v1/test_clock", { test_clock: { frozen_time: at } }),
    metric: async (fields: Record<string, unknown>) =>
      (await api("POST", "/api/v1/billable_metrics", { billable_metric: { name: String(fields["code"]), ...fields } })).billable_metric,
    /** A customer subscribed (calendar, monthly, no plan fee) to a plan with these charges, from `at`. */
    subscribe: async (charges: unknown[], at: string) => {
      const plan = (
        await api("POST", "/api/v1/plans", { plan: { name: "Usage", code: uid("plan"), interval: "monthly", amount_cents: 0, amount_currency: "EUR", charges } })
      ).plan;
      const customer = uid("cus");
      await api("POST", "/api/v1/customers", { customer: { external_id: customer, currency: "EUR" } });
      const sub = uid("sub");
      await api("POST", "/api/v1/subscriptions", {
        subscription: { external_customer_id: customer, plan_code: plan.code, external_id: sub, billing_time: "calendar", subscription_at: at },
      });
      return { customer, sub };
    },
    send: async (sub: string, events: { code: string; at: string; properties?: Record<string, unknown> }[]) => {
      const batch = events.map((e) => ({ transaction_id: uid("tx"), external_subscription_id: sub, code: e.code, timestamp: T(e.at), properties: e.properties ?? {} }));
      for (let i = 0; i < batch.length; i += 100) await api("POST", "/api/v1/events/batch", { events: batch.slice(i, i + 100) });
    },
    usage: async (s: { customer: string; sub: string }) =>
      (await api("GET", `/api/v1/customers/${s.customer}/current_usage?external_subscription_id=${s.sub}`)).customer_usage,
    invoices: async (customer: string) => {
      const list = (await api("GET", `/api/v1/invoices?external_customer_id=${customer}`)).invoices;
      return Promise.all(list.map(async (i: any) => (await api("GET", `/api/v1/invoices/${i.lago_id}`)).invoice));
    },
  };
}

const byCode = (usage: any, code: string) => usage.charges_usage.find((c: any) => c.billable_metric.code === code);

describe(`pricing group keys on ${DB_KIND}`, () => {
  it("prices each group on its own in current usage and bills one fee per group, each with its own events", async () => {
    const org = await newOrg();
    await org.freeze("2024-03-01T00:00:00Z");
    const gb = await org.metric({ code: uid("gb"), name: "Storage", aggregation_type: "sum_agg", field_name: "gb" });
    const calls = await org.metric({ code: uid("calls"), name: "Tokens", aggregation_type: "count_agg", filters: [{ key: "tier", values: ["batch"] }] });
    const s = await org.subscribe(
      [
        // Standard at €0.01 per GB, grouped by region (the current key).
        { billable_metric_id: gb.lago_id, charge_model: "standard", properties: { amount: "0.01", pricing_group_keys: ["region"] } },
        // Graduated per model (the deprecated `grouped_by` key): €1 for the first 100 calls, €0.50 after; batch calls at €0.10 whole.
        {
          billable_metric_id: calls.lago_id,
          charge_model: "graduated",
          properties: {
            grouped_by: ["model"],
            graduated_ranges: [
              { from_value: 0, to_value: 100, per_unit_amount: "1", flat_amount: "0" },
              { from_value: 101, to_value: null, per_unit_amount: "0.50", flat_amount: "0" },
            ],
          },
          filters: [
            {
              invoice_display_name: "Batch",
              values: { tier: ["batch"] },
              properties: { graduated_ranges: [{ from_value: 0, to_value: null, per_unit_amount: "0.10", flat_amount: "0" }] },
            },
          ],
        },
      ],
      "2024-03-01T00:00:00Z",
    );
    await org.freeze("2024-03-20T00:00:00Z");
    await org.send(s.sub, [
      { code: gb.code, at: "2024-03-02T10:00:00Z", properties: { gb: "600", region: "eu" } },
      { code: gb.code, at: "2024-03-03T10:30:00Z", properties: { gb: "400", region: "eu" } },
      { code: gb.code, at: "2024-03-04T11:00:00Z", properties: { gb: "250", region: "us" } },
      { code: gb.code, at: "2024-03-05T12:00:00Z", properties: { gb: "10" } },
      ...Array.from({ length: 150 }, (_, i) => ({ code: calls.code, at: new Date(Date.parse("2024-03-06T00:00:00Z") + i * 60_000).toISOString(), properties: { model: "gpt" } })),
      ...Array.from({ length: 50 }, (_, i) => ({ code: calls.code, at: new Date(Date.parse("2024-03-07T00:00:00Z") + i * 60_000).toISOString(), properties: { model: "claude" } })),
      ...Array.from({ length: 20 }, (_, i) => ({ code: calls.code, at: new Date(Date.parse("2024-03-08T00:00:00Z") + i * 60_000).toISOString(), properties: { model: "gpt", tier: "batch" } })),
    ]);

    const usage = await org.usage(s);
    const storage = byCode(usage, gb.code);
    // eu: 1,000 GB × €0.01 = €10; us: 250 × €0.01 = €2.50; no region: 10 × €0.01 = €0.10.
    expect([storage.units, storage.events_count, storage.amount_cents]).toEqual(["1260", 4, 1260]);
    expect(storage.grouped_usage).toEqual([
      { amount_cents: 1000, events_count: 2, units: "1000", total_aggregated_units: "1000", grouped_by: { region: "eu" }, filters: [] },
      { amount_cents: 250, events_count: 1, units: "250", total_aggregated_units: "250", grouped_by: { region: "us" }, filters: [] },
      { amount_cents: 10, events_count: 1, units: "10", total_aggregated_units: "10", grouped_by: { region: null }, filters: [] },
    ]);
    const tokens = byCode(usage, calls.code);
    // gpt: 100 × €1 + 50 × €0.50 = €125; claude: 50 × €1 = €50 (together they would be €150);
    // batch (the filter, not grouped): 20 × €0.10 = €2.
    expect([tokens.units, tokens.amount_cents]).toEqual(["220", 12500 + 5000 + 200]);
    expect(tokens.grouped_usage.map((g: any) => [g.grouped_by, g.units, g.amount_cents])).toEqual([
      [{ model: "claude" }, "50", 5000],
      [{ model: "gpt" }, "150", 12500],
    ]);
    expect(tokens.filters.map((f: any) => [f.invoice_display_name, f.units, f.amount_cents])).toEqual([["Batch", "20", 200]]);
    expect(usage.amount_cents).toBe(1260 + 17700);

    // The period's invoice: one fee per group, as current usage showed them.
    await org.freeze("2024-04-01T00:05:00Z");
    const [march] = await org.invoices(s.customer);
    expect(march.fees_amount_cents).toBe(usage.amount_cents);
    const fees = march.fees.filter((f: any) => f.item.code === gb.code).map((f: any) => [f.item.grouped_by, f.units, f.amount_cents, f.events_count]);
    expect(fees).toEqual([
      [{ region: "eu" }, "1000", 1000, 2],
      [{ region: "us" }, "250", 250, 1],
      [{ region: null }, "10", 10, 1],
    ]);
    const tokenFees = march.fees.filter((f: any) => f.item.code === calls.code);
    expect(tokenFees.map((f: any) => [f.item.filter_invoice_display_name, f.item.grouped_by, f.amount_cents])).toEqual([
      ["Batch", {}, 200],
      [null, { model: "claude" }, 5000],
      [null, { model: "gpt" }, 12500],
    ]);

    // Each group's fee lists its own events only.
    const eventsOf = async (fee: any) => (await org.api("GET", `/api/v1/fees/${fee.lago_id}/events`)).events;
    const gbFees = march.fees.filter((f: any) => f.item.code === gb.code);
    expect((await eventsOf(gbFees[0])).map((e: any) => e.properties.gb)).toEqual(["600", "400"]);
    expect((await eventsOf(gbFees[2])).map((e: any) => [e.properties.gb, e.properties.region])).toEqual([["10", undefined]]);
    const gpt = tokenFees.find((f: any) => f.item.grouped_by.model === "gpt");
    expect((await org.api("GET", `/api/v1/fees/${gpt.lago_id}/events?per_page=1`)).meta.total_count).toBe(150);
  });
});

describe(`pricing group keys on every aggregation on ${DB_KIND}`, () => {
  it("groups unique counts, latest values, weighted sums and percentage charges by the events' values", async () => {
    const org = await newOrg();
    await org.freeze("2024-03-01T00:00:00Z");
    const users = await org.metric({ code: uid("users"), name: "A users", aggregation_type: "unique_count_agg", field_name: "user" });
    const latest = await org.metric({ code: uid("latest"), name: "B latest", aggregation_type: "latest_agg", field_name: "gb" });
    const seats = await org.metric({ code: uid("seats"), name: "C seats", aggregation_type: "weighted_sum_agg", field_name: "seats" });
    const payments = await org.metric({ code: uid("pay"), name: "D payments", aggregation_type: "sum_agg", field_name: "amount" });
    const byRegion = { pricing_group_keys: ["region"] };
    const s = await org.subscribe(
      [
        ...[users, latest, seats].map((m) => ({ billable_metric_id: m.lago_id, charge_model: "standard", properties: { amount: "1", ...byRegion } })),
        { billable_metric_id: payments.lago_id, charge_model: "percentage", properties: { rate: "1", fixed_amount: "0.5", ...byRegion } },
      ],
      "2024-03-01T00:00:00Z",
    );
    await org.freeze("2024-03-31T12:00:00Z");
    const at = (day: number) => `2024-03-${String(day).padStart(2, "0")}T00:00:00Z`;
    await org.send(s.sub, [
      { code: users.code, at: at(2), properties: { user: "a", region: "eu" } },
      { code: users.code, at: at(3), properties: { user: "b", region: "eu" } },
      { code: users.code, at: at(4), properties: { user: "a", region: "us" } },
      { code: latest.code, at: at(2), properties: { gb: "5", region: "eu" } },
      { code: latest.code, at: at(5), properties: { gb: "7", region: "eu" } },
      { code: latest.code, at: at(3), properties: { gb: "3", region: "us" } },
      // 31 seats held 10 of March's 31 days in eu (from the 22nd), 5 days in us (from the 27th).
      { code: seats.code, at: at(22), properties: { seats: "31", region: "eu" } },
      { code: seats.code, at: at(27), properties: { seats: "31", region: "us" } },
      { code: payments.code, at: at(2), properties: { amount: "100", region: "eu" } },
      { code: payments.code, at: at(3), properties: { amount: "200", region: "eu" } },
      { code: payments.code, at: at(4), properties: { amount: "50", region: "us" } },
    ]);
    const usage = await org.usage(s);
    const groups = (m: any) => byCode(usage, m.code).grouped_usage.map((g: any) => [g.grouped_by.region, g.units, g.amount_cents]);
    expect(groups(users)).toEqual([["eu", "2", 200], ["us", "1", 100]]);
    expect(groups(latest)).toEqual([["eu", "7", 700], ["us", "3", 300]]);
    expect(groups(seats)).toEqual([["eu", "10", 1000], ["us", "5", 500]]);
    // eu: 1% of €300 + 2 × €0.50 = €4; us: 1% of €50 + €0.50 = €1.
    expect(groups(payments)).toEqual([["eu", "300", 400], ["us", "50", 100]]);
  });
});

describe(`prorated recurring charges on ${DB_KIND}`, () => {
  it("bills each seat for the days of April it was present, then in full once it was there all May", async () => {
    const org = await newOrg();
    await org.freeze("2024-04-01T00:00:00Z");
    const seats = await org.metric({ code: uid("seats"), name: "Seats", aggregation_type: "unique_count_agg", field_name: "seat", recurring: true });
    const gb = await org.metric({ code: uid("gb"), name: "Volumes", aggregation_type: "sum_agg", field_name: "gb", recurring: true });
    const s = await org.subscribe(
      [
        { billable_metric_id: seats.lago_id, charge_model: "standard", prorated: true, properties: { amount: "10" } },
        {
          billable_metric_id: gb.lago_id,
          charge_model: "volume",
          prorated: true,
          properties: {
            volume_ranges: [
              { from_value: 0, to_value: 10, per_unit_amount: "2", flat_amount: "0" },
              { from_value: 11, to_value: null, per_unit_amount: "1", flat_amount: "5" },
            ],
          },
        },
      ],
      "2024-04-01T00:00:00Z",
    );
    await org.freeze("2024-04-25T00:00:00Z");
    await org.send(s.sub, [
      // April has 30 days. a: all month (1); b: from the 10th (21/30); c: the 5th to the 20th (16/30).
      { code: seats.code, at: "2024-04-01T08:00:00Z", properties: { seat: "a" } },
      { code: seats.code, at: "2024-04-10T08:00:00Z", properties: { seat: "b" } },
      { code: seats.code, at: "2024-04-05T08:00:00Z", properties: { seat: "c" } },
      { code: seats.code, at: "2024-04-20T08:00:00Z", properties: { seat: "c", operation_type: "remove" } },
      // 12 GB from the 16th (15/30): volume's second tier by the 12 full units, 6 prorated × €1 + €5.
      { code: gb.code, at: "2024-04-16T00:00:00Z", properties: { gb: "12" } },
    ]);

    const april = await org.usage(s);
    // 1 + 21/30 + 16/30 = 2.23333… → 2.23334 (rounded up at 5 decimals, as Lago) × €10 = €22.3334.
    expect(byCode(april, seats.code)).toMatchObject({ units: "2", amount_cents: 2233 });
    expect(byCode(april, gb.code)).toMatchObject({ units: "12", amount_cents: 1100 });

    await org.freeze("2024-05-01T00:05:00Z");
    const [invoice] = await org.invoices(s.customer);
    const seatFee = invoice.fees.find((f: any) => f.item.code === seats.code);
    expect([seatFee.units, seatFee.amount_cents, seatFee.precise_amount]).toEqual(["2", 2233, "22.3334"]);
    expect(invoice.fees.find((f: any) => f.item.code === gb.code)).toMatchObject({ units: "12", amount_cents: 1100 });

    // May: a and b carried over for all 31 days, 12 GB too: €20 and 12 × €1 + €5.
    await org.freeze("2024-05-20T00:00:00Z");
    const may = await org.usage(s);
    expect(byCode(may, seats.code)).toMatchObject({ units: "2", amount_cents: 2000 });
    expect(byCode(may, gb.code)).toMatchObject({ units: "12", amount_cents: 1700 });
  });
});
