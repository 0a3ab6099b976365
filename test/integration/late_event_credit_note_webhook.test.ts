// The credit note a late event issues (it lowered an invoiced amount) is announced by
// `credit_note.created` carrying what GET /credit_notes/:id shows, its `late_events` link to the
// adjustment fee and the events included. On PGlite by default, PostgreSQL with TEST_DATABASE_URL.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestApp, type TestApp } from "../helpers/app.ts";
import { uid } from "./support.ts";
import { BILLING_ENV, customer, invoiceOf, invoicesOf, orgWithHooks, subscribe, type Org } from "./billing_support.ts";

let t: TestApp;
beforeAll(async () => {
  t = await startTestApp({ env: { ...BILLING_ENV, WEBHOOK_WORKER: "off" } });
});
afterAll(async () => {
  await t?.close();
});

async function send(org: Org, sub: string, code: string, at: string, n: number): Promise<void> {
  const event = { transaction_id: uid("tx"), external_subscription_id: sub, code, timestamp: Math.floor(Date.parse(at) / 1000), properties: { n } };
  await org.api("POST", "/api/v1/events/batch", { events: [event] });
}

const latest = async (org: Org, cus: string) => invoiceOf(org, (await invoicesOf(org, cus))[0].lago_id);

describe("late-event credit note webhook", () => {
  it("credit_note.created shows the late_events link and equals what GET /credit_notes/:id shows", async () => {
    const org = await orgWithHooks(t);
    const metric = (
      await org.api("POST", "/api/v1/billable_metrics", { billable_metric: { name: "Used", code: uid("used"), aggregation_type: "sum_agg", field_name: "n" } })
    ).billable_metric;
    const planCode = uid("usage");
    await org.api("POST", "/api/v1/plans", {
      plan: {
        name: "Usage",
        code: planCode,
        interval: "monthly",
        amount_cents: 0,
        amount_currency: "EUR",
        charges: [{ billable_metric_id: metric.lago_id, charge_model: "standard", properties: { amount: "1" } }],
      },
    });
    const cus = await customer(org);
    const sub = await subscribe(org, cus, planCode);
    await org.freeze("2026-01-11T00:00:00Z");
    await send(org, sub, metric.code, "2026-01-10T00:00:00Z", 5);
    await org.freeze("2026-02-01T00:00:00Z");
    const jan = await latest(org, cus);
    expect(jan.total_amount_cents).toBe(500);
    t.clock.advance(5_000);
    await org.freeze("2026-02-06T00:00:00Z");
    // January corrected by -2 (5.00 becomes 3.00): 2.00 is owed back; February bills 1 unit.
    await send(org, sub, metric.code, "2026-01-25T00:00:00Z", -2);
    await send(org, sub, metric.code, "2026-02-05T00:00:00Z", 1);
    await org.freeze("2026-03-01T00:00:00Z");
    const feb = await latest(org, cus);
    const adjustment = feb.fees.find((f: any) => f.late_events_adjustment !== null);
    const janFee = jan.fees.find((f: any) => f.item.type === "charge").lago_id;

    const hooks = (await org.api("GET", "/api/v1/webhooks?webhook_type=credit_note.created")).webhooks as any[];
    expect(hooks).toHaveLength(1);
    const sent = hooks[0].payload.credit_note;
    expect(sent.late_events).toEqual({ lago_invoice_id: feb.lago_id, lago_fee_id: adjustment.lago_id, lago_original_fee_id: janFee });
    expect(sent).toMatchObject({ lago_invoice_id: jan.lago_id, total_amount_cents: 200, credit_amount_cents: 200, automatic: true });
    // February drew 1.00 of it in the same transaction: the webhook shows the note as it was committed.
    const shown = (await org.api("GET", `/api/v1/credit_notes/${sent.lago_id}`)).credit_note;
    expect(shown.balance_amount_cents).toBe(100);
    expect(sent).toEqual(shown);
  });
});
