// Lago's wallet.depleted_ongoing_balance: sent when an invoice's draw or a void (by hand, or a
// credit note taking credits back) takes a wallet's balance from above zero to zero, in the same
// transaction; once per emptying; never for a partial draw, an empty wallet, or a wallet that ends.
// Amounts by hand. On PGlite by default, PostgreSQL with TEST_DATABASE_URL.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestApp, type TestApp } from "../helpers/app.ts";
import { BILLING_ENV, createWallet, customer, invoicesOf, orgWithHooks, plan, subscribe, type Org } from "./billing_support.ts";

let t: TestApp;
beforeAll(async () => {
  t = await startTestApp({ env: { ...BILLING_ENV, WEBHOOK_WORKER: "off", PAYMENT_WORKER: "off" } });
});
afterAll(async () => {
  await t?.close();
});

const depleted = async (org: Org) =>
  ((await org.api("GET", "/api/v1/webhooks?webhook_type=wallet.depleted_ongoing_balance")).webhooks as any[]).map((h) => [h.payload.wallet.lago_id, h.payload.wallet.balance_cents]);
const voidCredits = (org: Org, wallet: string, credits: string) =>
  org.api("POST", "/api/v1/wallet_transactions", { wallet_transaction: { wallet_id: wallet, voided_credits: credits } });

describe("wallet.depleted_ongoing_balance", () => {
  it("an invoice drawing the last credits sends it once; a partial draw and an empty wallet do not", async () => {
    const org = await orgWithHooks(t);
    const p = await plan(org, { amount_cents: 3000 });
    const cus = await customer(org);
    await subscribe(org, cus, p.plan);
    // 10.00 in the first wallet (drawn first, emptied), 50.00 in the second (20.00 drawn of it).
    const first = await createWallet(org, cus, "1", { granted_credits: "10", priority: 1 });
    const second = await createWallet(org, cus, "1", { granted_credits: "50", priority: 2 });
    await org.freeze("2026-02-01T00:00:00Z");
    const [jan] = await invoicesOf(org, cus);
    expect(jan).toMatchObject({ prepaid_credit_amount_cents: 3000 });
    expect(await depleted(org)).toEqual([[first.lago_id, 0]]);
    // February takes the second wallet's last 30.00: its turn. The first, already empty, sends nothing more.
    await org.freeze("2026-03-01T00:00:00Z");
    expect((await depleted(org)).sort()).toEqual([[first.lago_id, 0], [second.lago_id, 0]].sort());
    await org.freeze("2026-04-01T00:00:00Z");
    expect(await depleted(org)).toHaveLength(2);
  });

  it("voiding the rest by hand sends it; credits coming in and going again send it again", async () => {
    const org = await orgWithHooks(t);
    const cus = await customer(org);
    const w = await createWallet(org, cus, "1", { granted_credits: "5" });
    await voidCredits(org, w.lago_id, "2");
    expect(await depleted(org)).toEqual([]);
    await voidCredits(org, w.lago_id, "3");
    expect(await depleted(org)).toEqual([[w.lago_id, 0]]);
    await org.api("POST", "/api/v1/wallet_transactions", { wallet_transaction: { wallet_id: w.lago_id, granted_credits: "4" } });
    await voidCredits(org, w.lago_id, "4");
    expect(await depleted(org)).toEqual([[w.lago_id, 0], [w.lago_id, 0]]);
  });

  it("a credit note taking back the whole purchase sends it; a wallet that expires or is terminated does not", async () => {
    const org = await orgWithHooks(t);
    const cus = await customer(org);
    const bought = await createWallet(org, cus, "1", { paid_credits: "10" });
    const purchase = ((await org.api("GET", `/api/v1/wallets/${bought.lago_id}/wallet_transactions`)).wallet_transactions as any[])[0];
    await org.api("PUT", `/api/v1/invoices/${purchase.lago_invoice_id}`, { invoice: { payment_status: "succeeded" } });
    const invoice = (await org.api("GET", `/api/v1/invoices/${purchase.lago_invoice_id}`)).invoice;
    const r = await org.raw("POST", "/api/v1/credit_notes", {
      credit_note: { invoice_id: invoice.lago_id, reason: "other", refund_amount_cents: 1000, items: [{ fee_id: invoice.fees[0].lago_id, amount_cents: 1000 }] },
    });
    expect(r.statusCode, r.body).toBe(200);
    expect(await depleted(org)).toEqual([[bought.lago_id, 0]]);

    const expiring = await createWallet(org, cus, "1", { granted_credits: "5", expiration_at: "2026-01-05T00:00:00Z" });
    const ended = await createWallet(org, cus, "1", { granted_credits: "5" });
    await org.api("DELETE", `/api/v1/wallets/${ended.lago_id}`);
    await org.freeze("2026-01-06T00:00:00Z");
    expect((await org.api("GET", `/api/v1/wallets/${expiring.lago_id}`)).wallet).toMatchObject({ status: "terminated", balance_cents: 0 });
    expect(await depleted(org)).toEqual([[bought.lago_id, 0]]);
  });

  it("is sent only to the wallet's organization", async () => {
    const a = await orgWithHooks(t);
    const b = await orgWithHooks(t);
    const w = await createWallet(a, await customer(a), "1", { granted_credits: "1" });
    await voidCredits(a, w.lago_id, "1");
    expect(await depleted(a)).toEqual([[w.lago_id, 0]]);
    expect(await depleted(b)).toEqual([]);
  });
});
