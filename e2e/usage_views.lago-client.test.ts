// End to end: the usage views added beside current usage, through `lago-javascript-client`
// against the real server in a child process, under a test clock: a usage alert
// (subscriptions.createSubscriptionAlert, alert.triggered delivered to a receiver), projected usage
// (customers.findCustomerProjectedUsage), lifetime usage (subscriptions.getSubscriptionLifetimeUsage)
// and the invoice preview (invoices.invoicePreview). Runs on a fresh PGlite DATA_DIR, or PostgreSQL
// with TEST_DATABASE_URL.
//
// By hand (calendar billing, UTC, monthly plan in arrears €50.00, calls at €0.10, no tax):
//   30 calls on March 10th; on March 16th (16 of March's 31 days elapsed, both ends counted):
//   current usage 30 calls = 300 cents; projected 30 × 31 / 16 = 58.125 calls = 581 cents (581.25,
//   half-up); lifetime: invoiced 0, current 300; an alert at 200 cents has been crossed (one
//   alert.triggered); the preview of the invoice closing March: 5000 + 300 = 5300 cents.
import crypto from "node:crypto";
import { describe, expect, it } from "vitest";
import { secondlyEvents, subscribeStarter } from "./helpers/lago.ts";
import { eventually, scenario } from "./helpers/scenario.ts";
import { E2E_DB_KIND } from "./helpers/server.ts";

describe(`usage views through lago-javascript-client, real server on ${E2E_DB_KIND}`, () => {
  const run = crypto.randomBytes(3).toString("hex");
  const code = `calls_${run}`;
  const cus = `cust-views-${run}`;
  const sub = `sub-${cus}`;
  const t = scenario();

  it("alerts, projects, sums lifetime usage and previews the next invoice", async () => {
    await t.addWebhookEndpoint();
    await t.freeze("2024-03-01T00:00:00Z");
    await subscribeStarter(t.lago, { run, code, cus, sub });

    const alert = await t.lago.subscriptions.createSubscriptionAlert(sub, {
      alert: { alert_type: "current_usage_amount", code: `usage-${run}`, name: "Usage", thresholds: [{ code: "warn", value: "200" }] },
    } as never);
    expect((alert.data as { alert: unknown }).alert).toMatchObject({ code: `usage-${run}`, alert_type: "current_usage_amount", external_subscription_id: sub });
    const listed = await t.lago.subscriptions.getSubscriptionAlerts(sub);
    expect(listed.data.alerts.map((a: { code: string }) => a.code)).toEqual([`usage-${run}`]);

    await t.freeze("2024-03-10T00:00:00Z");
    const events = secondlyEvents({ run, code, sub }, 30, "2024-03-10T00:00:00Z");
    expect((await t.lago.events.createBatchEvents({ events: events as never })).status).toBe(200);
    await t.freeze("2024-03-16T00:00:00Z");

    // The alert: crossed once, delivered once.
    const triggered = await eventually("alert.triggered", async () => t.receiver.of("alert.triggered"), (r) => r.length >= 1);
    expect(triggered).toHaveLength(1);
    expect(triggered[0]!.json.triggered_alert).toMatchObject({ alert_code: `usage-${run}`, external_subscription_id: sub });

    const projected = (await t.lago.customers.findCustomerProjectedUsage(cus, { external_subscription_id: sub } as never)).data.customer_projected_usage;
    expect(projected.amount_cents).toBe(300);
    const charge = projected.charges_usage[0]!;
    expect(charge).toMatchObject({ units: "30", amount_cents: 300, projected_amount_cents: 581 });
    expect(Number(charge.projected_units)).toBe(58.125);

    const lifetime = (await t.lago.subscriptions.getSubscriptionLifetimeUsage(sub)).data.lifetime_usage;
    expect(lifetime).toMatchObject({ external_subscription_id: sub, invoiced_usage_amount_cents: 0, current_usage_amount_cents: 300 });

    const preview = (await t.lago.invoices.invoicePreview({ customer: { external_id: cus }, subscriptions: { external_ids: [sub] } } as never)).data.invoice;
    expect(preview).toMatchObject({ lago_id: null, status: "draft", fees_amount_cents: 5300, taxes_amount_cents: 0, total_amount_cents: 5300 });
    // Nothing stored: the customer has no invoice yet.
    expect((await t.lago.invoices.findAllInvoices({ external_customer_id: cus })).data.invoices).toEqual([]);
  });
});
