// Credit notes on a wallet's credit invoice (a purchase of prepaid credits), as Lago documents them:
// issued once the purchase is paid, they take what they credit or refund of the credits bought back
// out of the wallet (an outbound, settled, `voided` transaction linked to the note), never more than
// the wallet still holds of them (422 naming the field), never on a terminated wallet. Voiding the
// purchase: unpaid, its credits never count; paid (with a credit note), they leave the wallet.
// Amounts by hand. On PGlite by default, PostgreSQL with TEST_DATABASE_URL.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestApp, type TestApp } from "../helpers/app.ts";
import { scalar } from "./support.ts";
import { BILLING_ENV, customer, expect422, invoiceOf, invoicesOf, markInvoicePaid, newOrg, orgWithHooks, plan, postCreditNote, subscribe, walletOf, walletPurchase, walletTransactionsOf } from "./billing_support.ts";

let t: TestApp;
beforeAll(async () => {
  t = await startTestApp({ env: { ...BILLING_ENV, WEBHOOK_WORKER: "off" } });
});
afterAll(async () => {
  await t?.close();
});

describe("credit notes on a purchase of prepaid credits", () => {
  it("a refund and a credit take the credits back out of the wallet, each an outbound voided transaction linked to its note", async () => {
    const org = await orgWithHooks(t);
    const cus = await customer(org);
    // 10 credits bought at 2.00 (20.00), 3 granted (6.00).
    const { wallet, invoice, fee } = await walletPurchase(org, cus, "10", "3");
    expect(invoice).toMatchObject({ invoice_type: "credit", total_amount_cents: 2000 });
    await markInvoicePaid(org, invoice.lago_id);
    expect(await walletOf(org, wallet.lago_id)).toMatchObject({ balance_cents: 2600, credits_balance: "13" });

    // Refund 10.00: 5 credits leave the wallet.
    const r1 = await postCreditNote(org, invoice.lago_id, fee, 1000, { refund_amount_cents: 1000 });
    expect(r1.statusCode, r1.body).toBe(200);
    const refund = JSON.parse(r1.body).credit_note;
    expect(refund).toMatchObject({ total_amount_cents: 1000, refund_amount_cents: 1000, credit_amount_cents: 0, refund_status: "pending" });
    expect(await walletOf(org, wallet.lago_id)).toMatchObject({ balance_cents: 1600, credits_balance: "8", consumed_credits: "0" });
    const voided = await walletTransactionsOf(org, wallet.lago_id, "?transaction_type=outbound");
    expect(voided.map((x) => [x.status, x.transaction_status, x.amount, x.amount_cents, x.credit_amount, x.lago_credit_note_id, x.lago_invoice_id])).toEqual([
      ["settled", "voided", "10.00", 1000, "5", refund.lago_id, invoice.lago_id],
    ]);

    // Credit 2.50 (kept for the next invoices): 1.25 credits leave the wallet.
    const r2 = await postCreditNote(org, invoice.lago_id, fee, 250);
    expect(r2.statusCode, r2.body).toBe(200);
    const credit = JSON.parse(r2.body).credit_note;
    expect(credit).toMatchObject({ credit_amount_cents: 250, balance_amount_cents: 250, credit_status: "available" });
    expect(await walletOf(org, wallet.lago_id)).toMatchObject({ balance_cents: 1350, credits_balance: "6.75" });
    const out = await walletTransactionsOf(org, wallet.lago_id, "?transaction_status=voided");
    expect(out.map((x) => [x.amount_cents, x.lago_credit_note_id]).sort()).toEqual([[1000, refund.lago_id], [250, credit.lago_id]].sort());
    // Each announced: wallet_transaction.created for the purchase, the grant and the two voids.
    const hooks = (await org.api("GET", "/api/v1/webhooks?webhook_type=wallet_transaction.created")).webhooks as any[];
    expect(hooks.map((h) => h.payload.wallet_transaction).filter((x: any) => x.transaction_status === "voided").map((x: any) => x.lago_credit_note_id).sort()).toEqual(
      [refund.lago_id, credit.lago_id].sort(),
    );
    // What is left of the purchase: 7.50 of its fee, all still in the wallet.
    const r3 = await postCreditNote(org, invoice.lago_id, fee, 751);
    expect(expect422(r3, "items[0].amount_cents")).toEqual({ "items[0].amount_cents": ["higher_than_remaining_fee_amount"] });
  });

  it("never takes back more than the wallet still holds of the credits: 422 naming the item, nothing changed", async () => {
    const org = await newOrg(t);
    await org.freeze("2026-01-01T00:00:00Z");
    const p = await plan(org, { amount_cents: 1500 });
    const cus = await customer(org);
    await subscribe(org, cus, p.plan);
    const { wallet, invoice, fee } = await walletPurchase(org, cus, "10");
    await markInvoicePaid(org, invoice.lago_id);
    // January's 15.00 is paid with 7.5 of the 10 credits: 5.00 is left.
    await org.freeze("2026-02-01T00:00:00Z");
    const [jan] = (await invoicesOf(org, cus)).filter((i) => i.invoice_type === "subscription");
    expect(jan).toMatchObject({ prepaid_credit_amount_cents: 1500, total_amount_cents: 0 });
    expect(await walletOf(org, wallet.lago_id)).toMatchObject({ balance_cents: 500, credits_balance: "2.5" });
    const notes = await scalar(t.db, "SELECT count(*) AS n FROM credit_notes WHERE org_id = $1", [org.orgId]);

    const r = await postCreditNote(org, invoice.lago_id, fee, 501, { refund_amount_cents: 501 });
    expect(expect422(r, "items[0].amount_cents")).toEqual({ "items[0].amount_cents": ["higher_than_wallet_balance"] });
    expect(await walletOf(org, wallet.lago_id)).toMatchObject({ balance_cents: 500 });
    expect(await scalar(t.db, "SELECT count(*) AS n FROM credit_notes WHERE org_id = $1", [org.orgId])).toBe(notes);
    expect(await walletTransactionsOf(org, wallet.lago_id, "?transaction_status=voided")).toEqual([]);

    // Exactly what is left: taken, the wallet is empty.
    const ok = await postCreditNote(org, invoice.lago_id, fee, 500, { refund_amount_cents: 500 });
    expect(ok.statusCode, ok.body).toBe(200);
    expect(await walletOf(org, wallet.lago_id)).toMatchObject({ balance_cents: 0, credits_balance: "0", consumed_credits: "7.5" });
    expect(expect422(await postCreditNote(org, invoice.lago_id, fee, 1), "items[0].amount_cents")).toEqual({ "items[0].amount_cents": ["higher_than_wallet_balance"] });
  });

  it("granted credits do not make up for purchased ones: only what is left of the purchase is taken", async () => {
    const org = await newOrg(t);
    await org.freeze("2026-01-01T00:00:00Z");
    const cus = await customer(org);
    // 5 credits bought (10.00), 100 granted: the wallet holds 210.00, of the purchase 10.00.
    const { wallet, invoice, fee } = await walletPurchase(org, cus, "5", "100");
    await markInvoicePaid(org, invoice.lago_id);
    expect((await postCreditNote(org, invoice.lago_id, fee, 600)).statusCode).toBe(200);
    expect((await postCreditNote(org, invoice.lago_id, fee, 400, { refund_amount_cents: 400 })).statusCode).toBe(200);
    expect(await walletOf(org, wallet.lago_id)).toMatchObject({ balance_cents: 20000, credits_balance: "100" });
    expect(expect422(await postCreditNote(org, invoice.lago_id, fee, 1), "items[0].amount_cents")["items[0].amount_cents"]).toEqual(["higher_than_remaining_fee_amount"]);
  });

  it("an unpaid purchase gets no credit note (405); voided unpaid, its credits never count", async () => {
    const org = await newOrg(t);
    await org.freeze("2026-01-01T00:00:00Z");
    const cus = await customer(org);
    const { wallet, invoice, fee, purchase: bought } = await walletPurchase(org, cus, "10", "1");
    const r = await postCreditNote(org, invoice.lago_id, fee, 500);
    expect(r.statusCode, r.body).toBe(405);
    expect(JSON.parse(r.body)).toMatchObject({ status: 405, code: "invalid_type_or_status" });
    expect((await org.raw("POST", "/api/v1/credit_notes/estimate", { credit_note: { invoice_id: invoice.lago_id, items: [{ fee_id: fee, amount_cents: 500 }] } })).statusCode).toBe(405);

    const v = await org.raw("POST", `/api/v1/invoices/${invoice.lago_id}/void`);
    expect(v.statusCode, v.body).toBe(200);
    expect((await org.api("GET", `/api/v1/wallet_transactions/${bought.lago_id}`)).wallet_transaction).toMatchObject({ status: "failed" });
    expect(await walletOf(org, wallet.lago_id)).toMatchObject({ balance_cents: 200, credits_balance: "1" });
    // Paid afterwards (a late notice from the provider): a voided purchase stays failed.
    await org.raw("PUT", `/api/v1/invoices/${invoice.lago_id}`, { invoice: { payment_status: "succeeded" } });
    expect(await walletOf(org, wallet.lago_id)).toMatchObject({ balance_cents: 200 });
    expect((await org.api("GET", `/api/v1/wallet_transactions/${bought.lago_id}`)).wallet_transaction.status).toBe("failed");
  });

  it("voided unpaid with generate_credit_note: no credits are taken from the wallet, the purchase fails", async () => {
    const org = await newOrg(t);
    await org.freeze("2026-01-01T00:00:00Z");
    const cus = await customer(org);
    const { wallet, invoice, purchase: bought } = await walletPurchase(org, cus, "10", "4");
    const v = await org.raw("POST", `/api/v1/invoices/${invoice.lago_id}/void`, { generate_credit_note: true });
    expect(v.statusCode, v.body).toBe(200);
    expect((await org.api("GET", `/api/v1/wallet_transactions/${bought.lago_id}`)).wallet_transaction.status).toBe("failed");
    expect(await walletOf(org, wallet.lago_id)).toMatchObject({ balance_cents: 800, credits_balance: "4" });
    expect(await walletTransactionsOf(org, wallet.lago_id, "?transaction_status=voided")).toEqual([]);
  });

  it("voided paid (with a credit note): the credits it bought leave the wallet, the payment is refunded; 422 when they were used", async () => {
    const org = await newOrg(t);
    await org.freeze("2026-01-01T00:00:00Z");
    const cus = await customer(org);
    const { wallet, invoice } = await walletPurchase(org, cus, "10", "2");
    await markInvoicePaid(org, invoice.lago_id);
    expect(await walletOf(org, wallet.lago_id)).toMatchObject({ balance_cents: 2400 });
    const v = await org.raw("POST", `/api/v1/invoices/${invoice.lago_id}/void`, { generate_credit_note: true, refund_amount: 2000 });
    expect(v.statusCode, v.body).toBe(200);
    expect(JSON.parse(v.body).invoice.status).toBe("voided");
    expect(await walletOf(org, wallet.lago_id)).toMatchObject({ balance_cents: 400, credits_balance: "2" });
    const notes = (await org.api("GET", `/api/v1/credit_notes?external_customer_id=${cus}`)).credit_notes as any[];
    expect(notes.map((n) => [n.refund_amount_cents, n.total_amount_cents])).toEqual([[2000, 2000]]);
    expect((await walletTransactionsOf(org, wallet.lago_id, "?transaction_status=voided")).map((x) => [x.amount_cents, x.lago_credit_note_id])).toEqual([[2000, notes[0].lago_id]]);

    // A second purchase, half of it used: voiding it cannot take its credits back.
    const p = await plan(org, { amount_cents: 1500 });
    await subscribe(org, cus, p.plan);
    const second = await walletPurchase(org, cus, "10");
    await markInvoicePaid(org, second.invoice.lago_id);
    await org.freeze("2026-02-01T00:00:00Z");
    // January's 15.00: the older wallet's 4.00 first, then 11.00 of the new purchase (9.00 left of it).
    expect(await walletOf(org, wallet.lago_id)).toMatchObject({ balance_cents: 0 });
    expect(await walletOf(org, second.wallet.lago_id)).toMatchObject({ balance_cents: 900 });
    const refused = await org.raw("POST", `/api/v1/invoices/${second.invoice.lago_id}/void`, { generate_credit_note: true, refund_amount: 2000 });
    expect(expect422(refused, "generate_credit_note")).toEqual({ generate_credit_note: ["higher_than_wallet_balance"] });
    expect((await invoiceOf(org, second.invoice.lago_id)).status).toBe("finalized");
    expect(await walletOf(org, second.wallet.lago_id)).toMatchObject({ balance_cents: 900 });
  });

  it("a purchase for a wallet since terminated gets no credit note (422 naming the invoice)", async () => {
    const org = await newOrg(t);
    await org.freeze("2026-01-01T00:00:00Z");
    const cus = await customer(org);
    const { wallet, invoice, fee } = await walletPurchase(org, cus, "10");
    await markInvoicePaid(org, invoice.lago_id);
    await org.api("DELETE", `/api/v1/wallets/${wallet.lago_id}`);
    expect(expect422(await postCreditNote(org, invoice.lago_id, fee, 100), "invoice_id")).toEqual({ invoice_id: ["wallet_is_terminated"] });
    expect(await scalar(t.db, "SELECT count(*) AS n FROM credit_notes WHERE org_id = $1", [org.orgId])).toBe(0);
  });

  it("notes racing on one purchase never take back more than it bought", async () => {
    const org = await newOrg(t);
    await org.freeze("2026-01-01T00:00:00Z");
    const cus = await customer(org);
    const { wallet, invoice, fee } = await walletPurchase(org, cus, "10", "50");
    await markInvoicePaid(org, invoice.lago_id);
    const results = await Promise.all([1, 2, 3].map(() => postCreditNote(org, invoice.lago_id, fee, 800, { refund_amount_cents: 800 })));
    expect(results.map((r) => r.statusCode).sort()).toEqual([200, 200, 422]);
    // 2 × 8.00 of the 20.00 bought: 8 credits out of 60.
    expect(await walletOf(org, wallet.lago_id)).toMatchObject({ balance_cents: 12000 - 1600, credits_balance: "52" });
    expect((await walletTransactionsOf(org, wallet.lago_id, "?transaction_status=voided")).map((x) => x.amount_cents)).toEqual([800, 800]);
  });

  it("another organization cannot credit this organization's purchase", async () => {
    const a = await newOrg(t);
    const b = await newOrg(t);
    await a.freeze("2026-01-01T00:00:00Z");
    const cus = await customer(a);
    const { wallet, invoice, fee } = await walletPurchase(a, cus, "10");
    await markInvoicePaid(a, invoice.lago_id);
    expect((await postCreditNote(b, invoice.lago_id, fee, 100)).statusCode).toBe(404);
    expect(await walletOf(a, wallet.lago_id)).toMatchObject({ balance_cents: 2000 });
  });
});
