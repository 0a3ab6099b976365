// Invoicing against a real database: a month of usage billed when a test clock moves into the next
// month (amounts worked out by hand, equal to what current_usage showed), the billing job run twice,
// concurrently and after a crash (exactly one invoice per billing instant), final invoices issued
// before DELETE /subscriptions answers, upgrades, pay in advance, grace periods, finalize / void /
// refresh, fee → events, and tenancy. On PGlite by default, PostgreSQL with TEST_DATABASE_URL.
import type { InjectOptions, LightMyRequestResponse } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { InvoicingService } from "../../src/modules/invoicing/index.ts";
import { sqlState } from "../../src/db/db.ts";
import { DB_KIND } from "../helpers/db.ts";
import { startTestApp, type TestApp } from "../helpers/app.ts";
import { bearer, json, scalar, uid } from "./support.ts";

const ADMIN_TOKEN = "admin-token-for-invoicing-tests-0123456789";

let t: TestApp;

beforeAll(async () => {
  // The scheduler stays off: every invoice here is issued by a clock move, a termination or an explicit run.
  t = await startTestApp({ env: { VALUEVERSE_ADMIN_TOKEN: ADMIN_TOKEN, VALUEVERSE_TEST_CLOCK: "on", BILLING_SCHEDULER: "off" } });
});
afterAll(async () => {
  await t?.close();
});

type Method = "GET" | "POST" | "PUT" | "DELETE";
const call = (apiKey: string, method: Method, url: string, payload?: unknown) =>
  t.app.http.inject({ method, url, headers: bearer(apiKey), ...(payload === undefined ? {} : { payload: payload as InjectOptions["payload"] }) });
const ok = (r: LightMyRequestResponse) => {
  expect(r.statusCode, r.body).toBe(200);
  return json(r);
};
const T = (iso: string) => Math.floor(Date.parse(iso) / 1000);

interface Org {
  key: string;
  orgId: number;
  api: (method: Method, url: string, payload?: unknown) => Promise<any>;
  raw: (method: Method, url: string, payload?: unknown) => Promise<LightMyRequestResponse>;
  freeze: (at: string) => Promise<void>;
}

async function newOrg(name = uid("Acme")): Promise<Org> {
  const r = await t.app.http.inject({ method: "POST", url: "/admin/v1/organizations", headers: bearer(ADMIN_TOKEN), payload: { organization: { name } } });
  expect(r.statusCode, r.body).toBe(200);
  const key = json(r).api_key as string;
  const orgId = (await t.app.orgs.authenticate(key))!;
  const raw = (method: Method, url: string, payload?: unknown) => call(key, method, url, payload);
  return {
    key,
    orgId,
    raw,
    api: async (method, url, payload) => ok(await raw(method, url, payload)),
    freeze: async (at) => {
      ok(await raw("PUT", "/api/v1/test_clock", { test_clock: { frozen_time: at } }));
    },
  };
}

/** A count metric, a sum metric with a region filter, and a monthly plan charging both. */
async function catalog(org: Org, plan: { amount_cents: number; pay_in_advance?: boolean; trial_period?: number; currency?: string }) {
  const calls = (await org.api("POST", "/api/v1/billable_metrics", { billable_metric: { name: "API calls", code: uid("calls"), aggregation_type: "count_agg" } }))
    .billable_metric;
  const storage = (
    await org.api("POST", "/api/v1/billable_metrics", {
      billable_metric: { name: "Storage", code: uid("gb"), aggregation_type: "sum_agg", field_name: "gb", filters: [{ key: "region", values: ["eu", "us"] }] },
    })
  ).billable_metric;
  const created = (
    await org.api("POST", "/api/v1/plans", {
      plan: {
        name: "Growth",
        code: uid("growth"),
        interval: "monthly",
        amount_cents: plan.amount_cents,
        amount_currency: plan.currency ?? "EUR",
        pay_in_advance: plan.pay_in_advance ?? false,
        ...(plan.trial_period !== undefined ? { trial_period: plan.trial_period } : {}),
        charges: [
          { billable_metric_id: calls.lago_id, charge_model: "standard", properties: { amount: "0.05" } },
          {
            billable_metric_id: storage.lago_id,
            charge_model: "standard",
            properties: { amount: "0.10" },
            filters: [{ invoice_display_name: "Storage EU", values: { region: ["eu"] }, properties: { amount: "0.25" } }],
          },
        ],
      },
    })
  ).plan;
  return { calls: calls.code as string, storage: storage.code as string, plan: created.code as string };
}

async function subscribe(org: Org, planCode: string, customer: Record<string, unknown> = {}, subscription: Record<string, unknown> = {}) {
  const externalCustomerId = uid("cus");
  await org.api("POST", "/api/v1/customers", { customer: { external_id: externalCustomerId, currency: "EUR", ...customer } });
  const externalId = uid("sub");
  const s = (
    await org.api("POST", "/api/v1/subscriptions", {
      subscription: { external_customer_id: externalCustomerId, plan_code: planCode, external_id: externalId, billing_time: "calendar", ...subscription },
    })
  ).subscription;
  return { customer: externalCustomerId, sub: externalId, lagoId: s.lago_id as string };
}

async function send(org: Org, events: { code: string; sub: string; at: string; properties?: Record<string, unknown> }[]) {
  for (let i = 0; i < events.length; i += 100) {
    const chunk = events.slice(i, i + 100).map((e) => ({
      transaction_id: uid("tx"),
      external_subscription_id: e.sub,
      code: e.code,
      timestamp: T(e.at),
      ...(e.properties ? { properties: e.properties } : {}),
    }));
    await org.api("POST", "/api/v1/events/batch", { events: chunk });
  }
}

const invoicesOf = async (org: Org, customer: string) => (await org.api("GET", `/api/v1/invoices?external_customer_id=${encodeURIComponent(customer)}&per_page=100`)).invoices;
const invoice = async (org: Org, lagoId: string) => (await org.api("GET", `/api/v1/invoices/${lagoId}`)).invoice;
const feeOf = (inv: any, code: string, filter: string | null = null) =>
  inv.fees.find((f: any) => f.item.code === code && (filter === null ? f.item.filter_invoice_display_name === null : f.item.filter_invoice_display_name === filter));

describe(`a month of usage billed under a test clock on ${DB_KIND}`, () => {
  let org: Org;
  let c: Awaited<ReturnType<typeof catalog>>;
  let s: Awaited<ReturnType<typeof subscribe>>;
  let usageBefore: any;
  let march: any;

  beforeAll(async () => {
    org = await newOrg("Acme Corp");
    await org.freeze("2024-03-10T12:00:00Z");
    c = await catalog(org, { amount_cents: 4900 });
    s = await subscribe(org, c.plan);
  });

  it("current usage at the end of March shows the hand-worked amounts", async () => {
    await org.freeze("2024-03-31T23:00:00Z");
    // 150 calls in March (and one before the subscription started, which never counts).
    await send(org, [
      { code: c.calls, sub: s.sub, at: "2024-03-05T00:00:00Z" },
      ...Array.from({ length: 150 }, (_, i) => ({ code: c.calls, sub: s.sub, at: new Date(Date.parse("2024-03-11T00:00:00Z") + i * 3_600_000).toISOString() })),
      { code: c.storage, sub: s.sub, at: "2024-03-12T00:00:00Z", properties: { gb: "10.5", region: "eu" } },
      { code: c.storage, sub: s.sub, at: "2024-03-20T00:00:00Z", properties: { gb: "2.25", region: "eu" } },
      { code: c.storage, sub: s.sub, at: "2024-03-21T00:00:00Z", properties: { gb: "7.3", region: "us" } },
    ]);
    usageBefore = (await org.api("GET", `/api/v1/customers/${s.customer}/current_usage?external_subscription_id=${s.sub}`)).customer_usage;
    const calls = usageBefore.charges_usage.find((u: any) => u.billable_metric.code === c.calls);
    const storage = usageBefore.charges_usage.find((u: any) => u.billable_metric.code === c.storage);
    // 150 × €0.05 = €7.50.
    expect([calls.units, calls.amount_cents]).toEqual(["150", 750]);
    // EU: (10.5 + 2.25) GB × €0.25 = €3.1875 → 319 (half-up); US (default price): 7.3 × €0.10 = €0.73.
    expect(storage.filters.map((f: any) => [f.invoice_display_name, f.units, f.amount_cents])).toEqual([["Storage EU", "12.75", 319]]);
    expect(storage.amount_cents).toBe(392);
    expect(await invoicesOf(org, s.customer)).toEqual([]);
  });

  it("moving the clock into April issues exactly one invoice, before PUT /test_clock answers, with the fees current usage showed", async () => {
    await org.freeze("2024-04-01T00:05:00Z");
    const list = await invoicesOf(org, s.customer);
    expect(list).toHaveLength(1);
    march = await invoice(org, list[0].lago_id);
    // Subscription fee: €49 × 22/31 (March 10th–31st) = €34.774193… → 3477. Usage: 750 + 319 + 73.
    expect(march).toMatchObject({
      invoice_type: "subscription",
      status: "finalized",
      payment_status: "pending",
      currency: "EUR",
      issuing_date: "2024-04-01",
      payment_due_date: "2024-04-01",
      sequential_id: 1,
      organization_sequential_id: 1,
      fees_amount_cents: 3477 + 750 + 319 + 73,
      taxes_amount_cents: 0,
      sub_total_excluding_taxes_amount_cents: 4619,
      total_amount_cents: 4619,
      total_due_amount_cents: 4619,
    });
    expect(march.number).toMatch(/^ACM-[0-9A-F]{4}-001$/);
    expect(march.customer.external_id).toBe(s.customer);
    expect(march.subscriptions.map((x: any) => x.external_id)).toEqual([s.sub]);
    expect(march.billing_periods).toEqual([
      expect.objectContaining({
        external_subscription_id: s.sub,
        subscription_from_datetime: "2024-03-10T12:00:00Z",
        subscription_to_datetime: "2024-03-31T23:59:59Z",
        charges_from_datetime: "2024-03-10T12:00:00Z",
        charges_to_datetime: "2024-03-31T23:59:59Z",
        invoicing_reason: "subscription_periodic",
      }),
    ]);
    const fee = march.fees.find((f: any) => f.item.type === "subscription");
    expect(fee).toMatchObject({ amount_cents: 3477, units: "1", from_date: "2024-03-10T12:00:00Z", to_date: "2024-03-31T23:59:59Z", pay_in_advance: false });
    expect(fee.precise_amount).toBe("34.77419354838709677419354838709677419355");

    // Every usage fee equals the bucket current_usage showed before the move.
    const calls = usageBefore.charges_usage.find((u: any) => u.billable_metric.code === c.calls);
    const callsFee = feeOf(march, c.calls);
    expect([callsFee.units, callsFee.amount_cents, callsFee.events_count]).toEqual([calls.units, calls.amount_cents, calls.events_count]);
    expect(callsFee).toMatchObject({ precise_unit_amount: "0.05", precise_amount: "7.5", from_date: "2024-03-10T12:00:00Z", to_date: "2024-03-31T23:59:59Z" });
    const eu = feeOf(march, c.storage, "Storage EU");
    expect([eu.units, eu.amount_cents, eu.events_count, eu.precise_amount]).toEqual(["12.75", 319, 2, "3.1875"]);
    const us = feeOf(march, c.storage);
    expect([us.units, us.amount_cents, us.events_count]).toEqual(["7.3", 73, 1]);
    const storage = usageBefore.charges_usage.find((u: any) => u.billable_metric.code === c.storage);
    expect(eu.amount_cents + us.amount_cents).toBe(storage.amount_cents);
    expect(march.fees).toHaveLength(4);
  });

  it("moving the clock again, or running the job, issues nothing more for March", async () => {
    await org.freeze("2024-04-01T00:05:00Z");
    await org.freeze("2024-04-15T00:00:00Z");
    await t.app.invoicing.runBillingJob();
    expect(await invoicesOf(org, s.customer)).toHaveLength(1);
  });

  it("every usage fee lists the events that made it: same subscription, metric, filter and period", async () => {
    const calls = feeOf(march, c.calls);
    const page1 = await org.api("GET", `/api/v1/fees/${calls.lago_id}/events?per_page=100`);
    const page2 = await org.api("GET", `/api/v1/fees/${calls.lago_id}/events?per_page=100&page=2`);
    expect(page1.meta).toMatchObject({ total_count: 150, total_pages: 2, next_page: 2 });
    expect(page1.events).toHaveLength(100);
    expect(page2.events).toHaveLength(50);
    // The event of March 5th, before the subscription started, is not one of them.
    expect([...page1.events, ...page2.events].every((e: any) => e.timestamp >= "2024-03-10T12:00:00Z")).toBe(true);
    const eu = await org.api("GET", `/api/v1/fees/${feeOf(march, c.storage, "Storage EU").lago_id}/events`);
    expect(eu.events.map((e: any) => [e.properties.region, e.properties.gb])).toEqual([["eu", "10.5"], ["eu", "2.25"]]);
    const us = await org.api("GET", `/api/v1/fees/${feeOf(march, c.storage).lago_id}/events`);
    expect(us.events.map((e: any) => e.properties.region)).toEqual(["us"]);
    const sub = await org.api("GET", `/api/v1/fees/${march.fees.find((f: any) => f.item.type === "subscription").lago_id}/events`);
    expect(sub.events).toEqual([]);
    const one = await org.api("GET", `/api/v1/fees/${calls.lago_id}`);
    expect(one.fee).toMatchObject({ lago_id: calls.lago_id, lago_invoice_id: march.lago_id, external_subscription_id: s.sub, amount_cents: 750 });
  });

  it("lists invoices with Lago's filters", async () => {
    const q = (query: string) => org.api("GET", `/api/v1/invoices?${query}`);
    expect((await q("status=finalized")).invoices.map((i: any) => i.lago_id)).toContain(march.lago_id);
    expect((await q("statuses[]=draft")).invoices).toEqual([]);
    expect((await q("payment_status=pending&issuing_date_from=2024-04-01&issuing_date_to=2024-04-01")).meta.total_count).toBe(1);
    expect((await q("issuing_date_from=2024-04-02")).invoices).toEqual([]);
    const bad = await org.raw("GET", "/api/v1/invoices?status=paid&issuing_date_from=April");
    expect(bad.statusCode).toBe(422);
    expect(Object.keys(json(bad).error_details).sort()).toEqual(["issuing_date_from", "status"]);
    expect((await org.api("GET", `/api/v1/customers/${s.customer}/invoices`)).invoices).toHaveLength(1);
  });

  it("voids a finalized, unpaid invoice once (Lago's rules); a draft-only action on it is not found", async () => {
    expect((await org.raw("PUT", `/api/v1/invoices/${march.lago_id}/finalize`)).statusCode).toBe(404);
    const refreshed = await org.api("POST", `/api/v1/invoices/${march.lago_id}/refresh`);
    expect(refreshed.invoice.fees_amount_cents).toBe(4619);
    const voided = (await org.api("POST", `/api/v1/invoices/${march.lago_id}/void`)).invoice;
    expect(voided).toMatchObject({ status: "voided", total_due_amount_cents: 0, number: march.number });
    expect(voided.voided_at).not.toBeNull();
    const again = await org.raw("POST", `/api/v1/invoices/${march.lago_id}/void`);
    expect([again.statusCode, json(again)]).toEqual([405, { status: 405, error: "Method Not Allowed", code: "not_voidable" }]);
    // A voided period is not billed again.
    await t.app.invoicing.runBillingJob({ orgId: org.orgId });
    expect(await invoicesOf(org, s.customer)).toHaveLength(1);
  });
});

describe(`the billing job is idempotent on ${DB_KIND}`, () => {
  let org: Org;
  let c: Awaited<ReturnType<typeof catalog>>;

  beforeAll(async () => {
    org = await newOrg();
    await org.freeze("2025-06-20T00:00:00Z");
    c = await catalog(org, { amount_cents: 1000 });
  });

  const countFor = (subLagoId: string) =>
    scalar(
      t.db,
      `SELECT count(*)::text AS n FROM invoice_subscriptions b JOIN subscriptions s ON s.id = b.subscription_id WHERE s.lago_id = $1`,
      [subLagoId],
    );

  it("run twice and concurrently, it issues one invoice per billing period", async () => {
    // Started March 1st: March, April and May have closed by June 20th.
    const s = await subscribe(org, c.plan, {}, { subscription_at: "2025-03-01T00:00:00Z" });
    await send(org, [{ code: c.calls, sub: s.sub, at: "2025-04-10T00:00:00Z" }]);
    const runs = await Promise.all([
      t.app.invoicing.runBillingJob({ orgId: org.orgId }),
      t.app.invoicing.runBillingJob({ orgId: org.orgId }),
      t.app.invoicing.billSubscription(org.orgId, Number((await t.db.query<{ id: string }>("SELECT id FROM subscriptions WHERE lago_id = $1", [s.lagoId])).rows[0]!.id)),
    ]);
    expect(runs[0].failures + runs[1].failures).toBe(0);
    await t.app.invoicing.runBillingJob({ orgId: org.orgId });
    expect(await countFor(s.lagoId)).toBe(3);
    const list = await invoicesOf(org, s.customer);
    expect(list.map((i: any) => i.issuing_date).sort()).toEqual(["2025-04-01", "2025-05-01", "2025-06-01"]);
    // Gapless numbers, one per invoice.
    expect(list.map((i: any) => i.organization_sequential_id).sort()).toEqual([1, 2, 3]);
    // April's usage: one call, €0.05.
    const april = await invoice(org, list.find((i: any) => i.issuing_date === "2025-05-01").lago_id);
    expect(feeOf(april, c.calls).amount_cents).toBe(5);
  });

  it("the database refuses a second invoice for a billed instant", async () => {
    const { rows } = await t.db.query<{ invoice_id: string; subscription_id: string; billed_at: Date }>(
      "SELECT invoice_id, subscription_id, billed_at FROM invoice_subscriptions WHERE org_id = $1 LIMIT 1",
      [org.orgId],
    );
    const r = rows[0]!;
    const err = await t.db
      .query(
        `INSERT INTO invoice_subscriptions (org_id, invoice_id, subscription_id, invoicing_reason, billed_at, created_at)
         VALUES ($1, $2, $3, 'subscription_periodic', $4, now())`,
        [org.orgId, r.invoice_id, r.subscription_id, r.billed_at],
      )
      .catch((e: unknown) => e);
    expect(sqlState(err)).toBe("23505");
  });

  it("a run that crashes after writing an invoice, before its fees, leaves nothing; the next run issues exactly one", async () => {
    const s = await subscribe(org, c.plan, {}, { subscription_at: "2025-05-01T00:00:00Z" });
    const subscriptionId = Number((await t.db.query<{ id: string }>("SELECT id FROM subscriptions WHERE lago_id = $1", [s.lagoId])).rows[0]!.id);
    let crashes = 0;
    const crashing = new InvoicingService(t.db, t.app.testClock, { customers: t.app.customers, subscriptions: t.app.subscriptions, metering: t.app.metering }, {
      beforeFees: () => {
        crashes += 1;
        throw new Error("process killed");
      },
    });
    await expect(crashing.billSubscription(org.orgId, subscriptionId)).rejects.toThrow("process killed");
    const summary = await crashing.runBillingJob({ orgId: org.orgId });
    expect(summary.failures).toBe(1);
    expect(crashes).toBe(2);
    expect(await countFor(s.lagoId)).toBe(0);
    expect(await invoicesOf(org, s.customer)).toEqual([]);
    expect(await scalar(t.db, "SELECT count(*)::text AS n FROM fees WHERE subscription_id = $1", [subscriptionId])).toBe(0);

    await t.app.invoicing.runBillingJob({ orgId: org.orgId });
    await t.app.invoicing.runBillingJob({ orgId: org.orgId });
    expect(await countFor(s.lagoId)).toBe(1);
    const [may] = await invoicesOf(org, s.customer);
    expect(may).toMatchObject({ issuing_date: "2025-06-01", fees_amount_cents: 1000, status: "finalized" });
  });
});

describe(`terminations, upgrades and plans paid in advance on ${DB_KIND}`, () => {
  let org: Org;

  beforeAll(async () => {
    org = await newOrg();
    await org.freeze("2024-01-01T00:00:00Z");
  });

  it("DELETE /subscriptions answers after the final invoice is issued: the days used and usage to the termination", async () => {
    const c = await catalog(org, { amount_cents: 5000 });
    const s = await subscribe(org, c.plan);
    await org.freeze("2024-01-15T10:00:00Z");
    await send(org, [
      { code: c.calls, sub: s.sub, at: "2024-01-03T00:00:00Z" },
      { code: c.calls, sub: s.sub, at: "2024-01-15T09:59:59Z" },
    ]);
    const deleted = await org.api("DELETE", `/api/v1/subscriptions/${s.sub}`);
    expect(deleted.subscription.status).toBe("terminated");
    const list = await invoicesOf(org, s.customer);
    expect(list).toHaveLength(1);
    const final = await invoice(org, list[0].lago_id);
    // January 1st–15th, the termination day included: 15/31 × €50 = €24.19; two calls, €0.10.
    expect(final.billing_periods[0]).toMatchObject({ invoicing_reason: "subscription_terminating", subscription_to_datetime: "2024-01-15T10:00:00Z" });
    expect(final.fees.find((f: any) => f.item.type === "subscription").amount_cents).toBe(2419);
    expect(feeOf(final, c.calls)).toMatchObject({ units: "2", amount_cents: 10, to_date: "2024-01-15T10:00:00Z" });
    expect(final.total_amount_cents).toBe(2429);
    // Nothing is left to bill at the period's end.
    await org.freeze("2024-02-01T00:00:00Z");
    expect(await invoicesOf(org, s.customer)).toHaveLength(1);
  });

  it("an upgrade on January 15th bills the old plan January 1st–14th at once, the new one the 15th–31st at the period end (Lago's example)", async () => {
    const org2 = await newOrg();
    await org2.freeze("2024-01-01T00:00:00Z");
    const a = await catalog(org2, { amount_cents: 10_000 });
    const b = await catalog(org2, { amount_cents: 20_000 });
    const s = await subscribe(org2, a.plan);
    await org2.freeze("2024-01-15T09:00:00Z");
    await org2.api("POST", "/api/v1/subscriptions", { subscription: { external_customer_id: s.customer, plan_code: b.plan, external_id: s.sub } });
    const first = await invoicesOf(org2, s.customer);
    expect(first).toHaveLength(1);
    // 14/31 × €100 = €45.16.
    expect(first[0].fees_amount_cents).toBe(4516);
    await org2.freeze("2024-02-01T00:00:00Z");
    const all = await invoicesOf(org2, s.customer);
    expect(all).toHaveLength(2);
    // 17/31 × €200 = €109.68.
    expect(all.find((i: any) => i.lago_id !== first[0].lago_id).fees_amount_cents).toBe(10_968);
  });

  it("a plan paid in advance is billed when it starts; terminated, it bills usage and records the unused days a credit note owes", async () => {
    const c = await catalog(org, { amount_cents: 3100, pay_in_advance: true });
    await org.freeze("2024-03-10T08:00:00Z");
    const s = await subscribe(org, c.plan);
    const start = await invoicesOf(org, s.customer);
    expect(start).toHaveLength(1);
    // March 10th–31st: 22/31 × €31 = €22.
    expect(start[0].fees_amount_cents).toBe(2200);
    const starting = await invoice(org, start[0].lago_id);
    expect(starting.billing_periods[0].invoicing_reason).toBe("subscription_starting");
    expect(starting.fees[0]).toMatchObject({ pay_in_advance: true, from_date: "2024-03-10T08:00:00Z", to_date: "2024-03-31T23:59:59Z" });

    await org.freeze("2024-03-20T12:00:00Z");
    await send(org, [{ code: c.calls, sub: s.sub, at: "2024-03-11T00:00:00Z" }]);
    await org.api("DELETE", `/api/v1/subscriptions/${s.sub}`);
    const all = await invoicesOf(org, s.customer);
    expect(all).toHaveLength(2);
    const final = await invoice(org, all.find((i: any) => i.lago_id !== start[0].lago_id).lago_id);
    expect(final.fees.map((f: any) => [f.item.type, f.amount_cents])).toEqual([["charge", 5]]);
    // March 21st–31st were paid and not used: 11/31 × €31 = €11.
    expect(final.billing_periods[0]).toMatchObject({ invoicing_reason: "subscription_terminating", unused_advance_fee_credit_cents: 1100 });
  });

  it("a zero-amount invoice is paid, and a paid invoice cannot be voided", async () => {
    const c = await catalog(org, { amount_cents: 0 });
    await org.freeze("2024-04-01T00:00:00Z");
    const s = await subscribe(org, c.plan);
    await org.freeze("2024-05-01T00:00:00Z");
    const [zero] = await invoicesOf(org, s.customer);
    expect(zero).toMatchObject({ total_amount_cents: 0, payment_status: "succeeded", status: "finalized" });
    // Lago keeps the zero plan fee on the invoice and drops charges with no usage.
    expect((await invoice(org, zero.lago_id)).fees.map((f: any) => [f.item.type, f.amount_cents])).toEqual([["subscription", 0]]);
    expect((await org.raw("POST", `/api/v1/invoices/${zero.lago_id}/void`)).statusCode).toBe(405);
  });
});

describe(`grace periods on ${DB_KIND}`, () => {
  it("a draft waits out the customer's grace period, takes late events on refresh, then is finalized and numbered by the job", async () => {
    const org = await newOrg("Grace Inc");
    await org.freeze("2024-05-01T00:00:00Z");
    const c = await catalog(org, { amount_cents: 3100 });
    const s = await subscribe(org, c.plan, { billing_configuration: { invoice_grace_period: 2 } });
    await org.freeze("2024-05-20T00:00:00Z");
    await send(org, [{ code: c.calls, sub: s.sub, at: "2024-05-10T00:00:00Z" }]);
    await org.freeze("2024-06-01T06:00:00Z");
    const [draft] = await invoicesOf(org, s.customer);
    expect(draft).toMatchObject({ status: "draft", fees_amount_cents: 3105, issuing_date: "2024-06-01", sequential_id: null });
    expect(draft.number).toMatch(/^GRA-[0-9A-F]{4}-DRAFT$/);

    // A late event for May arrives during the grace period: refresh counts it.
    await send(org, [{ code: c.calls, sub: s.sub, at: "2024-05-31T23:00:00Z" }]);
    const refreshed = (await org.api("PUT", `/api/v1/invoices/${draft.lago_id}/refresh`)).invoice;
    expect(refreshed.fees_amount_cents).toBe(3110);
    expect(feeOf(refreshed, c.calls).units).toBe("2");
    expect((await org.raw("POST", `/api/v1/invoices/${draft.lago_id}/void`)).statusCode).toBe(405);

    await org.freeze("2024-06-02T23:00:00Z");
    expect((await invoicesOf(org, s.customer))[0].status).toBe("draft");
    await org.freeze("2024-06-03T00:00:00Z");
    const [final] = await invoicesOf(org, s.customer);
    expect(final).toMatchObject({ status: "finalized", sequential_id: 1, issuing_date: "2024-06-03", payment_due_date: "2024-06-03", fees_amount_cents: 3110 });
    expect(final.number).toMatch(/^GRA-[0-9A-F]{4}-001$/);
  });

  it("PUT /invoices/:id/finalize finalizes a draft before its grace period ends", async () => {
    const org = await newOrg();
    await org.freeze("2024-05-01T00:00:00Z");
    const c = await catalog(org, { amount_cents: 1000 });
    const s = await subscribe(org, c.plan, { billing_configuration: { invoice_grace_period: 5 } });
    await org.freeze("2024-06-01T00:00:00Z");
    const [draft] = await invoicesOf(org, s.customer);
    const final = (await org.api("PUT", `/api/v1/invoices/${draft.lago_id}/finalize`)).invoice;
    expect(final).toMatchObject({ status: "finalized", organization_sequential_id: 1, issuing_date: "2024-06-01" });
    await org.freeze("2024-06-10T00:00:00Z");
    expect(await invoicesOf(org, s.customer)).toHaveLength(1);
  });
});

describe(`tenancy on ${DB_KIND}`, () => {
  it("another organization never sees this one's invoices or fees, whatever id it guesses", async () => {
    const owner = await newOrg();
    await owner.freeze("2024-01-01T00:00:00Z");
    const c = await catalog(owner, { amount_cents: 1000 });
    const s = await subscribe(owner, c.plan, { billing_configuration: { invoice_grace_period: 3 } });
    await owner.freeze("2024-01-06T00:00:00Z");
    await send(owner, [{ code: c.calls, sub: s.sub, at: "2024-01-05T00:00:00Z" }]);
    await owner.freeze("2024-02-01T00:00:00Z");
    const [inv] = await invoicesOf(owner, s.customer);
    const detail = await invoice(owner, inv.lago_id);
    const fee = detail.fees[1];

    const other = await newOrg();
    expect((await other.api("GET", "/api/v1/invoices")).invoices).toEqual([]);
    expect((await other.api("GET", `/api/v1/invoices?external_customer_id=${s.customer}`)).invoices).toEqual([]);
    const notFound = async (method: Method, url: string, code: string) => {
      const r = await other.raw(method, url);
      expect([r.statusCode, json(r)], url).toEqual([404, { status: 404, error: "Not Found", code }]);
    };
    await notFound("GET", `/api/v1/invoices/${inv.lago_id}`, "invoice_not_found");
    await notFound("PUT", `/api/v1/invoices/${inv.lago_id}/finalize`, "invoice_not_found");
    await notFound("PUT", `/api/v1/invoices/${inv.lago_id}/refresh`, "invoice_not_found");
    await notFound("POST", `/api/v1/invoices/${inv.lago_id}/void`, "invoice_not_found");
    await notFound("GET", `/api/v1/fees/${fee.lago_id}`, "fee_not_found");
    await notFound("GET", `/api/v1/fees/${fee.lago_id}/events`, "fee_not_found");
    await notFound("GET", "/api/v1/invoices/not-a-uuid", "invoice_not_found");
    // The owner's draft is untouched by those attempts.
    expect((await invoice(owner, inv.lago_id)).status).toBe("draft");
  });
});
