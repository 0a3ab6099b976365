// End to end: a month of usage → invoice → payment → webhook, with the real server
// (`node bin/valueverse.mjs serve`) in a child process, driven through `lago-javascript-client` (the
// test clock through plain HTTP), and Lago's webhooks received by a real HTTP receiver on 127.0.0.1
// that checks every signature with the README's recipe. The organization's clock is frozen on
// 1 March 2024 and moved to 1 April, when March is invoiced and the payment worker charges it through
// the built-in sandbox provider; the dunning schedule's first wait (1 h) is crossed by moving the
// clock again. Runs on a fresh PGlite DATA_DIR, or on PostgreSQL when TEST_DATABASE_URL is set.
//
// Amounts, worked out by hand (Lago's charge models; calendar billing, UTC, March 2024 whole):
//   plan fee (in arrears, the whole of March)                                   49.00 EUR
//   api_calls, graduated: 250 calls = 100 free (0–100: 0.00/call, no flat fee)
//                          + 150 × 0.02 (101–∞: 0.02/call) + that tier's flat 1.00      4.00 EUR
//   storage_gb, standard 0.10/GB: 10 + 20.5 + 0.25 = 30.75 GB → 3.075, half-up     3.08 EUR
//   total (no tax, coupon or credit)                                             56.08 EUR = 5608 cents
// Customer "dunning" pays with `pm_fails_then_succeeds`: the first attempt (1 April 00:00) fails
// transiently → invoice.payment_failure, payment_status stays pending; the retry 1 h later succeeds →
// invoice.payment_status_updated (succeeded). Customer "declined" (plan fee only: 49.00 EUR) pays
// with `pm_declines` → failed at once; after switching to `pm_succeeds`, retryPayment pays it.
import crypto from "node:crypto";
import { describe, expect, it } from "vitest";
import { call } from "./helpers/http.ts";
import { lagoError } from "./helpers/lago.ts";
import { at, eventually, scenario } from "./helpers/scenario.ts";
import { E2E_DB_KIND } from "./helpers/server.ts";

describe(`a month of usage → invoice → payment → webhook, real server on ${E2E_DB_KIND}`, () => {
  const run = crypto.randomBytes(3).toString("hex");
  const planCode = `growth-${run}`;
  const dunning = `cust-dunning-${run}`;
  const declined = `cust-declined-${run}`;
  const t = scenario({ PAYMENT_RETRY_SCHEDULE: "1h,1d,3d" });
  const { apiKey, receiver, freeze } = t;
  let txSeq = 0;
  let dunningInvoice = "";
  let declinedInvoice = "";

  it("sets up March: a webhook endpoint, metrics, a plan, two customers paying through the sandbox", async () => {
    await freeze("2024-03-01T00:00:00Z");
    const endpoint = await t.addWebhookEndpoint();
    expect(endpoint.data.webhook_endpoint.webhook_url).toBe(receiver.url);

    const calls = await t.lago.billableMetrics.createBillableMetric({ billable_metric: { name: "API calls", code: `api_calls_${run}`, aggregation_type: "count_agg" } });
    const storage = await t.lago.billableMetrics.createBillableMetric({
      billable_metric: { name: "Storage", code: `storage_gb_${run}`, aggregation_type: "sum_agg", field_name: "gb" },
    });
    await t.lago.plans.createPlan({
      plan: {
        name: "Growth",
        code: planCode,
        interval: "monthly",
        amount_cents: 4900,
        amount_currency: "EUR",
        pay_in_advance: false,
        charges: [
          {
            billable_metric_id: calls.data.billable_metric.lago_id,
            charge_model: "graduated",
            properties: {
              graduated_ranges: [
                { from_value: 0, to_value: 100, per_unit_amount: "0", flat_amount: "0" },
                { from_value: 101, to_value: null, per_unit_amount: "0.02", flat_amount: "1" },
              ],
            },
          },
          { billable_metric_id: storage.data.billable_metric.lago_id, charge_model: "standard", properties: { amount: "0.10" } },
        ],
      },
    } as never);
    for (const [external, token] of [
      [dunning, "pm_fails_then_succeeds"],
      [declined, "pm_declines"],
    ] as const) {
      await t.lago.customers.createCustomer({
        customer: {
          external_id: external,
          name: external,
          currency: "EUR",
          billing_configuration: { payment_provider: "stripe", payment_provider_code: "sandbox", provider_customer_id: token },
        },
      } as never);
      await t.lago.subscriptions.createSubscription({
        subscription: { external_customer_id: external, plan_code: planCode, external_id: `sub-${external}`, billing_time: "calendar" },
      });
    }

    // March's usage of the "dunning" customer: 250 calls and 30.75 GB over the month, sent at its end.
    await freeze("2024-03-31T23:59:30Z");
    const events = [
      ...Array.from({ length: 250 }, (_, i) => ({
        transaction_id: `call-${run}-${++txSeq}`,
        external_subscription_id: `sub-${dunning}`,
        code: `api_calls_${run}`,
        timestamp: at("2024-03-02T00:00:00Z") + i * 9000,
      })),
      ...[
        ["2024-03-05T10:00:00Z", 10],
        ["2024-03-18T10:00:00Z", "20.5"],
        ["2024-03-31T23:59:00Z", 0.25],
      ].map(([ts, gb]) => ({
        transaction_id: `gb-${run}-${++txSeq}`,
        external_subscription_id: `sub-${dunning}`,
        code: `storage_gb_${run}`,
        timestamp: at(ts as string),
        properties: { gb },
      })),
    ];
    for (let i = 0; i < events.length; i += 100) {
      const r = await t.lago.events.createBatchEvents({ events: events.slice(i, i + 100) as never });
      expect(r.status).toBe(200);
    }
    const usage = await t.lago.customers.findCustomerCurrentUsage(dunning, { external_subscription_id: `sub-${dunning}` });
    expect(usage.data.customer_usage.amount_cents).toBe(708); // 4.00 + 3.08 (3.075 half-up, per fee)
  });

  it("1 April: March is invoiced and charged; the first attempt fails transiently, the decline fails for good", async () => {
    await freeze("2024-04-01T00:00:00Z");
    // The clock move answers once billing and the payments due by then are done.
    const invoices = await t.lago.invoices.findAllInvoices({ external_customer_id: dunning });
    expect(invoices.data.invoices).toHaveLength(1);
    const invoice = (await t.lago.invoices.findInvoice(invoices.data.invoices[0]!.lago_id)).data.invoice;
    dunningInvoice = invoice.lago_id;
    expect(invoice).toMatchObject({ status: "finalized", currency: "EUR", fees_amount_cents: 5608, total_amount_cents: 5608, payment_status: "pending" });
    const byCode = Object.fromEntries(invoice.fees!.map((f) => [f.item.code, f.amount_cents]));
    expect(byCode).toEqual({ [planCode]: 4900, [`api_calls_${run}`]: 400, [`storage_gb_${run}`]: 308 });

    const payments = await t.lago.payments.findAllPayments({ external_customer_id: dunning });
    expect(payments.data.payments).toHaveLength(1);
    expect(payments.data.payments[0]).toMatchObject({
      invoice_ids: [dunningInvoice],
      amount_cents: 5608,
      amount_currency: "EUR",
      payment_status: "pending",
      payment_provider_code: "sandbox",
      provider_customer_id: "pm_fails_then_succeeds",
    });
    expect((payments.data.payments[0] as any).next_attempt_at).toBe("2024-04-01T01:00:00Z");

    const failure = await eventually(
      "invoice.payment_failure",
      async () => receiver.of("invoice.payment_failure", (j) => j.payment_provider_invoice_payment_error.lago_invoice_id === dunningInvoice),
      (v) => v.length === 1,
    );
    expect(failure[0]!.json.payment_provider_invoice_payment_error).toMatchObject({
      external_customer_id: dunning,
      provider_customer_id: "pm_fails_then_succeeds",
      payment_provider_code: "sandbox",
      provider_error: { error_code: "processing_error" },
    });

    const declinedInvoices = await t.lago.invoices.findAllInvoices({ external_customer_id: declined });
    declinedInvoice = declinedInvoices.data.invoices[0]!.lago_id;
    expect(declinedInvoices.data.invoices[0]).toMatchObject({ total_amount_cents: 4900, payment_status: "failed" });
    await eventually(
      "the decline's webhooks",
      async () => receiver.of("invoice.payment_status_updated", (j) => j.invoice.lago_id === declinedInvoice),
      (v) => v.length === 1 && v[0]!.json.invoice.payment_status === "failed",
    );
  });

  it("an hour later the retry succeeds: one charge, invoice.payment_status_updated received and signed", async () => {
    await freeze("2024-04-01T01:00:00Z");
    const invoice = (await t.lago.invoices.findInvoice(dunningInvoice)).data.invoice;
    expect(invoice).toMatchObject({ payment_status: "succeeded", total_paid_amount_cents: 5608, total_due_amount_cents: 0 });
    const list = await t.lago.payments.findAllPayments({ invoice_id: dunningInvoice });
    const payment = (await call(t.server.url, "GET", `/api/v1/payments/${list.data.payments[0]!.lago_id}`, { apiKey })).body.payment;
    expect(payment).toMatchObject({ payment_status: "succeeded", amount_cents: 5608, attempts_count: 2 });
    expect(payment.attempts.map((a: any) => a.outcome)).toEqual(["transient_failure", "succeeded"]);

    const updates = await eventually(
      "invoice.payment_status_updated",
      async () => receiver.of("invoice.payment_status_updated", (j) => j.invoice.lago_id === dunningInvoice),
      (v) => v.length === 1,
    );
    expect(updates[0]!.json).toMatchObject({
      webhook_type: "invoice.payment_status_updated",
      object_type: "invoice",
      invoice: { lago_id: dunningInvoice, payment_status: "succeeded", total_amount_cents: 5608, customer: { external_id: dunning } },
    });
    // Every webhook received carries a valid signature.
    expect(receiver.received.length).toBeGreaterThan(0);
    for (const r of receiver.received) {
      expect(r.algorithm).toBe("hmac");
      expect(receiver.signedWith(r), r.json.webhook_type).toBe(true);
    }
    // Paid: Lago refuses to retry it.
    expect((await lagoError(t.lago.invoices.retryPayment(dunningInvoice))).status).toBe(405);
  });

  it("the declined customer switches to a working card; retryPayment (no options) pays it through the worker", async () => {
    await t.lago.customers.createCustomer({ customer: { external_id: declined, billing_configuration: { provider_customer_id: "pm_succeeds" } } } as never);
    const r = await t.lago.invoices.retryPayment(declinedInvoice);
    expect(r.status).toBe(200);
    // The background worker (not a clock move) charges it.
    await eventually(
      "the declined invoice paid",
      async () => (await t.lago.invoices.findInvoice(declinedInvoice)).data.invoice.payment_status,
      (s) => s === "succeeded",
    );
    await eventually(
      "its webhook",
      async () => receiver.of("invoice.payment_status_updated", (j) => j.invoice.lago_id === declinedInvoice).map((x) => x.json.invoice.payment_status),
      (v) => v.join(",") === "failed,succeeded",
    );
    const all = await t.lago.payments.findAllPayments();
    expect(all.data.payments.map((p) => [p.lago_payable_id, p.payment_status, p.amount_cents]).sort()).toEqual(
      [
        [dunningInvoice, "succeeded", 5608],
        [declinedInvoice, "succeeded", 4900],
      ].sort(),
    );
    const metrics = await call(t.server.url, "GET", "/metrics");
    expect(metrics.body).toMatch(/billing_payment_attempts_total\{provider="sandbox",outcome="succeeded"\} 2/);
    expect(metrics.body).toMatch(/billing_payment_failures_total\{provider="sandbox",outcome="transient_failure"\} 1/);
    expect(metrics.body).toMatch(/billing_payment_failures_total\{provider="sandbox",outcome="declined"\} 1/);
  });

  it("a customer with taxes buys credits with a monthly rule, pays the credit invoice by hand in two parts; May 1st tops up", async () => {
    const manual = `cust-manual-${run}`;
    const vat = (await t.lago.taxes.createTax({ tax: { name: "VAT", code: `vat_${run}`, rate: "20" } } as never)).data.tax;
    await t.lago.customers.createCustomer({ customer: { external_id: manual, name: manual, currency: "EUR", tax_codes: [vat.code] } } as never);
    const wallet = (
      await t.lago.wallets.createWallet({
        wallet: {
          external_customer_id: manual,
          currency: "EUR",
          rate_amount: "1",
          paid_credits: "30",
          recurring_transaction_rules: [{ trigger: "interval", interval: "monthly", granted_credits: "5" }],
        },
      } as never)
    ).data.wallet;
    expect(wallet.recurring_transaction_rules).toEqual([expect.objectContaining({ trigger: "interval", method: "fixed", interval: "monthly", granted_credits: "5", status: "active" })]);

    // The credit invoice (no taxes on credits) embeds the customer with its taxes, as its own endpoint shows them.
    const [credit] = (await t.lago.invoices.findAllInvoices({ external_customer_id: manual })).data.invoices;
    expect(credit).toMatchObject({ invoice_type: "credit", total_amount_cents: 3000, payment_status: "pending" });
    const own = (await t.lago.customers.findCustomer(manual)).data.customer.taxes;
    expect(own?.map((t) => [t.code, t.rate])).toEqual([[vat.code, 20]]);
    expect((credit!.customer as { taxes?: unknown } | undefined)?.taxes).toEqual(own);

    const first = (await t.lago.payments.createPayment({ payment: { invoice_id: credit!.lago_id, amount_cents: 1000, reference: "wire-1", paid_at: "2024-04-01" } })).data.payment;
    expect(first).toMatchObject({ type: "manual", amount_cents: 1000, reference: "wire-1", payment_status: "succeeded", invoice_ids: [credit!.lago_id] });
    expect((await t.lago.invoices.findInvoice(credit!.lago_id)).data.invoice).toMatchObject({ payment_status: "pending", total_paid_amount_cents: 1000, total_due_amount_cents: 2000 });
    expect((await lagoError(t.lago.payments.createPayment({ payment: { invoice_id: credit!.lago_id, amount_cents: 2001, reference: "wire-2" } }))).status).toBe(422);
    await t.lago.payments.createPayment({ payment: { invoice_id: credit!.lago_id, amount_cents: 2000, reference: "wire-2" } });
    expect((await t.lago.invoices.findInvoice(credit!.lago_id)).data.invoice).toMatchObject({ payment_status: "succeeded", total_due_amount_cents: 0 });
    expect((await t.lago.wallets.findWallet(wallet.lago_id)).data.wallet.balance_cents).toBe(3000);
    const listed = await t.lago.payments.findAllPayments({ invoice_id: credit!.lago_id });
    expect(listed.data.payments.map((p) => [p.type, p.amount_cents])).toEqual([["manual", 2000], ["manual", 1000]]);
    const updates = await eventually(
      "the credit invoice's invoice.payment_status_updated",
      async () => receiver.of("invoice.payment_status_updated", (j) => j.invoice.lago_id === credit!.lago_id),
      (v) => v.length === 1,
    );
    expect(updates[0]!.json.invoice.customer.taxes).toEqual(own);

    // The wallet was created on April 1st: May 1st tops it up by 5 granted credits.
    await freeze("2024-05-01T00:00:00Z");
    expect((await t.lago.wallets.findWallet(wallet.lago_id)).data.wallet.balance_cents).toBe(3500);
  });
});
