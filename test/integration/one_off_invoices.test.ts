// One-off invoices against a real database (Lago's POST /api/v1/invoices): add-on fees with their
// unit amounts, units, descriptions and taxes, issued finalized and numbered in the organization's
// sequence with subscription invoices, totals worked out by hand, PDF, the
// `invoice.one_off_created` webhook, bad input, and tenancy. On PGlite by default, PostgreSQL with TEST_DATABASE_URL.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestApp, type TestApp } from "../helpers/app.ts";
import { BILLING_ENV, customer, expect422, invoiceOf, newOrg, plan, subscribe, type Org } from "./billing_support.ts";

let t: TestApp;
beforeAll(async () => {
  t = await startTestApp({ env: BILLING_ENV });
});
afterAll(async () => {
  await t?.close();
});

async function addOns(org: Org) {
  await org.api("POST", "/api/v1/taxes", { tax: { name: "VAT", code: "vat", rate: "20" } });
  await org.api("POST", "/api/v1/add_ons", {
    add_on: { name: "Setup Fee", code: "setup", amount_cents: 50000, amount_currency: "EUR", description: "Implementation", tax_codes: ["vat"] },
  });
  await org.api("POST", "/api/v1/add_ons", { add_on: { name: "Training", code: "training", amount_cents: 10000, amount_currency: "EUR" } });
  await org.api("POST", "/api/v1/add_ons", { add_on: { name: "Hours", code: "hours", amount_cents: 333, amount_currency: "EUR", invoice_display_name: "Consulting hours" } });
}

describe("one-off invoices", () => {
  it("bills add-ons as a finalized one_off invoice: amounts, units, taxes, rounding, numbering, PDF, webhook", async () => {
    const org = await newOrg(t);
    await org.freeze("2026-03-10T12:00:00Z");
    await org.api("POST", "/api/v1/webhook_endpoints", { webhook_endpoint: { webhook_url: "http://127.0.0.1:9/hook", signature_algo: "hmac" } });
    await addOns(org);
    const cus = await customer(org);
    const inv = (
      await org.api("POST", "/api/v1/invoices", {
        invoice: {
          external_customer_id: cus,
          currency: "EUR",
          fees: [
            { add_on_code: "setup" },
            { add_on_code: "training", unit_amount_cents: 12050, units: "2.5", description: "Onboarding, March", invoice_display_name: "Training (2.5 days)" },
            { add_on_code: "hours", units: 0.5 },
          ],
        },
      })
    ).invoice;
    // setup: 1 × 500.00 = 500.00, VAT 20 % = 100.00; training: 2.5 × 120.50 = 301.25, no tax (none at any
    // level); hours: 0.5 × 3.33 = 1.665 → 1.67 (half-up, once). Fees 802.92, taxes 100.00, total 902.92.
    expect(inv).toMatchObject({
      invoice_type: "one_off",
      status: "finalized",
      currency: "EUR",
      issuing_date: "2026-03-10",
      fees_amount_cents: 80292,
      taxes_amount_cents: 10000,
      sub_total_excluding_taxes_amount_cents: 80292,
      sub_total_including_taxes_amount_cents: 90292,
      total_amount_cents: 90292,
      organization_sequential_id: 1,
      sequential_id: 1,
    });
    expect(inv.number).toMatch(/-001$/);
    expect(inv.fees.map((f: any) => [f.item.type, f.item.code, f.units, f.unit_amount_cents, f.amount_cents, f.taxes_amount_cents, f.precise_amount])).toEqual([
      ["add_on", "setup", "1", 50000, 50000, 10000, "500"],
      ["add_on", "training", "2.5", 12050, 30125, 0, "301.25"],
      ["add_on", "hours", "0.5", 333, 167, 0, "1.665"],
    ]);
    expect(inv.fees.map((f: any) => [f.item.item_type, f.item.invoice_display_name, f.description, f.lago_subscription_id])).toEqual([
      ["AddOn", "Setup Fee", "Implementation", null],
      ["AddOn", "Training (2.5 days)", "Onboarding, March", null],
      ["AddOn", "Consulting hours", null, null],
    ]);
    expect(inv.applied_taxes.map((x: any) => [x.tax_code, x.fees_amount_cents, x.amount_cents])).toEqual([["vat", 50000, 10000]]);
    expect((await invoiceOf(org, inv.lago_id)).total_amount_cents).toBe(90292);
    expect((await org.api("GET", `/api/v1/invoices?invoice_type=one_off&external_customer_id=${cus}`)).invoices.map((i: any) => i.lago_id)).toEqual([inv.lago_id]);
    const fee = (await org.api("GET", `/api/v1/fees/${inv.fees[1].lago_id}`)).fee;
    expect(fee).toMatchObject({ amount_cents: 30125, events_count: null, description: "Onboarding, March" });

    const pdf = await org.raw("GET", `/api/v1/invoices/${inv.lago_id}/pdf`);
    expect(pdf.statusCode).toBe(200);
    expect(pdf.headers["content-type"]).toContain("application/pdf");
    expect(pdf.rawPayload.subarray(0, 5).toString()).toBe("%PDF-");

    const hooks = (await org.api("GET", "/api/v1/webhooks?webhook_type=invoice.one_off_created")).webhooks;
    expect(hooks.length).toBe(1);
    expect(hooks[0].object_id).toBe(inv.lago_id);
    const hook = (await org.api("GET", `/api/v1/webhooks/${hooks[0].lago_id}`)).webhook;
    expect(hook.payload.invoice).toMatchObject({ lago_id: inv.lago_id, total_amount_cents: 90292, invoice_type: "one_off" });
    expect(hook.payload.invoice.fees.length).toBe(3);

    // A second one-off invoice takes the next number; an override tax code (and an explicit empty one) wins over the add-on's.
    const second = (
      await org.api("POST", "/api/v1/invoices", { invoice: { external_customer_id: cus, fees: [{ add_on_code: "training", tax_codes: ["vat"], units: "3" }] } })
    ).invoice;
    // 3 × 100.00 = 300.00 + 20 % = 360.00.
    expect(second).toMatchObject({ organization_sequential_id: 2, sequential_id: 2, fees_amount_cents: 30000, taxes_amount_cents: 6000, total_amount_cents: 36000 });
  });

  it("shares the organization's gapless sequence with subscription invoices", async () => {
    const org = await newOrg(t);
    await org.freeze("2026-01-01T00:00:00Z");
    await addOns(org);
    const { plan: planCode } = await plan(org, { amount_cents: 1000 });
    const cus = await customer(org);
    await subscribe(org, cus, planCode);
    await org.freeze("2026-02-01T00:00:00Z");
    const oneOff = (await org.api("POST", "/api/v1/invoices", { invoice: { external_customer_id: cus, fees: [{ add_on_code: "hours", units: "2" }] } })).invoice;
    // The January subscription invoice took 1; 2 × 3.33 = 6.66.
    expect(oneOff).toMatchObject({ organization_sequential_id: 2, total_amount_cents: 666 });
  });

  it("bad input: 422 naming each field, 404 for an unknown customer or add-on, another currency than the customer's", async () => {
    const org = await newOrg(t);
    await addOns(org);
    const cus = await customer(org);
    expect422(await org.raw("POST", "/api/v1/invoices", { invoice: { fees: [] } }), "external_customer_id", "fees");
    expect422(
      await org.raw("POST", "/api/v1/invoices", {
        invoice: { external_customer_id: cus, currency: "EURO", fees: [{ units: "-1", unit_amount_cents: "x" }, 3, { add_on_code: "setup", from_datetime: "soon" }] },
      }),
      "currency",
      "fees[0].add_on_code",
      "fees[0].units",
      "fees[0].unit_amount_cents",
      "fees[1]",
      "fees[2].from_datetime",
    );
    expect((await org.raw("POST", "/api/v1/invoices", {})).statusCode).toBe(400);
    const noCustomer = await org.raw("POST", "/api/v1/invoices", { invoice: { external_customer_id: "nobody", fees: [{ add_on_code: "setup" }] } });
    expect([noCustomer.statusCode, JSON.parse(noCustomer.body).code]).toEqual([404, "customer_not_found"]);
    const noAddOn = await org.raw("POST", "/api/v1/invoices", { invoice: { external_customer_id: cus, fees: [{ add_on_code: "nope" }] } });
    expect([noAddOn.statusCode, JSON.parse(noAddOn.body).code]).toEqual([404, "add_on_not_found"]);
    expect(expect422(await org.raw("POST", "/api/v1/invoices", { invoice: { external_customer_id: cus, currency: "USD", fees: [{ add_on_code: "setup" }] } }), "currency")).toEqual({
      currency: ["currencies_does_not_match"],
    });
    expect(expect422(await org.raw("POST", "/api/v1/invoices", { invoice: { external_customer_id: cus, fees: [{ add_on_code: "setup", tax_codes: ["nope"] }] } }), "fees[0].tax_codes")).toEqual({
      "fees[0].tax_codes": ["tax_not_found"],
    });
    // Nothing was issued.
    expect((await org.api("GET", "/api/v1/invoices")).invoices).toEqual([]);
  });

  it("one organization cannot bill another's customer or add-on", async () => {
    const a = await newOrg(t);
    const b = await newOrg(t);
    await addOns(a);
    const cusA = await customer(a);
    expect((await b.raw("POST", "/api/v1/invoices", { invoice: { external_customer_id: cusA, fees: [{ add_on_code: "setup" }] } })).statusCode).toBe(404);
    const cusB = await customer(b);
    expect((await b.raw("POST", "/api/v1/invoices", { invoice: { external_customer_id: cusB, fees: [{ add_on_code: "setup" }] } })).statusCode).toBe(404);
    const inv = (await a.api("POST", "/api/v1/invoices", { invoice: { external_customer_id: cusA, fees: [{ add_on_code: "setup" }] } })).invoice;
    expect((await b.raw("GET", `/api/v1/invoices/${inv.lago_id}`)).statusCode).toBe(404);
  });
});
