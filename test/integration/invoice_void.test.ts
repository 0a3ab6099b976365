// Voiding invoices against a real database: a voided invoice gives back what it used (coupons,
// credit notes drawn on, prepaid credits), and `generate_credit_note` voids a paid invoice with a
// credit note split into credit and refund parts (the rest on a second note, voided at once).
// Amounts worked out by hand. On PGlite by default, PostgreSQL with TEST_DATABASE_URL.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestApp, type TestApp } from "../helpers/app.ts";
import { BILLING_ENV, customer, expect422, invoiceOf, invoicesOf, newOrg, plan, subscribe, type Org } from "./billing_support.ts";

let t: TestApp;
beforeAll(async () => {
  t = await startTestApp({ env: { ...BILLING_ENV, WEBHOOK_WORKER: "off" } });
});
afterAll(async () => {
  await t?.close();
});

const coupon = (code: string, extra: Record<string, unknown>) => ({
  coupon: { name: code, code, coupon_type: "fixed_amount", amount_currency: "EUR", expiration: "no_expiration", ...extra },
});
const appliedOf = async (org: Org, cus: string) =>
  (await org.api("GET", `/api/v1/applied_coupons?external_customer_id=${encodeURIComponent(cus)}&per_page=100`)).applied_coupons as any[];

/** January billed (plan 100.00 a month, no usage, `vat` percent if given): the customer and its invoice. */
async function january(org: Org, vat?: string) {
  await org.freeze("2026-01-01T00:00:00Z");
  if (vat !== undefined) await org.api("POST", "/api/v1/taxes", { tax: { name: "VAT", code: "vat", rate: vat, applied_to_organization: true } });
  const p = await plan(org, { amount_cents: 10000 });
  const cus = await customer(org);
  const sub = await subscribe(org, cus, p.plan);
  await org.freeze("2026-02-01T00:00:00Z");
  const [jan] = await invoicesOf(org, cus);
  return { cus, sub, jan: await invoiceOf(org, jan.lago_id) };
}

describe("voiding an invoice", () => {
  it("gives back its coupons, the credit notes it drew on and its prepaid credits; the next invoice uses them again", async () => {
    const org = await newOrg(t);
    const { cus, jan } = await january(org);
    expect(jan.total_amount_cents).toBe(10000);
    // A 30.00 credit note on January; a 15.00 once coupon, 5.00 for one invoice, 20.00 of prepaid credits.
    const subFee = jan.fees.find((f: any) => f.item.type === "subscription").lago_id;
    const cn = (await org.api("POST", "/api/v1/credit_notes", { credit_note: { invoice_id: jan.lago_id, reason: "other", items: [{ fee_id: subFee, amount_cents: 3000 }] } }))
      .credit_note;
    await org.api("POST", "/api/v1/coupons", coupon("once15", { amount_cents: 1500, frequency: "once" }));
    await org.api("POST", "/api/v1/coupons", coupon("rec5", { amount_cents: 500, frequency: "recurring", frequency_duration: 1 }));
    await org.api("POST", "/api/v1/applied_coupons", { applied_coupon: { external_customer_id: cus, coupon_code: "once15" } });
    await org.api("POST", "/api/v1/applied_coupons", { applied_coupon: { external_customer_id: cus, coupon_code: "rec5" } });
    const wallet = (await org.api("POST", "/api/v1/wallets", { wallet: { external_customer_id: cus, currency: "EUR", rate_amount: "1", granted_credits: "20.00" } }))
      .wallet;

    await org.freeze("2026-03-01T00:00:00Z");
    const [feb] = await invoicesOf(org, cus);
    // 100.00 − 15.00 − 5.00 (coupons) − 30.00 (credit note) − 20.00 (prepaid credits) = 30.00.
    expect(feb).toMatchObject({ coupons_amount_cents: 2000, credit_notes_amount_cents: 3000, prepaid_credit_amount_cents: 2000, total_amount_cents: 3000 });
    expect((await appliedOf(org, cus)).map((a) => [a.coupon_code, a.status])).toEqual(
      expect.arrayContaining([
        ["once15", "terminated"],
        ["rec5", "terminated"],
      ]),
    );
    expect((await org.api("GET", `/api/v1/credit_notes/${cn.lago_id}`)).credit_note).toMatchObject({ credit_status: "consumed", balance_amount_cents: 0 });
    expect((await org.api("GET", `/api/v1/wallets/${wallet.lago_id}`)).wallet.balance_cents).toBe(0);

    // Two voids at once: one voids (and gives back), the other is refused.
    const both = await Promise.all([0, 1].map(() => org.raw("POST", `/api/v1/invoices/${feb.lago_id}/void`)));
    expect(both.map((r) => r.statusCode).sort()).toEqual([200, 405]);
    expect((await invoiceOf(org, feb.lago_id)).status).toBe("voided");
    // Everything it used is back.
    const applied = await appliedOf(org, cus);
    expect(applied.find((a) => a.coupon_code === "once15")).toMatchObject({ status: "active", amount_cents_remaining: 1500 });
    expect(applied.find((a) => a.coupon_code === "rec5")).toMatchObject({ status: "active", frequency_duration_remaining: 1 });
    expect((await org.api("GET", `/api/v1/credit_notes/${cn.lago_id}`)).credit_note).toMatchObject({ credit_status: "available", balance_amount_cents: 3000 });
    expect((await org.api("GET", `/api/v1/wallets/${wallet.lago_id}`)).wallet).toMatchObject({ balance_cents: 2000, consumed_amount_cents: 0 });
    const txs = (await org.api("GET", `/api/v1/wallets/${wallet.lago_id}/wallet_transactions`)).wallet_transactions as any[];
    const back = txs.filter((x) => x.transaction_type === "inbound" && x.lago_invoice_id === feb.lago_id);
    expect(back.map((x) => [x.transaction_status, x.status, x.amount])).toEqual([["granted", "settled", "20.00"]]);
    // Voiding again is refused; nothing came back twice.
    expect((await org.raw("POST", `/api/v1/invoices/${feb.lago_id}/void`)).statusCode).toBe(405);

    // March uses all of it again: the same 30.00.
    await org.freeze("2026-04-01T00:00:00Z");
    const [mar] = await invoicesOf(org, cus);
    expect(mar).toMatchObject({ coupons_amount_cents: 2000, credit_notes_amount_cents: 3000, prepaid_credit_amount_cents: 2000, total_amount_cents: 3000 });
  });

  it("a paid invoice is voided only with generate_credit_note: credit and refund parts, the rest on a voided note", async () => {
    const org = await newOrg(t);
    await org.api("POST", "/api/v1/webhook_endpoints", { webhook_endpoint: { webhook_url: "http://127.0.0.1:9/hook", signature_algo: "hmac" } });
    const { cus, jan } = await january(org, "20");
    // 100.00 + 20 % VAT.
    expect(jan.total_amount_cents).toBe(12000);
    await org.api("PUT", `/api/v1/invoices/${jan.lago_id}`, { invoice: { payment_status: "succeeded" } });
    const r = await org.raw("POST", `/api/v1/invoices/${jan.lago_id}/void`);
    expect(r.statusCode, r.body).toBe(405);

    // Bad options name the field; nothing changes.
    expect422(await org.raw("POST", `/api/v1/invoices/${jan.lago_id}/void`, { generate_credit_note: "yes", refund_amount: -1, credit_amount: 1.5 }), "generate_credit_note", "refund_amount", "credit_amount");
    expect422(await org.raw("POST", `/api/v1/invoices/${jan.lago_id}/void`, { refund_amount: 100 }), "generate_credit_note");
    expect(
      expect422(await org.raw("POST", `/api/v1/invoices/${jan.lago_id}/void`, { generate_credit_note: true, refund_amount: 12001 }), "refund_amount"),
    ).toMatchObject({ refund_amount: ["higher_than_remaining_invoice_amount"] });
    expect422(await org.raw("POST", `/api/v1/invoices/${jan.lago_id}/void`, { generate_credit_note: true, refund_amount: 6000, credit_amount: 6001 }), "credit_amount");
    expect((await invoiceOf(org, jan.lago_id)).status).toBe("finalized");
    expect((await org.api("GET", `/api/v1/customers/${cus}/credit_notes`)).credit_notes).toEqual([]);

    // 50.00 refunded, 10.00 credited: one note of 60.00 (50.00 + 10.00 VAT), the other 60.00 voided.
    const voided = (await org.api("POST", `/api/v1/invoices/${jan.lago_id}/void`, { generate_credit_note: true, refund_amount: 5000, credit_amount: 1000 })).invoice;
    expect(voided).toMatchObject({ status: "voided", payment_status: "succeeded" });
    const notes = ((await org.api("GET", `/api/v1/customers/${cus}/credit_notes`)).credit_notes as any[]).sort((a, b) => a.sequential_id - b.sequential_id);
    expect(notes.map((n) => [n.number, n.total_amount_cents, n.sub_total_excluding_taxes_amount_cents, n.credit_amount_cents, n.refund_amount_cents, n.credit_status, n.refund_status, n.balance_amount_cents])).toEqual([
      [`${jan.number}-CN1`, 6000, 5000, 1000, 5000, "available", "pending", 1000],
      [`${jan.number}-CN2`, 6000, 5000, 6000, 0, "voided", null, 0],
    ]);
    expect(notes.every((n) => n.lago_invoice_id === jan.lago_id)).toBe(true);
    // Lago's webhooks: invoice.voided once, credit_note.created for each note (the second already voided).
    const voidedHooks = (await org.api("GET", "/api/v1/webhooks?webhook_type=invoice.voided")).webhooks as any[];
    expect(voidedHooks.map((h) => [h.webhook_type, h.payload.invoice.lago_id, h.payload.invoice.status])).toEqual([["invoice.voided", jan.lago_id, "voided"]]);
    const created = (await org.api("GET", "/api/v1/webhooks?webhook_type=credit_note.created")).webhooks as any[];
    expect(created).toHaveLength(2);
    // February (120.00) draws on the 10.00 credit.
    await org.freeze("2026-03-01T00:00:00Z");
    const [feb] = await invoicesOf(org, cus);
    expect(feb).toMatchObject({ credit_notes_amount_cents: 1000, total_amount_cents: 11000 });
  });

  it("generate_credit_note alone credits what was paid (nothing when unpaid); odd amounts split pro rata without going over", async () => {
    const org = await newOrg(t);
    const { cus, jan } = await january(org, "20");
    await org.api("PUT", `/api/v1/invoices/${jan.lago_id}`, { invoice: { payment_status: "succeeded" } });
    const voided = (await org.api("POST", `/api/v1/invoices/${jan.lago_id}/void`, { generate_credit_note: true })).invoice;
    expect(voided.status).toBe("voided");
    const [cn] = (await org.api("GET", `/api/v1/customers/${cus}/credit_notes`)).credit_notes as any[];
    expect(cn).toMatchObject({ total_amount_cents: 12000, credit_amount_cents: 12000, refund_amount_cents: 0, balance_amount_cents: 12000, credit_status: "available" });
    // Unpaid: everything on one note, voided at once; the customer is owed nothing.
    const unpaidOrg = await newOrg(t);
    const unpaid = await january(unpaidOrg, "20");
    await unpaidOrg.api("POST", `/api/v1/invoices/${unpaid.jan.lago_id}/void`, { generate_credit_note: true });
    expect(((await unpaidOrg.api("GET", `/api/v1/customers/${unpaid.cus}/credit_notes`)).credit_notes as any[]).map((n) => [n.total_amount_cents, n.credit_status, n.balance_amount_cents])).toEqual([
      [12000, "voided", 0],
    ]);
    // A refund needs a payment.
    const org2 = await newOrg(t);
    const second = await january(org2, "20");
    expect422(await org2.raw("POST", `/api/v1/invoices/${second.jan.lago_id}/void`, { generate_credit_note: true, refund_amount: 1 }), "refund_amount");
    // 33.33 credited: 27.78 + 5.56 VAT = 33.34 is over, 27.77 + 5.55 = 33.32 is the closest under.
    await org2.api("POST", `/api/v1/invoices/${second.jan.lago_id}/void`, { generate_credit_note: true, credit_amount: 3333 });
    const notes = ((await org2.api("GET", `/api/v1/customers/${second.cus}/credit_notes`)).credit_notes as any[]).sort((a, b) => a.sequential_id - b.sequential_id);
    expect(notes.map((n) => [n.total_amount_cents, n.credit_status])).toEqual([
      [3332, "available"],
      [12000 - 3332, "voided"],
    ]);
  });

  it("a partly paid invoice refunds at most what was paid", async () => {
    const org = await newOrg(t);
    const { cus, jan } = await january(org, "20");
    // 50.00 of 120.00 received by hand (Lago's POST /payments).
    await org.api("POST", "/api/v1/payments", { payment: { invoice_id: jan.lago_id, amount_cents: 5000, reference: "wire-1", paid_at: "2026-02-02T00:00:00Z" } });
    expect(
      expect422(await org.raw("POST", `/api/v1/invoices/${jan.lago_id}/void`, { generate_credit_note: true, refund_amount: 5001 }), "refund_amount"),
    ).toMatchObject({ refund_amount: ["higher_than_remaining_invoice_amount"] });
    await org.api("POST", `/api/v1/invoices/${jan.lago_id}/void`, { generate_credit_note: true, refund_amount: 5000 });
    const notes = ((await org.api("GET", `/api/v1/customers/${cus}/credit_notes`)).credit_notes as any[]).sort((a, b) => a.sequential_id - b.sequential_id);
    // Paid by hand: no provider charge to pay it back through; the refund waits for PUT /credit_notes/:id.
    expect(notes.map((n) => [n.total_amount_cents, n.refund_amount_cents, n.refund_status, n.credit_status])).toEqual([
      [5000, 5000, "pending", null],
      [7000, 0, null, "voided"],
    ]);
  });

  it("voiding a wallet's unpaid credit invoice fails the purchase waiting for it", async () => {
    const org = await newOrg(t);
    await org.freeze("2026-01-01T00:00:00Z");
    const cus = await customer(org);
    const wallet = (await org.api("POST", "/api/v1/wallets", { wallet: { external_customer_id: cus, currency: "EUR", rate_amount: "1", paid_credits: "30.00" } })).wallet;
    const [credit] = await invoicesOf(org, cus);
    expect(credit).toMatchObject({ invoice_type: "credit", total_amount_cents: 3000, payment_status: "pending" });
    await org.api("POST", `/api/v1/invoices/${credit.lago_id}/void`);
    const txs = (await org.api("GET", `/api/v1/wallets/${wallet.lago_id}/wallet_transactions`)).wallet_transactions as any[];
    expect(txs.map((x) => [x.transaction_status, x.status, x.lago_invoice_id])).toEqual([["purchased", "failed", credit.lago_id]]);
    // Paying it now is refused, and the credits never count.
    expect((await org.raw("PUT", `/api/v1/invoices/${credit.lago_id}`, { invoice: { payment_status: "succeeded" } })).statusCode).toBe(405);
    expect((await org.api("GET", `/api/v1/wallets/${wallet.lago_id}`)).wallet.balance_cents).toBe(0);
  });

  it("a draft, an unknown invoice and another organization's invoice cannot be voided", async () => {
    const org = await newOrg(t);
    const { jan } = await january(org);
    const other = await newOrg(t);
    expect((await other.raw("POST", `/api/v1/invoices/${jan.lago_id}/void`, { generate_credit_note: true })).statusCode).toBe(404);
    expect((await org.raw("POST", `/api/v1/invoices/${crypto.randomUUID()}/void`)).statusCode).toBe(404);
    await org.freeze("2026-02-01T00:00:00Z");
    const p = await plan(org, { amount_cents: 1000 });
    const cus = await customer(org, { billing_configuration: { invoice_grace_period: 5 } });
    await subscribe(org, cus, p.plan);
    await org.freeze("2026-03-01T00:00:00Z");
    const [draft] = await invoicesOf(org, cus);
    expect(draft.status).toBe("draft");
    expect((await org.raw("POST", `/api/v1/invoices/${draft.lago_id}/void`, { generate_credit_note: true })).statusCode).toBe(405);
    expect((await invoiceOf(org, jan.lago_id)).status).toBe("finalized");
  });
});
