// End to end: voiding paid invoices with a credit note and a refund through the sandbox provider,
// with the real server (`node bin/valueverse.mjs serve`) in a child process driven through
// `lago-javascript-client`, and Lago's webhooks received by a real HTTP receiver on 127.0.0.1. Runs
// on a fresh PGlite DATA_DIR, or on PostgreSQL when TEST_DATABASE_URL is set.
//
// Amounts, worked out by hand (calendar billing, UTC, VAT 20 % on the organization):
//   "Pro", 100.00 EUR a month paid in advance: subscribing on 1 March 2024 invoices March at once,
//   100.00 + 20.00 VAT = 120.00, charged through the sandbox.
//   Customer "refunded" (pm_succeeds): voided with refund_amount 60.00 and credit_amount 24.00 →
//     credit note 1: 70.00 of the fee + 14.00 VAT = 84.00 (60.00 refunded, 24.00 credited);
//     credit note 2: the other 30.00 + 6.00 VAT = 36.00, voided at once.
//     April: 120.00 less the 24.00 credit = 96.00.
//   Customer "declined" (pm_succeeds_refund_declines): voided with refund_amount 120.00 → the
//     provider declines the refund: refund_status failed, credit_note.provider_refund_failure.
import crypto from "node:crypto";
import { describe, expect, it } from "vitest";
import { lagoError } from "./helpers/lago.ts";
import { eventually, scenario } from "./helpers/scenario.ts";
import { E2E_DB_KIND } from "./helpers/server.ts";

describe(`void a paid invoice → credit note → refund through the provider, real server on ${E2E_DB_KIND}`, () => {
  const run = crypto.randomBytes(3).toString("hex");
  const planCode = `pro-${run}`;
  const refunded = `cust-refunded-${run}`;
  const declined = `cust-declined-${run}`;
  const t = scenario({ WEBHOOK_PRIVATE_NETWORKS: "allow" });
  const { receiver, freeze } = t;
  const invoices: Record<string, string> = {};

  const paid = (external: string) =>
    eventually(
      `${external}'s invoice paid`,
      async () => (await t.lago.invoices.findAllInvoices({ external_customer_id: external })).data.invoices,
      (v) => v.length === 1 && v[0]!.payment_status === "succeeded",
    );
  const notesOf = async (external: string) =>
    ((await t.lago.creditNotes.findAllCreditNotes({ external_customer_id: external } as never)).data.credit_notes as any[]).sort((a, b) => a.sequential_id - b.sequential_id);

  it("1 March: two customers subscribe to a plan paid in advance and are charged 120.00", async () => {
    await freeze("2024-03-01T00:00:00Z");
    await t.addWebhookEndpoint();
    await t.lago.taxes.createTax({ tax: { name: "VAT", code: `vat_${run}`, rate: "20", applied_to_organization: true } } as never);
    await t.lago.plans.createPlan({ plan: { name: "Pro", code: planCode, interval: "monthly", amount_cents: 10000, amount_currency: "EUR", pay_in_advance: true } } as never);
    for (const [external, token] of [
      [refunded, "pm_succeeds"],
      [declined, "pm_succeeds_refund_declines"],
    ] as const) {
      await t.lago.customers.createCustomer({
        customer: { external_id: external, name: external, currency: "EUR", billing_configuration: { payment_provider: "stripe", payment_provider_code: "sandbox", provider_customer_id: token } },
      } as never);
      await t.lago.subscriptions.createSubscription({ subscription: { external_customer_id: external, plan_code: planCode, external_id: `sub-${external}`, billing_time: "calendar" } });
      const [invoice] = await paid(external);
      expect(invoice).toMatchObject({ total_amount_cents: 12000, taxes_amount_cents: 2000, status: "finalized" });
      invoices[external] = invoice!.lago_id;
    }
  });

  it("a paid invoice is not voided without a credit note; bad amounts are a 422 naming the field", async () => {
    const refusal = await lagoError(t.lago.invoices.voidInvoice(invoices[refunded]!));
    expect(refusal.status).toBe(405);
    const bad = await lagoError<any>(t.lago.invoices.voidInvoice(invoices[refunded]!, { generate_credit_note: true, refund_amount: 12001 }));
    expect(bad.status).toBe(422);
    expect(bad.body.error_details).toMatchObject({ refund_amount: ["higher_than_remaining_invoice_amount"] });
  });

  it("voided with 60.00 refunded and 24.00 credited: the refund goes back through the sandbox", async () => {
    const voided = (await t.lago.invoices.voidInvoice(invoices[refunded]!, { generate_credit_note: true, refund_amount: 6000, credit_amount: 2400 })).data.invoice;
    expect(voided).toMatchObject({ status: "voided", payment_status: "succeeded" });
    const notes = await notesOf(refunded);
    expect(notes.map((n) => [n.total_amount_cents, n.taxes_amount_cents, n.refund_amount_cents, n.credit_amount_cents, n.credit_status])).toEqual([
      [8400, 1400, 6000, 2400, "available"],
      [3600, 600, 0, 3600, "voided"],
    ]);
    const done = await eventually(
      "the refund",
      async () => (await t.lago.creditNotes.findCreditNote(notes[0].lago_id)).data.credit_note,
      (n) => n.refund_status === "succeeded",
    );
    expect(done.balance_amount_cents).toBe(2400);
    const created = await eventually("credit_note.created", async () => receiver.of("credit_note.created", (j) => j.credit_note.lago_invoice_id === invoices[refunded]), (v) => v.length === 2);
    expect(created.every((r) => receiver.signedWith(r))).toBe(true);
    const [voidedHook] = await eventually("invoice.voided", async () => receiver.of("invoice.voided", (j) => j.invoice.lago_id === invoices[refunded]), (v) => v.length === 1);
    expect(voidedHook!.json.invoice.status).toBe("voided");
  });

  it("a declined refund fails with credit_note.provider_refund_failure", async () => {
    await t.lago.invoices.voidInvoice(invoices[declined]!, { generate_credit_note: true, refund_amount: 12000 });
    const [note] = await notesOf(declined);
    expect(note).toMatchObject({ total_amount_cents: 12000, refund_amount_cents: 12000, credit_amount_cents: 0 });
    await eventually("the failed refund", async () => (await t.lago.creditNotes.findCreditNote(note.lago_id)).data.credit_note, (n) => n.refund_status === "failed");
    const [failure] = await eventually(
      "credit_note.provider_refund_failure",
      async () => receiver.of("credit_note.provider_refund_failure", (j) => j.credit_note_payment_provider_refund_error.lago_credit_note_id === note.lago_id),
      (v) => v.length === 1,
    );
    expect(receiver.signedWith(failure!)).toBe(true);
    expect(failure!.json.credit_note_payment_provider_refund_error).toMatchObject({
      external_customer_id: declined,
      provider_customer_id: "pm_succeeds_refund_declines",
      payment_provider_code: "sandbox",
      provider_error: { error_code: "refund_declined" },
    });
  });

  it("1 April: the refunded customer's next invoice draws the 24.00 credit", async () => {
    await freeze("2024-04-01T00:00:00Z");
    const list = (await t.lago.invoices.findAllInvoices({ external_customer_id: refunded })).data.invoices;
    const april = list.find((i) => i.lago_id !== invoices[refunded])!;
    expect(april).toMatchObject({ status: "finalized", credit_notes_amount_cents: 2400, total_amount_cents: 9600 });
    const [first] = await notesOf(refunded);
    expect(first).toMatchObject({ balance_amount_cents: 0, credit_status: "consumed" });
  });
});
