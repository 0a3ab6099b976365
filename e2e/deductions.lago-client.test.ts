// End to end: a month of usage billed with a coupon, a tax and a wallet, through
// `lago-javascript-client` against the real server (child process) under a test clock (set through
// plain HTTP: Lago's client does not know it). The invoice's amounts are worked out by hand below.
// Runs on a fresh PGlite DATA_DIR, or a fresh PostgreSQL database with TEST_DATABASE_URL.
import { execFileSync, spawnSync } from "node:child_process";
import crypto from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { Client } from "lago-javascript-client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { call } from "./helpers/http.ts";
import { createDataTarget, E2E_DB_KIND, killAllServers, randomKey, startServer, type DataTarget, type ServerProcess } from "./helpers/server.ts";

const hasPoppler = spawnSync("pdftotext", ["-v"]).error === undefined;

// The hand-worked invoice for May 2024 (UTC customer, calendar billing, monthly plan in arrears):
//   plan fee                     50.00 EUR                         5000
//   api calls: 1,234 × 0.02      24.68 EUR                         2468
//   fees                                                           7468
//   coupon "welcome", 10.00 fixed, recurring for 3 periods:       −1000
//     spread over the fees pro rata: 1000 × 5000/7468 = 669.52…, 1000 × 2468/7468 = 330.48…
//   sub total excluding taxes    7468 − 1000                       6468
//   VAT 20 % (the customer's tax), on the fees after the coupon:
//     invoice: 6468 × 20 % = 1293.6 → 1294 (rounded once, half-up)
//     per fee: (5000 − 669.52…) × 20 % = 866.10 → 866; (2468 − 330.48…) × 20 % = 427.50… → 428
//   sub total including taxes    6468 + 1294                       7762
//   wallet: 20 paid (its credit invoice paid) + 10 granted credits at 1.00 EUR = 30.00
//                                                                 −3000 (prepaid_credit_amount_cents)
//   total due                    7762 − 3000                       4762
// Afterwards the coupon has 2 periods left and the wallet is empty.
const EXPECTED = {
  fees_amount_cents: 7468,
  coupons_amount_cents: 1000,
  sub_total_excluding_taxes_amount_cents: 6468,
  taxes_amount_cents: 1294,
  sub_total_including_taxes_amount_cents: 7762,
  credit_notes_amount_cents: 0,
  prepaid_credit_amount_cents: 3000,
  total_amount_cents: 4762,
};

describe(`a month with a coupon, a tax and a wallet through lago-javascript-client, real server on ${E2E_DB_KIND}`, () => {
  const run = crypto.randomBytes(3).toString("hex");
  const apiKey = randomKey();
  const customerId = `cust-${run}`;
  const subscriptionId = `sub-${run}`;
  const metricCode = `api_calls_${run}`;
  let target: DataTarget;
  let server: ServerProcess;
  let lago: ReturnType<typeof Client>;
  let walletId = "";

  async function freeze(iso: string): Promise<void> {
    const r = await call(server.url, "PUT", "/api/v1/test_clock", { apiKey, body: { test_clock: { frozen_time: iso } } });
    expect(r.status, JSON.stringify(r.body)).toBe(200);
  }

  beforeAll(async () => {
    target = await createDataTarget();
    server = await startServer({ target, apiKey, env: { VALUEVERSE_TEST_CLOCK: "on", BILLING_SCHEDULER: "off" }, readyTimeoutMs: 90_000 });
    lago = Client(apiKey, { baseUrl: `${server.url}/api/v1` });
  });

  afterAll(async () => {
    await killAllServers();
    await target?.cleanup();
  });

  it("sets up a tax, a plan, a customer with the tax, a subscription, a coupon and a wallet on May 1st", async () => {
    await freeze("2024-05-01T00:00:00Z");
    const tax = (await lago.taxes.createTax({ tax: { name: "VAT", code: `vat_${run}`, rate: "20.0" } })).data.tax;
    expect(tax).toMatchObject({ rate: 20, applied_to_organization: false });
    const metric = (await lago.billableMetrics.createBillableMetric({ billable_metric: { name: "API calls", code: metricCode, aggregation_type: "count_agg" } })).data
      .billable_metric;
    await lago.plans.createPlan({
      plan: {
        name: "Starter",
        code: `starter_${run}`,
        interval: "monthly",
        amount_cents: 5000,
        amount_currency: "EUR",
        pay_in_advance: false,
        charges: [{ billable_metric_id: metric.lago_id, charge_model: "standard", properties: { amount: "0.02" } }],
      },
    });
    const customer = (await lago.customers.createCustomer({ customer: { external_id: customerId, name: "Ada", currency: "EUR", tax_codes: [tax.code] } })).data.customer;
    expect(customer.taxes?.map((t) => t.code)).toEqual([tax.code]);
    await lago.subscriptions.createSubscription({
      subscription: { external_customer_id: customerId, plan_code: `starter_${run}`, external_id: subscriptionId, billing_time: "calendar" },
    });
    await lago.coupons.createCoupon({
      coupon: { name: "Welcome", code: `welcome_${run}`, coupon_type: "fixed_amount", amount_cents: 1000, amount_currency: "EUR", frequency: "recurring", frequency_duration: 3, expiration: "no_expiration" },
    });
    const applied = (await lago.appliedCoupons.applyCoupon({ applied_coupon: { external_customer_id: customerId, coupon_code: `welcome_${run}` } })).data.applied_coupon;
    expect(applied).toMatchObject({ status: "active", frequency_duration_remaining: 3 });
    const wallet = (await lago.wallets.createWallet({ wallet: { external_customer_id: customerId, currency: "EUR", rate_amount: "1", paid_credits: "20", granted_credits: "10", name: "Prepaid" } }))
      .data.wallet;
    // The 10 granted credits count at once; the 20 paid ones once their credit invoice is paid.
    expect(wallet).toMatchObject({ balance_cents: 1000, credits_balance: "10" });
    walletId = wallet.lago_id;
    const purchase = (await lago.wallets.findAllWalletTransactions(walletId, { transaction_status: "purchased" })).data.wallet_transactions[0]!;
    expect(purchase).toMatchObject({ status: "pending", amount: "20.00" });
    const credit = (await lago.invoices.findInvoice(purchase.lago_invoice_id!)).data.invoice;
    expect(credit).toMatchObject({ invoice_type: "credit", total_amount_cents: 2000, taxes_amount_cents: 0 });
    await lago.invoices.updateInvoice(credit.lago_id, { invoice: { payment_status: "succeeded" } });
    expect((await lago.wallets.findWallet(walletId)).data.wallet).toMatchObject({ balance_cents: 3000, credits_balance: "30" });
  });

  it("takes 1,234 calls in May", async () => {
    await freeze("2024-05-15T12:00:00Z");
    const ts = Date.parse("2024-05-15T12:00:00Z") / 1000;
    for (let i = 0; i < 1234; i += 100) {
      const events = Array.from({ length: Math.min(100, 1234 - i) }, (_, k) => ({
        transaction_id: `tx-${run}-${i + k}`,
        external_subscription_id: subscriptionId,
        code: metricCode,
        timestamp: ts,
      }));
      await lago.events.createBatchEvents({ events });
    }
  });

  it("bills May on June 1st: coupon before the tax, prepaid credits after it", async () => {
    await freeze("2024-06-01T00:00:00Z");
    const list = (await lago.invoices.findAllInvoices({ external_customer_id: customerId, invoice_type: "subscription" })).data.invoices;
    expect(list).toHaveLength(1);
    const invoice = (await lago.invoices.findInvoice(list[0]!.lago_id)).data.invoice;
    expect(invoice).toMatchObject({ status: "finalized", currency: "EUR", ...EXPECTED });
    expect(invoice.applied_taxes?.map((t) => [t.tax_code, t.tax_rate, t.fees_amount_cents, t.amount_cents])).toEqual([[`vat_${run}`, 20, 6468, 1294]]);
    const fees = Object.fromEntries((invoice.fees ?? []).map((f) => [f.item.type, f]));
    expect(fees["subscription"]).toMatchObject({ amount_cents: 5000, taxes_amount_cents: 866, taxes_rate: 20 });
    expect(fees["charge"]).toMatchObject({ amount_cents: 2468, units: "1234", taxes_amount_cents: 428 });
    expect(invoice.credits?.map((c) => [c.item.type, c.amount_cents, c.before_taxes])).toEqual([["coupon", 1000, true]]);

    const applied = (await lago.appliedCoupons.findAllAppliedCoupons({ external_customer_id: customerId })).data.applied_coupons;
    expect(applied[0]).toMatchObject({ status: "active", frequency_duration_remaining: 2 });
    const wallet = (await lago.wallets.findWallet(walletId)).data.wallet;
    expect(wallet).toMatchObject({ balance_cents: 0, credits_balance: "0", consumed_credits: "30" });
    const outbound = (await lago.wallets.findAllWalletTransactions(walletId, { transaction_type: "outbound" })).data.wallet_transactions;
    expect(outbound.map((t) => [t.transaction_status, t.amount, t.lago_invoice_id])).toEqual([["invoiced", "30.00", invoice.lago_id]]);
  });

  it.skipIf(!hasPoppler)("the PDF shows the coupon, the tax line and the prepaid credits (needs poppler-utils)", async () => {
    const list = (await lago.invoices.findAllInvoices({ external_customer_id: customerId, invoice_type: "subscription" })).data.invoices;
    const r = await fetch(`${server.url}/api/v1/invoices/${list[0]!.lago_id}/pdf`, { headers: { authorization: `Bearer ${apiKey}` } });
    expect(r.status).toBe(200);
    const file = path.join(os.tmpdir(), `invoice-${run}.pdf`);
    fs.writeFileSync(file, Buffer.from(await r.arrayBuffer()));
    const text = execFileSync("pdftotext", ["-layout", file, "-"], { encoding: "utf8" });
    fs.rmSync(file, { force: true });
    expect(text).toContain("Coupon Welcome");
    expect(text).toMatch(/VAT 20% on 64\.68 EUR\s+12\.94 EUR/);
    expect(text).toMatch(/Prepaid credits\s+-30\.00 EUR/);
    expect(text).toMatch(/Total due\s+47\.62 EUR/);
  });
});
