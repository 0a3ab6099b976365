// Credit notes against a real database: Lago's /credit_notes on a finalized invoice (items, taxes,
// credit and refund parts, estimate, void), the credit drawn on by the customer's next invoice
// after taxes, and the credit note a termination issues for the unused part of a fee paid in
// advance. On PGlite by default, PostgreSQL with TEST_DATABASE_URL.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestApp, type TestApp } from "../helpers/app.ts";
import { BILLING_ENV, customer, expect422, invoiceOf, invoicesOf, newOrg, plan, sendCalls, subscribe, type Org } from "./billing_support.ts";

let t: TestApp;
beforeAll(async () => {
  // Deliveries stay in the outbox: the test reads them as records.
  t = await startTestApp({ env: { ...BILLING_ENV, WEBHOOK_WORKER: "off" } });
});
afterAll(async () => {
  await t?.close();
});

const note = (invoiceId: string, items: { fee_id: string; amount_cents: number }[], extra: Record<string, unknown> = {}) => ({
  credit_note: { invoice_id: invoiceId, reason: "other", items, ...extra },
});

/** A customer billed January: plan 100.00 + 123 calls (6.15), VAT 20 % → 127.38. */
async function januaryInvoice(org: Org) {
  await org.freeze("2026-01-01T00:00:00Z");
  await org.api("POST", "/api/v1/taxes", { tax: { name: "VAT", code: "vat", rate: "20", applied_to_organization: true } });
  const p = await plan(org, { amount_cents: 10000 });
  const cus = await customer(org);
  const sub = await subscribe(org, cus, p.plan);
  await org.freeze("2026-01-10T00:00:00Z");
  await sendCalls(org, sub, p.calls, 123, "2026-01-10T00:00:00Z");
  await org.freeze("2026-02-01T00:00:00Z");
  const [inv] = await invoicesOf(org, cus);
  const full = await invoiceOf(org, inv.lago_id);
  const fee = (type: string) => full.fees.find((f: any) => f.item.type === type);
  return { cus, sub, p, invoice: full, subFee: fee("subscription").lago_id as string, chargeFee: fee("charge").lago_id as string };
}

describe("credit notes", () => {
  it("credits part of a fee with its tax; the credit is drawn on by the next invoice after taxes", async () => {
    const org = await newOrg(t);
    await org.api("POST", "/api/v1/webhook_endpoints", { webhook_endpoint: { webhook_url: "http://127.0.0.1:9/hook", signature_algo: "hmac" } });
    const { cus, invoice, subFee } = await januaryInvoice(org);
    expect(invoice).toMatchObject({ fees_amount_cents: 10615, taxes_amount_cents: 2123, total_amount_cents: 12738 });

    const est = (await org.api("POST", "/api/v1/credit_notes/estimate", { credit_note: { invoice_id: invoice.lago_id, items: [{ fee_id: subFee, amount_cents: 5000 }] } }))
      .estimated_credit_note;
    expect(est).toMatchObject({ sub_total_excluding_taxes_amount_cents: 5000, taxes_amount_cents: 1000, max_creditable_amount_cents: 6000, max_refundable_amount_cents: 0 });

    // 50.00 of the subscription fee + 20 % = 60.00, all credited.
    const cn = (await org.api("POST", "/api/v1/credit_notes", note(invoice.lago_id, [{ fee_id: subFee, amount_cents: 5000 }], { description: "goodwill" }))).credit_note;
    expect(cn).toMatchObject({
      number: `${invoice.number}-CN1`,
      sequential_id: 1,
      lago_invoice_id: invoice.lago_id,
      credit_status: "available",
      refund_status: null,
      reason: "other",
      sub_total_excluding_taxes_amount_cents: 5000,
      taxes_amount_cents: 1000,
      total_amount_cents: 6000,
      credit_amount_cents: 6000,
      refund_amount_cents: 0,
      balance_amount_cents: 6000,
      issuing_date: "2026-02-01",
    });
    expect(cn.items).toEqual([expect.objectContaining({ amount_cents: 5000, fee: expect.objectContaining({ lago_id: subFee }) })]);
    expect(cn.applied_taxes.map((x: any) => [x.tax_code, x.base_amount_cents, x.amount_cents])).toEqual([["vat", 5000, 1000]]);
    expect((await org.api("GET", `/api/v1/credit_notes/${cn.lago_id}`)).credit_note.lago_id).toBe(cn.lago_id);
    expect((await org.api("GET", `/api/v1/customers/${cus}/credit_notes`)).credit_notes.map((x: any) => x.lago_id)).toEqual([cn.lago_id]);
    const hooks = await org.api("GET", "/api/v1/webhooks?webhook_type=credit_note.created");
    expect(hooks.webhooks.length).toBe(1);

    // The fee has 50.00 left to credit.
    expect(expect422(await org.raw("POST", "/api/v1/credit_notes", note(invoice.lago_id, [{ fee_id: subFee, amount_cents: 5001 }])), "items[0].amount_cents")).toEqual({
      "items[0].amount_cents": ["higher_than_remaining_fee_amount"],
    });

    // February: 100.00 + 20 % = 120.00, less the 60.00 credit.
    await org.freeze("2026-03-01T00:00:00Z");
    const [feb] = await invoicesOf(org, cus);
    expect(feb).toMatchObject({ sub_total_including_taxes_amount_cents: 12000, credit_notes_amount_cents: 6000, total_amount_cents: 6000 });
    const febFull = await invoiceOf(org, feb.lago_id);
    expect(febFull.credits).toEqual([
      expect.objectContaining({ amount_cents: 6000, before_taxes: false, item: expect.objectContaining({ type: "credit_note", lago_item_id: cn.lago_id, code: cn.number }) }),
    ]);
    expect((await org.api("GET", `/api/v1/credit_notes/${cn.lago_id}`)).credit_note).toMatchObject({ credit_status: "consumed", balance_amount_cents: 0 });
    // Nothing left to void.
    expect((await org.raw("PUT", `/api/v1/credit_notes/${cn.lago_id}/void`)).statusCode).toBe(405);
  });

  it("refunds need a paid invoice, parts must add up, a voided note is never drawn on", async () => {
    const org = await newOrg(t);
    const { cus, invoice, chargeFee, subFee } = await januaryInvoice(org);
    // 6.15 of calls + 20 % = 7.38.
    expect422(await org.raw("POST", "/api/v1/credit_notes", note(invoice.lago_id, [{ fee_id: chargeFee, amount_cents: 615 }], { refund_amount_cents: 738 })), "refund_amount_cents");
    expect422(await org.raw("POST", "/api/v1/credit_notes", note(invoice.lago_id, [{ fee_id: chargeFee, amount_cents: 615 }], { credit_amount_cents: 700 })), "credit_amount_cents");
    const cn = (await org.api("POST", "/api/v1/credit_notes", note(invoice.lago_id, [{ fee_id: chargeFee, amount_cents: 615 }], { credit_amount_cents: 738 }))).credit_note;
    expect(cn).toMatchObject({ total_amount_cents: 738, taxes_amount_cents: 123, balance_amount_cents: 738 });
    const voided = (await org.api("PUT", `/api/v1/credit_notes/${cn.lago_id}/void`)).credit_note;
    expect(voided).toMatchObject({ credit_status: "voided", balance_amount_cents: 0 });
    const second = (await org.api("POST", "/api/v1/credit_notes", note(invoice.lago_id, [{ fee_id: subFee, amount_cents: 100 }]))).credit_note;
    expect(second.number).toBe(`${invoice.number}-CN2`);
    await org.freeze("2026-03-01T00:00:00Z");
    const [feb] = await invoicesOf(org, cus);
    // Only the second note (1.20) is drawn on.
    expect(feb).toMatchObject({ credit_notes_amount_cents: 120, total_amount_cents: 12000 - 120 });
  });

  it("bad input is a 422 naming the field; a draft invoice is 405, an unknown one 404", async () => {
    const org = await newOrg(t);
    expect422(await org.raw("POST", "/api/v1/credit_notes", { credit_note: { invoice_id: "nope", reason: "because", items: [{ fee_id: "x", amount_cents: -1 }] } }), "invoice_id", "reason", "items[0].fee_id", "items[0].amount_cents");
    expect422(await org.raw("POST", "/api/v1/credit_notes", { credit_note: { invoice_id: crypto.randomUUID(), reason: "other" } }), "items");
    expect((await org.raw("POST", "/api/v1/credit_notes", note(crypto.randomUUID(), [{ fee_id: crypto.randomUUID(), amount_cents: 1 }]))).statusCode).toBe(404);
    const { invoice } = await januaryInvoice(org);
    expect422(await org.raw("POST", "/api/v1/credit_notes", note(invoice.lago_id, [{ fee_id: crypto.randomUUID(), amount_cents: 1 }])), "items[0].fee_id");
    expect((await org.raw("GET", "/api/v1/credit_notes/not-a-uuid")).statusCode).toBe(404);
    // A draft.
    await org.freeze("2026-02-01T00:00:00Z");
    const p = await plan(org, { amount_cents: 1000 });
    const cus = await customer(org, { billing_configuration: { invoice_grace_period: 5 } });
    await subscribe(org, cus, p.plan);
    await org.freeze("2026-03-01T00:00:00Z");
    const [draft] = await invoicesOf(org, cus);
    expect(draft.status).toBe("draft");
    const draftFee = (await invoiceOf(org, draft.lago_id)).fees[0].lago_id;
    const r = await org.raw("POST", "/api/v1/credit_notes", note(draft.lago_id, [{ fee_id: draftFee, amount_cents: 1 }]));
    expect(r.statusCode, r.body).toBe(405);
  });

  it("another organization never sees, voids or credits this one's credit notes and invoices", async () => {
    const a = await newOrg(t);
    const b = await newOrg(t);
    const { invoice, subFee } = await januaryInvoice(a);
    const cn = (await a.api("POST", "/api/v1/credit_notes", note(invoice.lago_id, [{ fee_id: subFee, amount_cents: 100 }]))).credit_note;
    expect((await b.raw("GET", `/api/v1/credit_notes/${cn.lago_id}`)).statusCode).toBe(404);
    expect((await b.raw("PUT", `/api/v1/credit_notes/${cn.lago_id}/void`)).statusCode).toBe(404);
    expect((await b.api("GET", "/api/v1/credit_notes")).credit_notes).toEqual([]);
    expect((await b.raw("POST", "/api/v1/credit_notes", note(invoice.lago_id, [{ fee_id: subFee, amount_cents: 100 }]))).statusCode).toBe(404);
    expect((await a.api("GET", `/api/v1/credit_notes/${cn.lago_id}`)).credit_note.credit_status).toBe("available");
  });

  it("a termination credits the unused part of the fee paid in advance, and its final invoice draws on it", async () => {
    const org = await newOrg(t);
    await org.freeze("2024-03-01T00:00:00Z");
    await org.api("POST", "/api/v1/taxes", { tax: { name: "VAT", code: "vat", rate: "20", applied_to_organization: true } });
    const p = await plan(org, { amount_cents: 3100, pay_in_advance: true });
    const cus = await customer(org);
    const sub = await subscribe(org, cus, p.plan);
    // March paid at its start: 31.00 + 20 % = 37.20.
    const [start] = await invoicesOf(org, cus);
    expect(start).toMatchObject({ fees_amount_cents: 3100, total_amount_cents: 3720 });
    await org.freeze("2024-03-20T12:00:00Z");
    await sendCalls(org, sub, p.calls, 100, "2024-03-11T00:00:00Z");
    await org.api("DELETE", `/api/v1/subscriptions/${sub}`);
    // March 21st–31st unused: 11/31 × 31.00 = 11.00 + 20 % = 13.20, credited (order_cancellation).
    const [cn] = (await org.api("GET", `/api/v1/customers/${cus}/credit_notes`)).credit_notes;
    expect(cn).toMatchObject({ reason: "order_cancellation", automatic: true, sub_total_excluding_taxes_amount_cents: 1100, taxes_amount_cents: 220, credit_amount_cents: 1320, lago_invoice_id: start.lago_id });
    // The final invoice: 100 calls = 5.00 + 20 % = 6.00, paid by the credit note (7.20 left).
    const final = (await invoicesOf(org, cus)).find((i: any) => i.lago_id !== start.lago_id);
    expect(final).toMatchObject({ fees_amount_cents: 500, taxes_amount_cents: 100, credit_notes_amount_cents: 600, total_amount_cents: 0 });
    expect((await org.api("GET", `/api/v1/credit_notes/${cn.lago_id}`)).credit_note).toMatchObject({ balance_amount_cents: 720, credit_status: "available" });
  });

  it("an upgrade credits the old plan's unused days (order_change) and the new plan's first invoice draws on it", async () => {
    const org = await newOrg(t);
    await org.freeze("2024-03-01T00:00:00Z");
    await org.api("POST", "/api/v1/taxes", { tax: { name: "VAT", code: "vat", rate: "20", applied_to_organization: true } });
    const small = await plan(org, { amount_cents: 3100, pay_in_advance: true });
    const big = await plan(org, { amount_cents: 6200, pay_in_advance: true });
    const cus = await customer(org);
    const sub = await subscribe(org, cus, small.plan);
    await org.freeze("2024-03-20T12:00:00Z");
    await org.api("POST", "/api/v1/subscriptions", { subscription: { external_customer_id: cus, plan_code: big.plan, external_id: sub } });
    // The upgrade's day goes to the new plan: March 20th–31st unused, 12/31 × 31.00 = 12.00 + 20 % = 14.40.
    const [cn] = (await org.api("GET", `/api/v1/customers/${cus}/credit_notes`)).credit_notes;
    expect(cn).toMatchObject({ reason: "order_change", automatic: true, sub_total_excluding_taxes_amount_cents: 1200, total_amount_cents: 1440 });
    // The new plan, March 20th–31st in advance: 12/31 × 62.00 = 24.00 + 20 % = 28.80, less the 14.40 credit.
    const invoices = await invoicesOf(org, cus);
    const upgraded = invoices.find((i: any) => i.fees_amount_cents === 2400);
    expect(upgraded).toMatchObject({ taxes_amount_cents: 480, credit_notes_amount_cents: 1440, total_amount_cents: 1440 });
    expect((await org.api("GET", `/api/v1/credit_notes/${cn.lago_id}`)).credit_note).toMatchObject({ credit_status: "consumed", balance_amount_cents: 0 });
  });
});
