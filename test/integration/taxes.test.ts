// Taxes against a real database: Lago's /taxes, tax codes on customers, plans and charges, and an
// invoice taxed per fee by the most specific level (charge > plan > customer > organization).
// On PGlite by default, PostgreSQL with TEST_DATABASE_URL.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestApp, type TestApp } from "../helpers/app.ts";
import { json, uid } from "./support.ts";
import { BILLING_ENV, customer, expect422, invoiceOf, invoicesOf, newOrg, plan, sendCalls, subscribe } from "./billing_support.ts";

let t: TestApp;
beforeAll(async () => {
  t = await startTestApp({ env: BILLING_ENV });
});
afterAll(async () => {
  await t?.close();
});

describe("taxes", () => {
  it("create, get, list, update (a new code follows to customers and plans) and delete", async () => {
    const org = await newOrg(t);
    const created = (await org.api("POST", "/api/v1/taxes", { tax: { name: "TVA", code: "fr_vat", rate: "20.0", description: "French VAT" } })).tax;
    expect(created).toMatchObject({ name: "TVA", code: "fr_vat", rate: 20, description: "French VAT", applied_to_organization: false });
    expect((await org.api("GET", "/api/v1/taxes/fr_vat")).tax.lago_id).toBe(created.lago_id);
    await org.api("POST", "/api/v1/taxes", { tax: { name: "Reduced", code: "reduced", rate: 5.5 } });
    const list = await org.api("GET", "/api/v1/taxes?per_page=1&page=2");
    expect(list.meta).toMatchObject({ total_count: 2, current_page: 2 });
    expect(list.taxes.map((x: any) => x.code)).toEqual(["fr_vat"]);

    const cus = await customer(org, { tax_codes: ["fr_vat"] });
    expect((await org.api("GET", `/api/v1/customers/${cus}`)).customer.taxes.map((x: any) => x.code)).toEqual(["fr_vat"]);
    const { plan: planCode } = await plan(org, { amount_cents: 100, tax_codes: ["fr_vat"], charge_tax_codes: ["reduced"] });
    const p = (await org.api("GET", `/api/v1/plans/${planCode}`)).plan;
    expect(p.taxes.map((x: any) => x.code)).toEqual(["fr_vat"]);
    expect(p.charges[0].taxes.map((x: any) => [x.code, x.rate])).toEqual([["reduced", 5.5]]);
    // A subscription embeds its plan as the plan's own endpoint renders it, taxes included.
    const sub = await subscribe(org, cus, planCode);
    const embedded = (await org.api("GET", `/api/v1/subscriptions/${sub}`)).subscription.plan;
    expect(embedded.taxes).toEqual(p.taxes);
    expect(embedded.charges[0].taxes).toEqual(p.charges[0].taxes);

    const updated = (await org.api("PUT", "/api/v1/taxes/fr_vat", { tax: { code: "fr_standard", rate: "19.6" } })).tax;
    expect(updated).toMatchObject({ code: "fr_standard", rate: 19.6, name: "TVA" });
    expect((await org.api("GET", `/api/v1/customers/${cus}`)).customer.tax_codes).toEqual(["fr_standard"]);
    expect((await org.api("GET", `/api/v1/plans/${planCode}`)).plan.taxes.map((x: any) => x.code)).toEqual(["fr_standard"]);

    expect((await org.api("DELETE", "/api/v1/taxes/reduced")).tax.code).toBe("reduced");
    expect((await org.raw("GET", "/api/v1/taxes/reduced")).statusCode).toBe(404);
    expect((await org.api("GET", `/api/v1/plans/${planCode}`)).plan.charges[0].tax_codes).toEqual([]);
  });

  it("a customer embedded in invoices, lists and webhooks shows its taxes as its own endpoint does", async () => {
    const org = await newOrg(t);
    await org.api("POST", "/api/v1/webhook_endpoints", { webhook_endpoint: { webhook_url: "http://127.0.0.1:9/hook", signature_algo: "hmac" } });
    await org.freeze("2026-01-01T00:00:00Z");
    await org.api("POST", "/api/v1/taxes", { tax: { name: "TVA", code: "vat_20", rate: "20" } });
    await org.api("POST", "/api/v1/taxes", { tax: { name: "Local", code: "local", rate: "2.5", description: "City tax" } });
    const cus = await customer(org, { tax_codes: ["vat_20", "local"] });
    const own = (await org.api("GET", `/api/v1/customers/${cus}`)).customer.taxes;
    expect(own.map((x: any) => [x.code, x.rate, x.description])).toEqual([["vat_20", 20, null], ["local", 2.5, "City tax"]]);
    // The customer list and the upsert answer show them too.
    const listed = (await org.api("GET", `/api/v1/customers?external_id=${cus}`)).customers[0];
    expect(listed.taxes).toEqual(own);
    expect((await org.api("POST", "/api/v1/customers", { customer: { external_id: cus, name: "Renamed" } })).customer.taxes).toEqual(own);

    const { plan: planCode } = await plan(org, { amount_cents: 1000, tax_codes: ["local"] });
    const sub = await subscribe(org, cus, planCode);
    // subscription.started carries the plan with its taxes, as GET /subscriptions/:id does.
    const started = (await org.api("GET", "/api/v1/webhooks?webhook_type=subscription.started")).webhooks;
    const planTaxes = (await org.api("GET", `/api/v1/subscriptions/${sub}`)).subscription.plan.taxes;
    expect(planTaxes.map((x: any) => [x.code, x.rate])).toEqual([["local", 2.5]]);
    expect(started.map((h: any) => h.payload.subscription.plan.taxes)).toEqual([planTaxes]);
    await org.freeze("2026-02-01T00:00:00Z");
    const [inv] = await invoicesOf(org, cus);
    expect(inv.customer.taxes).toEqual(own);
    expect((await invoiceOf(org, inv.lago_id)).customer.taxes).toEqual(own);
    // Lago's invoice.payment_status_updated webhook, and customer.updated, carry the same customer.
    await org.api("PUT", `/api/v1/invoices/${inv.lago_id}`, { invoice: { payment_status: "succeeded" } });
    const hooks = (await org.api("GET", "/api/v1/webhooks?webhook_type=invoice.payment_status_updated")).webhooks;
    expect(hooks).toHaveLength(1);
    expect(hooks[0].payload.invoice.customer.taxes).toEqual(own);
    const updated = (await org.api("GET", "/api/v1/webhooks?webhook_type=customer.updated")).webhooks;
    expect(updated[0].payload.customer.taxes).toEqual(own);
    // A customer without tax codes shows none.
    const plain = await customer(org);
    expect((await org.api("GET", `/api/v1/customers/${plain}`)).customer.taxes).toEqual([]);
  });

  it("bad input is a 422 naming the field; a taken code, an unknown one on a customer, plan or charge too", async () => {
    const org = await newOrg(t);
    expect422(await org.raw("POST", "/api/v1/taxes", { tax: { name: "", rate: "x" } }), "name", "code", "rate");
    expect422(await org.raw("POST", "/api/v1/taxes", { tax: { name: "a", code: "a", rate: "101" } }), "rate");
    expect((await org.raw("POST", "/api/v1/taxes", {})).statusCode).toBe(400);
    await org.api("POST", "/api/v1/taxes", { tax: { name: "a", code: "a", rate: "1" } });
    expect(expect422(await org.raw("POST", "/api/v1/taxes", { tax: { name: "a", code: "a", rate: "1" } }), "code")).toEqual({ code: ["value_already_exist"] });
    expect422(await org.raw("POST", "/api/v1/customers", { customer: { external_id: uid("c"), tax_codes: ["nope"] } }), "tax_codes");
    const metric = (await org.api("POST", "/api/v1/billable_metrics", { billable_metric: { name: "m", code: uid("m"), aggregation_type: "count_agg" } })).billable_metric;
    const details = expect422(
      await org.raw("POST", "/api/v1/plans", {
        plan: {
          name: "p",
          code: uid("p"),
          interval: "monthly",
          amount_cents: 0,
          amount_currency: "EUR",
          tax_codes: ["a", "missing"],
          charges: [{ billable_metric_id: metric.lago_id, charge_model: "standard", properties: { amount: "1" }, tax_codes: ["gone"] }],
        },
      }),
      "tax_codes",
      "charges[0].tax_codes",
    );
    expect(details["tax_codes"]).toEqual(["tax_not_found"]);
  });

  it("another organization never sees, changes or deletes this one's taxes, nor applies them", async () => {
    const a = await newOrg(t);
    const b = await newOrg(t);
    await a.api("POST", "/api/v1/taxes", { tax: { name: "A", code: "only_a", rate: "10" } });
    expect((await b.raw("GET", "/api/v1/taxes/only_a")).statusCode).toBe(404);
    expect((await b.raw("PUT", "/api/v1/taxes/only_a", { tax: { rate: "1" } })).statusCode).toBe(404);
    expect((await b.raw("DELETE", "/api/v1/taxes/only_a")).statusCode).toBe(404);
    expect((await b.api("GET", "/api/v1/taxes")).taxes).toEqual([]);
    expect422(await b.raw("POST", "/api/v1/customers", { customer: { external_id: uid("c"), tax_codes: ["only_a"] } }), "tax_codes");
    // b may create its own tax with the same code.
    await b.api("POST", "/api/v1/taxes", { tax: { name: "B", code: "only_a", rate: "3" } });
    expect((await a.api("GET", "/api/v1/taxes/only_a")).tax.rate).toBe(10);
  });

  it("an invoice is taxed per fee by the most specific level, each tax rounded once on its base", async () => {
    const org = await newOrg(t);
    await org.freeze("2026-01-01T00:00:00Z");
    await org.api("POST", "/api/v1/taxes", { tax: { name: "VAT", code: "vat", rate: "20", applied_to_organization: true } });
    await org.api("POST", "/api/v1/taxes", { tax: { name: "Customer", code: "cust", rate: "10" } });
    await org.api("POST", "/api/v1/taxes", { tax: { name: "Digital", code: "digital", rate: "5.5" } });

    // Plan 49.00 with no plan taxes; the charge (0.05/call) carries `digital`; the customer `cust`.
    // January: 123 calls = 6.15. Subscription fee taxed by the customer's 10 % = 4.90; the charge by
    // its own 5.5 %: 615 × 5.5 % = 33.825 → 34. Total 49.00 + 6.15 + 4.90 + 0.34 = 60.39.
    const p = await plan(org, { amount_cents: 4900, charge_tax_codes: ["digital"] });
    const cus = await customer(org, { tax_codes: ["cust"] });
    const sub = await subscribe(org, cus, p.plan);
    // A customer with no taxes of its own pays the organization's 20 %.
    const plain = await customer(org);
    const sub2 = await subscribe(org, plain, p.plan);
    await org.freeze("2026-01-10T00:00:00Z");
    await sendCalls(org, sub, p.calls, 123, "2026-01-10T00:00:00Z");
    // Current usage carries the taxes its invoice will: 615 × 5.5 % = 33.825 → 34.
    const usage = (await org.api("GET", `/api/v1/customers/${cus}/current_usage?external_subscription_id=${sub}`)).customer_usage;
    expect(usage).toMatchObject({ amount_cents: 615, taxes_amount_cents: 34, total_amount_cents: 649 });
    await org.freeze("2026-02-01T00:00:00Z");

    const [listed] = await invoicesOf(org, cus);
    const inv = await invoiceOf(org, listed.lago_id);
    expect(inv).toMatchObject({
      status: "finalized",
      fees_amount_cents: 5515,
      coupons_amount_cents: 0,
      sub_total_excluding_taxes_amount_cents: 5515,
      taxes_amount_cents: 524,
      sub_total_including_taxes_amount_cents: 6039,
      total_amount_cents: 6039,
    });
    const byType = Object.fromEntries(inv.fees.map((f: any) => [f.item.type, f]));
    expect(byType.subscription).toMatchObject({ amount_cents: 4900, taxes_amount_cents: 490, taxes_rate: 10, total_amount_cents: 5390 });
    expect(byType.subscription.applied_taxes.map((x: any) => [x.tax_code, x.amount_cents])).toEqual([["cust", 490]]);
    expect(byType.charge).toMatchObject({ amount_cents: 615, taxes_amount_cents: 34, taxes_rate: 5.5, taxes_precise_amount_cents: "33.825" });
    expect(inv.applied_taxes.map((x: any) => [x.tax_code, x.tax_rate, x.fees_amount_cents, x.amount_cents])).toEqual([
      ["cust", 10, 4900, 490],
      ["digital", 5.5, 615, 34],
    ]);

    const [plainInvoice] = await invoicesOf(org, plain);
    expect(plainInvoice).toMatchObject({ fees_amount_cents: 4900, taxes_amount_cents: 980, total_amount_cents: 5880 });
    expect(plainInvoice.applied_taxes.map((x: any) => x.tax_code)).toEqual(["vat"]);
    expect(sub2).toBeTruthy();

    // The PDF carries the tax lines.
    const pdf = await org.raw("GET", `/api/v1/invoices/${inv.lago_id}/pdf`);
    expect(pdf.statusCode).toBe(200);
    expect(pdf.headers["content-type"]).toContain("application/pdf");
  });

  it("a renamed or deleted tax reaches plans already cached for billing: charges, plan and minimum commitment", async () => {
    const org = await newOrg(t);
    await org.freeze("2026-03-01T00:00:00Z");
    await org.api("POST", "/api/v1/taxes", { tax: { name: "Digital", code: "digital", rate: "5.5" } });
    await org.api("POST", "/api/v1/taxes", { tax: { name: "Plan", code: "ptax", rate: "10" } });
    const p = await plan(org, { amount_cents: 0, tax_codes: ["ptax"], charge_tax_codes: ["digital"] });
    await org.api("PUT", `/api/v1/plans/${p.plan}`, { plan: { minimum_commitment: { amount_cents: 1000, tax_codes: ["ptax"] } } });
    const cus = await customer(org);
    const sub = await subscribe(org, cus, p.plan);
    await sendCalls(org, sub, p.calls, 100, "2026-03-02T00:00:00Z");
    const usage = async () => (await org.api("GET", `/api/v1/customers/${cus}/current_usage?external_subscription_id=${sub}`)).customer_usage;
    // 100 calls × 0.05 = 5.00, taxed by the charge's 5.5 %: 27.5 → 28 (the cached plan is loaded here).
    expect(await usage()).toMatchObject({ amount_cents: 500, taxes_amount_cents: 28 });

    await org.api("PUT", "/api/v1/taxes/digital", { tax: { code: "digital_v2" } });
    // Still 5.5 %: the cached plan now names digital_v2 (with the stale code it would fall back to the plan's 10 %).
    expect(await usage()).toMatchObject({ amount_cents: 500, taxes_amount_cents: 28 });
    await org.api("PUT", "/api/v1/taxes/ptax", { tax: { code: "ptax_v2" } });
    const renamed = (await org.api("GET", `/api/v1/plans/${p.plan}`)).plan;
    expect(renamed.minimum_commitment.taxes.map((x: any) => x.code)).toEqual(["ptax_v2"]);

    await org.api("DELETE", "/api/v1/taxes/digital_v2");
    // The charge has no tax left: the plan's 10 % applies, 50.
    expect(await usage()).toMatchObject({ amount_cents: 500, taxes_amount_cents: 50 });
    await org.api("DELETE", "/api/v1/taxes/ptax_v2");
    expect(await usage()).toMatchObject({ amount_cents: 500, taxes_amount_cents: 0 });
    expect((await org.api("GET", `/api/v1/plans/${p.plan}`)).plan.minimum_commitment.taxes).toEqual([]);
  });
});
