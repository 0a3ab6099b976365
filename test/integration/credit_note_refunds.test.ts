// Credit note refunds against a real database: the refund part of a credit note (POST /credit_notes,
// or voiding a paid invoice with generate_credit_note) is paid back through the sandbox provider that
// charged the invoice, after the note's transaction commits; refund_status follows; transient
// failures retry on the dunning schedule (a new key only once the provider said nothing was
// refunded); a timeout is retried with the same key and never refunds twice; a failure for good
// writes Lago's refund failure webhook. On PGlite by default, PostgreSQL with TEST_DATABASE_URL.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Refunds } from "../../src/modules/payments/refunds.ts";
import { startTestApp, type TestApp } from "../helpers/app.ts";
import { DB_KIND } from "../helpers/db.ts";
import { BILLING_ENV, invoiceOf, invoicesOf, newOrg, type Org } from "./billing_support.ts";
import { parseMetrics, uid } from "./support.ts";

let t: TestApp;
beforeAll(async () => {
  // Workers stay off: refunds are attempted by `runDue` or by moving the test clock.
  t = await startTestApp({
    env: { ...BILLING_ENV, WEBHOOK_WORKER: "off", PAYMENT_WORKER: "off", PAYMENT_RETRY_SCHEDULE: "1h,1d", PAYMENT_TIMEOUT_MS: "300" },
  });
});
afterAll(async () => {
  await t?.close();
});

const refundsDue = (org: Org) => t.app.refunds.runDue({ orgId: org.orgId });
const ledger = (org: Org, creditNoteLagoId: string) => t.app.payments.sandbox!.refundLedger(org.orgId, creditNoteLagoId);

/** An organization with a webhook endpoint (never called) so the outbox keeps every webhook. */
async function org(): Promise<Org> {
  const o = await newOrg(t);
  await o.api("POST", "/api/v1/webhook_endpoints", { webhook_endpoint: { webhook_url: "http://127.0.0.1:9/hooks", signature_algo: "hmac" } });
  await o.freeze("2026-01-01T00:00:00Z");
  return o;
}

/** A customer paying 49.00 a month in advance with `token`, its first invoice charged: the invoice and its fee. */
async function paidInvoice(o: Org, token: string) {
  const planCode = uid("pro");
  await o.api("POST", "/api/v1/plans", { plan: { name: "Pro", code: planCode, interval: "monthly", amount_cents: 4900, amount_currency: "EUR", pay_in_advance: true } });
  const cus = uid("cus");
  await o.api("POST", "/api/v1/customers", {
    customer: { external_id: cus, currency: "EUR", billing_configuration: { payment_provider: "stripe", payment_provider_code: "sandbox", provider_customer_id: token } },
  });
  await o.api("POST", "/api/v1/subscriptions", { subscription: { external_customer_id: cus, plan_code: planCode, external_id: uid("sub"), billing_time: "anniversary" } });
  await t.app.payments.worker.runDue({ orgId: o.orgId });
  const [inv] = await invoicesOf(o, cus);
  const invoice = await invoiceOf(o, inv.lago_id);
  expect(invoice).toMatchObject({ total_amount_cents: 4900, payment_status: "succeeded" });
  return { cus, invoice, fee: invoice.fees[0].lago_id as string };
}

const refundNote = (invoiceId: string, fee: string, refund: number, credit = 0) => ({
  credit_note: { invoice_id: invoiceId, reason: "other", items: [{ fee_id: fee, amount_cents: refund + credit }], refund_amount_cents: refund, credit_amount_cents: credit },
});
const noteOf = async (o: Org, lagoId: string) => (await o.api("GET", `/api/v1/credit_notes/${lagoId}`)).credit_note;

async function webhooksOf(o: Org, type: string): Promise<any[]> {
  const { rows } = await t.db.query<{ payload: string }>("SELECT payload FROM webhooks WHERE org_id = $1 AND webhook_type = $2 ORDER BY id", [o.orgId, type]);
  return rows.map((r) => JSON.parse(r.payload));
}

describe(`credit note refunds on ${DB_KIND}`, () => {
  it("a refund is paid back through the provider after the note commits, once", async () => {
    const o = await org();
    const { invoice, fee } = await paidInvoice(o, "pm_succeeds");
    const cn = (await o.api("POST", "/api/v1/credit_notes", refundNote(invoice.lago_id, fee, 2000, 900))).credit_note;
    // Written with the note, not yet attempted.
    expect(cn).toMatchObject({ refund_amount_cents: 2000, credit_amount_cents: 900, refund_status: "pending" });
    expect(await ledger(o, cn.lago_id)).toEqual([]);
    // The provider is on it: no status by hand meanwhile.
    const busy = await o.raw("PUT", `/api/v1/credit_notes/${cn.lago_id}`, { credit_note: { refund_status: "succeeded" } });
    expect(busy.statusCode, busy.body).toBe(405);
    expect(JSON.parse(busy.body).code).toBe("refund_in_progress");
    expect(await refundsDue(o)).toMatchObject({ attempted: 1, succeeded: 1 });
    expect((await noteOf(o, cn.lago_id)).refund_status).toBe("succeeded");
    const rows = await ledger(o, cn.lago_id);
    expect(rows.map((r) => [r.outcome, r.amountCents, r.paymentMethod])).toEqual([["succeeded", 2000n, "pm_succeeds"]]);
    // Nothing more is due; asking again refunds nothing.
    expect(await refundsDue(o)).toMatchObject({ attempted: 0 });
    expect(await ledger(o, cn.lago_id)).toHaveLength(1);
    // A second note refunds the fee's last 20.00 (49.00 − 29.00 credited): its own refund, its own key.
    const second = (await o.api("POST", "/api/v1/credit_notes", refundNote(invoice.lago_id, fee, 2000))).credit_note;
    expect(await refundsDue(o)).toMatchObject({ attempted: 1, succeeded: 1 });
    expect((await ledger(o, second.lago_id)).map((r) => r.amountCents)).toEqual([2000n]);
    expect((await ledger(o, second.lago_id))[0]!.idempotencyKey).not.toBe(rows[0]!.idempotencyKey);
  });

  it("voiding a paid invoice with a refund pays it back through the provider", async () => {
    const o = await org();
    const { cus, invoice } = await paidInvoice(o, "pm_succeeds");
    const voided = (await o.api("POST", `/api/v1/invoices/${invoice.lago_id}/void`, { generate_credit_note: true, refund_amount: 4900 })).invoice;
    expect(voided.status).toBe("voided");
    const [cn] = (await o.api("GET", `/api/v1/customers/${cus}/credit_notes`)).credit_notes as any[];
    expect(cn).toMatchObject({ total_amount_cents: 4900, refund_amount_cents: 4900, credit_amount_cents: 0, refund_status: "pending", credit_status: null });
    expect(await refundsDue(o)).toMatchObject({ succeeded: 1 });
    expect((await noteOf(o, cn.lago_id)).refund_status).toBe("succeeded");
    expect((await ledger(o, cn.lago_id)).map((r) => r.amountCents)).toEqual([4900n]);
  });

  it("a declined refund fails for good with Lago's refund failure webhook", async () => {
    const metric = 'billing_refund_attempts_total{outcome="declined",provider="sandbox"}';
    const scrape = async () => parseMetrics((await t.app.http.inject({ method: "GET", url: "/metrics" })).body).get(metric) ?? 0;
    const before = await scrape();
    const o = await org();
    const { cus, invoice, fee } = await paidInvoice(o, "pm_succeeds_refund_declines");
    const cn = (await o.api("POST", "/api/v1/credit_notes", refundNote(invoice.lago_id, fee, 1000))).credit_note;
    expect(await refundsDue(o)).toMatchObject({ attempted: 1, declined: 1 });
    expect((await noteOf(o, cn.lago_id)).refund_status).toBe("failed");
    const hooks = await webhooksOf(o, "credit_note.provider_refund_failure");
    expect(hooks).toHaveLength(1);
    expect(hooks[0]).toMatchObject({
      webhook_type: "credit_note.provider_refund_failure",
      object_type: "credit_note_payment_provider_refund_error",
      credit_note_payment_provider_refund_error: {
        lago_credit_note_id: cn.lago_id,
        external_customer_id: cus,
        provider_customer_id: "pm_succeeds_refund_declines",
        payment_provider_code: "sandbox",
        provider_error: { error_code: "refund_declined" },
      },
    });
    // Failed for good: never attempted again.
    await o.freeze("2026-01-05T00:00:00Z");
    expect(await ledger(o, cn.lago_id)).toHaveLength(1);
    expect((await scrape()) - before).toBe(1);
  });

  it("two workers racing for the same due refund attempt it once", async () => {
    const o = await org();
    const { invoice, fee } = await paidInvoice(o, "pm_succeeds");
    const cn = (await o.api("POST", "/api/v1/credit_notes", refundNote(invoice.lago_id, fee, 3000))).credit_note;
    // A second process's worker: same database, same provider.
    const other = new Refunds(
      t.db,
      t.app.testClock,
      t.clock,
      { provider: (code) => t.app.payments.service.provider(code), enqueueWebhook: async () => 0 },
      { retryScheduleMs: [3_600_000], timeoutMs: 300, pollMs: 60_000 },
    );
    const runs = await Promise.all([refundsDue(o), other.runDue({ orgId: o.orgId })]);
    expect(runs.map((r) => r.attempted).sort()).toEqual([0, 1]);
    expect((await ledger(o, cn.lago_id)).map((r) => r.amountCents)).toEqual([3000n]);
    expect((await noteOf(o, cn.lago_id)).refund_status).toBe("succeeded");
    await other.stop();
  });

  it("a transient failure is retried on the schedule with a new key and refunds once", async () => {
    const o = await org();
    const { invoice, fee } = await paidInvoice(o, "pm_succeeds_refund_fails_then_succeeds");
    const cn = (await o.api("POST", "/api/v1/credit_notes", refundNote(invoice.lago_id, fee, 1500))).credit_note;
    expect(await refundsDue(o)).toMatchObject({ transient_failure: 1 });
    expect((await noteOf(o, cn.lago_id)).refund_status).toBe("pending");
    // Not due before the first wait (1h) has passed.
    expect(await refundsDue(o)).toMatchObject({ attempted: 0 });
    await o.freeze("2026-01-01T01:00:00Z");
    expect((await noteOf(o, cn.lago_id)).refund_status).toBe("succeeded");
    const rows = await ledger(o, cn.lago_id);
    expect(rows.map((r) => r.outcome).sort()).toEqual(["succeeded", "transient_failure"]);
    expect(new Set(rows.map((r) => r.idempotencyKey)).size).toBe(2);
  });

  it("a timeout is retried with the same key: the provider answers the refund it made, nothing twice", async () => {
    const o = await org();
    const { invoice, fee } = await paidInvoice(o, "pm_succeeds_refund_times_out");
    const cn = (await o.api("POST", "/api/v1/credit_notes", refundNote(invoice.lago_id, fee, 4900))).credit_note;
    expect(await refundsDue(o)).toMatchObject({ timeout: 1 });
    expect((await noteOf(o, cn.lago_id)).refund_status).toBe("pending");
    // The money went back already, the answer was lost.
    expect((await ledger(o, cn.lago_id)).map((r) => r.outcome)).toEqual(["succeeded"]);
    await o.freeze("2026-01-01T01:00:00Z");
    expect((await noteOf(o, cn.lago_id)).refund_status).toBe("succeeded");
    expect((await ledger(o, cn.lago_id)).map((r) => [r.outcome, r.amountCents])).toEqual([["succeeded", 4900n]]);
  });

  it("retries run out: failed, with the webhook; an invoice paid by hand keeps its refund pending", async () => {
    const o = await org();
    const { invoice, fee } = await paidInvoice(o, "pm_succeeds_refund_fails_transiently");
    const cn = (await o.api("POST", "/api/v1/credit_notes", refundNote(invoice.lago_id, fee, 700))).credit_note;
    await refundsDue(o);
    await o.freeze("2026-01-01T01:00:00Z");
    expect((await noteOf(o, cn.lago_id)).refund_status).toBe("pending");
    await o.freeze("2026-01-02T01:00:00Z");
    // Three attempts (two waits), then failed for good.
    expect((await noteOf(o, cn.lago_id)).refund_status).toBe("failed");
    expect(await ledger(o, cn.lago_id)).toHaveLength(3);
    expect((await webhooksOf(o, "credit_note.provider_refund_failure")).map((h) => h.credit_note_payment_provider_refund_error.lago_credit_note_id)).toEqual([cn.lago_id]);

    // Marked paid by hand: no charge to pay back through the provider.
    const planCode = uid("manual");
    await o.api("POST", "/api/v1/plans", { plan: { name: "M", code: planCode, interval: "monthly", amount_cents: 1000, amount_currency: "EUR", pay_in_advance: true } });
    const cus = uid("cus");
    await o.api("POST", "/api/v1/customers", { customer: { external_id: cus, currency: "EUR" } });
    await o.api("POST", "/api/v1/subscriptions", { subscription: { external_customer_id: cus, plan_code: planCode, external_id: uid("sub"), billing_time: "anniversary" } });
    const [manual] = await invoicesOf(o, cus);
    await o.api("PUT", `/api/v1/invoices/${manual.lago_id}`, { invoice: { payment_status: "succeeded" } });
    const manualFee = (await invoiceOf(o, manual.lago_id)).fees[0].lago_id;
    const m = (await o.api("POST", "/api/v1/credit_notes", refundNote(manual.lago_id, manualFee, 1000))).credit_note;
    expect(await refundsDue(o)).toMatchObject({ attempted: 0 });
    expect((await noteOf(o, m.lago_id)).refund_status).toBe("pending");
    expect((await o.api("PUT", `/api/v1/credit_notes/${m.lago_id}`, { credit_note: { refund_status: "succeeded" } })).credit_note.refund_status).toBe("succeeded");
  });
});
