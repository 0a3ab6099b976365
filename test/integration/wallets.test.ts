// Wallets against a real database: Lago's /wallets and /wallet_transactions (credits at a rate,
// paid, granted and voided), and prepaid credits drawn by finalized invoices after taxes and credit
// notes (an outbound transaction per draw; expired and terminated wallets are never drawn on).
// On PGlite by default, PostgreSQL with TEST_DATABASE_URL.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestApp, type TestApp } from "../helpers/app.ts";
import { scalar, uid } from "./support.ts";
import { BILLING_ENV, customer, expect422, invoiceOf, invoicesOf, newOrg, plan, subscribe, type Org } from "./billing_support.ts";

let t: TestApp;
beforeAll(async () => {
  t = await startTestApp({ env: { ...BILLING_ENV, WEBHOOK_WORKER: "off" } });
});
afterAll(async () => {
  await t?.close();
});

const createWallet = async (org: Org, cus: string, extra: Record<string, unknown> = {}) =>
  (await org.api("POST", "/api/v1/wallets", { wallet: { external_customer_id: cus, currency: "EUR", rate_amount: "1", ...extra } })).wallet;
const topUp = (org: Org, walletId: string, extra: Record<string, unknown>) => org.raw("POST", "/api/v1/wallet_transactions", { wallet_transaction: { wallet_id: walletId, ...extra } });
const transactionsOf = async (org: Org, walletId: string, query = "") => (await org.api("GET", `/api/v1/wallets/${walletId}/wallet_transactions${query}`)).wallet_transactions as any[];

describe("wallets", () => {
  it("credits convert at the wallet's rate; granted credits count at once, paid ones once their credit invoice is paid; voided ones go", async () => {
    const org = await newOrg(t);
    await org.freeze("2026-01-01T00:00:00Z");
    await org.api("POST", "/api/v1/webhook_endpoints", { webhook_endpoint: { webhook_url: "http://127.0.0.1:9/hook", signature_algo: "hmac" } });
    const cus = await customer(org);
    // 10 paid + 5 granted credits at 2.00 EUR each: 10.00 now, 20.00 once the purchase is paid.
    const w = await createWallet(org, cus, { name: "Prepaid", rate_amount: "2", paid_credits: "10", granted_credits: "5", expiration_at: "2027-01-01T00:00:00Z" });
    expect(w).toMatchObject({ status: "active", currency: "EUR", rate_amount: "2", balance_cents: 1000, credits_balance: "5", consumed_credits: "0", name: "Prepaid", expiration_at: "2027-01-01T00:00:00Z" });
    const initial = await transactionsOf(org, w.lago_id);
    expect(initial.map((x) => [x.transaction_type, x.transaction_status, x.status, x.amount, x.credit_amount]).sort()).toEqual([
      ["inbound", "granted", "settled", "10.00", "5"],
      ["inbound", "purchased", "pending", "20.00", "10"],
    ]);
    // The purchase's credit invoice: 10 credits at 2.00, no taxes, finalized and waiting for payment.
    const purchase = initial.find((x) => x.transaction_status === "purchased");
    const credit = await invoiceOf(org, purchase.lago_invoice_id);
    expect(credit).toMatchObject({ invoice_type: "credit", status: "finalized", fees_amount_cents: 2000, taxes_amount_cents: 0, total_amount_cents: 2000, payment_status: "pending" });
    expect(credit.fees.map((f: any) => [f.item.type, f.units, f.amount_cents, f.item.lago_item_id])).toEqual([["credit", "10", 2000, purchase.lago_id]]);
    await org.api("PUT", `/api/v1/invoices/${credit.lago_id}`, { invoice: { payment_status: "succeeded" } });
    expect((await org.api("GET", `/api/v1/wallets/${w.lago_id}`)).wallet).toMatchObject({ balance_cents: 3000, credits_balance: "15" });
    expect((await org.api("GET", `/api/v1/wallet_transactions/${purchase.lago_id}`)).wallet_transaction).toMatchObject({ status: "settled" });
    expect((await org.api("GET", "/api/v1/webhooks?webhook_type=wallet_transaction.updated")).webhooks.length).toBe(1);

    const r = await topUp(org, w.lago_id, { granted_credits: "2.5", voided_credits: "1" });
    expect(r.statusCode, r.body).toBe(200);
    expect(JSON.parse(r.body).wallet_transactions.map((x: any) => [x.transaction_type, x.transaction_status, x.amount_cents])).toEqual([
      ["inbound", "granted", 500],
      ["outbound", "voided", 200],
    ]);
    expect((await org.api("GET", `/api/v1/wallets/${w.lago_id}`)).wallet).toMatchObject({ balance_cents: 3300, credits_balance: "16.5" });
    expect(expect422(await topUp(org, w.lago_id, { voided_credits: "100" }), "voided_credits")).toEqual({ voided_credits: ["insufficient_credits"] });
    expect((await transactionsOf(org, w.lago_id, "?transaction_type=outbound")).length).toBe(1);
    const one = (await transactionsOf(org, w.lago_id))[0];
    expect((await org.api("GET", `/api/v1/wallet_transactions/${one.lago_id}`)).wallet_transaction.lago_id).toBe(one.lago_id);

    expect((await org.api("PUT", `/api/v1/wallets/${w.lago_id}`, { wallet: { name: "Renamed", priority: 3 } })).wallet).toMatchObject({ name: "Renamed", priority: 3, balance_cents: 3300 });
    expect((await org.api("GET", `/api/v1/wallets?external_customer_id=${cus}`)).wallets.map((x: any) => x.lago_id)).toEqual([w.lago_id]);
    expect((await org.api("GET", `/api/v1/customers/${cus}/wallets`)).meta.total_count).toBe(1);
    const hooks = await org.api("GET", "/api/v1/webhooks?webhook_type=wallet_transaction.created");
    expect(hooks.webhooks.length).toBe(4);

    const ended = (await org.api("DELETE", `/api/v1/wallets/${w.lago_id}`)).wallet;
    expect(ended).toMatchObject({ status: "terminated" });
    expect(ended.terminated_at).not.toBeNull();
    expect422(await topUp(org, w.lago_id, { granted_credits: "1" }), "wallet_id");
  });

  it("bad input is a 422 naming the field; an unknown customer or wallet is a 404", async () => {
    const org = await newOrg(t);
    expect422(await org.raw("POST", "/api/v1/wallets", { wallet: { paid_credits: "abc", rate_amount: "0" } }), "external_customer_id", "currency", "rate_amount", "paid_credits");
    expect((await org.raw("POST", "/api/v1/wallets", { wallet: { external_customer_id: uid("none"), currency: "EUR", rate_amount: "1" } })).statusCode).toBe(404);
    const cus = await customer(org);
    expect422(await org.raw("POST", "/api/v1/wallets", { wallet: { external_customer_id: cus, currency: "USD", rate_amount: "1" } }), "currency");
    expect422(await org.raw("POST", "/api/v1/wallets", { wallet: { external_customer_id: cus, currency: "EUR", rate_amount: "1", expiration_at: "2001-01-01T00:00:00Z" } }), "expiration_at");
    expect422(await org.raw("POST", "/api/v1/wallet_transactions", { wallet_transaction: { wallet_id: "x", paid_credits: "-1" } }), "wallet_id", "paid_credits");
    expect((await topUp(org, crypto.randomUUID(), { paid_credits: "1" })).statusCode).toBe(404);
    // More money than an exact JSON number holds: refused, never a 500.
    const big = await createWallet(org, cus, { rate_amount: "999999999999999" });
    expect422(await topUp(org, big.lago_id, { granted_credits: "999999999999999" }), "granted_credits");
    expect422(await org.raw("POST", "/api/v1/wallets", { wallet: "nope" }), "wallet");
    expect((await org.raw("GET", "/api/v1/wallets/nope")).statusCode).toBe(404);
  });

  it("another organization never sees, tops up, changes or terminates this one's wallets", async () => {
    const a = await newOrg(t);
    const b = await newOrg(t);
    const cus = await customer(a);
    const w = await createWallet(a, cus, { granted_credits: "10" });
    expect((await b.raw("GET", `/api/v1/wallets/${w.lago_id}`)).statusCode).toBe(404);
    expect((await b.raw("PUT", `/api/v1/wallets/${w.lago_id}`, { wallet: { name: "x" } })).statusCode).toBe(404);
    expect((await b.raw("DELETE", `/api/v1/wallets/${w.lago_id}`)).statusCode).toBe(404);
    expect((await b.raw("GET", `/api/v1/wallets/${w.lago_id}/wallet_transactions`)).statusCode).toBe(404);
    expect((await topUp(b, w.lago_id, { granted_credits: "100" })).statusCode).toBe(404);
    expect((await b.api("GET", "/api/v1/wallets")).wallets).toEqual([]);
    const tx = (await transactionsOf(a, w.lago_id))[0];
    expect((await b.raw("GET", `/api/v1/wallet_transactions/${tx.lago_id}`)).statusCode).toBe(404);
    expect((await a.api("GET", `/api/v1/wallets/${w.lago_id}`)).wallet).toMatchObject({ balance_cents: 1000, status: "active" });
  });

  it("a finalized invoice draws prepaid credits after taxes and credit notes; expired and terminated wallets are not drawn on", async () => {
    const org = await newOrg(t);
    await org.freeze("2026-01-01T00:00:00Z");
    await org.api("POST", "/api/v1/taxes", { tax: { name: "VAT", code: "vat", rate: "20", applied_to_organization: true } });
    const p = await plan(org, { amount_cents: 10000 });
    const cus = await customer(org);
    await subscribe(org, cus, p.plan);
    // Priority 1 is drawn first: 30.00 of it, then 20.00 of the other (priority 50).
    const first = await createWallet(org, cus, { granted_credits: "30", priority: 1 });
    const second = await createWallet(org, cus, { granted_credits: "20" });
    const expiring = await createWallet(org, cus, { granted_credits: "1000", expiration_at: "2026-01-31T00:00:00Z" });
    await org.freeze("2026-02-01T00:00:00Z");
    // 100.00 + 20 % = 120.00 − 50.00 of credits = 70.00 to pay (the expired wallet is left alone).
    const [jan] = await invoicesOf(org, cus);
    expect(jan).toMatchObject({ taxes_amount_cents: 2000, sub_total_including_taxes_amount_cents: 12000, prepaid_credit_amount_cents: 5000, total_amount_cents: 7000 });
    const out = await transactionsOf(org, first.lago_id, "?transaction_type=outbound");
    expect(out.map((x) => [x.transaction_status, x.status, x.amount_cents, x.lago_invoice_id])).toEqual([["invoiced", "settled", 3000, jan.lago_id]]);
    expect((await org.api("GET", `/api/v1/wallets/${first.lago_id}`)).wallet).toMatchObject({ balance_cents: 0, consumed_credits: "30" });
    expect((await org.api("GET", `/api/v1/wallets/${second.lago_id}`)).wallet).toMatchObject({ balance_cents: 0, consumed_amount_cents: 2000 });
    // Not drawn on; expired since January 31, its credits are voided and it is terminated (wallet_expiration.test.ts).
    expect((await org.api("GET", `/api/v1/wallets/${expiring.lago_id}`)).wallet).toMatchObject({ balance_cents: 0, consumed_credits: "0", status: "terminated" });

    // A new wallet, terminated before February's invoice: nothing drawn.
    const late = await createWallet(org, cus, { granted_credits: "500" });
    await org.api("DELETE", `/api/v1/wallets/${late.lago_id}`);
    await org.freeze("2026-03-01T00:00:00Z");
    const [feb] = await invoicesOf(org, cus);
    expect(feb).toMatchObject({ prepaid_credit_amount_cents: 0, total_amount_cents: 12000 });
    expect((await invoiceOf(org, feb.lago_id)).credits).toEqual([]);
  });

  it("two invoices of one customer finalized at once never draw the same credits twice", async () => {
    const org = await newOrg(t);
    await org.freeze("2026-01-01T00:00:00Z");
    const p = await plan(org, { amount_cents: 8000 });
    const cus = await customer(org);
    const subs = [await subscribe(org, cus, p.plan), await subscribe(org, cus, p.plan)];
    const w = await createWallet(org, cus, { granted_credits: "100" });
    await org.freeze("2026-01-31T12:00:00Z");
    const ids = await Promise.all(subs.map((s) => scalar(t.db, "SELECT id AS n FROM subscriptions WHERE org_id = $1 AND external_id = $2", [org.orgId, s])));
    // Both January invoices (80.00 each) at the same time, against a wallet of 100.00.
    const now = new Date("2026-02-01T00:00:00Z");
    const issued = await Promise.all(ids.map((id) => t.app.invoicing.billSubscription(org.orgId, id, now)));
    expect(issued).toEqual([1, 1]);
    const invoices = await invoicesOf(org, cus);
    expect(invoices.map((i) => i.prepaid_credit_amount_cents).sort((a, b) => a - b)).toEqual([2000, 8000]);
    expect(invoices.map((i) => i.total_amount_cents).sort((a, b) => a - b)).toEqual([0, 6000]);
    expect((await org.api("GET", `/api/v1/wallets/${w.lago_id}`)).wallet).toMatchObject({ balance_cents: 0, consumed_amount_cents: 10000 });
    expect((await transactionsOf(org, w.lago_id, "?transaction_type=outbound")).map((x) => x.amount_cents).sort((a, b) => a - b)).toEqual([2000, 8000]);
  });
});
