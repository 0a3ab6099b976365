// Credit notes on a paid purchase of prepaid credits, continued: the credits a note takes back are
// an outbound `voided` transaction that names both the note and the credit invoice (several notes,
// several such transactions on one invoice), while the database still allows one draw of a wallet
// per invoice; and the estimate follows the rule creating the note follows (the same 422s, its
// maximums never above what the wallet still holds of the purchase). Amounts by hand. On PGlite by
// default, PostgreSQL with TEST_DATABASE_URL.
import { readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { sqlState } from "../../src/db/db.ts";
import { startTestApp, type TestApp } from "../helpers/app.ts";
import { scalar } from "./support.ts";
import { BILLING_ENV, customer, expect422, invoiceOf, invoicesOf, markInvoicePaid, newOrg, orgWithHooks, plan, postCreditNote, subscribe, walletOf, walletPurchase, walletTransactionsOf, type Org } from "./billing_support.ts";

let t: TestApp;
beforeAll(async () => {
  t = await startTestApp({ env: { ...BILLING_ENV, WEBHOOK_WORKER: "off" } });
});
afterAll(async () => {
  await t?.close();
});

/** A wallet at 2.00 EUR a credit with `credits` bought and paid; answers it, the credit invoice and its fee. */
async function paidPurchase(org: Org, cus: string, credits: string, granted = "0") {
  const { wallet, invoice, fee } = await walletPurchase(org, cus, credits, granted);
  await markInvoicePaid(org, invoice.lago_id);
  return { wallet, invoice, fee };
}

const estimate = (org: Org, invoice: string, fee: string, amount: number) =>
  org.raw("POST", "/api/v1/credit_notes/estimate", { credit_note: { invoice_id: invoice, items: [{ fee_id: fee, amount_cents: amount }] } });

describe("the credits a credit note takes back name the credit invoice", () => {
  it("each note's voided transaction shows the credit invoice and the note, in the list, by id and in its webhook", async () => {
    const org = await orgWithHooks(t);
    const cus = await customer(org);
    const { wallet, invoice, fee } = await paidPurchase(org, cus, "10");
    const r1 = await postCreditNote(org, invoice.lago_id, fee, 300, { refund_amount_cents: 300 });
    const r2 = await postCreditNote(org, invoice.lago_id, fee, 500);
    const r3 = await postCreditNote(org, invoice.lago_id, fee, 200, { refund_amount_cents: 200 });
    for (const r of [r1, r2, r3]) expect(r.statusCode, r.body).toBe(200);
    const ids = [r1, r2, r3].map((r) => JSON.parse(r.body).credit_note.lago_id as string);

    const voided = await walletTransactionsOf(org, wallet.lago_id, "?transaction_status=voided");
    expect(voided.map((x) => [x.transaction_type, x.status, x.amount_cents, x.lago_invoice_id, x.lago_credit_note_id]).sort()).toEqual(
      [
        ["outbound", "settled", 300, invoice.lago_id, ids[0]],
        ["outbound", "settled", 500, invoice.lago_id, ids[1]],
        ["outbound", "settled", 200, invoice.lago_id, ids[2]],
      ].sort(),
    );
    const one = (await org.api("GET", `/api/v1/wallet_transactions/${voided[0].lago_id}`)).wallet_transaction;
    expect(one).toMatchObject({ lago_invoice_id: invoice.lago_id, transaction_status: "voided" });
    const hooks = (await org.api("GET", "/api/v1/webhooks?webhook_type=wallet_transaction.created")).webhooks as any[];
    const hooked = hooks.map((h) => h.payload.wallet_transaction).filter((x: any) => x.transaction_status === "voided");
    expect(hooked.map((x: any) => x.lago_invoice_id)).toEqual([invoice.lago_id, invoice.lago_id, invoice.lago_id]);
    // 20.00 bought, 10.00 taken back: 5 credits left.
    expect(await walletOf(org, wallet.lago_id)).toMatchObject({ balance_cents: 1000, credits_balance: "5" });
  });

  it("the database still refuses a second draw of one wallet by one invoice, and nothing else", async () => {
    const org = await newOrg(t);
    await org.freeze("2026-01-01T00:00:00Z");
    const p = await plan(org, { amount_cents: 1500 });
    const cus = await customer(org);
    await subscribe(org, cus, p.plan);
    const { wallet } = await paidPurchase(org, cus, "20");
    await org.freeze("2026-02-01T00:00:00Z");
    const [jan] = (await invoicesOf(org, cus)).filter((i) => i.invoice_type === "subscription");
    expect(jan).toMatchObject({ prepaid_credit_amount_cents: 1500 });
    const walletId = await scalar(t.db, "SELECT id AS n FROM wallets WHERE org_id = $1 AND lago_id = $2", [org.orgId, wallet.lago_id]);
    const invoiceId = await scalar(t.db, "SELECT id AS n FROM invoices WHERE org_id = $1 AND lago_id = $2", [org.orgId, jan.lago_id]);
    const insert = (status: string) =>
      t.db.query(
        `INSERT INTO wallet_transactions (org_id, lago_id, wallet_id, invoice_id, status, transaction_status, transaction_type, amount_cents, credit_amount, created_at, updated_at)
         VALUES ($1, gen_random_uuid(), $2, $3, 'settled', $4, 'outbound', 100, 0.5, now(), now())`,
        [org.orgId, walletId, invoiceId, status],
      );
    // A second draw by January's invoice: a unique violation.
    const err = await insert("invoiced").then(
      () => null,
      (e: unknown) => e,
    );
    expect(sqlState(err)).toBe("23505");
    // Voided credits naming the invoice are not draws: any number of them.
    await insert("voided");
    await insert("voided");
    expect(await scalar(t.db, "SELECT count(*) AS n FROM wallet_transactions WHERE org_id = $1 AND invoice_id = $2 AND transaction_type = 'outbound'", [org.orgId, invoiceId])).toBe(3);
  });

  it("migration 0022 gives voids written before it their note's invoice, and touches nothing else", async () => {
    const org = await newOrg(t);
    await org.freeze("2026-01-01T00:00:00Z");
    const cus = await customer(org);
    const { wallet, invoice, fee } = await paidPurchase(org, cus, "10");
    await org.api("POST", "/api/v1/wallet_transactions", { wallet_transaction: { wallet_id: wallet.lago_id, voided_credits: "1" } });
    expect((await postCreditNote(org, invoice.lago_id, fee, 300, { refund_amount_cents: 300 })).statusCode).toBe(200);
    // As the previous version wrote them: no invoice on the note's void.
    await t.db.query("UPDATE wallet_transactions SET invoice_id = NULL WHERE org_id = $1 AND credit_note_id IS NOT NULL", [org.orgId]);
    const sql = readFileSync(new URL("../../src/db/migrations/0022_wallet_voids_and_expiry.sql", import.meta.url), "utf8");
    const from = sql.indexOf("UPDATE wallet_transactions");
    const backfill = sql.slice(from, sql.indexOf(";", from) + 1);
    await t.db.query(backfill);
    const voided = await walletTransactionsOf(org, wallet.lago_id, "?transaction_status=voided");
    // The note's void names the credit invoice again; the manual void (no note) names none.
    expect(voided.map((x) => [x.amount_cents, x.lago_invoice_id, x.lago_credit_note_id === null]).sort()).toEqual(
      [
        [200, null, true],
        [300, invoice.lago_id, false],
      ].sort(),
    );
  });

  it("voiding an invoice that drew on the wallet gives its draw back once; a refund's voided credits stay out", async () => {
    const org = await newOrg(t);
    await org.freeze("2026-01-01T00:00:00Z");
    const p = await plan(org, { amount_cents: 3000 });
    const cus = await customer(org);
    await subscribe(org, cus, p.plan);
    const { wallet, invoice } = await paidPurchase(org, cus, "10");
    // A 4.00 refund of the purchase (it names the credit invoice): 16.00 left for January's 30.00.
    expect((await postCreditNote(org, invoice.lago_id, invoice.fees[0].lago_id, 400, { refund_amount_cents: 400 })).statusCode).toBe(200);
    await org.freeze("2026-02-01T00:00:00Z");
    const [jan] = (await invoicesOf(org, cus)).filter((i) => i.invoice_type === "subscription");
    expect(jan).toMatchObject({ prepaid_credit_amount_cents: 1600, total_amount_cents: 1400 });
    expect(await walletOf(org, wallet.lago_id)).toMatchObject({ balance_cents: 0 });
    // January voided: its 16.00 comes back once, the refund's voided credits stay out.
    const v = await org.raw("POST", `/api/v1/invoices/${jan.lago_id}/void`);
    expect(v.statusCode, v.body).toBe(200);
    expect(await walletOf(org, wallet.lago_id)).toMatchObject({ balance_cents: 1600 });
    const moves = await walletTransactionsOf(org, wallet.lago_id);
    expect(moves.filter((x) => x.transaction_status !== "purchased").map((x) => [x.transaction_type, x.transaction_status, x.amount_cents, x.lago_invoice_id]).sort()).toEqual(
      [
        ["outbound", "invoiced", 1600, jan.lago_id],
        ["outbound", "voided", 400, invoice.lago_id],
        ["inbound", "granted", 1600, jan.lago_id],
      ].sort(),
    );
  });
});

describe("the estimate of a credit note on a paid purchase of credits", () => {
  it("answers what creating the note would allow: up to what the wallet holds of the purchase, the same 422 beyond it", async () => {
    const org = await newOrg(t);
    await org.freeze("2026-01-01T00:00:00Z");
    const p = await plan(org, { amount_cents: 1500 });
    const cus = await customer(org);
    await subscribe(org, cus, p.plan);
    const { wallet, invoice, fee } = await paidPurchase(org, cus, "10");
    // Before any use, the whole 20.00 can be credited or refunded.
    const full = await estimate(org, invoice.lago_id, fee, 2000);
    expect(full.statusCode, full.body).toBe(200);
    expect(JSON.parse(full.body).estimated_credit_note).toMatchObject({ max_creditable_amount_cents: 2000, max_refundable_amount_cents: 2000, sub_total_excluding_taxes_amount_cents: 2000 });
    // January's 15.00 uses 7.5 of the 10 credits: 5.00 of the purchase is left.
    await org.freeze("2026-02-01T00:00:00Z");
    expect(await walletOf(org, wallet.lago_id)).toMatchObject({ balance_cents: 500 });

    for (const amount of [2000, 501]) {
      const e = await estimate(org, invoice.lago_id, fee, amount);
      const c = await postCreditNote(org, invoice.lago_id, fee, amount, { refund_amount_cents: amount });
      // Same rule, same answer.
      expect(expect422(e, "items[0].amount_cents")).toEqual({ "items[0].amount_cents": ["higher_than_wallet_balance"] });
      expect(expect422(c, "items[0].amount_cents")).toEqual({ "items[0].amount_cents": ["higher_than_wallet_balance"] });
    }
    const ok = await estimate(org, invoice.lago_id, fee, 500);
    expect(ok.statusCode, ok.body).toBe(200);
    expect(JSON.parse(ok.body).estimated_credit_note).toMatchObject({ max_creditable_amount_cents: 500, max_refundable_amount_cents: 500, items: [{ lago_fee_id: fee, amount_cents: 500 }] });
    // The estimate took nothing: the note it announced is made, then the estimate of one more cent fails.
    expect(await walletOf(org, wallet.lago_id)).toMatchObject({ balance_cents: 500 });
    expect((await postCreditNote(org, invoice.lago_id, fee, 300, { refund_amount_cents: 300 })).statusCode).toBe(200);
    const after = await estimate(org, invoice.lago_id, fee, 200);
    expect(after.statusCode, after.body).toBe(200);
    expect(JSON.parse(after.body).estimated_credit_note).toMatchObject({ max_creditable_amount_cents: 200, max_refundable_amount_cents: 200 });
    expect(expect422(await estimate(org, invoice.lago_id, fee, 201), "items[0].amount_cents")["items[0].amount_cents"]).toEqual(["higher_than_wallet_balance"]);
  });

  it("granted credits in the same wallet do not count; a terminated wallet gets the same 422 as creating the note", async () => {
    const org = await newOrg(t);
    await org.freeze("2026-01-01T00:00:00Z");
    const cus = await customer(org);
    // 5 credits bought (10.00), 100 granted; 6.00 of the purchase refunded already: 4.00 is left of it.
    const { wallet, invoice, fee } = await paidPurchase(org, cus, "5", "100");
    expect((await postCreditNote(org, invoice.lago_id, fee, 600, { refund_amount_cents: 600 })).statusCode).toBe(200);
    const left = await estimate(org, invoice.lago_id, fee, 400);
    expect(left.statusCode, left.body).toBe(200);
    expect(JSON.parse(left.body).estimated_credit_note).toMatchObject({ max_creditable_amount_cents: 400, max_refundable_amount_cents: 400 });
    // Past what is left of the fee: the fee's own limit answers first, as for creating.
    expect(expect422(await estimate(org, invoice.lago_id, fee, 401), "items[0].amount_cents")["items[0].amount_cents"]).toEqual(["higher_than_remaining_fee_amount"]);

    await org.api("DELETE", `/api/v1/wallets/${wallet.lago_id}`);
    expect(expect422(await estimate(org, invoice.lago_id, fee, 100), "invoice_id")).toEqual({ invoice_id: ["wallet_is_terminated"] });
    expect(expect422(await postCreditNote(org, invoice.lago_id, fee, 100), "invoice_id")).toEqual({ invoice_id: ["wallet_is_terminated"] });
  });

  it("another organization cannot estimate a note on this organization's purchase", async () => {
    const a = await newOrg(t);
    const b = await newOrg(t);
    await a.freeze("2026-01-01T00:00:00Z");
    const cus = await customer(a);
    const { invoice, fee } = await paidPurchase(a, cus, "10");
    expect((await estimate(b, invoice.lago_id, fee, 100)).statusCode).toBe(404);
  });
});
