// Charges paid in advance against a real database, under a test clock: each event of an advance
// charge is billed when it arrives (one finalized invoice per event, the fee being the charge's
// price with the event less its price without it), never twice (reruns, a retried queue row, racing
// workers, a worker dying mid-transaction), and never again on the period's invoice; current usage
// still shows the charge. Also: unique counts, filters and pricing group keys, non-invoiceable fees
// (fee.created, PUT /fees, regroup_paid_fees), estimate_fees, and the JetStream ingest path.
// Amounts by hand. On PGlite by default, PostgreSQL with TEST_DATABASE_URL (JetStream: PostgreSQL only).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestApp, type TestApp } from "../helpers/app.ts";
import { parseMetrics, scalar, uid, waitFor } from "./support.ts";
import { natsServerBinary, startNatsCluster, type NatsCluster } from "../../e2e/helpers/nats.ts";
import { createIngestWorker, type IngestWorker } from "../../src/ingest_worker.ts";
import { loadConfig } from "../../src/shared/config.ts";
import { DB_KIND, openTestDb } from "../helpers/db.ts";
import { BILLING_ENV, customer, expect422, feeIds, invoiceOf, invoicesOf, newOrg, regroupedFeesPlan, subscribe, type Org } from "./billing_support.ts";
import { AdvanceBilling } from "../../src/modules/invoicing/index.ts";
import { KEY_DIGEST } from "../../src/modules/ingest/index.ts";

let t: TestApp;
beforeAll(async () => {
  t = await startTestApp({ env: BILLING_ENV });
});
afterAll(async () => {
  await t?.close();
});

/**
 * €10 a month in arrears; storage (sum of `gb`) paid in advance, graduated: units 0–10 at €1, from
 * 11 at €0.50 plus a €2 flat fee; calls (count) in arrears at €0.05.
 */
async function advancePlan(org: Org) {
  const storage = (
    await org.api("POST", "/api/v1/billable_metrics", {
      billable_metric: { name: "Storage", code: uid("storage"), aggregation_type: "sum_agg", field_name: "gb" },
    })
  ).billable_metric;
  const calls = (await org.api("POST", "/api/v1/billable_metrics", { billable_metric: { name: "Calls", code: uid("calls"), aggregation_type: "count_agg" } }))
    .billable_metric;
  const plan = (
    await org.api("POST", "/api/v1/plans", {
      plan: {
        name: "Advance",
        code: uid("advance"),
        interval: "monthly",
        amount_cents: 1000,
        amount_currency: "EUR",
        charges: [
          {
            billable_metric_id: storage.lago_id,
            charge_model: "graduated",
            pay_in_advance: true,
            properties: {
              graduated_ranges: [
                { from_value: 0, to_value: 10, per_unit_amount: "1", flat_amount: "0" },
                { from_value: 11, to_value: null, per_unit_amount: "0.5", flat_amount: "2" },
              ],
            },
          },
          { billable_metric_id: calls.lago_id, charge_model: "standard", properties: { amount: "0.05" } },
        ],
      },
    })
  ).plan;
  return { storage: storage.code as string, calls: calls.code as string, plan: plan.code as string, storageChargeId: plan.charges[0].lago_id as string };
}

const send = (org: Org, sub: string, code: string, events: { gb?: number; tx?: string; at: string }[]) =>
  org.api("POST", "/api/v1/events/batch", {
    events: events.map((e) => ({
      transaction_id: e.tx ?? uid("tx"),
      external_subscription_id: sub,
      code,
      timestamp: Math.floor(Date.parse(e.at) / 1000),
      ...(e.gb === undefined ? {} : { properties: { gb: e.gb } }),
    })),
  });

const chronological = (list: any[]) => [...list].sort((a, b) => a.organization_sequential_id - b.organization_sequential_id);

describe("charges paid in advance", () => {
  it("bills each event when it arrives, once, and leaves the charge off the period's invoice", async () => {
    const org = await newOrg(t);
    await org.api("POST", "/api/v1/webhook_endpoints", { webhook_endpoint: { webhook_url: "http://127.0.0.1:9/hook", signature_algo: "hmac" } });
    await org.freeze("2026-03-01T00:00:00Z");
    const p = await advancePlan(org);
    const cus = await customer(org);
    const sub = await subscribe(org, cus, p.plan);

    // 4 GB: price(4) − price(0) = €4.00.
    await org.freeze("2026-03-05T10:00:00Z");
    const firstTx = uid("tx");
    await send(org, sub, p.storage, [{ gb: 4, tx: firstTx, at: "2026-03-05T10:00:00Z" }]);
    await t.app.advanceBilling.runDue({ orgId: org.orgId });
    let invoices = chronological(await invoicesOf(org, cus));
    expect(invoices.map((i) => [i.invoice_type, i.status, i.fees_amount_cents, i.total_amount_cents])).toEqual([["subscription", "finalized", 400, 400]]);
    const first = await invoiceOf(org, invoices[0].lago_id);
    expect(first.fees).toHaveLength(1);
    expect(first.fees[0]).toMatchObject({
      pay_in_advance: true,
      invoiceable: true,
      amount_cents: 400,
      units: "4",
      events_count: 1,
      lago_charge_id: p.storageChargeId,
      item: expect.objectContaining({ type: "charge", code: p.storage }),
    });
    // The fee is traced to its one event.
    const traced = await org.api("GET", `/api/v1/fees/${first.fees[0].lago_id}/events`);
    expect(traced.events.map((e: any) => e.transaction_id)).toEqual([firstTx]);

    await org.freeze("2026-03-07T12:00:00Z");
    // 8 GB then 3 GB, in one batch: 12 GB cost 10 + 2 + 1 = €13 (so €9.00 more), 15 GB €14.50 (€1.50 more).
    await send(org, sub, p.storage, [
      { gb: 8, at: "2026-03-06T10:00:00Z" },
      { gb: 3, at: "2026-03-06T11:00:00Z" },
    ]);
    // A sum event without a numeric value costs nothing and issues nothing.
    await send(org, sub, p.storage, [{ at: "2026-03-06T12:00:00Z" }]);
    await send(org, sub, p.calls, [{ at: "2026-03-06T12:00:00Z" }, { at: "2026-03-07T12:00:00Z" }]);
    // The ingest commit kicked the worker already; this waits for whatever is still queued.
    await t.app.advanceBilling.runDue({ orgId: org.orgId });
    invoices = chronological(await invoicesOf(org, cus));
    expect(invoices.map((i) => i.fees_amount_cents)).toEqual([400, 900, 150]);
    expect(new Set(invoices.map((i) => i.number)).size).toBe(3);

    // Run again, and even with the billed events queued again (as if a transaction's outcome was lost): nothing more.
    expect(await scalar(t.db, "SELECT count(*) AS n FROM advance_charge_events WHERE org_id = $1", [org.orgId])).toBe(0);
    await t.db.query(
      `INSERT INTO advance_charge_events (org_id, lago_event_id, external_subscription_id, transaction_id, code, ts, properties, created_at)
       SELECT org_id, ${KEY_DIGEST("external_subscription_id", "transaction_id")}, external_subscription_id, transaction_id, code, ts, properties, created_at
         FROM events WHERE org_id = $1 AND code = $2`,
      [org.orgId, p.storage],
    );
    expect(await scalar(t.db, "SELECT count(*) AS n FROM advance_charge_events WHERE org_id = $1", [org.orgId])).toBe(4);
    expect(await t.app.advanceBilling.runDue({ orgId: org.orgId })).toMatchObject({ invoices: 0, fees: 0 });
    expect(await invoicesOf(org, cus)).toHaveLength(3);

    // Each advance invoice was announced (invoice.created) in its transaction.
    expect(await scalar(t.db, "SELECT count(*) AS n FROM webhooks WHERE org_id = $1 AND webhook_type = 'invoice.created'", [org.orgId])).toBe(3);

    // Lago's estimate: 5 GB more would cost price(20) − price(15) = 17 − 14.50 = €2.50; nothing is stored.
    const estimate = await org.api("POST", "/api/v1/events/estimate_fees", { event: { code: p.storage, external_subscription_id: sub, properties: { gb: 5 } } });
    expect(estimate.fees).toHaveLength(1);
    expect(estimate.fees[0]).toMatchObject({
      lago_id: null,
      lago_invoice_id: null,
      lago_charge_id: p.storageChargeId,
      amount_cents: 250,
      units: "5",
      total_aggregated_units: "20",
      pay_in_advance: true,
      external_subscription_id: sub,
      external_customer_id: cus,
    });
    expect(await invoicesOf(org, cus)).toHaveLength(3);
    expect422(await org.raw("POST", "/api/v1/events/estimate_fees", { event: { external_subscription_id: sub, properties: [] } }), "code", "properties");
    expect((await org.raw("POST", "/api/v1/events/estimate_fees", { event: { code: p.storage, external_subscription_id: uid("nobody") } })).statusCode).toBe(404);
    expect((await org.raw("POST", "/api/v1/events/estimate_fees", { event: { code: uid("nothing"), external_subscription_id: sub } })).statusCode).toBe(404);

    // Current usage still shows the advance charge: 15 GB priced €14.50.
    const usage = (await org.api("GET", `/api/v1/customers/${cus}/current_usage?external_subscription_id=${sub}`)).customer_usage;
    const storageUsage = usage.charges_usage.find((c: any) => c.billable_metric.code === p.storage);
    expect(storageUsage).toMatchObject({ units: "15", amount_cents: 1450 });

    // The month's invoice: the plan fee and the calls (2 × €0.05), not the storage billed in advance.
    await org.freeze("2026-04-01T01:00:00Z");
    invoices = chronological(await invoicesOf(org, cus));
    expect(invoices).toHaveLength(4);
    const periodic = await invoiceOf(org, invoices[3].lago_id);
    expect(periodic.fees.map((f: any) => [f.item.type, f.item.code, f.amount_cents]).sort()).toEqual(
      [
        ["charge", p.calls, 10],
        ["subscription", p.plan, 1000],
      ].sort(),
    );
    expect(periodic.fees_amount_cents).toBe(1010);
  });

  it("starts a new period from nothing, and bills nothing for events of a subscription that does not exist", async () => {
    const org = await newOrg(t);
    await org.freeze("2026-03-01T00:00:00Z");
    const p = await advancePlan(org);
    const cus = await customer(org);
    const sub = await subscribe(org, cus, p.plan);
    await org.freeze("2026-03-20T00:00:00Z");
    await send(org, sub, p.storage, [{ gb: 12, at: "2026-03-20T00:00:00Z" }]);
    await send(org, uid("nobody"), p.storage, [{ gb: 5, at: "2026-03-20T00:00:00Z" }]);
    // April: the tiers start over — 3 GB cost €3.
    await org.freeze("2026-04-02T00:00:00Z");
    await send(org, sub, p.storage, [{ gb: 3, at: "2026-04-02T00:00:00Z" }]);
    await t.app.advanceBilling.runDue({ orgId: org.orgId });
    const advance = chronological(await invoicesOf(org, cus)).filter((i) => i.fees_amount_cents !== 1000);
    expect(advance.map((i) => i.fees_amount_cents)).toEqual([1300, 300]);
    // Taken off the queue, billed nowhere.
    expect(await scalar(t.db, "SELECT count(*) AS n FROM advance_charge_events WHERE org_id = $1", [org.orgId])).toBe(0);
    expect(await scalar(t.db, "SELECT count(*) AS n FROM advance_fees WHERE org_id = $1 AND external_subscription_id <> $2", [org.orgId, sub])).toBe(0);
  });

  it("queues nothing for an organization without advance charges, and refuses advance charges Lago refuses", async () => {
    const org = await newOrg(t);
    await org.freeze("2026-03-01T00:00:00Z");
    const calls = (await org.api("POST", "/api/v1/billable_metrics", { billable_metric: { name: "Calls", code: uid("calls"), aggregation_type: "count_agg" } }))
      .billable_metric;
    const peak = (await org.api("POST", "/api/v1/billable_metrics", { billable_metric: { name: "Peak", code: uid("peak"), aggregation_type: "max_agg", field_name: "v" } }))
      .billable_metric;
    const planCode = uid("arrears");
    await org.api("POST", "/api/v1/plans", {
      plan: { name: "A", code: planCode, interval: "monthly", amount_cents: 0, amount_currency: "EUR", charges: [{ billable_metric_id: calls.lago_id, charge_model: "standard", properties: { amount: "1" } }] },
    });
    const cus = await customer(org);
    const sub = await subscribe(org, cus, planCode);
    const flag = () => t.db.query<{ f: boolean }>("SELECT has_advance_charges AS f FROM billable_metrics WHERE org_id = $1 AND code = $2", [org.orgId, calls.code]);
    expect((await flag()).rows[0]!.f).toBe(false);
    await send(org, sub, calls.code, [{ at: "2026-03-01T10:00:00Z" }]);
    expect(await scalar(t.db, "SELECT count(*) AS n FROM advance_charge_events WHERE org_id = $1", [org.orgId])).toBe(0);

    const bad = (charge: Record<string, unknown>) =>
      org.raw("POST", "/api/v1/plans", { plan: { name: "B", code: uid("b"), interval: "monthly", amount_cents: 0, amount_currency: "EUR", charges: [charge] } });
    expect422(await bad({ billable_metric_id: peak.lago_id, charge_model: "standard", pay_in_advance: true, properties: { amount: "1" } }), "charges[0].pay_in_advance");
    expect422(
      await bad({ billable_metric_id: calls.lago_id, charge_model: "volume", pay_in_advance: true, properties: { volume_ranges: [{ from_value: 0, to_value: null, per_unit_amount: "1", flat_amount: "0" }] } }),
      "charges[0].pay_in_advance",
    );

    // Making the charge paid in advance turns the metric's queue on (the catalog's trigger).
    await org.api("PUT", `/api/v1/plans/${planCode}`, {
      plan: { charges: [{ billable_metric_id: calls.lago_id, charge_model: "standard", pay_in_advance: true, properties: { amount: "1" } }] },
    });
    await org.freeze("2026-03-02T10:00:00Z");
    expect((await flag()).rows[0]!.f).toBe(true);
    await send(org, sub, calls.code, [{ at: "2026-03-02T10:00:00Z" }]);
    await t.app.advanceBilling.runDue({ orgId: org.orgId });
    expect((await invoicesOf(org, cus)).map((i) => i.fees_amount_cents)).toEqual([100]);
  });

  it("unique count in advance: a value is paid once per period and bucket; a removal refunds nothing", async () => {
    const org = await newOrg(t);
    await org.freeze("2026-03-01T00:00:00Z");
    const seats = (
      await org.api("POST", "/api/v1/billable_metrics", {
        billable_metric: { name: "Seats", code: uid("seats"), aggregation_type: "unique_count_agg", field_name: "user", filters: [{ key: "region", values: ["eu", "us"] }] },
      })
    ).billable_metric;
    const planCode = uid("seats");
    await org.api("POST", "/api/v1/plans", {
      plan: {
        name: "Seats",
        code: planCode,
        interval: "monthly",
        amount_cents: 0,
        amount_currency: "EUR",
        charges: [
          {
            billable_metric_id: seats.lago_id,
            charge_model: "standard",
            pay_in_advance: true,
            properties: { amount: "2" },
            filters: [{ invoice_display_name: "EU seat", values: { region: ["eu"] }, properties: { amount: "3" } }],
          },
        ],
      },
    });
    const cus = await customer(org);
    const sub = await subscribe(org, cus, planCode);
    await org.freeze("2026-03-02T00:00:00Z");
    const seat = (user: string, region?: string, remove = false) => ({
      transaction_id: uid("tx"),
      external_subscription_id: sub,
      code: seats.code,
      timestamp: Math.floor(Date.parse("2026-03-02T00:00:00Z") / 1000),
      properties: { user, ...(region ? { region } : {}), ...(remove ? { operation_type: "remove" } : {}) },
    });
    // ann in the EU bucket (€3), ann again (nothing), bob without region and cid in the US, both the
    // default bucket (€2 each), ann removed (nothing), ann in the US: new to the default bucket (€2).
    for (const e of [seat("ann", "eu"), seat("ann", "eu"), seat("bob"), seat("cid", "us"), seat("ann", "eu", true), seat("ann", "us")]) {
      await org.api("POST", "/api/v1/events", { event: e });
      await t.app.advanceBilling.runDue({ orgId: org.orgId });
    }
    const invoices = chronological(await invoicesOf(org, cus));
    expect(invoices.map((i) => i.fees_amount_cents)).toEqual([300, 200, 200, 200]);
    const first = await invoiceOf(org, invoices[0].lago_id);
    expect(first.fees[0].item).toMatchObject({ filter_invoice_display_name: "EU seat", filters: { region: ["eu"] } });
  });

  it("pricing group keys: each group runs through the tiers on its own", async () => {
    const org = await newOrg(t);
    await org.freeze("2026-03-01T00:00:00Z");
    const gb = (await org.api("POST", "/api/v1/billable_metrics", { billable_metric: { name: "GB", code: uid("gb"), aggregation_type: "sum_agg", field_name: "gb" } }))
      .billable_metric;
    const planCode = uid("grouped");
    await org.api("POST", "/api/v1/plans", {
      plan: {
        name: "Grouped",
        code: planCode,
        interval: "monthly",
        amount_cents: 0,
        amount_currency: "EUR",
        charges: [
          {
            billable_metric_id: gb.lago_id,
            charge_model: "graduated",
            pay_in_advance: true,
            properties: {
              pricing_group_keys: ["region"],
              graduated_ranges: [
                { from_value: 0, to_value: 5, per_unit_amount: "1", flat_amount: "0" },
                { from_value: 6, to_value: null, per_unit_amount: "0.1", flat_amount: "0" },
              ],
            },
          },
        ],
      },
    });
    const cus = await customer(org);
    const sub = await subscribe(org, cus, planCode);
    await org.freeze("2026-03-02T00:00:00Z");
    // eu 4 GB: €4.00; us 4 GB: €4.00 (its own tiers); eu 4 more: price(8) − price(4) = 5 + 0.30 − 4 = €1.30.
    for (const [region, n] of [["eu", 4], ["us", 4], ["eu", 4]] as const) {
      await org.api("POST", "/api/v1/events", {
        event: { transaction_id: uid("tx"), external_subscription_id: sub, code: gb.code, timestamp: Math.floor(Date.parse("2026-03-02T00:00:00Z") / 1000), properties: { gb: n, region } },
      });
      await t.app.advanceBilling.runDue({ orgId: org.orgId });
    }
    const invoices = chronological(await invoicesOf(org, cus));
    expect(invoices.map((i) => i.fees_amount_cents)).toEqual([400, 400, 130]);
    const last = await invoiceOf(org, invoices[2].lago_id);
    expect(last.fees[0]).toMatchObject({ units: "4", total_aggregated_units: "8", item: expect.objectContaining({ grouped_by: { region: "eu" } }) });
  });

  it("a non-invoiceable charge bills the fee alone: taxed, announced by fee.created, traced to its event, on no invoice", async () => {
    const org = await newOrg(t);
    await org.api("POST", "/api/v1/webhook_endpoints", { webhook_endpoint: { webhook_url: "http://127.0.0.1:9/hook", signature_algo: "hmac" } });
    await org.freeze("2026-03-01T00:00:00Z");
    const vat = uid("vat");
    await org.api("POST", "/api/v1/taxes", { tax: { name: "VAT", code: vat, rate: "20" } });
    const atm = (await org.api("POST", "/api/v1/billable_metrics", { billable_metric: { name: "ATM withdrawals", code: uid("atm"), aggregation_type: "count_agg" } }))
      .billable_metric;
    const planCode = uid("fintech");
    await org.api("POST", "/api/v1/plans", {
      plan: {
        name: "Fintech",
        code: planCode,
        interval: "monthly",
        amount_cents: 500,
        amount_currency: "EUR",
        charges: [
          { billable_metric_id: atm.lago_id, charge_model: "standard", pay_in_advance: true, invoiceable: false, tax_codes: [vat], properties: { amount: "0.25" } },
        ],
      },
    });
    const cus = await customer(org);
    const sub = await subscribe(org, cus, planCode);
    await org.freeze("2026-03-03T00:00:00Z");
    const tx = uid("tx");
    await send(org, sub, atm.code, [{ tx, at: "2026-03-03T00:00:00Z" }]);
    await t.app.advanceBilling.runDue({ orgId: org.orgId });

    expect(await invoicesOf(org, cus)).toEqual([]);
    const feeId = (await t.db.query<{ lago_id: string }>("SELECT lago_id::text AS lago_id FROM fees WHERE org_id = $1", [org.orgId])).rows.map((r) => r.lago_id);
    expect(feeId).toHaveLength(1);
    const fee = (await org.api("GET", `/api/v1/fees/${feeId[0]}`)).fee;
    // €0.25 and 20% VAT (€0.05).
    expect(fee).toMatchObject({
      lago_invoice_id: null,
      external_customer_id: cus,
      external_subscription_id: sub,
      pay_in_advance: true,
      invoiceable: false,
      amount_cents: 25,
      taxes_amount_cents: 5,
      total_amount_cents: 30,
      payment_status: "pending",
      units: "1",
    });
    expect((await org.api("GET", `/api/v1/fees/${feeId[0]}/events`)).events.map((e: any) => e.transaction_id)).toEqual([tx]);
    const hooks = await t.db.query<{ payload: string }>("SELECT payload FROM webhooks WHERE org_id = $1 AND webhook_type = 'fee.created'", [org.orgId]);
    expect(hooks.rows.map((r) => JSON.parse(r.payload).fee.lago_id)).toEqual(feeId);

    // March's invoice: the plan fee only.
    await org.freeze("2026-04-01T01:00:00Z");
    const march = await invoiceOf(org, (await invoicesOf(org, cus))[0].lago_id);
    expect(march.fees.map((f: any) => [f.item.type, f.amount_cents])).toEqual([["subscription", 500]]);
  });

  it("regroup_paid_fees: paid fees go on one paid advance_charges invoice once their period is over; PUT /fees sets their status", async () => {
    const org = await newOrg(t);
    await org.freeze("2026-03-01T00:00:00Z");
    const fx = await regroupedFeesPlan(org, "1.5");
    // Paying through the sandbox: an invoice left to collect would get a payment.
    const cus = await customer(org, { billing_configuration: { payment_provider: "stripe", payment_provider_code: "sandbox", provider_customer_id: "pm_succeeds" } });
    const sub = await subscribe(org, cus, fx.plan);
    await org.freeze("2026-03-02T00:00:00Z");
    await send(org, sub, fx.transfers, [{ at: "2026-03-02T00:00:00Z" }, { at: "2026-03-02T00:00:00Z" }]);
    await t.app.advanceBilling.runDue({ orgId: org.orgId });
    const fees = await feeIds(t, org.orgId);
    expect(fees).toHaveLength(2);

    const put = (id: string, payload: unknown) => org.raw("PUT", `/api/v1/fees/${id}`, payload);
    expect((await org.api("PUT", `/api/v1/fees/${fees[0]}`, { fee: { payment_status: "succeeded" } })).fee).toMatchObject({ payment_status: "succeeded", lago_invoice_id: null });
    expect422(await put(fees[1]!, { fee: { payment_status: "paid" } }), "payment_status");
    expect((await put(fees[1]!, { payment_status: "succeeded" })).statusCode).toBe(400);
    expect((await put("00000000-0000-0000-0000-000000000000", { fee: { payment_status: "succeeded" } })).statusCode).toBe(404);
    // Another organization can neither read nor mark this organization's fee.
    const other = await newOrg(t);
    expect((await other.raw("PUT", `/api/v1/fees/${fees[1]}`, { fee: { payment_status: "succeeded" } })).statusCode).toBe(404);
    expect((await other.raw("GET", `/api/v1/fees/${fees[1]}`)).statusCode).toBe(404);

    // March is not over: nothing regrouped yet.
    await t.app.advanceBilling.runDue({ orgId: org.orgId });
    const advanceInvoices = async () => chronological((await invoicesOf(org, cus)).filter((i) => i.invoice_type === "advance_charges"));
    expect(await advanceInvoices()).toEqual([]);

    // April 1st: the paid fee on one paid invoice; the unpaid one waits.
    await org.freeze("2026-04-01T01:00:00Z");
    let grouped = await advanceInvoices();
    expect(grouped.map((i) => [i.status, i.payment_status, i.fees_amount_cents, i.total_amount_cents])).toEqual([["finalized", "succeeded", 150, 150]]);
    expect((await invoiceOf(org, grouped[0].lago_id)).fees.map((f: any) => f.lago_id)).toEqual([fees[0]]);
    expect((await put(fees[0]!, { fee: { payment_status: "failed" } })).statusCode).toBe(405);

    // Paid later: on a later invoice.
    await org.api("PUT", `/api/v1/fees/${fees[1]}`, { fee: { payment_status: "succeeded" } });
    await t.app.advanceBilling.runDue({ orgId: org.orgId });
    grouped = await advanceInvoices();
    expect(grouped.map((i) => i.fees_amount_cents)).toEqual([150, 150]);
    expect((await invoiceOf(org, grouped[1].lago_id)).fees.map((f: any) => f.lago_id)).toEqual([fees[1]]);
    // Nothing is collected for them.
    expect(await scalar(t.db, "SELECT count(*) AS n FROM payments p JOIN invoices i ON i.id = p.invoice_id WHERE i.org_id = $1 AND i.invoice_type = 'advance_charges'", [org.orgId])).toBe(0);
  });

  /** Another worker over the same database (another process, as far as the queue can tell). */
  const worker = (onInvoiceIssued?: () => Promise<void>) =>
    new AdvanceBilling({
      db: t.db,
      clock: t.app.testClock,
      subscriptions: t.app.subscriptions,
      customers: t.app.customers,
      invoicing: t.app.invoicing,
      ...(onInvoiceIssued ? { onInvoiceIssued } : {}),
      onError: () => {},
    });

  it("bills each event exactly once with three workers racing over the queue", async () => {
    const org = await newOrg(t);
    await org.freeze("2026-03-01T00:00:00Z");
    const p = await advancePlan(org);
    const cus = await customer(org);
    const sub = await subscribe(org, cus, p.plan);
    await org.freeze("2026-03-02T00:00:00Z");
    // 20 events of 1 GB in arrival order: 10 × €1.00, the 11th enters the second tier (€0.50 + €2 flat), then 9 × €0.50.
    await send(org, sub, p.storage, Array.from({ length: 20 }, () => ({ gb: 1, at: "2026-03-02T00:00:00Z" })));
    await Promise.all([worker().runDue({ orgId: org.orgId }), worker().runDue({ orgId: org.orgId }), t.app.advanceBilling.runDue({ orgId: org.orgId })]);
    const invoices = chronological(await invoicesOf(org, cus));
    expect(invoices.map((i) => i.fees_amount_cents)).toEqual([...Array(10).fill(100), 250, ...Array(9).fill(50)]);
    expect(await scalar(t.db, "SELECT count(*) AS n FROM advance_fees WHERE org_id = $1", [org.orgId])).toBe(20);
  });

  // Last: it stops the app's own worker so the crashing one is alone on the queue.
  it("a worker that dies inside its transaction leaves nothing behind: the retry bills each event once, amounts unchanged", async () => {
    await t.app.advanceBilling.stop();
    const org = await newOrg(t);
    await org.freeze("2026-03-01T00:00:00Z");
    const p = await advancePlan(org);
    const cus = await customer(org);
    const sub = await subscribe(org, cus, p.plan);
    await org.freeze("2026-03-02T00:00:00Z");
    await send(org, sub, p.storage, [
      { gb: 4, at: "2026-03-01T22:00:00Z" },
      { gb: 8, at: "2026-03-01T23:00:00Z" },
    ]);
    let crashes = 1;
    const crashing = worker(async () => {
      if (crashes-- > 0) throw new Error("crashed after writing the invoice");
    });
    expect(await crashing.runDue({ orgId: org.orgId })).toMatchObject({ invoices: 0 });
    expect(await invoicesOf(org, cus)).toEqual([]);
    expect(await scalar(t.db, "SELECT count(*) AS n FROM advance_charge_usage WHERE org_id = $1", [org.orgId])).toBe(0);
    const failed = await t.db.query<{ attempts: number; last_error: string }>(
      "SELECT attempts, last_error FROM advance_charge_events WHERE org_id = $1 ORDER BY id LIMIT 1",
      [org.orgId],
    );
    expect(failed.rows[0]).toMatchObject({ attempts: 1, last_error: "crashed after writing the invoice" });
    // The retry: €4.00 then €9.00, as if nothing had happened.
    expect(await crashing.runDue({ orgId: org.orgId })).toMatchObject({ invoices: 2 });
    expect(chronological(await invoicesOf(org, cus)).map((i) => i.fees_amount_cents)).toEqual([400, 900]);

    // An event that fails every time is set aside after 5 attempts, and counted for an operator.
    await send(org, sub, p.storage, [{ gb: 1, at: "2026-03-02T00:00:00Z" }]);
    const broken = worker(async () => {
      throw new Error("always fails");
    });
    for (let i = 0; i < 6; i++) await broken.runDue({ orgId: org.orgId });
    expect(await scalar(t.db, "SELECT attempts AS n FROM advance_charge_events WHERE org_id = $1", [org.orgId])).toBe(5);
    expect(await invoicesOf(org, cus)).toHaveLength(2);
    const metrics = parseMetrics((await t.app.http.inject({ method: "GET", url: "/metrics" })).body);
    expect(metrics.get('billing_advance_queue_events{state="set_aside"}')).toBeGreaterThanOrEqual(1);
  });
});

const jetstreamSkip =
  DB_KIND !== "postgres" ? "INGEST_MODE=jetstream needs PostgreSQL" : natsServerBinary() === null ? "nats-server is not installed" : null;

describe.skipIf(jetstreamSkip !== null)(`charges paid in advance with INGEST_MODE=jetstream${jetstreamSkip ? ` (skipped: ${jetstreamSkip})` : ""}`, () => {
  let cluster: NatsCluster;
  let js: TestApp;
  let ingestWorker: IngestWorker;

  beforeAll(async () => {
    cluster = await startNatsCluster(1);
    const db = await openTestDb();
    const run = uid("js").replace(/[^A-Za-z0-9_-]/g, "_");
    const env = {
      ...BILLING_ENV,
      INGEST_MODE: "jetstream",
      NATS_URL: cluster.url,
      NATS_REPLICAS: "1",
      DATABASE_URL: (db as { url?: string }).url!,
      NATS_STREAM: `VV_ADV_${run}`,
      NATS_SUBJECT: `vvadv.${run}`,
      NATS_CONSUMER: `vv-adv-${run}`,
      WEBHOOK_WORKER: "off",
    };
    js = await startTestApp({ db, env });
    ingestWorker = createIngestWorker(loadConfig({ ...env, LOG_LEVEL: "silent" }), db, { warn: () => {}, error: () => {} });
    await ingestWorker.start();
  }, 120_000);

  afterAll(async () => {
    await ingestWorker?.stop();
    await js?.close();
    await cluster?.stop();
  });

  it("events committed by a separate ingest worker are queued by the same statement and billed by the server", async () => {
    const org = await newOrg(js);
    await org.freeze("2026-03-01T00:00:00Z");
    const p = await advancePlan(org);
    const cus = await customer(org);
    const sub = await subscribe(org, cus, p.plan);
    await org.freeze("2026-03-02T00:00:00Z");
    await send(org, sub, p.storage, [{ gb: 4, at: "2026-03-02T00:00:00Z" }]);
    // No commit in the server's process to kick it: its poll finds the queued event.
    await waitFor(async () => (await invoicesOf(org, cus)).length === 1, "the advance invoice", 30_000);
    expect((await invoicesOf(org, cus)).map((i) => i.fees_amount_cents)).toEqual([400]);
  });
});

