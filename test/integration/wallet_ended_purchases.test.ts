// Purchases of credits still waiting for payment when their wallet ends (expiration or DELETE):
// nothing is ever paid into a wallet that can no longer be drawn on. The wallet's end fails them and
// voids their credit invoices (a later payment is refused, nothing is collected); a payment that
// arrives anyway (its attempt was in flight, so the end waited for it) grants nothing and the paid
// invoice is refundable in full through a credit note. Amounts by hand. On PGlite by default,
// PostgreSQL with TEST_DATABASE_URL.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildApp } from "../../src/app.ts";
import type { ChargeRequest, ChargeResult, PaymentProvider } from "../../src/modules/payments/index.ts";
import { ManualClock } from "../../src/shared/clock.ts";
import { loadConfig } from "../../src/shared/config.ts";
import { T0, type TestApp } from "../helpers/app.ts";
import { openTestDb } from "../helpers/db.ts";
import { scalar, waitFor } from "./support.ts";
import { BILLING_ENV, customer, invoiceOf, orgWithHooks, walletOf, webhookPayloadsOf, type Org } from "./billing_support.ts";

/** A provider the test answers by hand: each charge waits until `answer` is called. */
class HandProvider implements PaymentProvider {
  readonly code = "by_hand";
  readonly type = "by_hand";
  private pending: ((r: ChargeResult) => void)[] = [];
  charge(_request: ChargeRequest): Promise<ChargeResult> {
    return new Promise((resolve) => this.pending.push(resolve));
  }
  get waiting(): number {
    return this.pending.length;
  }
  answer(r: ChargeResult): void {
    this.pending.shift()!(r);
  }
}

const hand = new HandProvider();
let t: TestApp;
beforeAll(async () => {
  const db = await openTestDb();
  const clock = new ManualClock(T0);
  const config = loadConfig({ LOG_LEVEL: "silent", ...BILLING_ENV, WEBHOOK_WORKER: "off", PAYMENT_WORKER: "off", WEBHOOK_PRIVATE_NETWORKS: "allow" });
  const app = buildApp(config, { db, clock, paymentProviders: [hand] });
  await app.start();
  t = { app, db, clock, apiKey: "", url: "", close: () => app.close() };
});
afterAll(async () => {
  await t?.close();
});

const transactionOf = async (org: Org, id: string) => (await org.api("GET", `/api/v1/wallet_transactions/${id}`)).wallet_transaction;
const markPaid = (org: Org, invoice: string) => org.raw("PUT", `/api/v1/invoices/${invoice}`, { invoice: { payment_status: "succeeded" } });
const refund = (org: Org, invoice: any, cents: number) =>
  org.raw("POST", "/api/v1/credit_notes", {
    credit_note: { invoice_id: invoice.lago_id, reason: "order_cancellation", items: [{ fee_id: invoice.fees[0].lago_id, amount_cents: cents }], refund_amount_cents: cents },
  });

/** A wallet at 2.00 EUR a credit with 10 credits bought (20.00, unpaid) and 1 granted; the purchase and its credit invoice. */
async function walletWithUnpaidPurchase(org: Org, cus: string, extra: Record<string, unknown> = {}) {
  const wallet = (
    await org.api("POST", "/api/v1/wallets", { wallet: { external_customer_id: cus, currency: "EUR", rate_amount: "2", paid_credits: "10", granted_credits: "1", ...extra } })
  ).wallet;
  const list = (await org.api("GET", `/api/v1/wallets/${wallet.lago_id}/wallet_transactions?transaction_status=purchased`)).wallet_transactions as any[];
  const purchase = list[0];
  expect(purchase.status).toBe("pending");
  const invoice = await invoiceOf(org, purchase.lago_invoice_id);
  expect(invoice).toMatchObject({ invoice_type: "credit", status: "finalized", total_amount_cents: 2000 });
  return { wallet, purchase, invoice };
}

describe("a wallet that ends takes its unpaid purchases with it", () => {
  it("expiry: the purchase fails, its credit invoice is voided, a later payment is refused and nothing enters the wallet", async () => {
    const org = await orgWithHooks(t);
    const cus = await customer(org);
    const { wallet, purchase, invoice } = await walletWithUnpaidPurchase(org, cus, { expiration_at: "2026-03-01T00:00:00Z" });

    await org.freeze("2026-03-01T00:00:00Z");
    expect(await walletOf(org, wallet.lago_id)).toMatchObject({ status: "terminated", balance_cents: 0 });
    expect(await transactionOf(org, purchase.lago_id)).toMatchObject({ status: "failed", failed_at: "2026-03-01T00:00:00Z", settled_at: null });
    expect(await invoiceOf(org, invoice.lago_id)).toMatchObject({ status: "voided", payment_status: "pending" });
    // Announced: the invoice voided, the purchase failed.
    expect((await webhookPayloadsOf(org, "invoice.voided")).map((p) => p.invoice.lago_id)).toEqual([invoice.lago_id]);
    expect((await webhookPayloadsOf(org, "wallet_transaction.updated")).map((p) => [p.wallet_transaction.lago_id, p.wallet_transaction.status])).toEqual([[purchase.lago_id, "failed"]]);

    // The customer's payment notice comes later: refused, the wallet stays empty.
    const late = await markPaid(org, invoice.lago_id);
    expect(late.statusCode, late.body).toBe(405);
    expect(await walletOf(org, wallet.lago_id)).toMatchObject({ status: "terminated", balance_cents: 0, credits_balance: "0" });
    expect(await transactionOf(org, purchase.lago_id)).toMatchObject({ status: "failed" });
    // Nothing was paid, so there is nothing to refund: no note on a voided invoice.
    expect((await refund(org, invoice, 2000)).statusCode).toBe(405);
  });

  it("DELETE: the purchase fails, its credit invoice is voided, a later payment is refused and nothing enters the wallet", async () => {
    const org = await orgWithHooks(t);
    const cus = await customer(org);
    const { wallet, purchase, invoice } = await walletWithUnpaidPurchase(org, cus);

    const ended = await org.api("DELETE", `/api/v1/wallets/${wallet.lago_id}`);
    // What was granted stays on the terminated wallet (Lago: what is left is lost); the purchase never counted.
    expect(ended.wallet).toMatchObject({ status: "terminated", balance_cents: 200 });
    expect(await transactionOf(org, purchase.lago_id)).toMatchObject({ status: "failed", failed_at: "2026-01-01T00:00:00Z" });
    expect(await invoiceOf(org, invoice.lago_id)).toMatchObject({ status: "voided" });
    expect((await webhookPayloadsOf(org, "invoice.voided")).map((p) => p.invoice.lago_id)).toEqual([invoice.lago_id]);

    const late = await markPaid(org, invoice.lago_id);
    expect(late.statusCode, late.body).toBe(405);
    expect(await walletOf(org, wallet.lago_id)).toMatchObject({ balance_cents: 200, credits_balance: "1" });
    // A second DELETE changes nothing.
    expect((await org.api("DELETE", `/api/v1/wallets/${wallet.lago_id}`)).wallet).toMatchObject({ status: "terminated", balance_cents: 200 });
    expect(await webhookPayloadsOf(org, "invoice.voided")).toHaveLength(1);
  });

  it("the payment's collection stops: the provider is never asked for the voided purchase", async () => {
    const org = await orgWithHooks(t);
    const cus = await customer(org, { billing_configuration: { payment_provider_code: "by_hand", provider_customer_id: "card_stop" } });
    const { wallet, invoice } = await walletWithUnpaidPurchase(org, cus);
    const payment = async () => (await org.api("GET", `/api/v1/payments?invoice_id=${invoice.lago_id}`)).payments[0];
    expect(await payment()).toMatchObject({ payment_status: "pending" });
    await org.api("DELETE", `/api/v1/wallets/${wallet.lago_id}`);
    expect(await t.app.payments.worker.runDue({ orgId: org.orgId })).toMatchObject({ attempted: 0 });
    expect(hand.waiting).toBe(0);
    expect((await invoiceOf(org, invoice.lago_id)).status).toBe("voided");
  });

  it("top-ups are refused once the wallet is past its expiration_at, before the pass ends it", async () => {
    const org = await orgWithHooks(t);
    const cus = await customer(org);
    const { wallet } = await walletWithUnpaidPurchase(org, cus, { expiration_at: "2026-03-01T00:00:00Z" });
    await t.db.query("UPDATE wallets SET expiration_at = '2026-01-01T00:00:00Z' WHERE lago_id = $1", [wallet.lago_id]);
    const r = await org.raw("POST", "/api/v1/wallet_transactions", { wallet_transaction: { wallet_id: wallet.lago_id, paid_credits: "5" } });
    expect(r.statusCode, r.body).toBe(422);
    expect(JSON.parse(r.body).error_details).toEqual({ wallet_id: ["wallet_is_terminated"] });
  });
});

describe("a payment in flight when the wallet ends", () => {
  it("DELETE waits for it (405); declined, the wallet then ends and voids the invoice", async () => {
    const org = await orgWithHooks(t);
    const cus = await customer(org, { billing_configuration: { payment_provider_code: "by_hand", provider_customer_id: "card_declined" } });
    const { wallet, purchase, invoice } = await walletWithUnpaidPurchase(org, cus);
    const running = t.app.payments.worker.runDue({ orgId: org.orgId });
    await waitFor(() => hand.waiting === 1, "the charge to reach the provider");

    const refused = await org.raw("DELETE", `/api/v1/wallets/${wallet.lago_id}`);
    expect(refused.statusCode, refused.body).toBe(405);
    expect(JSON.parse(refused.body).code).toBe("payment_processor_is_currently_handling_payment");
    expect(await walletOf(org, wallet.lago_id)).toMatchObject({ status: "active" });
    expect(await transactionOf(org, purchase.lago_id)).toMatchObject({ status: "pending" });

    hand.answer({ outcome: "declined", errorCode: "do_not_honor", message: "declined" });
    await running;
    await org.api("DELETE", `/api/v1/wallets/${wallet.lago_id}`);
    expect(await invoiceOf(org, invoice.lago_id)).toMatchObject({ status: "voided" });
    expect(await transactionOf(org, purchase.lago_id)).toMatchObject({ status: "failed" });
  });

  it("expiry waits for it; paid after the expiration_at, it grants nothing and the whole invoice is refundable", async () => {
    const org = await orgWithHooks(t);
    const cus = await customer(org, { billing_configuration: { payment_provider_code: "by_hand", provider_customer_id: "card_ok" } });
    const { wallet, purchase, invoice } = await walletWithUnpaidPurchase(org, cus, { expiration_at: "2026-03-01T00:00:00Z" });
    const running = t.app.payments.worker.runDue({ orgId: org.orgId });
    await waitFor(() => hand.waiting === 1, "the charge to reach the provider");

    // Its expiration_at passes (by SQL: a clock move would run the payment worker, which waits for
    // this attempt). The pass cannot void the invoice under the provider's feet: it tries again later.
    await t.db.query("UPDATE wallets SET expiration_at = '2025-12-31T00:00:00Z' WHERE lago_id = $1", [wallet.lago_id]);
    const first = await t.app.wallets.runRecurringRules({ orgId: org.orgId });
    expect(first.expired).toBe(0);
    expect(first.errors.map((e: any) => e.code)).toEqual(["payment_processor_is_currently_handling_payment"]);
    expect(await walletOf(org, wallet.lago_id)).toMatchObject({ status: "active", balance_cents: 200 });

    hand.answer({ outcome: "succeeded", providerPaymentId: "hand_ok" });
    await running;
    expect(await invoiceOf(org, invoice.lago_id)).toMatchObject({ status: "finalized", payment_status: "succeeded" });
    // Paid for a wallet past its expiration_at: the purchase fails, no credit enters it.
    expect(await transactionOf(org, purchase.lago_id)).toMatchObject({ status: "failed", settled_at: null });
    expect(await walletOf(org, wallet.lago_id)).toMatchObject({ balance_cents: 200 });

    expect(await t.app.wallets.runRecurringRules({ orgId: org.orgId })).toMatchObject({ expired: 1, errors: [] });
    expect(await walletOf(org, wallet.lago_id)).toMatchObject({ status: "terminated", balance_cents: 0 });
    // Only the granted credit expired.
    const out = (await org.api("GET", `/api/v1/wallets/${wallet.lago_id}/wallet_transactions?transaction_type=outbound`)).wallet_transactions as any[];
    expect(out.map((x) => [x.transaction_status, x.amount_cents])).toEqual([["voided", 200]]);

    // The customer gets the 20.00 back: a refund of the whole invoice, nothing taken from the wallet.
    const r = await refund(org, invoice, 2000);
    expect(r.statusCode, r.body).toBe(200);
    expect(JSON.parse(r.body).credit_note).toMatchObject({ refund_amount_cents: 2000, total_amount_cents: 2000, refund_status: "pending" });
    const after = (await org.api("GET", `/api/v1/wallets/${wallet.lago_id}/wallet_transactions?transaction_type=outbound`)).wallet_transactions as any[];
    expect(after).toHaveLength(1);
    const estimate = await org.raw("POST", "/api/v1/credit_notes/estimate", {
      credit_note: { invoice_id: invoice.lago_id, items: [{ fee_id: invoice.fees[0].lago_id, amount_cents: 1 }] },
    });
    expect(estimate.statusCode).toBe(422);
  });

  it("a purchase paid for a wallet terminated meanwhile grants nothing and is refundable in full", async () => {
    const org = await orgWithHooks(t);
    const cus = await customer(org);
    const { wallet, purchase, invoice } = await walletWithUnpaidPurchase(org, cus);
    // A wallet ended before this rule existed: terminated with its purchase still pending.
    await t.db.query("UPDATE wallets SET status = 'terminated', terminated_at = now() WHERE lago_id = $1", [wallet.lago_id]);
    const paid = await markPaid(org, invoice.lago_id);
    expect(paid.statusCode, paid.body).toBe(200);
    expect(await transactionOf(org, purchase.lago_id)).toMatchObject({ status: "failed" });
    expect(await walletOf(org, wallet.lago_id)).toMatchObject({ balance_cents: 200 });
    expect((await webhookPayloadsOf(org, "wallet_transaction.updated")).map((p) => p.wallet_transaction.status)).toEqual(["failed"]);
    const r = await refund(org, invoice, 2000);
    expect(r.statusCode, r.body).toBe(200);
    expect(await walletOf(org, wallet.lago_id)).toMatchObject({ balance_cents: 200 });
  });
});

describe("expiry and payment at once", () => {
  it("either the invoice is voided (the payment refused) or the payment grants nothing; never credits in the ended wallet", async () => {
    const org = await orgWithHooks(t);
    const cus = await customer(org);
    const rounds: { wallet: any; purchase: any; invoice: any }[] = [];
    for (let i = 0; i < 6; i++) rounds.push(await walletWithUnpaidPurchase(org, cus, { expiration_at: "2026-03-01T00:00:00Z", granted_credits: "0" }));
    // The clock passes the expiration_at without running the pass (as between two runs).
    await t.db.query("UPDATE wallets SET expiration_at = '2025-12-31T00:00:00Z' WHERE lago_id = ANY($1::uuid[])", [rounds.map((r) => r.wallet.lago_id)]);
    const results = await Promise.all([t.app.wallets.runRecurringRules({ orgId: org.orgId }), ...rounds.map((r) => markPaid(org, r.invoice.lago_id))]);
    const [pass, ...payments] = results as [any, ...any[]];
    expect(pass.errors).toEqual([]);
    for (const [i, r] of rounds.entries()) {
      const code = payments[i].statusCode;
      expect([200, 405]).toContain(code);
      const invoice = await invoiceOf(org, r.invoice.lago_id);
      expect(invoice.status).toBe(code === 200 ? "finalized" : "voided");
      expect(await transactionOf(org, r.purchase.lago_id)).toMatchObject({ status: "failed" });
      expect(await walletOf(org, r.wallet.lago_id)).toMatchObject({ status: "terminated", balance_cents: 0 });
    }
    expect(await scalar(t.db, "SELECT count(*) AS n FROM wallet_transactions t JOIN wallets w ON w.id = t.wallet_id WHERE w.org_id = $1 AND t.status = 'settled'", [org.orgId])).toBe(0);
  });
});
