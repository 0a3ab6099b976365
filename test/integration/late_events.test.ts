// Late events against a real database, under a test clock: events stored after a period was invoiced
// (with timestamps inside it) are billed as adjustment fees on the subscription's next invoice, each
// traced to exactly those events (GET /fees/:id/events); billed once; a lowered amount shows as a
// zero-amount note with what it owes back, and a credit note on the period's invoice for it. Amounts worked out by hand. On PGlite by default,
// PostgreSQL with TEST_DATABASE_URL.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestApp, type TestApp } from "../helpers/app.ts";
import { uid } from "./support.ts";
import { BILLING_ENV, customer, invoiceOf, invoicesOf, newOrg, plan, subscribe, type Org } from "./billing_support.ts";

let t: TestApp;
beforeAll(async () => {
  t = await startTestApp({ env: BILLING_ENV });
});
afterAll(async () => {
  await t?.close();
});

async function send(org: Org, sub: string, code: string, at: string, n: number, properties?: Record<string, unknown>): Promise<string[]> {
  const events = Array.from({ length: n }, () => ({
    transaction_id: uid("tx"),
    external_subscription_id: sub,
    code,
    timestamp: Math.floor(Date.parse(at) / 1000),
    ...(properties ? { properties } : {}),
  }));
  await org.api("POST", "/api/v1/events/batch", { events });
  return events.map((e) => e.transaction_id);
}

/** The invoice issued for the period ending at `periodEnd` (newest first in the list). */
const latest = async (org: Org, cus: string) => invoiceOf(org, (await invoicesOf(org, cus))[0].lago_id);

describe("late events", () => {
  it("are billed on the next invoice as adjustments traced to them, once", async () => {
    const org = await newOrg(t);
    await org.freeze("2026-01-01T00:00:00Z");
    // 10.00 a month, 0.05 per call.
    const { calls, plan: planCode } = await plan(org, { amount_cents: 1000 });
    const cus = await customer(org);
    const sub = await subscribe(org, cus, planCode);
    await org.freeze("2026-01-16T00:00:00Z");
    await send(org, sub, calls, "2026-01-15T10:00:00Z", 10);
    await org.freeze("2026-02-01T00:00:00Z");
    const jan = await latest(org, cus);
    // 10.00 + 10 × 0.05.
    expect(jan.total_amount_cents).toBe(1050);
    const janUsage = jan.fees.find((f: any) => f.item.type === "charge");
    expect([janUsage.units, janUsage.amount_cents]).toEqual(["10", 50]);

    // Stored after January was invoiced: 4 calls dated January 20, and February's usage.
    t.clock.advance(5_000);
    await org.freeze("2026-02-11T00:00:00Z");
    const late = await send(org, sub, calls, "2026-01-20T08:00:00Z", 4);
    await send(org, sub, calls, "2026-02-10T08:00:00Z", 6);
    // January's invoice does not change.
    expect((await invoiceOf(org, jan.lago_id)).total_amount_cents).toBe(1050);

    await org.freeze("2026-03-01T00:00:00Z");
    const feb = await latest(org, cus);
    // 10.00 + February 6 × 0.05 = 0.30 + January's 4 late calls × 0.05 = 0.20.
    expect(feb.total_amount_cents).toBe(1050);
    const adj = feb.fees.find((f: any) => f.late_events_adjustment !== null);
    expect(adj).toMatchObject({
      amount_cents: 20,
      units: "4",
      events_count: 4,
      lago_original_fee_id: janUsage.lago_id,
      from_date: "2026-01-01T00:00:00Z",
      item: { type: "charge", code: calls },
      late_events_adjustment: { adjusted_billed_at: "2026-02-01T00:00:00Z" },
    });
    expect(adj.amount_details.late_events).toMatchObject({ billed_amount_cents: 50, amount_cents_now: 70, credit_due_cents: 0 });
    expect(feb.fees.filter((f: any) => f.item.type === "charge").map((f: any) => [f.from_date, f.amount_cents])).toEqual([
      ["2026-02-01T00:00:00Z", 30],
      ["2026-01-01T00:00:00Z", 20],
    ]);
    // Traced to exactly the late events; January's fee now shows all 14.
    const traced = (await org.api("GET", `/api/v1/fees/${adj.lago_id}/events?per_page=100`)).events.map((e: any) => e.transaction_id);
    expect(traced.sort()).toEqual([...late].sort());
    expect((await org.api("GET", `/api/v1/fees/${janUsage.lago_id}/events?per_page=100`)).meta.total_count).toBe(14);

    // Billed once: running the job again, and the next month, add nothing more.
    expect((await t.app.invoicing.runBillingJob({ orgId: org.orgId })).invoicesIssued).toBe(0);
    await org.freeze("2026-04-01T00:00:00Z");
    const mar = await latest(org, cus);
    expect(mar.fees.map((f: any) => [f.item.type, f.amount_cents])).toEqual([["subscription", 1000]]);
    expect(mar.total_amount_cents).toBe(1000);

    // More late events for February (already adjusted for nothing, invoiced in March): the April invoice adjusts it.
    t.clock.advance(5_000);
    const lateFeb = await send(org, sub, calls, "2026-02-27T23:59:00Z", 2);
    await org.freeze("2026-05-01T00:00:00Z");
    const apr = await latest(org, cus);
    const adj2 = apr.fees.find((f: any) => f.late_events_adjustment !== null);
    expect(adj2).toMatchObject({ amount_cents: 10, units: "2", from_date: "2026-02-01T00:00:00Z", late_events_adjustment: { adjusted_billed_at: "2026-03-01T00:00:00Z" } });
    expect(apr.total_amount_cents).toBe(1010);
    const traced2 = (await org.api("GET", `/api/v1/fees/${adj2.lago_id}/events`)).events.map((e: any) => e.transaction_id);
    expect(traced2.sort()).toEqual([...lateFeb].sort());
    // Every invoice numbered in sequence, none twice for a period.
    expect((await invoicesOf(org, cus)).map((i: any) => i.organization_sequential_id)).toEqual([4, 3, 2, 1]);
  });

  it("a late event that lowers a period's amount is a zero-amount note and a credit note on the period's invoice", async () => {
    const org = await newOrg(t);
    await org.freeze("2026-01-01T00:00:00Z");
    const metric = (
      await org.api("POST", "/api/v1/billable_metrics", { billable_metric: { name: "Credits used", code: uid("used"), aggregation_type: "sum_agg", field_name: "n" } })
    ).billable_metric;
    const p = (
      await org.api("POST", "/api/v1/plans", {
        plan: {
          name: "Usage",
          code: uid("usage"),
          interval: "monthly",
          amount_cents: 0,
          amount_currency: "EUR",
          charges: [{ billable_metric_id: metric.lago_id, charge_model: "standard", properties: { amount: "1" } }],
        },
      })
    ).plan;
    const cus = await customer(org);
    const sub = await subscribe(org, cus, p.code);
    await org.freeze("2026-01-11T00:00:00Z");
    await send(org, sub, metric.code, "2026-01-10T00:00:00Z", 1, { n: 5 });
    await org.freeze("2026-02-01T00:00:00Z");
    const jan = await latest(org, cus);
    expect(jan.total_amount_cents).toBe(500);
    t.clock.advance(5_000);
    await org.freeze("2026-02-06T00:00:00Z");
    // A correction for January: -2.
    await send(org, sub, metric.code, "2026-01-25T00:00:00Z", 1, { n: -2 });
    await send(org, sub, metric.code, "2026-02-05T00:00:00Z", 1, { n: 1 });
    await org.freeze("2026-03-01T00:00:00Z");
    const feb = await latest(org, cus);
    const note = feb.fees.find((f: any) => f.late_events_adjustment !== null);
    expect(note).toMatchObject({ amount_cents: 0, units: "-2", lago_original_fee_id: jan.fees.find((f: any) => f.item.type === "charge").lago_id });
    expect(note.amount_details.late_events).toMatchObject({ billed_amount_cents: 500, amount_cents_now: 300, credit_due_cents: 200 });
    // The 2.00 owed back is a credit note on January's invoice, traced to the late event through the note fee.
    const notes = (await org.api("GET", `/api/v1/customers/${cus}/credit_notes`)).credit_notes as any[];
    expect(notes).toHaveLength(1);
    const janFee = jan.fees.find((f: any) => f.item.type === "charge").lago_id;
    expect(notes[0]).toMatchObject({
      lago_invoice_id: jan.lago_id,
      total_amount_cents: 200,
      credit_amount_cents: 200,
      refund_amount_cents: 0,
      automatic: true,
      late_events: { lago_invoice_id: feb.lago_id, lago_fee_id: note.lago_id, lago_original_fee_id: janFee },
    });
    expect(notes[0].items.map((it: any) => [it.fee.lago_id, it.amount_cents])).toEqual([[janFee, 200]]);
    expect((await org.api("GET", `/api/v1/fees/${note.lago_id}/events`)).events.map((e: any) => e.properties.n)).toEqual([-2]);
    // February (1 × 1.00) draws 1.00 of it at once; the total is never negative; 1.00 is left.
    expect(feb).toMatchObject({ credit_notes_amount_cents: 100, total_amount_cents: 0 });
    expect((await org.api("GET", `/api/v1/credit_notes/${notes[0].lago_id}`)).credit_note).toMatchObject({ balance_amount_cents: 100, credit_status: "available" });
    // Credited once: the job again, and the next period, issue no second note for it.
    expect((await t.app.invoicing.runBillingJob({ orgId: org.orgId })).invoicesIssued).toBe(0);
    await org.freeze("2026-04-01T00:00:00Z");
    expect((await org.api("GET", `/api/v1/customers/${cus}/credit_notes`)).credit_notes).toHaveLength(1);
  });
});
