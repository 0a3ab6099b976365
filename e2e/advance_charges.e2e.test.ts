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
import { describe, expect, it } from "vitest";
import { call } from "./helpers/http.ts";
import { subscribeCustomer } from "./helpers/lago.ts";
import { at, eventually, scenario } from "./helpers/scenario.ts";
import { E2E_DB_KIND } from "./helpers/server.ts";

describe(`charges paid in advance, real server on ${E2E_DB_KIND}`, () => {
  const run = crypto.randomBytes(3).toString("hex");
  const planCode = `advance-${run}`;
  const customerId = `cust-advance-${run}`;
  const subscriptionId = `sub-advance-${run}`;
  const storage = `storage_gb_${run}`;
  const calls = `api_calls_${run}`;
  const t = scenario();
  const { apiKey, receiver, freeze } = t;
  const invoices = async () =>
    [...(await t.lago.invoices.findAllInvoices({ external_customer_id: customerId, per_page: 100 })).data.invoices].sort(
      (a, b) => (a.sequential_id ?? 0) - (b.sequential_id ?? 0),
    );
  const sendStorage = (tx: string, iso: string, gb: number | string) =>
    t.lago.events.createEvent({ event: { transaction_id: `${tx}-${run}`, external_subscription_id: subscriptionId, code: storage, timestamp: at(iso), properties: { gb } } });

  it("sets up March: a plan with storage paid in advance and calls in arrears", async () => {
    await freeze("2024-03-01T00:00:00Z");
    await t.addWebhookEndpoint();
    const gb = await t.lago.billableMetrics.createBillableMetric({ billable_metric: { name: "Storage", code: storage, aggregation_type: "sum_agg", field_name: "gb" } });
    const api = await t.lago.billableMetrics.createBillableMetric({ billable_metric: { name: "API calls", code: calls, aggregation_type: "count_agg" } });
    const plan = await t.lago.plans.createPlan({
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
    await subscribeCustomer(t.lago, { customerId, name: "Advance Co", planCode, subscriptionId });
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
    await t.lago.events.createBatchEvents({
      events: ["2024-03-10T00:00:00Z", "2024-03-11T00:00:00Z", "2024-03-18T00:00:00Z"].map((iso, i) => ({
        transaction_id: `call-${i}-${run}`,
        external_subscription_id: subscriptionId,
        code: calls,
        timestamp: at(iso),
      })),
    });
    const list = await eventually("three advance invoices", invoices, (l) => l.length === 3);
    expect(list.map((i) => i.fees_amount_cents)).toEqual([300, 320, 1]);

    const second = (await t.lago.invoices.findInvoice(list[1]!.lago_id)).data.invoice;
    expect(second.fees).toHaveLength(1);
    const fee = second.fees![0]!;
    expect(fee).toMatchObject({ pay_in_advance: true, invoiceable: true, amount_cents: 320, units: "50", events_count: 1 });
    expect(fee.item).toMatchObject({ type: "charge", code: storage });
    const traced = await call(t.server.url, "GET", `/api/v1/fees/${fee.lago_id}/events`, { apiKey });
    expect(traced.status).toBe(200);
    expect(traced.body.events.map((e: any) => e.transaction_id)).toEqual([`gb-2-${run}`]);

    // Current usage still shows storage: 110.5 GB worth €6.21, and the calls' €0.03.
    const usage = (await t.lago.customers.findCustomerCurrentUsage(customerId, { external_subscription_id: subscriptionId })).data.customer_usage;
    const byCode = Object.fromEntries(usage.charges_usage.map((c) => [c.billable_metric.code, c]));
    expect(byCode[storage]).toMatchObject({ units: "110.5", amount_cents: 621 });
    expect(byCode[calls]).toMatchObject({ units: "3", amount_cents: 3 });

    // Lago's estimate through the client: 10 GB more would cost price(120.5) − price(110.5) =
    // (5 + 20.5 × 0.02 + 1) − 6.21 = €0.20.
    const estimate = (await t.lago.events.eventEstimateFees({ event: { code: storage, external_subscription_id: subscriptionId, properties: { gb: 10 } } })).data;
    expect(estimate.fees.map((f) => [f.lago_id, f.amount_cents, f.units, f.pay_in_advance])).toEqual([[null, 20, "10", true]]);

    // Lago's invoice.created for each, delivered to the endpoint.
    await eventually("invoice.created webhooks", async () => receiver.of("invoice.created").length, (n) => n === 3);
  });

  it("April 1st invoices the plan and the calls, not the storage paid in advance", async () => {
    await freeze("2024-04-01T00:00:00Z");
    const list = await invoices();
    expect(list).toHaveLength(4);
    const march = (await t.lago.invoices.findInvoice(list[3]!.lago_id)).data.invoice;
    expect(march).toMatchObject({ status: "finalized", fees_amount_cents: 2003 });
    expect((march.fees ?? []).map((f) => [f.item.type, f.item.code, f.amount_cents]).sort()).toEqual(
      [
        ["charge", calls, 3],
        ["subscription", planCode, 2000],
      ].sort(),
    );
  });
});
