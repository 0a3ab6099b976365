// Manual payments against a real database (Lago's POST /payments): partial and full payments move
// the invoice's total_paid_amount_cents / total_due_amount_cents, the one that settles it sets
// payment_status `succeeded` (one invoice.payment_status_updated webhook, the invoice-paid hook),
// a reference counts once, collection by a provider stops, lists mix provider and manual payments,
// bad input names the field, and one organization never sees or pays another's invoices.
// On PGlite by default, PostgreSQL with TEST_DATABASE_URL.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
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

const pay = (org: Org, payment: Record<string, unknown>) => org.raw("POST", "/api/v1/payments", { payment });

/** A €100.00 invoice, finalized on February 1st (a month of a plan in arrears, no usage). */
async function invoiceOf100(org: Org, customerExtra: Record<string, unknown> = {}) {
  await org.freeze("2026-01-01T00:00:00Z");
  const { plan: planCode } = await plan(org, { amount_cents: 10000 });
  const cus = await customer(org, customerExtra);
  await subscribe(org, cus, planCode);
  await org.freeze("2026-02-01T00:00:00Z");
  const [inv] = await invoicesOf(org, cus);
  return { cus, inv };
}

const statusHooks = async (org: Org) => (await org.api("GET", "/api/v1/webhooks?webhook_type=invoice.payment_status_updated&per_page=100")).webhooks as any[];

describe("manual payments", () => {
  it("partial payments move what is paid and due; the one that settles the invoice sets succeeded, once", async () => {
    const org = await newOrg(t);
    await org.api("POST", "/api/v1/webhook_endpoints", { webhook_endpoint: { webhook_url: "http://127.0.0.1:9/hook", signature_algo: "hmac" } });
    const { cus, inv } = await invoiceOf100(org);
    expect(inv).toMatchObject({ status: "finalized", payment_status: "pending", total_amount_cents: 10000, total_paid_amount_cents: 0, total_due_amount_cents: 10000 });

    const r = await pay(org, { invoice_id: inv.lago_id, amount_cents: 4000, reference: "wire-1", paid_at: "2026-02-03" });
    expect(r.statusCode, r.body).toBe(200);
    const first = json(r).payment;
    expect(first).toMatchObject({
      type: "manual",
      status: "succeeded",
      payment_status: "succeeded",
      amount_cents: 4000,
      amount_currency: "EUR",
      reference: "wire-1",
      invoice_ids: [inv.lago_id],
      invoice_numbers: [inv.number],
      lago_payable_id: inv.lago_id,
      payable_type: "Invoice",
      external_customer_id: cus,
      lago_customer_id: inv.customer.lago_id,
      payment_provider_code: null,
      created_at: "2026-02-01T00:00:00Z",
      paid_at: "2026-02-03T00:00:00Z",
    });
    expect(await invoiceOf(org, inv.lago_id)).toMatchObject({ payment_status: "pending", total_paid_amount_cents: 4000, total_due_amount_cents: 6000 });
    expect(await statusHooks(org)).toEqual([]);

    // The same request again (a retry): the same payment, nothing counted twice.
    const again = await pay(org, { invoice_id: inv.lago_id, amount_cents: 4000, reference: "wire-1", paid_at: "2026-02-03" });
    expect(json(again).payment.lago_id).toBe(first.lago_id);
    expect((await invoiceOf(org, inv.lago_id)).total_paid_amount_cents).toBe(4000);
    // The same reference with another amount is not a retry.
    expect(expect422(await pay(org, { invoice_id: inv.lago_id, amount_cents: 10, reference: "wire-1" }), "reference")).toEqual({ reference: ["value_already_exist"] });
    // More than the €60 due.
    expect(expect422(await pay(org, { invoice_id: inv.lago_id, amount_cents: 6001, reference: "wire-2" }), "amount_cents")).toEqual({ amount_cents: ["invalid_amount"] });

    const last = json(await pay(org, { invoice_id: inv.lago_id, amount_cents: "6000", reference: "wire-2" })).payment;
    expect(last).toMatchObject({ amount_cents: 6000, paid_at: "2026-02-01T00:00:00Z" });
    expect(await invoiceOf(org, inv.lago_id)).toMatchObject({ payment_status: "succeeded", total_paid_amount_cents: 10000, total_due_amount_cents: 0 });
    const hooks = await statusHooks(org);
    expect(hooks).toHaveLength(1);
    expect(hooks[0].payload.invoice).toMatchObject({ lago_id: inv.lago_id, payment_status: "succeeded", total_due_amount_cents: 0 });
    expect(expect422(await pay(org, { invoice_id: inv.lago_id, amount_cents: 1, reference: "wire-3" }), "amount_cents")).toEqual({ amount_cents: ["invalid_amount"] });

    // Lists: newest first, by invoice and by customer, paginated; one by id.
    const byInvoice = await org.api("GET", `/api/v1/payments?invoice_id=${inv.lago_id}`);
    expect(byInvoice.payments.map((p: any) => p.reference)).toEqual(["wire-2", "wire-1"]);
    expect(byInvoice.meta).toMatchObject({ total_count: 2 });
    const page2 = await org.api("GET", `/api/v1/payments?external_customer_id=${cus}&per_page=1&page=2`);
    expect(page2.payments.map((p: any) => p.lago_id)).toEqual([first.lago_id]);
    expect(page2.meta).toMatchObject({ total_count: 2, current_page: 2, total_pages: 2 });
    expect((await org.api("GET", `/api/v1/customers/${cus}/payments`)).payments).toHaveLength(2);
    expect((await org.api("GET", `/api/v1/payments/${first.lago_id}`)).payment).toEqual(first);
  });

  it("a manual payment stops a provider's collection; lists show both kinds", async () => {
    const org = await newOrg(t);
    // The sandbox fails transiently: the first attempt (at finalization) fails, a retry is scheduled.
    const { inv } = await invoiceOf100(org, { billing_configuration: { payment_provider_code: "sandbox", provider_customer_id: "pm_fails_transiently" } });
    await t.app.payments.worker.runDue({ orgId: org.orgId });
    const [provider] = (await org.api("GET", `/api/v1/payments?invoice_id=${inv.lago_id}`)).payments;
    expect(provider).toMatchObject({ type: "provider", payment_status: "pending", attempts_count: 1 });
    expect(provider.next_attempt_at).not.toBeNull();

    json(await pay(org, { invoice_id: inv.lago_id, amount_cents: 2500, reference: "cash" }));
    const both = (await org.api("GET", `/api/v1/payments?invoice_id=${inv.lago_id}`)).payments;
    expect(both.map((p: any) => [p.type, p.amount_cents])).toEqual([["manual", 2500], ["provider", 10000]]);
    // Collection stopped: nothing is due any more, and the clock moving past the retry charges nothing.
    expect(both[1]).toMatchObject({ next_attempt_at: null, payment_status: "failed" });
    await org.freeze("2026-02-03T00:00:00Z");
    expect((await org.api("GET", `/api/v1/payments/${provider.lago_id}`)).payment.attempts_count).toBe(1);
    expect(await invoiceOf(org, inv.lago_id)).toMatchObject({ payment_status: "pending", total_paid_amount_cents: 2500, total_due_amount_cents: 7500 });
    // Charging the total again would take too much: the rest is recorded by hand.
    const retry = await org.raw("POST", `/api/v1/invoices/${inv.lago_id}/retry_payment`);
    expect(retry.statusCode, retry.body).toBe(405);
    expect(json(retry).code).toBe("invalid_status");
  });

  it("paying a wallet purchase's credit invoice in full credits the wallet (the invoice-paid hook)", async () => {
    const org = await newOrg(t);
    await org.freeze("2026-01-01T00:00:00Z");
    const cus = await customer(org);
    const w = (await org.api("POST", "/api/v1/wallets", { wallet: { external_customer_id: cus, currency: "EUR", rate_amount: "1", paid_credits: "20" } })).wallet;
    expect(w.balance_cents).toBe(0);
    const [credit] = await invoicesOf(org, cus);
    expect(credit).toMatchObject({ invoice_type: "credit", total_amount_cents: 2000 });
    json(await pay(org, { invoice_id: credit.lago_id, amount_cents: 1500, reference: "a" }));
    expect((await org.api("GET", `/api/v1/wallets/${w.lago_id}`)).wallet.balance_cents).toBe(0);
    json(await pay(org, { invoice_id: credit.lago_id, amount_cents: 500, reference: "b" }));
    expect((await org.api("GET", `/api/v1/wallets/${w.lago_id}`)).wallet.balance_cents).toBe(2000);
  });

  it("bad input is a 422 naming each field; unknown invoices 404; drafts 405; other organizations see nothing", async () => {
    const org = await newOrg(t);
    const { inv } = await invoiceOf100(org);
    expect(expect422(await pay(org, {}), "invoice_id", "amount_cents", "reference")).toEqual({
      invoice_id: ["value_is_mandatory"],
      amount_cents: ["value_is_mandatory"],
      reference: ["value_is_mandatory"],
    });
    expect(
      expect422(await pay(org, { invoice_id: "nope", amount_cents: 1.5, reference: "x".repeat(41), paid_at: "yesterday" }), "invoice_id", "amount_cents", "reference", "paid_at"),
    ).toEqual({ invoice_id: ["invalid_uuid"], amount_cents: ["value_is_invalid"], reference: ["value_is_too_long"], paid_at: ["invalid_date"] });
    expect(expect422(await pay(org, { invoice_id: inv.lago_id, amount_cents: 0, reference: "r" }), "amount_cents")).toEqual({ amount_cents: ["value_is_out_of_range"] });
    expect(expect422(await pay(org, { invoice_id: inv.lago_id, amount_cents: "99999999999999999999", reference: "r\u0000", paid_at: "2026-02-30" }), "amount_cents", "reference", "paid_at")).toEqual({
      amount_cents: ["value_is_out_of_range"],
      reference: ["value_is_invalid"],
      paid_at: ["invalid_date"],
    });
    expect(expect422(await org.raw("POST", "/api/v1/payments", { nothing: 1 }), "payment")).toEqual({ payment: ["must_be_an_object"] });
    const missing = await pay(org, { invoice_id: "00000000-0000-4000-8000-000000000000", amount_cents: 1, reference: "r" });
    expect(missing.statusCode).toBe(404);
    expect(json(missing).code).toBe("invoice_not_found");

    // A draft (grace period) takes no payment.
    const graced = await newOrg(t);
    const { inv: draft } = await invoiceOf100(graced, { billing_configuration: { invoice_grace_period: 3 } });
    expect(draft.status).toBe("draft");
    const r = await pay(graced, { invoice_id: draft.lago_id, amount_cents: 100, reference: "r" });
    expect(r.statusCode, r.body).toBe(405);
    expect(json(r).code).toBe("invalid_status");

    const paid = json(await pay(org, { invoice_id: inv.lago_id, amount_cents: 100, reference: "mine" })).payment;
    const other = await newOrg(t);
    expect((await pay(other, { invoice_id: inv.lago_id, amount_cents: 100, reference: "theirs" })).statusCode).toBe(404);
    expect((await other.raw("GET", `/api/v1/payments/${paid.lago_id}`)).statusCode).toBe(404);
    expect((await other.api("GET", "/api/v1/payments")).payments).toEqual([]);
    expect((await invoiceOf(org, inv.lago_id)).total_paid_amount_cents).toBe(100);
  });
});
