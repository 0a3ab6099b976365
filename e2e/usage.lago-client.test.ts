// End to end: metrics → plan → customer → subscription → events → current usage → past usage, with
// the real server (`node bin/valueverse.mjs serve`) in a child process, driven only through the
// official `lago-javascript-client` (the test clock, which Lago's client does not know, through plain
// HTTP). The organization's clock is frozen in March 2024 and moved forward step by step, so a whole
// month of billing replays in seconds. Every expected number is worked out by hand below, from the
// examples of Lago's charge-model guides (getlago.com/docs/guide/plans/charges/charge-models/*).
// Then a second organization (created with the admin API) calls every route on the first one's
// objects and gets 404s, never data. Runs on a fresh PGlite DATA_DIR, or on a fresh PostgreSQL
// database when TEST_DATABASE_URL is set.
import crypto from "node:crypto";
import {
  Client,
  type CustomerChargeUsageObject,
  type CustomerUsageObject,
  type EventInputObject,
  type HttpResponse,
  type PlanCreateInput,
} from "lago-javascript-client";
import { lagoError } from "./helpers/lago.ts";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { call } from "./helpers/http.ts";
import { createDataTarget, E2E_DB_KIND, killAllServers, randomKey, startServer, type DataTarget, type ServerProcess } from "./helpers/server.ts";

type LagoClient = ReturnType<typeof Client>;


/** Unix seconds (Lago's event timestamp) of an ISO instant. */
const at = (iso: string) => Date.parse(iso) / 1000;

// ---- the timeline ---------------------------------------------------------------------------------
// The customer lives in Europe/Paris (UTC+1 in winter; UTC+2 from 2024-03-31T01:00Z, the DST switch).
// Calendar billing: March's charge period is Paris' March, 2024-02-29T23:00Z … 2024-03-31T22:00Z.
const T0 = "2024-03-01T00:00:00.000Z"; // first freeze; the subscription starts here (01:00 in Paris)
const T1 = "2024-03-10T12:00:00.000Z"; // first batch; first usage read
const T2 = "2024-03-20T08:00:00.000Z"; // late events; second read
const T3 = "2024-03-31T21:30:00.000Z"; // 23:30 on 31 March in Paris: still March
const T4 = "2024-04-03T09:00:00.000Z"; // April in Paris: a new period

/** What a charge's usage must show. `units` compared as numbers (Lago renders BigDecimal strings). */
interface Expected {
  units: number;
  events: number;
  cents: number;
}

describe(`usage through lago-javascript-client under a test clock, real server on ${E2E_DB_KIND}`, () => {
  const run = crypto.randomBytes(3).toString("hex");
  const apiKey = randomKey();
  const adminToken = randomKey("e2e_admin_");
  const customerId = `cust-${run}`;
  const subscriptionId = `sub-${run}`;
  const planCode = `growth-${run}`;
  let target: DataTarget;
  let server: ServerProcess;
  let lago: LagoClient;
  const metricIds: Record<string, string> = {};
  let planLagoId = "";
  let customerLagoId = "";
  let subscriptionLagoId = "";
  let subscriptionName: string | null | undefined;
  let firstTransactionId = "";
  /** The last usages read, for the later steps. */
  let marchUsage: CustomerUsageObject | undefined;
  let aprilUsage: CustomerUsageObject | undefined;
  let txSeq = 0;
  const tx = (label: string) => `${label}-${run}-${++txSeq}`;

  const clientFor = (key: string) => Client(key, { baseUrl: `${server.url}/api/v1` });

  async function freeze(iso: string, key = apiKey): Promise<void> {
    const r = await call(server.url, "PUT", "/api/v1/test_clock", { apiKey: key, body: { test_clock: { frozen_time: iso } } });
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    expect(r.body.test_clock).toEqual({ frozen_time: iso, current_time: iso });
  }

  /** An event for this run's subscription; `ts` absent: the event takes the organization's frozen now. */
  const ev = (code: string, properties: Record<string, unknown> | undefined, ts?: string | number): EventInputObject => ({
    transaction_id: tx(code),
    external_subscription_id: subscriptionId,
    code,
    ...(properties ? { properties: properties as EventInputObject["properties"] } : {}),
    ...(ts === undefined ? {} : { timestamp: typeof ts === "number" ? ts : at(ts) }),
  });

  async function batch(events: EventInputObject[]): Promise<void> {
    expect(events.length).toBeLessThanOrEqual(100); // Lago's batch limit
    const r = await lago.events.createBatchEvents({ events });
    expect(r.status).toBe(200);
    expect(r.data.events).toHaveLength(events.length);
  }

  async function currentUsage(client = lago): Promise<CustomerUsageObject> {
    const r = await client.customers.findCustomerCurrentUsage(customerId, { external_subscription_id: subscriptionId });
    expect(r.status).toBe(200);
    return r.data.customer_usage;
  }

  function chargeOf(usage: CustomerUsageObject, code: string): CustomerChargeUsageObject {
    const found = usage.charges_usage.filter((c) => c.billable_metric.code === code);
    expect(found, `charges_usage for ${code}`).toHaveLength(1);
    return found[0]!;
  }

  /** Every charge's units, events_count and amount_cents, and the totals (no taxes exist: total = amount). */
  function expectUsage(usage: CustomerUsageObject, expected: Record<string, Expected>, totalCents: number): void {
    expect(usage.charges_usage).toHaveLength(Object.keys(expected).length);
    const actual: Record<string, Expected> = {};
    for (const code of Object.keys(expected)) {
      const c = chargeOf(usage, code);
      actual[code] = { units: Number(c.units), events: c.events_count, cents: c.amount_cents };
      expect(c.amount_currency).toBe("EUR");
      expect(c.charge.lago_id).toMatch(/^[0-9a-f-]{36}$/);
      expect(c.billable_metric.lago_id).toBe(metricIds[code]);
    }
    expect(actual).toEqual(expected);
    // The hand-worked total is also the sum of the charges (checked against the server's own sum).
    expect(Object.values(expected).reduce((n, e) => n + e.cents, 0)).toBe(totalCents);
    expect(usage.currency).toBe("EUR");
    expect(usage.amount_cents).toBe(totalCents);
    expect(usage.taxes_amount_cents).toBe(0);
    expect(usage.total_amount_cents).toBe(totalCents);
  }

  /** The filtered charge's per-filter breakdown (Lago lists the filters only, not the default bucket). */
  function filtersOf(usage: CustomerUsageObject) {
    const c = chargeOf(usage, "cpu_seconds");
    return (c.filters ?? []).map((f) => ({ values: f.values, units: Number(f.units), events: f.events_count, cents: f.amount_cents }));
  }

  beforeAll(async () => {
    target = await createDataTarget();
    server = await startServer({ target, apiKey, adminToken, env: { VALUEVERSE_TEST_CLOCK: "on" }, readyTimeoutMs: 90_000 });
    lago = clientFor(apiKey);
  });

  afterAll(async () => {
    await killAllServers();
    await target?.cleanup();
  });

  it("freezes the organization's clock in the past and reads it back", async () => {
    const before = await call(server.url, "GET", "/api/v1/test_clock", { apiKey });
    expect(before.status).toBe(200);
    expect(before.body.test_clock.frozen_time).toBeNull();
    await freeze(T0);
    const after = await call(server.url, "GET", "/api/v1/test_clock", { apiKey });
    expect(after.body).toEqual({ test_clock: { frozen_time: T0, current_time: T0 } });
    // Backwards is refused, naming the field.
    const back = await call(server.url, "PUT", "/api/v1/test_clock", { apiKey, body: { test_clock: { frozen_time: "2024-02-01T00:00:00Z" } } });
    expect(back.status).toBe(422);
    expect(back.body.error_details).toHaveProperty("frozen_time");
  });

  it("creates the catalog: seven metrics, a monthly plan with standard, graduated, volume, package, percentage and filtered charges, a customer in Paris, a subscription", async () => {
    const metrics = [
      { code: "api_calls", name: "API calls", aggregation_type: "count_agg" as const },
      { code: "storage_peak", name: "Storage peak", aggregation_type: "max_agg" as const, field_name: "gb" },
      { code: "tokens", name: "Tokens", aggregation_type: "sum_agg" as const, field_name: "tokens" },
      { code: "transfers", name: "Transfers", aggregation_type: "sum_agg" as const, field_name: "amount" },
      { code: "active_users", name: "Active users", aggregation_type: "unique_count_agg" as const, field_name: "user_id" },
      {
        code: "cpu_seconds",
        name: "CPU seconds",
        aggregation_type: "sum_agg" as const,
        field_name: "seconds",
        filters: [{ key: "region", values: ["eu", "us", "asia"] }],
      },
      { code: "licenses", name: "Licenses", aggregation_type: "sum_agg" as const, field_name: "delta", recurring: true },
    ];
    for (const m of metrics) {
      const r = await lago.billableMetrics.createBillableMetric({ billable_metric: m });
      expect(r.status).toBe(200);
      expect(r.data.billable_metric).toMatchObject({
        code: m.code,
        name: m.name,
        aggregation_type: m.aggregation_type,
        field_name: m.field_name ?? null,
        recurring: m.recurring ?? false,
        filters: m.filters ?? [],
      });
      metricIds[m.code] = r.data.billable_metric.lago_id;
    }
    const listed = await lago.billableMetrics.findAllBillableMetrics({ per_page: 100 });
    expect(listed.data.billable_metrics.map((m) => m.code).sort()).toEqual(metrics.map((m) => m.code).sort());

    const id = (code: string) => metricIds[code]!;
    const plan: PlanCreateInput = {
      plan: {
        name: "Growth",
        code: planCode,
        interval: "monthly",
        amount_cents: 4900,
        amount_currency: "EUR",
        pay_in_advance: false,
        charges: [
          // Lago's graduated example: $1 per unit for the first 100 units, $0.50 for the next 100, $0.10 beyond.
          {
            billable_metric_id: id("api_calls"),
            charge_model: "graduated",
            properties: {
              graduated_ranges: [
                { from_value: 0, to_value: 100, per_unit_amount: "1", flat_amount: "0" },
                { from_value: 101, to_value: 200, per_unit_amount: "0.5", flat_amount: "0" },
                { from_value: 201, to_value: null, per_unit_amount: "0.1", flat_amount: "0" },
              ],
            },
          },
          // Lago's volume example: one unit price from the tier the total reaches, plus that tier's $10 flat fee.
          {
            billable_metric_id: id("storage_peak"),
            charge_model: "volume",
            properties: {
              volume_ranges: [
                { from_value: 0, to_value: 10_000, per_unit_amount: "0.001", flat_amount: "10" },
                { from_value: 10_001, to_value: 50_000, per_unit_amount: "0.0008", flat_amount: "10" },
                { from_value: 50_001, to_value: 100_000, per_unit_amount: "0.0006", flat_amount: "10" },
                { from_value: 100_001, to_value: null, per_unit_amount: "0.0004", flat_amount: "10" },
              ],
            },
          },
          // Lago's package example: $5 per 100 units, the first 100 units free.
          { billable_metric_id: id("tokens"), charge_model: "package", properties: { amount: "5", package_size: 100, free_units: 100 } },
          // Lago's percentage example: 1.2% plus $0.10 per transaction; the first 3 events or $500 free.
          {
            billable_metric_id: id("transfers"),
            charge_model: "percentage",
            properties: { rate: "1.2", fixed_amount: "0.1", free_units_per_events: 3, free_units_per_total_aggregation: "500" },
          },
          // Standard: $2.50 per active user.
          { billable_metric_id: id("active_users"), charge_model: "standard", properties: { amount: "2.5" } },
          // Lago's standard example ($0.05 per unit) as the default price, with a price per region filter.
          {
            billable_metric_id: id("cpu_seconds"),
            charge_model: "standard",
            properties: { amount: "0.05" },
            filters: [
              { invoice_display_name: "CPU EU", values: { region: ["eu"] }, properties: { amount: "0.10" } },
              { invoice_display_name: "CPU US+Asia", values: { region: ["us", "asia"] }, properties: { amount: "0.02" } },
            ],
          },
          // Standard on a recurring sum: $1 per license held.
          { billable_metric_id: id("licenses"), charge_model: "standard", properties: { amount: "1" } },
        ],
      },
    };
    const createdPlan = await lago.plans.createPlan(plan);
    expect(createdPlan.status).toBe(200);
    expect(createdPlan.data.plan).toMatchObject({ code: planCode, interval: "monthly", amount_cents: 4900, amount_currency: "EUR", pay_in_advance: false });
    expect(createdPlan.data.plan.charges).toHaveLength(7);
    const filtered = createdPlan.data.plan.charges!.find((c) => c.billable_metric_code === "cpu_seconds")!;
    expect(filtered.filters.map((f) => f.values)).toEqual([{ region: ["eu"] }, { region: ["us", "asia"] }]);
    planLagoId = createdPlan.data.plan.lago_id;
    expect((await lago.plans.findPlan(planCode)).data.plan.lago_id).toBe(planLagoId);

    const customer = await lago.customers.createCustomer({
      customer: { external_id: customerId, name: "Acme SAS", currency: "EUR", timezone: "Europe/Paris", country: "FR" },
    });
    expect(customer.status).toBe(200);
    expect(customer.data.customer).toMatchObject({ external_id: customerId, name: "Acme SAS", currency: "EUR", timezone: "Europe/Paris" });
    customerLagoId = customer.data.customer.lago_id;

    // No subscription_at: it starts at the organization's frozen now, T0.
    const sub = await lago.subscriptions.createSubscription({
      subscription: { external_customer_id: customerId, plan_code: planCode, external_id: subscriptionId, billing_time: "calendar" },
    });
    expect(sub.status).toBe(200);
    expect(sub.data.subscription).toMatchObject({
      external_id: subscriptionId,
      external_customer_id: customerId,
      plan_code: planCode,
      status: "active",
      billing_time: "calendar",
    });
    expect(Date.parse(sub.data.subscription.subscription_at!)).toBe(Date.parse(T0));
    expect(Date.parse(sub.data.subscription.started_at!)).toBe(Date.parse(T0));
    subscriptionLagoId = sub.data.subscription.lago_id;
    subscriptionName = sub.data.subscription.name;
  });

  it("events without a timestamp take the frozen time; an event before the subscription started does not count", async () => {
    const single = await lago.events.createEvent({ event: ev("api_calls", undefined) });
    expect(single.status).toBe(200);
    firstTransactionId = single.data.event.transaction_id;
    expect(Date.parse(single.data.event.timestamp)).toBe(Date.parse(T0));
    // 2024-02-29T23:30Z is 00:30 on 1 March in Paris (inside March's charge period) but before the
    // subscription started (T0): Lago counts from the subscription's start, so it never counts.
    await lago.events.createEvent({ event: ev("api_calls", undefined, "2024-02-29T23:30:00Z") });
    // Transaction 1 of Lago's percentage example, at T0.
    const t1 = await lago.events.createEvent({ event: ev("transfers", { amount: 200 }) });
    expect(Date.parse(t1.data.event.timestamp)).toBe(Date.parse(T0));
    await lago.events.createEvent({ event: ev("licenses", { delta: 5 }) });

    const usage = await currentUsage();
    // The first period runs from the subscription's start to the end of Paris' March: 31 March
    // 23:59:59 CEST = 21:59:59Z; the invoice would be issued on 1 April.
    expect(usage.from_datetime).toBe("2024-03-01T00:00:00Z");
    expect(usage.to_datetime).toBe("2024-03-31T21:59:59Z");
    expect(usage.issuing_date).toBe("2024-04-01");
    expect(Number(chargeOf(usage, "api_calls").units)).toBe(1); // the pre-start event is not there
    expect(chargeOf(usage, "api_calls").amount_cents).toBe(100); // 1 unit in the first tier at $1
  });

  it("moves the clock within March; batches with and without timestamps; current usage matches the hand-worked amounts", async () => {
    await freeze(T1);
    // api_calls: 100 events timestamped on 5 March, then 49 without a timestamp (they take T1).
    await batch(Array.from({ length: 100 }, (_, i) => ev("api_calls", { i }, at("2024-03-05T00:00:00Z") + i * 60)));
    await batch([
      ...Array.from({ length: 49 }, () => ev("api_calls", undefined)),
      ev("storage_peak", { gb: 20_000 }, "2024-03-02T00:00:00Z"),
      ev("storage_peak", { gb: 30_000 }, "2024-03-08T00:00:00Z"),
      ev("tokens", { tokens: 120 }, "2024-03-03T00:00:00Z"),
      ev("tokens", { tokens: 80 }),
      // Transactions 2 and 3 of Lago's percentage example.
      ev("transfers", { amount: 100 }, "2024-03-04T00:00:00Z"),
      ev("transfers", { amount: 100 }, "2024-03-06T00:00:00Z"),
      ev("active_users", { user_id: "u1" }, "2024-03-02T00:00:00Z"),
      ev("active_users", { user_id: "u2" }, "2024-03-03T00:00:00Z"),
      ev("active_users", { user_id: "u1" }, "2024-03-04T00:00:00Z"),
      ev("cpu_seconds", { seconds: 100, region: "eu" }, "2024-03-02T00:00:00Z"),
      ev("cpu_seconds", { seconds: 200, region: "us" }, "2024-03-03T00:00:00Z"),
      ev("cpu_seconds", { seconds: 40 }, "2024-03-04T00:00:00Z"),
      ev("licenses", { delta: 3 }, "2024-03-05T00:00:00Z"),
    ]);

    const usage = await currentUsage();
    expect(usage.from_datetime).toBe("2024-03-01T00:00:00Z");
    expect(usage.to_datetime).toBe("2024-03-31T21:59:59Z");
    expectUsage(
      usage,
      {
        // count: 1 (T0) + 100 + 49 = 150 (the pre-start event excluded).
        // graduated: 100 × $1 + (150 − 100) × $0.50 = $100 + $25 = $125.00.
        api_calls: { units: 150, events: 150, cents: 12_500 },
        // max(20,000, 30,000) = 30,000 → volume tier 2 (10,001–50,000): 30,000 × $0.0008 + $10 = $24 + $10 = $34.00.
        storage_peak: { units: 30_000, events: 2, cents: 3_400 },
        // sum 120 + 80 = 200; 100 free, 100 left = 1 package of 100 × $5 = $5.00.
        tokens: { units: 200, events: 2, cents: 500 },
        // $200 + $100 + $100 = $400 in 3 events: all within the 3 free events and the $500 → $0.
        transfers: { units: 400, events: 3, cents: 0 },
        // u1, u2, u1 → 2 distinct users × $2.50 = $5.00 (Lago's events count for a unique count is the count).
        active_users: { units: 2, events: 2, cents: 500 },
        // eu 100 × $0.10 = $10.00; us 200 × $0.02 = $4.00; no region 40 × $0.05 = $2.00 → $16.00.
        cpu_seconds: { units: 340, events: 3, cents: 1_600 },
        // recurring sum 5 + 3 = 8 licenses × $1 = $8.00.
        licenses: { units: 8, events: 2, cents: 800 },
      },
      // 12,500 + 3,400 + 500 + 0 + 500 + 1,600 + 800
      19_300,
    );
    expect(filtersOf(usage)).toEqual([
      { values: { region: ["eu"] }, units: 100, events: 1, cents: 1_000 },
      { values: { region: ["us", "asia"] }, units: 200, events: 1, cents: 400 },
    ]);
    marchUsage = usage;
  });

  it("late events inside the open period change usage at once", async () => {
    await freeze(T2);
    // 100 api_calls timestamped on 2 March, sent on 20 March.
    await batch(Array.from({ length: 100 }, (_, i) => ev("api_calls", { late: i }, at("2024-03-02T00:00:00Z") + i * 60)));
    await batch([
      ev("storage_peak", { gb: 65_000 }, "2024-03-07T00:00:00Z"),
      // A numeric-string timestamp, as Lago accepts.
      ev("tokens", { tokens: 1 }, String(at("2024-03-09T00:00:00Z"))),
      // Transaction 4 of Lago's percentage example ($50), timestamped after transactions 1–3.
      ev("transfers", { amount: 50 }, "2024-03-15T00:00:00Z"),
      ev("active_users", { user_id: "u3" }, "2024-03-05T00:00:00Z"),
      ev("active_users", { user_id: "u2" }),
      ev("cpu_seconds", { seconds: 50, region: "eu" }, "2024-03-12T00:00:00Z"),
      ev("cpu_seconds", { seconds: 100, region: "asia" }),
      // A region the metric does not declare matches no filter: the charge's default price.
      ev("cpu_seconds", { seconds: 60, region: "af" }, "2024-03-15T00:00:00Z"),
    ]);

    const usage = await currentUsage();
    expectUsage(
      usage,
      {
        // 150 + 100 late = 250 → 100 × $1 + 100 × $0.50 + 50 × $0.10 = $100 + $50 + $5 = $155.00.
        api_calls: { units: 250, events: 250, cents: 15_500 },
        // Lago's volume example: max 65,000 → tier 3 (50,001–100,000): 65,000 × $0.0006 + $10 = $39 + $10 = $49.00.
        storage_peak: { units: 65_000, events: 3, cents: 4_900 },
        // Lago's package example: 201 units → $0 (first 100) + $5 (next 100) + $5 (the last unit) = $10.00.
        tokens: { units: 201, events: 3, cents: 1_000 },
        // Lago's percentage example: transactions $200, $100, $100 free (3 free events, $400 < $500);
        // transaction 4 exceeds the free events: 1.2% × $50 + $0.10 = $0.60 + $0.10 = $0.70.
        transfers: { units: 450, events: 4, cents: 70 },
        // u1, u2, u3 → 3 × $2.50 = $7.50.
        active_users: { units: 3, events: 3, cents: 750 },
        // eu 100 + 50 = 150 × $0.10 = $15.00; us 200 + asia 100 = 300 × $0.02 = $6.00;
        // default: none 40 + af 60 = 100 × $0.05 = $5.00 → $26.00.
        cpu_seconds: { units: 550, events: 6, cents: 2_600 },
        licenses: { units: 8, events: 2, cents: 800 },
      },
      // 15,500 + 4,900 + 1,000 + 70 + 750 + 2,600 + 800
      25_620,
    );
    expect(filtersOf(usage)).toEqual([
      { values: { region: ["eu"] }, units: 150, events: 2, cents: 1_500 },
      { values: { region: ["us", "asia"] }, units: 300, events: 2, cents: 600 },
    ]);
    const eu = chargeOf(usage, "cpu_seconds").filters![0]!;
    expect(eu.invoice_display_name).toBe("CPU EU");
  });

  it("the last half hour of March in Paris is still March", async () => {
    await freeze(T3);
    await lago.events.createEvent({ event: ev("transfers", { amount: 1000 }) });
    await lago.events.createEvent({ event: ev("licenses", { delta: -2 }) });
    const usage = await currentUsage();
    expect(usage.from_datetime).toBe("2024-03-01T00:00:00Z");
    expect(usage.to_datetime).toBe("2024-03-31T21:59:59Z");
    expectUsage(
      usage,
      {
        api_calls: { units: 250, events: 250, cents: 15_500 },
        storage_peak: { units: 65_000, events: 3, cents: 4_900 },
        tokens: { units: 201, events: 3, cents: 1_000 },
        // Transaction 5 ($1,000) is charged in full: 1.2% × $1,000 + $0.10 = $12.10; with transaction 4: $12.80.
        // (Lago's formula gives the same: (1,450 − 400 free) × 1.2% + (5 − 3 free events) × $0.10 = $12.60 + $0.20.)
        transfers: { units: 1_450, events: 5, cents: 1_280 },
        active_users: { units: 3, events: 3, cents: 750 },
        cpu_seconds: { units: 550, events: 6, cents: 2_600 },
        // 5 + 3 − 2 = 6 × $1 = $6.00.
        licenses: { units: 6, events: 3, cents: 600 },
      },
      // 15,500 + 4,900 + 1,000 + 1,280 + 750 + 2,600 + 600
      26_630,
    );
    marchUsage = usage;
  });

  it("in the next month current usage covers April (non-recurring usage reset) and past usage shows March", async () => {
    await freeze(T4);
    await batch([
      // 22:15Z on 31 March is 00:15 on 1 April in Paris: April's period, not March's.
      ev("api_calls", undefined, "2024-03-31T22:15:00Z"),
      ev("api_calls", undefined),
      ev("api_calls", undefined),
      ev("storage_peak", { gb: 5_000 }),
      ev("transfers", { amount: 100 }),
      ev("active_users", { user_id: "u1" }),
      ev("cpu_seconds", { seconds: 10, region: "eu" }),
      ev("licenses", { delta: 1 }),
    ]);

    const usage = await currentUsage();
    // Paris' April: 1 April 00:00 CEST = 2024-03-31T22:00Z to 30 April 23:59:59 CEST = 21:59:59Z.
    expect(usage.from_datetime).toBe("2024-03-31T22:00:00Z");
    expect(usage.to_datetime).toBe("2024-04-30T21:59:59Z");
    expect(usage.issuing_date).toBe("2024-05-01");
    expectUsage(
      usage,
      {
        // 3 events this period → 3 × $1 = $3.00 (March's 250 do not carry over).
        api_calls: { units: 3, events: 3, cents: 300 },
        // max 5,000 → volume tier 1: 5,000 × $0.001 + $10 = $5 + $10 = $15.00.
        storage_peak: { units: 5_000, events: 1, cents: 1_500 },
        // No token events in April: 0.
        tokens: { units: 0, events: 0, cents: 0 },
        // $100 in 1 event: the free allowance starts afresh → $0.
        transfers: { units: 100, events: 1, cents: 0 },
        // u1 → 1 × $2.50.
        active_users: { units: 1, events: 1, cents: 250 },
        // eu 10 × $0.10 = $1.00.
        cpu_seconds: { units: 10, events: 1, cents: 100 },
        // Recurring: March's 6 carry over, + 1 = 7 × $1 = $7.00; its events are all history (Lago's
        // recurring scope counts every event up to the period's end): 3 + 1 = 4.
        licenses: { units: 7, events: 4, cents: 700 },
      },
      // 300 + 1,500 + 0 + 0 + 250 + 100 + 700
      2_850,
    );
    expect(filtersOf(usage)).toEqual([
      { values: { region: ["eu"] }, units: 10, events: 1, cents: 100 },
      { values: { region: ["us", "asia"] }, units: 0, events: 0, cents: 0 },
    ]);
    aprilUsage = usage;

    const past = await lago.customers.findAllCustomerPastUsage(customerId, { external_subscription_id: subscriptionId });
    expect(past.status).toBe(200);
    expect(past.data.meta.total_count).toBe(1);
    expect(past.data.usage_periods).toHaveLength(1);
    const march = past.data.usage_periods[0]!;
    expect(march.from_datetime).toBe("2024-03-01T00:00:00Z");
    expect(march.to_datetime).toBe("2024-03-31T21:59:59Z");
    expect(march.issuing_date).toBe("2024-04-01");
    // The same usage as the last read in March: the 22:15Z event went to April.
    expectUsage(
      march,
      {
        api_calls: { units: 250, events: 250, cents: 15_500 },
        storage_peak: { units: 65_000, events: 3, cents: 4_900 },
        tokens: { units: 201, events: 3, cents: 1_000 },
        transfers: { units: 1_450, events: 5, cents: 1_280 },
        active_users: { units: 3, events: 3, cents: 750 },
        cpu_seconds: { units: 550, events: 6, cents: 2_600 },
        licenses: { units: 6, events: 3, cents: 600 },
      },
      26_630,
    );
    expect(march.charges_usage.map((c) => [c.billable_metric.code, c.amount_cents]).sort()).toEqual(
      marchUsage!.charges_usage.map((c) => [c.billable_metric.code, c.amount_cents]).sort(),
    );
    // One metric only.
    const tokensOnly = await lago.customers.findAllCustomerPastUsage(customerId, { external_subscription_id: subscriptionId, billable_metric_code: "tokens" });
    expect(tokensOnly.data.usage_periods[0]!.charges_usage.map((c) => c.billable_metric.code)).toEqual(["tokens"]);
  });

  it("another organization can never read or change this one's metrics, plans, customers, subscriptions or usage", async () => {
    const created = await call<{ api_key: string }>(server.url, "POST", "/admin/v1/organizations", {
      apiKey: adminToken,
      body: { organization: { name: `intruder-${run}` } },
    });
    expect(created.status).toBe(200);
    const otherKey = created.body.api_key;
    const other = clientFor(otherKey);
    // Anything of the first organization's that must never show up in an answer to the other.
    const secrets = [...Object.values(metricIds), planLagoId, customerLagoId, subscriptionLagoId, "Acme SAS"];
    const noLeak = (body: unknown) => {
      const text = JSON.stringify(body ?? null);
      for (const s of secrets) expect(text, `the answer leaks ${s}`).not.toContain(s);
    };
    const notFound = async (label: string, promise: Promise<unknown>, code?: string) => {
      const r = await lagoError<{ code?: string }>(promise);
      expect(r.status, `${label}: ${JSON.stringify(r.body)}`).toBe(404);
      if (code) expect(r.body.code, label).toBe(code);
      noLeak(r.body);
    };

    // Its own clock: never frozen, whatever the first organization's says.
    const clock = await call(server.url, "GET", "/api/v1/test_clock", { apiKey: otherKey });
    expect(clock.status).toBe(200);
    expect(clock.body.test_clock.frozen_time).toBeNull();

    // Billable metrics.
    for (const code of Object.keys(metricIds)) {
      await notFound(`GET metric ${code}`, other.billableMetrics.findBillableMetric(code), "billable_metric_not_found");
      await notFound(`PUT metric ${code}`, other.billableMetrics.updateBillableMetric(code, { billable_metric: { name: "hijacked" } }));
      await notFound(`DELETE metric ${code}`, other.billableMetrics.destroyBillableMetric(code));
    }
    const otherMetrics = await other.billableMetrics.findAllBillableMetrics();
    expect(otherMetrics.data.billable_metrics).toEqual([]);
    expect(otherMetrics.data.meta.total_count).toBe(0);

    // Plans.
    await notFound("GET plan", other.plans.findPlan(planCode), "plan_not_found");
    await notFound("PUT plan", other.plans.updatePlan(planCode, { plan: { name: "hijacked", amount_cents: 1 } as never }));
    await notFound("DELETE plan", other.plans.destroyPlan(planCode));
    const otherPlans = await other.plans.findAllPlans();
    expect(otherPlans.data.plans).toEqual([]);
    // A plan of its own cannot use the first organization's metric (by Lago id).
    const borrowed = await lagoError(
      other.plans.createPlan({
        plan: {
          name: "Borrowed",
          code: `borrowed-${run}`,
          interval: "monthly",
          amount_cents: 0,
          amount_currency: "EUR",
          pay_in_advance: false,
          charges: [{ billable_metric_id: metricIds["api_calls"]!, charge_model: "standard", properties: { amount: "1" } }],
        },
      }),
    );
    expect([404, 422]).toContain(borrowed.status);
    expect(JSON.stringify(borrowed.body)).toContain("billable_metric_not_found");
    noLeak(borrowed.body);

    // Customers.
    await notFound("GET customer", other.customers.findCustomer(customerId), "customer_not_found");
    await notFound("DELETE customer", other.customers.destroyCustomer(customerId));
    await notFound("GET customer subscriptions", other.customers.findAllCustomerSubscriptions(customerId), "customer_not_found");
    const otherCustomers = await other.customers.findAllCustomers();
    expect(otherCustomers.data.customers).toEqual([]);

    // Subscriptions.
    await notFound("GET subscription", other.subscriptions.findSubscription(subscriptionId), "subscription_not_found");
    await notFound("PUT subscription", other.subscriptions.updateSubscription(subscriptionId, { subscription: { name: "hijacked", ending_at: null } }));
    await notFound("DELETE subscription", other.subscriptions.destroySubscription(subscriptionId));
    const otherSubs = await other.subscriptions.findAllSubscriptions();
    expect(otherSubs.data.subscriptions).toEqual([]);
    // Subscribing to the first organization's plan: it does not exist here.
    await notFound(
      "POST subscription on another's plan",
      other.subscriptions.createSubscription({ subscription: { external_customer_id: `intruder-${run}`, plan_code: planCode, external_id: `intruder-sub-${run}` } }),
      "plan_not_found",
    );

    // Events (the first organization's transaction ids are not there).
    await notFound("GET event", other.events.findEvent(firstTransactionId), "event_not_found");
    expect((await other.events.findAllEvents({ external_subscription_id: subscriptionId })).data.meta.total_count).toBe(0);

    // Usage.
    await notFound("GET current_usage", other.customers.findCustomerCurrentUsage(customerId, { external_subscription_id: subscriptionId }), "customer_not_found");
    await notFound("GET past_usage", other.customers.findAllCustomerPastUsage(customerId, { external_subscription_id: subscriptionId }), "customer_not_found");

    // Writes in its own namespace with the same codes and ids create its own objects, never touch
    // the first organization's: a metric with the same code, a customer with the same external_id.
    const ownMetric = await other.billableMetrics.createBillableMetric({ billable_metric: { code: "api_calls", name: "Intruder calls", aggregation_type: "count_agg" } });
    expect(ownMetric.data.billable_metric.lago_id).not.toBe(metricIds["api_calls"]);
    const ownCustomer = await other.customers.createCustomer({ customer: { external_id: customerId, name: "Intruder", timezone: "UTC" } });
    expect(ownCustomer.data.customer.lago_id).not.toBe(customerLagoId);
    // Its customer with that external_id has no subscription: no usage, and nothing of the first's.
    const noUsage = await lagoError(other.customers.findCustomerCurrentUsage(customerId, { external_subscription_id: subscriptionId }));
    expect(noUsage.status).toBe(405);
    noLeak(noUsage.body);
    const noPast = await lagoError(other.customers.findAllCustomerPastUsage(customerId, { external_subscription_id: subscriptionId }));
    expect(noPast.status).toBe(405);
    noLeak(noPast.body);

    // Its events, at the same frozen instant, with the first organization's subscription id and
    // metric codes, count nowhere in the first organization's usage. Freezing its own clock does not
    // move the first's.
    await freeze(T4, otherKey);
    const intruderEvents = await other.events.createBatchEvents({
      events: [
        { transaction_id: `intruder-1-${run}`, external_subscription_id: subscriptionId, code: "api_calls" },
        { transaction_id: `intruder-2-${run}`, external_subscription_id: subscriptionId, code: "tokens", properties: { tokens: 1000 } },
        { transaction_id: `intruder-3-${run}`, external_subscription_id: subscriptionId, code: "licenses", properties: { delta: 100 } },
      ],
    });
    expect(intruderEvents.status).toBe(200);
    // Then its own plan with the first's plan code and its own subscription with the first's
    // subscription id: same codes and ids, separate objects (caches keyed per organization). Its
    // api_calls event, sent before its subscription existed, counts in its own usage only.
    const ownPlan = await other.plans.createPlan({
      plan: {
        name: "Intruder plan",
        code: planCode,
        interval: "monthly",
        amount_cents: 1,
        amount_currency: "USD",
        pay_in_advance: false,
        charges: [{ billable_metric_id: ownMetric.data.billable_metric.lago_id, charge_model: "standard", properties: { amount: "100" } }],
      },
    });
    expect(ownPlan.data.plan.lago_id).not.toBe(planLagoId);
    const ownSub = await other.subscriptions.createSubscription({
      subscription: { external_customer_id: customerId, plan_code: planCode, external_id: subscriptionId },
    });
    expect(ownSub.data.subscription.lago_id).not.toBe(subscriptionLagoId);
    const otherUsage = (await other.customers.findCustomerCurrentUsage(customerId, { external_subscription_id: subscriptionId })).data.customer_usage;
    noLeak(otherUsage);
    // 1 api_calls event × $100 = $100.00; tokens and licenses name no metric there.
    expect(otherUsage.currency).toBe("USD");
    expect(otherUsage.charges_usage.map((c) => [c.billable_metric.code, Number(c.units), c.events_count, c.amount_cents])).toEqual([["api_calls", 1, 1, 10_000]]);
    expect(otherUsage.total_amount_cents).toBe(10_000);

    // The first organization sees everything as it was.
    const own = await call(server.url, "GET", "/api/v1/test_clock", { apiKey });
    expect(own.body.test_clock.frozen_time).toBe(T4);
    expect((await lago.billableMetrics.findBillableMetric("api_calls")).data.billable_metric).toMatchObject({ lago_id: metricIds["api_calls"], name: "API calls" });
    expect((await other.billableMetrics.findBillableMetric("api_calls")).data.billable_metric.lago_id).toBe(ownMetric.data.billable_metric.lago_id);
    expect((await lago.billableMetrics.findAllBillableMetrics()).data.meta.total_count).toBe(Object.keys(metricIds).length);
    const plan = (await lago.plans.findPlan(planCode)).data.plan;
    expect(plan).toMatchObject({ lago_id: planLagoId, name: "Growth", amount_cents: 4900, pending_deletion: false });
    expect(plan.charges).toHaveLength(7);
    expect((await other.plans.findPlan(planCode)).data.plan.lago_id).toBe(ownPlan.data.plan.lago_id);
    expect((await lago.customers.findCustomer(customerId)).data.customer).toMatchObject({ lago_id: customerLagoId, name: "Acme SAS", timezone: "Europe/Paris" });
    expect((await lago.subscriptions.findSubscription(subscriptionId)).data.subscription).toMatchObject({ lago_id: subscriptionLagoId, status: "active", name: subscriptionName });
    const after = await currentUsage();
    expect(after).toEqual(aprilUsage);
    const pastAfter = await lago.customers.findAllCustomerPastUsage(customerId, { external_subscription_id: subscriptionId });
    expect(pastAfter.data.usage_periods[0]!.total_amount_cents).toBe(26_630);
  });

  // Lago's PastUsageQuery#validate_filters answers a 404 `billable_metric_not_found` here.
  it("past usage with an unknown billable_metric_code is a 404 billable_metric_not_found, as in Lago", async () => {
    const r = await lagoError<{ code?: string }>(
      lago.customers.findAllCustomerPastUsage(customerId, { external_subscription_id: subscriptionId, billable_metric_code: `no-such-metric-${run}` }),
    );
    expect(r.status).toBe(404);
    expect(r.body.code).toBe("billable_metric_not_found");
  });

  it("terminating the subscription ends its current usage", async () => {
    const terminated = await lago.subscriptions.destroySubscription(subscriptionId);
    expect(terminated.data.subscription).toMatchObject({ external_id: subscriptionId, status: "terminated" });
    expect(Date.parse(terminated.data.subscription.terminated_at!)).toBe(Date.parse(T4));
    const r = await lagoError<{ code?: string }>(lago.customers.findCustomerCurrentUsage(customerId, { external_subscription_id: subscriptionId }));
    expect(r.status).toBe(405);
    expect(r.body.code).toBe("no_active_subscription");
  });

  // Lago's PastUsageQuery selects periods by customer and subscription external_id whatever the
  // subscription's status, so a terminated subscription's closed periods stay readable.
  it("past usage of a terminated subscription still lists its closed periods, as in Lago", async () => {
    const past = await lago.customers.findAllCustomerPastUsage(customerId, { external_subscription_id: subscriptionId }).catch((e: HttpResponse<unknown, unknown>) => {
      throw new Error(`past_usage answered ${e.status}: ${JSON.stringify(e.error)}`);
    });
    expect(past.status).toBe(200);
    const march = past.data.usage_periods.find((p) => p.from_datetime === "2024-03-01T00:00:00Z");
    expect(march?.total_amount_cents).toBe(26_630);
  });
});
