// End to end: a month of usage billed, then Lago's analytics read back through
// `lago-javascript-client` (analytics.findAllGrossRevenues, findAllInvoiceCollections,
// findAllInvoicedUsages, findAllMrrs, findAllOverdueBalances, findAllUsages) against the real server
// in a child process, under a test clock. Runs on a fresh PGlite DATA_DIR, or PostgreSQL with
// TEST_DATABASE_URL.
//
// By hand (calendar billing, UTC, monthly plan in arrears, no tax, no payment provider):
//   March 2024: plan fee 50.00 + 30 calls × 0.10 = 3.00 → one invoice of 53.00 issued 1 April,
//   due 1 April, payment pending. On 15 April:
//   gross revenue (March, April)  0 | 5300 (1 invoice)      MRR           0 | 5000
//   invoiced usage                April: calls 300          collection    April: pending 1 × 5300
//   overdue balance               April: 5300 [the invoice] usage         March: 30 calls, 300
import crypto from "node:crypto";
import { describe, expect, it } from "vitest";
import { lagoError, secondlyEvents, subscribeStarter } from "./helpers/lago.ts";
import { scenario } from "./helpers/scenario.ts";
import { E2E_DB_KIND } from "./helpers/server.ts";

describe(`revenue analytics through lago-javascript-client, real server on ${E2E_DB_KIND}`, () => {
  const run = crypto.randomBytes(3).toString("hex");
  const code = `calls_${run}`;
  const cus = `cust-analytics-${run}`;
  const t = scenario();
  const MAR = "2024-03-01T00:00:00.000Z";
  const APR = "2024-04-01T00:00:00.000Z";

  it("bills March and reads every report on 15 April", async () => {
    await t.freeze("2024-03-01T00:00:00Z");
    await subscribeStarter(t.lago, { run, code, cus, sub: `sub-${cus}` });
    await t.freeze("2024-03-20T00:00:00Z");
    const events = secondlyEvents({ run, code, sub: `sub-${cus}` }, 30, "2024-03-10T00:00:00Z");
    expect((await t.lago.events.createBatchEvents({ events: events as never })).status).toBe(200);
    await t.freeze("2024-04-01T00:00:00Z");
    await t.freeze("2024-04-15T00:00:00Z");
    const invoices = (await t.lago.invoices.findAllInvoices({ external_customer_id: cus })).data.invoices;
    expect(invoices.map((i) => [i.total_amount_cents, i.payment_status])).toEqual([[5300, "pending"]]);
    const invoiceId = invoices[0]!.lago_id;

    const gross = (await t.lago.analytics.findAllGrossRevenues({ months: 2, currency: "EUR" })).data.gross_revenues;
    expect(gross.map((r) => [r.month, r.amount_cents, r.currency, r.invoices_count])).toEqual([
      [MAR, 0, "EUR", 0],
      [APR, 5300, "EUR", 1],
    ]);
    const mine = (await t.lago.analytics.findAllGrossRevenues({ months: 1, external_customer_id: cus })).data.gross_revenues;
    expect(mine.map((r) => r.amount_cents)).toEqual([5300]);

    const mrrs = (await t.lago.analytics.findAllMrrs({ months: 2, currency: "EUR" })).data.mrrs;
    expect(mrrs.map((r) => [r.month, r.amount_cents])).toEqual([
      [MAR, 0],
      [APR, 5000],
    ]);

    const usage = (await t.lago.analytics.findAllInvoicedUsages({ months: 2 })).data.invoiced_usages;
    expect(usage).toEqual([{ month: APR, code, amount_cents: 300, currency: "EUR" }]);

    const collection = (await t.lago.analytics.findAllInvoiceCollections({ months: 1, currency: "EUR" })).data.invoice_collections;
    expect(collection.map((r) => [r.payment_status, r.invoices_count, r.amount_cents])).toEqual([
      ["pending", 1, 5300],
      ["succeeded", 0, 0],
      ["failed", 0, 0],
    ]);

    const overdue = (await t.lago.analytics.findAllOverdueBalances({ months: 1 })).data.overdue_balances;
    expect(overdue.map((r) => [r.month, r.amount_cents, r.lago_invoice_ids])).toEqual([[APR, 5300, [invoiceId]]]);

    const usages = (await t.lago.analytics.findAllUsages({ time_granularity: "monthly", from_date: "2024-03-01", to_date: "2024-04-30" })).data.usages;
    expect(usages.map((u) => [u.start_of_period_dt, u.end_of_period_dt, u.billable_metric_code, u.units, u.amount_cents, u.amount_currency])).toEqual([
      ["2024-03-01", "2024-03-31", code, "30", 300, "EUR"],
    ]);
  });

  it("a bad parameter is a 422 naming it", async () => {
    const err = await lagoError<{ code: string; error_details: Record<string, string[]> }>(t.lago.analytics.findAllMrrs({ months: 0 }));
    expect(err.status).toBe(422);
    expect(Object.keys(err.body.error_details)).toEqual(["months"]);
  });
});
