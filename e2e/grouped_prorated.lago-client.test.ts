// End to end: pricing group keys and prorated seats through lago-javascript-client, against the real
// server in a child process, under a test clock (moved with plain HTTP: Lago's client has no test
// clock). A plan with a standard charge at €0.01 per GB grouped by region and a prorated €10 seat
// charge; events in April 2024 (30 days in Paris); current usage shows Lago's grouped_usage and the
// prorated amount; moving into May issues the April invoice with one fee per group. Every amount
// is worked out by hand below.
import crypto from "node:crypto";
import { Client, type CustomerUsageObject, type EventInputObject } from "lago-javascript-client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { call } from "./helpers/http.ts";
import { createDataTarget, E2E_DB_KIND, killAllServers, randomKey, startServer, type DataTarget, type ServerProcess } from "./helpers/server.ts";

const at = (iso: string) => Date.parse(iso) / 1000;

describe(`grouped and prorated usage through lago-javascript-client on ${E2E_DB_KIND}`, () => {
  const run = crypto.randomBytes(3).toString("hex");
  const apiKey = randomKey();
  const customerId = `cust-${run}`;
  const subscriptionId = `sub-${run}`;
  let target: DataTarget;
  let server: ServerProcess;
  let lago: ReturnType<typeof Client>;
  let aprilUsage: CustomerUsageObject;
  let seq = 0;
  const ev = (code: string, iso: string, properties: Record<string, unknown>): EventInputObject => ({
    transaction_id: `${code}-${run}-${++seq}`,
    external_subscription_id: subscriptionId,
    code,
    timestamp: at(iso),
    properties: properties as EventInputObject["properties"],
  });
  const freeze = async (iso: string) => {
    const r = await call(server.url, "PUT", "/api/v1/test_clock", { apiKey, body: { test_clock: { frozen_time: iso } } });
    expect(r.status, JSON.stringify(r.body)).toBe(200);
  };

  beforeAll(async () => {
    target = await createDataTarget();
    server = await startServer({ target, apiKey, env: { VALUEVERSE_TEST_CLOCK: "on", BILLING_SCHEDULER: "off" }, readyTimeoutMs: 90_000 });
    lago = Client(apiKey, { baseUrl: `${server.url}/api/v1` });
  });

  afterAll(async () => {
    await killAllServers();
    await target?.cleanup();
  });

  it("creates a plan with a grouped charge and a prorated charge, and subscribes a customer in Paris on April 1st", async () => {
    await freeze("2024-03-31T22:00:00.000Z"); // April 1st, 00:00 in Paris
    const storage = await lago.billableMetrics.createBillableMetric({
      billable_metric: { name: "Storage", code: `gb-${run}`, aggregation_type: "sum_agg", field_name: "gb" },
    });
    const seats = await lago.billableMetrics.createBillableMetric({
      billable_metric: { name: "Seats", code: `seats-${run}`, aggregation_type: "unique_count_agg", field_name: "seat", recurring: true },
    });
    const plan = await lago.plans.createPlan({
      plan: {
        name: "Teams",
        code: `teams-${run}`,
        interval: "monthly",
        amount_cents: 0,
        amount_currency: "EUR",
        pay_in_advance: false,
        charges: [
          {
            billable_metric_id: storage.data.billable_metric.lago_id,
            charge_model: "standard",
            properties: { amount: "0.01", pricing_group_keys: ["region"] },
          },
          { billable_metric_id: seats.data.billable_metric.lago_id, charge_model: "standard", prorated: true, properties: { amount: "10" } },
        ],
      },
    });
    const charges = plan.data.plan.charges!;
    expect(charges.map((c) => [c.charge_model, c.prorated, c.properties?.pricing_group_keys ?? null])).toEqual([
      ["standard", false, ["region"]],
      ["standard", true, null],
    ]);
    await lago.customers.createCustomer({ customer: { external_id: customerId, currency: "EUR", timezone: "Europe/Paris" } });
    const sub = await lago.subscriptions.createSubscription({
      subscription: { external_customer_id: customerId, plan_code: `teams-${run}`, external_id: subscriptionId, billing_time: "calendar" },
    });
    expect(sub.status).toBe(200);
  });

  it("current usage prices each region on its own and prorates each seat by its days", async () => {
    await freeze("2024-04-25T10:00:00.000Z");
    const r = await lago.events.createBatchEvents({
      events: [
        ev(`gb-${run}`, "2024-04-02T10:00:00Z", { gb: "1000", region: "eu" }),
        ev(`gb-${run}`, "2024-04-03T10:00:00Z", { gb: "250", region: "us" }),
        ev(`gb-${run}`, "2024-04-04T10:00:00Z", { gb: "150", region: "eu" }),
        // a: all April (30/30); b: from the 10th in Paris (23:30Z on the 9th), 21/30.
        ev(`seats-${run}`, "2024-03-31T22:30:00Z", { seat: "a" }),
        ev(`seats-${run}`, "2024-04-09T23:30:00Z", { seat: "b" }),
      ],
    });
    expect(r.status).toBe(200);
    aprilUsage = (await lago.customers.findCustomerCurrentUsage(customerId, { external_subscription_id: subscriptionId })).data.customer_usage;
    const storage = aprilUsage.charges_usage.find((c) => c.billable_metric.code === `gb-${run}`)!;
    // eu: 1,150 GB × €0.01 = €11.50; us: 250 × €0.01 = €2.50.
    expect(storage.grouped_usage!.map((g) => [g.grouped_by, g.units, g.events_count, g.amount_cents])).toEqual([
      [{ region: "eu" }, "1150", 2, 1150],
      [{ region: "us" }, "250", 1, 250],
    ]);
    expect(storage.amount_cents).toBe(1400);
    const seats = aprilUsage.charges_usage.find((c) => c.billable_metric.code === `seats-${run}`)!;
    // (1 + 21/30) × €10 = €17; usage shows the 2 seats present.
    expect([seats.units, seats.amount_cents, seats.grouped_usage]).toEqual(["2", 1700, []]);
    expect(aprilUsage.amount_cents).toBe(3100);
  });

  it("the April invoice carries one fee per region and the prorated seats, as current usage showed", async () => {
    await freeze("2024-04-30T22:05:00.000Z"); // May 1st in Paris
    const list = await lago.invoices.findAllInvoices({ external_customer_id: customerId });
    expect(list.data.invoices).toHaveLength(1);
    const invoice = (await lago.invoices.findInvoice(list.data.invoices[0]!.lago_id)).data.invoice;
    expect(invoice.fees_amount_cents).toBe(aprilUsage.amount_cents);
    const fees = invoice.fees!.filter((f) => f.item.type === "charge").map((f) => [f.item.code, f.item.grouped_by, f.units, f.amount_cents]);
    expect(fees).toEqual(
      expect.arrayContaining([
        [`gb-${run}`, { region: "eu" }, "1150", 1150],
        [`gb-${run}`, { region: "us" }, "250", 250],
        [`seats-${run}`, {}, "2", 1700],
      ]),
    );
    expect(fees).toHaveLength(3);
  });
});
