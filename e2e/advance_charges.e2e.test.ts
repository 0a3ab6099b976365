// End to end: a charge paid in advance, with the real server (`node bin/valueverse.mjs serve`) in a
// child process driven through `lago-javascript-client` (the test clock through plain HTTP), and
// Lago's webhooks received on 127.0.0.1. Each storage event is invoiced as it arrives (one invoice
// per event, Lago's behaviour); the end of the month invoices the plan and the calls in arrears and
// does not bill the storage again. Runs on a fresh PGlite DATA_DIR, or on PostgreSQL when
// TEST_DATABASE_URL is set.
//
// Amounts, worked out by hand. Plan €20.00 a month in arrears (calendar, UTC, March 2024 whole).
//   storage_gb (sum of `gb`), paid in advance, graduated: 0–100 GB at €0.05, from 101 GB €0.02 + €1 flat.
//     price(60)    = 60 × 0.05                         = 3.00 → event 1 (60 GB):   3.00 − 0    = €3.00
//     price(110)   = 100 × 0.05 + 10 × 0.02 + 1        = 6.20 → event 2 (50 GB):   6.20 − 3.00 = €3.20
//     price(110.5) = 100 × 0.05 + 10.5 × 0.02 + 1      = 6.21 → event 3 (0.5 GB):  6.21 − 6.20 = €0.01
//   api_calls (count) in arrears, standard €0.01: 3 calls = €0.03.
//   April 1st: plan €20.00 + calls €0.03 = €20.03; storage (€6.21, paid) is not on it.
import crypto from "node:crypto";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { Client } from "lago-javascript-client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { call } from "./helpers/http.ts";
import { createDataTarget, E2E_DB_KIND, killAllServers, randomKey, startServer, type DataTarget, type ServerProcess } from "./helpers/server.ts";

type LagoClient = ReturnType<typeof Client>;

/** Webhook types received, deduplicated on X-Lago-Unique-Key. */
class Receiver {
  readonly received = new Map<string, any>();
  private readonly server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      this.received.set(String(req.headers["x-lago-unique-key"]), JSON.parse(Buffer.concat(chunks).toString("utf8")));
      res.writeHead(200).end("ok");
    });
  });
  url = "";
  async start(): Promise<void> {
    await new Promise<void>((resolve) => this.server.listen(0, "127.0.0.1", resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/lago`;
  }
  of(type: string): any[] {
    return [...this.received.values()].filter((w) => w.webhook_type === type);
  }
  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

async function eventually<T>(what: string, read: () => Promise<T>, ok: (v: T) => boolean, timeoutMs = 20_000): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const v = await read();
    if (ok(v)) return v;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}: ${JSON.stringify(v)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const at = (iso: string) => Date.parse(iso) / 1000;

describe(`charges paid in advance, real server on ${E2E_DB_KIND}`, () => {
  const run = crypto.randomBytes(3).toString("hex");
  const apiKey = randomKey();
  const planCode = `advance-${run}`;
  const customerId = `cust-advance-${run}`;
  const subscriptionId = `sub-advance-${run}`;
  const storage = `storage_gb_${run}`;
  const calls = `api_calls_${run}`;
  let target: DataTarget;
  let server: ServerProcess;
  let lago: LagoClient;
  const receiver = new Receiver();

  async function freeze(iso: string): Promise<void> {
    const r = await call(server.url, "PUT", "/api/v1/test_clock", { apiKey, body: { test_clock: { frozen_time: iso } } });
    expect(r.status, JSON.stringify(r.body)).toBe(200);
  }
  const invoices = async () =>
    [...(await lago.invoices.findAllInvoices({ external_customer_id: customerId, per_page: 100 })).data.invoices].sort(
      (a, b) => (a.sequential_id ?? 0) - (b.sequential_id ?? 0),
    );
  const sendStorage = (tx: string, iso: string, gb: number | string) =>
    lago.events.createEvent({ event: { transaction_id: `${tx}-${run}`, external_subscription_id: subscriptionId, code: storage, timestamp: at(iso), properties: { gb } } });

  beforeAll(async () => {
    await receiver.start();
    target = await createDataTarget();
    server = await startServer({
      target,
      apiKey,
      env: { VALUEVERSE_TEST_CLOCK: "on", BILLING_SCHEDULER: "off", WEBHOOK_POLL_MS: "100", PAYMENT_POLL_MS: "100" },
      readyTimeoutMs: 90_000,
    });
    lago = Client(apiKey, { baseUrl: `${server.url}/api/v1` });
  });

  afterAll(async () => {
    await killAllServers();
    await target?.cleanup();
    await receiver.close();
  });

  it("sets up March: a plan with storage paid in advance and calls in arrears", async () => {
    await freeze("2024-03-01T00:00:00Z");
    await lago.webhookEndpoints.createWebhookEndpoint({ webhook_endpoint: { webhook_url: receiver.url, signature_algo: "hmac" } });
    const gb = await lago.billableMetrics.createBillableMetric({ billable_metric: { name: "Storage", code: storage, aggregation_type: "sum_agg", field_name: "gb" } });
    const api = await lago.billableMetrics.createBillableMetric({ billable_metric: { name: "API calls", code: calls, aggregation_type: "count_agg" } });
    const plan = await lago.plans.createPlan({
      plan: {
        name: "Advance",
        code: planCode,
        interval: "monthly",
        amount_cents: 2000,
        amount_currency: "EUR",
        pay_in_advance: false,
        charges: [
          {
            billable_metric_id: gb.data.billable_metric.lago_id,
            charge_model: "graduated",
            pay_in_advance: true,
            invoiceable: true,
            properties: {
              graduated_ranges: [
                { from_value: 0, to_value: 100, per_unit_amount: "0.05", flat_amount: "0" },
                { from_value: 101, to_value: null, per_unit_amount: "0.02", flat_amount: "1" },
              ],
            },
          },
          { billable_metric_id: api.data.billable_metric.lago_id, charge_model: "standard", properties: { amount: "0.01" } },
        ],
      },
    } as never);
    expect(plan.data.plan.charges?.map((c) => [c.billable_metric_code, c.pay_in_advance])).toEqual([
      [storage, true],
      [calls, false],
    ]);
    await lago.customers.createCustomer({ customer: { external_id: customerId, name: "Advance Co", currency: "EUR" } } as never);
    await lago.subscriptions.createSubscription({
      subscription: { external_customer_id: customerId, plan_code: planCode, external_id: subscriptionId, billing_time: "calendar" },
    });
  });

  it("invoices each storage event as it arrives: €3.00, €3.20, €0.01", async () => {
    await freeze("2024-03-05T10:00:00Z");
    await sendStorage("gb-1", "2024-03-05T10:00:00Z", 60);
    // Billed after the ingest commit, without any clock move.
    const first = await eventually("the first advance invoice", invoices, (l) => l.length === 1);
    expect(first.map((i) => [i.invoice_type, i.status, i.fees_amount_cents, i.total_amount_cents])).toEqual([["subscription", "finalized", 300, 300]]);

    await freeze("2024-03-18T10:00:00Z");
    await sendStorage("gb-2", "2024-03-18T10:00:00Z", 50);
    await sendStorage("gb-3", "2024-03-18T11:00:00Z", "0.5");
    await lago.events.createBatchEvents({
      events: ["2024-03-10T00:00:00Z", "2024-03-11T00:00:00Z", "2024-03-18T00:00:00Z"].map((iso, i) => ({
        transaction_id: `call-${i}-${run}`,
        external_subscription_id: subscriptionId,
        code: calls,
        timestamp: at(iso),
      })),
    });
    const list = await eventually("three advance invoices", invoices, (l) => l.length === 3);
    expect(list.map((i) => i.fees_amount_cents)).toEqual([300, 320, 1]);

    const second = (await lago.invoices.findInvoice(list[1]!.lago_id)).data.invoice;
    expect(second.fees).toHaveLength(1);
    const fee = second.fees![0]!;
    expect(fee).toMatchObject({ pay_in_advance: true, invoiceable: true, amount_cents: 320, units: "50", events_count: 1 });
    expect(fee.item).toMatchObject({ type: "charge", code: storage });
    const traced = await call(server.url, "GET", `/api/v1/fees/${fee.lago_id}/events`, { apiKey });
    expect(traced.status).toBe(200);
    expect(traced.body.events.map((e: any) => e.transaction_id)).toEqual([`gb-2-${run}`]);

    // Current usage still shows storage: 110.5 GB worth €6.21, and the calls' €0.03.
    const usage = (await lago.customers.findCustomerCurrentUsage(customerId, { external_subscription_id: subscriptionId })).data.customer_usage;
    const byCode = Object.fromEntries(usage.charges_usage.map((c) => [c.billable_metric.code, c]));
    expect(byCode[storage]).toMatchObject({ units: "110.5", amount_cents: 621 });
    expect(byCode[calls]).toMatchObject({ units: "3", amount_cents: 3 });

    // Lago's estimate through the client: 10 GB more would cost price(120.5) − price(110.5) =
    // (5 + 20.5 × 0.02 + 1) − 6.21 = €0.20.
    const estimate = (await lago.events.eventEstimateFees({ event: { code: storage, external_subscription_id: subscriptionId, properties: { gb: 10 } } })).data;
    expect(estimate.fees.map((f) => [f.lago_id, f.amount_cents, f.units, f.pay_in_advance])).toEqual([[null, 20, "10", true]]);

    // Lago's invoice.created for each, delivered to the endpoint.
    await eventually("invoice.created webhooks", async () => receiver.of("invoice.created").length, (n) => n === 3);
  });

  it("April 1st invoices the plan and the calls, not the storage paid in advance", async () => {
    await freeze("2024-04-01T00:00:00Z");
    const list = await invoices();
    expect(list).toHaveLength(4);
    const march = (await lago.invoices.findInvoice(list[3]!.lago_id)).data.invoice;
    expect(march).toMatchObject({ status: "finalized", fees_amount_cents: 2003 });
    expect((march.fees ?? []).map((f) => [f.item.type, f.item.code, f.amount_cents]).sort()).toEqual(
      [
        ["charge", calls, 3],
        ["subscription", planCode, 2000],
      ].sort(),
    );
  });
});
