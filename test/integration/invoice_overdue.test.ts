// Overdue invoices against a real database (Lago's payment_overdue): a finalized invoice whose
// payment has not succeeded is marked overdue once its payment_due_date has passed in the
// customer's calendar, by the organization's test clock, once (one invoice.payment_overdue webhook,
// even with passes racing); a successful payment (by hand, a manual payment paying it in full, a
// provider's charge) or a void clears it; drafts are never overdue; the invoice list filters on it;
// one organization's clock never marks another's invoices.
// On PGlite by default, PostgreSQL with TEST_DATABASE_URL.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { markOverdueInvoices } from "../../src/modules/invoicing/index.ts";
import { startTestApp, type TestApp } from "../helpers/app.ts";
import { json } from "./support.ts";
import { BILLING_ENV, customer, expect422, invoiceOf, invoicesOf, newOrg, plan, subscribe, type Org } from "./billing_support.ts";

let t: TestApp;
beforeAll(async () => {
  t = await startTestApp({ env: { ...BILLING_ENV, WEBHOOK_WORKER: "off", PAYMENT_WORKER: "off" } });
});
afterAll(async () => {
  await t?.close();
});

const hooksOf = async (org: Org, type: string) => (await org.api("GET", `/api/v1/webhooks?webhook_type=${type}&per_page=100`)).webhooks as any[];
const overdueHooks = (org: Org) => hooksOf(org, "invoice.payment_overdue");
const overdueFlag = async (org: Org, lagoId: string) => (await invoiceOf(org, lagoId)).payment_overdue as boolean;

/** An organization with a webhook endpoint (so webhooks are recorded) and its clock on January 1st. */
async function orgWithHooks(): Promise<Org> {
  const org = await newOrg(t);
  await org.api("POST", "/api/v1/webhook_endpoints", { webhook_endpoint: { webhook_url: "http://127.0.0.1:9/hook", signature_algo: "hmac" } });
  await org.freeze("2026-01-01T00:00:00Z");
  return org;
}

/** A €100.00 monthly plan in arrears and a customer on it; its first invoice is issued on February 1st (customer's calendar). */
async function subscribed(org: Org, customerExtra: Record<string, unknown> = {}) {
  const { plan: planCode } = await plan(org, { amount_cents: 10000 });
  const cus = await customer(org, customerExtra);
  await subscribe(org, cus, planCode);
  return cus;
}

describe("overdue invoices", () => {
  it("net payment term 0: overdue from the day after the issuing day, marked and announced once, cleared by a payment", async () => {
    const org = await orgWithHooks();
    const cus = await subscribed(org);
    await org.freeze("2026-02-01T00:00:00Z");
    const [inv] = await invoicesOf(org, cus);
    expect(inv).toMatchObject({ status: "finalized", payment_status: "pending", issuing_date: "2026-02-01", payment_due_date: "2026-02-01", payment_overdue: false });

    // The whole due day still counts.
    await org.freeze("2026-02-01T23:59:59Z");
    expect(await overdueFlag(org, inv.lago_id)).toBe(false);
    expect(await overdueHooks(org)).toEqual([]);

    await org.freeze("2026-02-02T00:00:00Z");
    const overdue = await invoiceOf(org, inv.lago_id);
    expect(overdue).toMatchObject({ payment_overdue: true, payment_status: "pending", status: "finalized" });
    let hooks = await overdueHooks(org);
    expect(hooks).toHaveLength(1);
    expect(hooks[0]).toMatchObject({ webhook_type: "invoice.payment_overdue", object_type: "invoice" });
    expect(hooks[0].payload).toMatchObject({ webhook_type: "invoice.payment_overdue", object_type: "invoice" });
    expect(hooks[0].payload.invoice).toMatchObject({ lago_id: inv.lago_id, payment_overdue: true, payment_due_date: "2026-02-01", total_due_amount_cents: 10000 });
    expect(hooks[0].payload.invoice.customer).toMatchObject({ external_id: cus });

    // Later moves and passes announce it no more.
    await org.freeze("2026-02-05T00:00:00Z");
    await org.freeze("2026-02-05T00:00:00Z");
    expect((await markOverdueInvoices(passDeps(), { orgId: org.orgId })).marked).toBe(0);
    expect(await overdueHooks(org)).toHaveLength(1);

    // Paid by hand: no longer overdue, in the status webhook too, and never marked again.
    const paid = await org.api("PUT", `/api/v1/invoices/${inv.lago_id}`, { invoice: { payment_status: "succeeded" } });
    expect(paid.invoice).toMatchObject({ payment_status: "succeeded", payment_overdue: false });
    const status = await hooksOf(org, "invoice.payment_status_updated");
    expect(status.map((h) => h.payload.invoice.payment_overdue)).toEqual([false]);
    await org.freeze("2026-02-20T00:00:00Z");
    expect(await overdueFlag(org, inv.lago_id)).toBe(false);
    hooks = await overdueHooks(org);
    expect(hooks.map((h) => h.payload.invoice.lago_id)).toEqual([inv.lago_id]);

    // Set back to pending by hand: unpaid and past due again, so marked and announced again.
    await org.api("PUT", `/api/v1/invoices/${inv.lago_id}`, { invoice: { payment_status: "pending" } });
    expect(await overdueFlag(org, inv.lago_id)).toBe(false);
    await org.freeze("2026-02-21T00:00:00Z");
    expect(await overdueFlag(org, inv.lago_id)).toBe(true);
    expect(await overdueHooks(org)).toHaveLength(2);
  });

  it("net payment term 30: due 30 days after the issuing day; a partial manual payment leaves it overdue, the one paying it in full clears it", async () => {
    const org = await orgWithHooks();
    const cus = await subscribed(org, { net_payment_term: 30 });
    await org.freeze("2026-02-01T00:00:00Z");
    const [inv] = await invoicesOf(org, cus);
    expect(inv).toMatchObject({ net_payment_term: 30, payment_due_date: "2026-03-03", payment_overdue: false });

    await org.freeze("2026-03-03T23:00:00Z");
    expect(await overdueFlag(org, inv.lago_id)).toBe(false);
    await org.freeze("2026-03-04T00:00:00Z");
    expect(await overdueFlag(org, inv.lago_id)).toBe(true);
    // March's invoice (issued March 1st, due March 31st) is not.
    const march = (await invoicesOf(org, cus)).find((i) => i.issuing_date === "2026-03-01");
    expect(march).toMatchObject({ payment_due_date: "2026-03-31", payment_overdue: false });

    const pay = (amount: number, reference: string) => org.api("POST", "/api/v1/payments", { payment: { invoice_id: inv.lago_id, amount_cents: amount, reference } });
    await pay(4000, "wire-1");
    expect(await invoiceOf(org, inv.lago_id)).toMatchObject({ payment_status: "pending", total_due_amount_cents: 6000, payment_overdue: true });
    await pay(6000, "wire-2");
    expect(await invoiceOf(org, inv.lago_id)).toMatchObject({ payment_status: "succeeded", total_due_amount_cents: 0, payment_overdue: false });
    await org.freeze("2026-03-10T00:00:00Z");
    expect(await overdueFlag(org, inv.lago_id)).toBe(false);
    expect((await overdueHooks(org)).map((h) => h.payload.invoice.lago_id)).toEqual([inv.lago_id]);
  });

  it("the due date is a day of the customer's calendar: in New York the invoice is overdue from 05:00 UTC", async () => {
    const org = await orgWithHooks();
    const cus = await subscribed(org, { timezone: "America/New_York" });
    // February starts at 05:00 UTC in New York.
    await org.freeze("2026-02-01T05:00:00Z");
    const [inv] = await invoicesOf(org, cus);
    expect(inv).toMatchObject({ issuing_date: "2026-02-01", payment_due_date: "2026-02-01" });
    // 2026-02-02T04:59:59Z is still February 1st in New York.
    await org.freeze("2026-02-02T04:59:59Z");
    expect(await overdueFlag(org, inv.lago_id)).toBe(false);
    await org.freeze("2026-02-02T05:00:00Z");
    expect(await overdueFlag(org, inv.lago_id)).toBe(true);
  });

  it("a provider's charge made on the clock move that passes the due date leaves the invoice alone; a declined one does not", async () => {
    const org = await orgWithHooks();
    const charged = await subscribed(org, { billing_configuration: { payment_provider_code: "sandbox", provider_customer_id: "pm_succeeds" } });
    const declined = await subscribed(org, { billing_configuration: { payment_provider_code: "sandbox", provider_customer_id: "pm_declines" } });
    // One move: the invoices are issued, collected, then looked at.
    await org.freeze("2026-02-03T00:00:00Z");
    const [paid] = await invoicesOf(org, charged);
    const [unpaid] = await invoicesOf(org, declined);
    expect(paid).toMatchObject({ payment_status: "succeeded", payment_overdue: false });
    expect(unpaid).toMatchObject({ payment_status: "failed", payment_overdue: true });
    expect((await overdueHooks(org)).map((h) => h.payload.invoice.lago_id)).toEqual([unpaid.lago_id]);
  });

  it("drafts are never overdue; voiding clears the flag and a voided invoice is never marked", async () => {
    const org = await orgWithHooks();
    // A 5-day grace period: the invoice stays a draft until February 6th.
    const draftCus = await subscribed(org, { billing_configuration: { invoice_grace_period: 5 } });
    const early = await subscribed(org);
    const late = await subscribed(org);
    await org.freeze("2026-02-01T00:00:00Z");
    const [draft] = await invoicesOf(org, draftCus);
    expect(draft).toMatchObject({ status: "draft", payment_due_date: "2026-02-01" });
    // Voided before its due date passed.
    const [earlyInv] = await invoicesOf(org, early);
    expect((await org.api("POST", `/api/v1/invoices/${earlyInv.lago_id}/void`)).invoice).toMatchObject({ status: "voided", payment_overdue: false });

    await org.freeze("2026-02-04T00:00:00Z");
    expect(await invoiceOf(org, draft.lago_id)).toMatchObject({ status: "draft", payment_overdue: false });
    expect(await invoiceOf(org, earlyInv.lago_id)).toMatchObject({ status: "voided", payment_overdue: false });
    const [lateInv] = await invoicesOf(org, late);
    expect(lateInv).toMatchObject({ status: "finalized", payment_overdue: true });

    // Voiding an overdue invoice clears it (its invoice.voided webhook too).
    const voided = await org.api("POST", `/api/v1/invoices/${lateInv.lago_id}/void`);
    expect(voided.invoice).toMatchObject({ status: "voided", payment_overdue: false });
    const voidHooks = await hooksOf(org, "invoice.voided");
    expect(voidHooks.find((h) => h.payload.invoice.lago_id === lateInv.lago_id)?.payload.invoice.payment_overdue).toBe(false);
    await org.freeze("2026-02-10T00:00:00Z");
    expect(await overdueFlag(org, lateInv.lago_id)).toBe(false);
    expect(await overdueFlag(org, earlyInv.lago_id)).toBe(false);
    // The draft, finalized by the job after its grace period (issued, and due, the day it was
    // finalized), is overdue once that day has passed.
    expect(await invoiceOf(org, draft.lago_id)).toMatchObject({ status: "finalized", payment_due_date: "2026-02-10", payment_overdue: false });
    await org.freeze("2026-02-11T00:00:00Z");
    expect(await overdueFlag(org, draft.lago_id)).toBe(true);
    expect((await overdueHooks(org)).map((h) => h.payload.invoice.lago_id).sort()).toEqual([draft.lago_id, lateInv.lago_id].sort());
  });

  it("each organization is judged by its own clock: a pass over every organization marks only what is overdue there", async () => {
    const a = await orgWithHooks();
    const b = await orgWithHooks();
    const cusA = await subscribed(a);
    const cusB = await subscribed(b);
    await a.freeze("2026-02-01T00:00:00Z");
    await b.freeze("2026-02-01T00:00:00Z");
    await a.freeze("2026-02-03T00:00:00Z");
    const [invA] = await invoicesOf(a, cusA);
    const [invB] = await invoicesOf(b, cusB);
    expect(invA.payment_overdue).toBe(true);
    expect(invB.payment_overdue).toBe(false);
    // The scheduler's pass (every organization, each by its clock): b's clock is still on February 1st.
    const run = await markOverdueInvoices(passDeps());
    expect(run.errors).toEqual([]);
    expect(await overdueFlag(b, invB.lago_id)).toBe(false);
    expect(await overdueHooks(b)).toEqual([]);
    // Another organization's invoices are not found, filtered or not.
    expect((await a.raw("GET", `/api/v1/invoices/${invB.lago_id}`)).statusCode).toBe(404);
    expect((await a.api("GET", "/api/v1/invoices?payment_overdue=true&per_page=100")).invoices.map((i: any) => i.lago_id)).toEqual([invA.lago_id]);
    expect((await b.api("GET", "/api/v1/invoices?payment_overdue=true&per_page=100")).invoices).toEqual([]);
    await b.freeze("2026-02-02T00:00:00Z");
    expect(await overdueFlag(b, invB.lago_id)).toBe(true);
    expect((await overdueHooks(a)).map((h) => h.payload.invoice.lago_id)).toEqual([invA.lago_id]);
  });

  it("the invoice list filters on payment_overdue (true or false, also per customer); anything else is a 422", async () => {
    const org = await orgWithHooks();
    const slow = await subscribed(org, { net_payment_term: 30 });
    const fast = await subscribed(org);
    await org.freeze("2026-02-05T00:00:00Z");
    const [slowInv] = await invoicesOf(org, slow);
    const [fastInv] = await invoicesOf(org, fast);
    const ids = async (query: string) => (await org.api("GET", `/api/v1/invoices?per_page=100&${query}`)).invoices.map((i: any) => i.lago_id).sort();
    expect(await ids("payment_overdue=true")).toEqual([fastInv.lago_id]);
    expect(await ids("payment_overdue=false")).toEqual([slowInv.lago_id]);
    expect(await ids("")).toEqual([fastInv.lago_id, slowInv.lago_id].sort());
    const page = await org.api("GET", "/api/v1/invoices?payment_overdue=true&per_page=1");
    expect(page.meta).toMatchObject({ total_count: 1 });
    expect(await ids(`payment_overdue=true&external_customer_id=${slow}`)).toEqual([]);
    expect((await org.api("GET", `/api/v1/customers/${fast}/invoices?payment_overdue=true`)).invoices.map((i: any) => i.lago_id)).toEqual([fastInv.lago_id]);
    expect((await org.api("GET", `/api/v1/customers/${slow}/invoices?payment_overdue=true`)).invoices).toEqual([]);
    expect(expect422(await org.raw("GET", "/api/v1/invoices?payment_overdue=yes"), "payment_overdue")).toEqual({ payment_overdue: ["must_be_true_or_false"] });
    expect(expect422(await org.raw("GET", "/api/v1/invoices?payment_overdue=true&payment_overdue=false"), "payment_overdue")).toEqual({
      payment_overdue: ["must_be_given_once"],
    });
  });

  it("passes racing over the same invoices mark each once, with one webhook each", async () => {
    const org = await orgWithHooks();
    const customers: string[] = [];
    for (let i = 0; i < 5; i++) customers.push(await subscribed(org));
    await org.freeze("2026-02-01T00:00:00Z");
    const invoices = (await Promise.all(customers.map((c) => invoicesOf(org, c)))).map(([i]) => i);
    expect(invoices.every((i) => i.payment_overdue === false)).toBe(true);
    // Passes that see the organization's time as February 10th, in small batches, all at once.
    const later = { now: () => Date.parse("2026-02-10T00:00:00Z") };
    const runs = await Promise.all(Array.from({ length: 4 }, () => markOverdueInvoices({ ...passDeps(), clock: later }, { orgId: org.orgId, batchSize: 2 })));
    expect(runs.flatMap((r) => r.errors)).toEqual([]);
    expect(runs.reduce((n, r) => n + r.marked, 0)).toBe(5);
    for (const inv of invoices) expect(await overdueFlag(org, inv.lago_id)).toBe(true);
    const hooks = await overdueHooks(org);
    expect(hooks.map((h) => h.payload.invoice.lago_id).sort()).toEqual(invoices.map((i) => i.lago_id).sort());
    expect(json(await org.raw("GET", "/api/v1/invoices?payment_overdue=false&per_page=100")).invoices).toEqual([]);
  });
});

function passDeps() {
  return { db: t.db, clock: t.app.testClock, customers: t.app.customers, enqueueWebhook: t.app.webhooks.service.enqueue };
}
