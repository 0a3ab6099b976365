// Regroup invoices (Lago's regroup_paid_fees "invoice") show their taxes broken down like any
// invoice: `applied_taxes`, per tax, the amounts their fees were billed (each fee's taxes rounded on
// their own, as they were paid), adding up to `taxes_amount_cents`. Amounts by hand. On PGlite by
// default, PostgreSQL with TEST_DATABASE_URL.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestApp, type TestApp } from "../helpers/app.ts";
import { uid } from "./support.ts";
import { BILLING_ENV, customer, feeIds, invoiceOf, invoicesOf, newOrg, regroupedFeesPlan, sendCalls, subscribe } from "./billing_support.ts";

let t: TestApp;
beforeAll(async () => {
  t = await startTestApp({ env: BILLING_ENV });
});
afterAll(async () => {
  await t?.close();
});

describe("regroup invoice taxes", () => {
  it("applied_taxes add up the fees' own taxes per tax, with their bases", async () => {
    const org = await newOrg(t);
    await org.freeze("2026-03-01T00:00:00Z");
    const vat = (await org.api("POST", "/api/v1/taxes", { tax: { name: "VAT", code: uid("vat"), rate: "10" } })).tax;
    const eco = (await org.api("POST", "/api/v1/taxes", { tax: { name: "Eco", code: uid("eco"), rate: "5.5", description: "Eco levy" } })).tax;
    const fx = await regroupedFeesPlan(org, "1.55", [vat.code, eco.code]);
    const cus = await customer(org);
    const sub = await subscribe(org, cus, fx.plan);
    await org.freeze("2026-03-02T00:00:00Z");
    await sendCalls(org, sub, fx.transfers, 2, "2026-03-02T00:00:00Z");
    await t.app.advanceBilling.runDue({ orgId: org.orgId });
    const fees = await feeIds(t, org.orgId);
    expect(fees).toHaveLength(2);
    for (const id of fees) {
      // 1.55 each: VAT 10 % = 0.155, Eco 5.5 % = 0.08525, 0.24025 rounded once: 0.24.
      const fee = (await org.api("PUT", `/api/v1/fees/${id}`, { fee: { payment_status: "succeeded" } })).fee;
      expect(fee).toMatchObject({ amount_cents: 155, taxes_amount_cents: 24 });
    }
    await org.freeze("2026-04-01T01:00:00Z");
    const regrouped = (await invoicesOf(org, cus)).filter((i: any) => i.invoice_type === "advance_charges");
    expect(regrouped).toHaveLength(1);
    const invoice = await invoiceOf(org, regrouped[0].lago_id);
    expect(invoice).toMatchObject({ fees_amount_cents: 310, taxes_amount_cents: 48, total_amount_cents: 358, payment_status: "succeeded" });
    // Each fee's 0.24 is 0.15 of VAT and 0.09 of Eco (the cent left by the floors goes to the larger remainder, 0.525 over 0.5).
    const lines = invoice.applied_taxes.map((x: any) => [x.lago_tax_id, x.tax_code, x.tax_name, x.tax_rate, x.tax_description, x.amount_cents, x.fees_amount_cents, x.amount_currency]);
    expect(lines).toEqual([
      [vat.lago_id, vat.code, "VAT", 10, null, 30, 310, "EUR"],
      [eco.lago_id, eco.code, "Eco", 5.5, "Eco levy", 18, 310, "EUR"],
    ]);
    expect(invoice.applied_taxes.reduce((a: number, x: any) => a + x.amount_cents, 0)).toBe(invoice.taxes_amount_cents);
    expect(invoice.applied_taxes.every((x: any) => x.lago_invoice_id === invoice.lago_id)).toBe(true);
    // The list shows them too.
    const listed = (await org.api("GET", `/api/v1/invoices?external_customer_id=${cus}`)).invoices.find((i: any) => i.lago_id === invoice.lago_id);
    expect(listed.applied_taxes.map((x: any) => x.amount_cents)).toEqual([30, 18]);
  });
});
