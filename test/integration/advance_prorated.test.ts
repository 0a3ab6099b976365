// Prorated charges paid in advance (Lago's `prorated: true` on a standard charge of a recurring
// metric) against a real database, under a test clock: each event's units are paid for the days
// left in the period from the event's day, both ends included, over the period's days. Also: the
// worker on the shared background loop bills after an ingest commit without being asked, and its
// stop lets the transaction in progress commit. Amounts by hand. PGlite by default, PostgreSQL with
// TEST_DATABASE_URL.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestApp, type TestApp } from "../helpers/app.ts";
import { scalar, uid, waitFor } from "./support.ts";
import { BILLING_ENV, customer, invoiceOf, invoicesOf, newOrg, seatsPlanOf, subscribe, type Org } from "./billing_support.ts";
import { AdvanceBilling } from "../../src/modules/invoicing/index.ts";

let t: TestApp;
beforeAll(async () => {
  t = await startTestApp({ env: BILLING_ENV });
});
afterAll(async () => {
  await t?.close();
});

/** Seats: a recurring sum of `seats`; €10 a seat a month, paid in advance, prorated or not. */
async function seatsPlan(org: Org, prorated: boolean) {
  const { metric, plan } = await seatsPlanOf(
    org,
    { aggregation_type: "sum_agg", field_name: "seats", recurring: true },
    { charge_model: "standard", prorated, properties: { amount: "10" } },
  );
  expect(plan.charges[0]).toMatchObject({ pay_in_advance: true, prorated });
  return { seats: metric.code as string, plan: plan.code as string };
}

/** A new organization on July 1st 2026 and a customer subscribed to its seats plan. */
async function seatsCustomer(prorated: boolean, customerFields: Record<string, unknown> = {}) {
  const org = await newOrg(t);
  await org.freeze("2026-07-01T00:00:00Z");
  const p = await seatsPlan(org, prorated);
  const cus = await customer(org, customerFields);
  const sub = await subscribe(org, cus, p.plan);
  return { org, p, cus, sub };
}

const send = (org: Org, sub: string, code: string, seats: number, at: string) =>
  org.api("POST", "/api/v1/events", {
    event: { transaction_id: uid("tx"), external_subscription_id: sub, code, timestamp: Math.floor(Date.parse(at) / 1000), properties: { seats } },
  });

const chronological = (list: any[]) => [...list].sort((a, b) => a.organization_sequential_id - b.organization_sequential_id);

describe("prorated charges paid in advance", () => {
  it("bills each added seat for the days left in the month, its own day included", async () => {
    const org = await newOrg(t);
    await org.freeze("2026-07-01T00:00:00Z");
    const p = await seatsPlan(org, true);
    const full = await seatsPlan(org, false);
    const cus = await customer(org);
    const sub = await subscribe(org, cus, p.plan);
    const fullCus = await customer(org);
    const fullSub = await subscribe(org, fullCus, full.plan);

    // July 10th: 3 seats for 22 of July's 31 days: 3 × €10 × 22/31 = €21.2903… → €21.29.
    await org.freeze("2026-07-10T09:00:00Z");
    await send(org, sub, p.seats, 3, "2026-07-10T09:00:00Z");
    await send(org, fullSub, full.seats, 3, "2026-07-10T09:00:00Z");
    // One seat removed: nothing is refunded in advance.
    await org.freeze("2026-07-15T00:00:00Z");
    await send(org, sub, p.seats, -1, "2026-07-15T00:00:00Z");
    // Lago's estimate prorates at the organization's now: 2 seats on July 20th, 12 days: 2 × €10 × 12/31 = €7.7419… → €7.74.
    await org.freeze("2026-07-20T00:00:00Z");
    const estimate = await org.api("POST", "/api/v1/events/estimate_fees", { event: { code: p.seats, external_subscription_id: sub, properties: { seats: 2 } } });
    expect(estimate.fees.map((f: any) => [f.units, f.amount_cents])).toEqual([["2", 774]]);
    // July 31st: 1 seat for the last day: €10 × 1/31 = €0.3225… → €0.32.
    await org.freeze("2026-07-31T18:00:00Z");
    await send(org, sub, p.seats, 1, "2026-07-31T18:00:00Z");
    await t.app.advanceBilling.runDue({ orgId: org.orgId });

    const invoices = chronological(await invoicesOf(org, cus));
    expect(invoices.map((i) => [i.invoice_type, i.fees_amount_cents])).toEqual([
      ["subscription", 2129],
      ["subscription", 32],
    ]);
    const first = await invoiceOf(org, invoices[0].lago_id);
    expect(first.fees).toHaveLength(1);
    expect(first.fees[0]).toMatchObject({ pay_in_advance: true, units: "3", amount_cents: 2129, events_count: 1 });
    // The same seats without proration: the whole month, €30.00.
    expect((await invoicesOf(org, fullCus)).map((i) => i.fees_amount_cents)).toEqual([3000]);

  });

  it("prorates in the customer's timezone: 23:30 UTC on July 9th is July 10th in Paris", async () => {
    const { org, p, cus, sub } = await seatsCustomer(true, { timezone: "Europe/Paris" });
    await org.freeze("2026-07-09T23:30:00Z");
    // 31 seats for 22 days: €220.00 exactly (in UTC it would be 23 days, €230.00).
    await send(org, sub, p.seats, 31, "2026-07-09T23:30:00Z");
    await t.app.advanceBilling.runDue({ orgId: org.orgId });
    expect((await invoicesOf(org, cus)).map((i) => i.fees_amount_cents)).toEqual([22000]);
  });
});

describe("the advance worker on the shared background loop", () => {
  it("an ingest commit kicks it: the event is billed without anyone asking", async () => {
    const { org, p, cus, sub } = await seatsCustomer(false);
    await org.freeze("2026-07-02T00:00:00Z");
    await send(org, sub, p.seats, 2, "2026-07-02T00:00:00Z");
    // No runDue: the ingest commit's kick (or, at worst, the 1 s poll) bills it.
    await waitFor(async () => (await invoicesOf(org, cus)).length === 1, "the advance invoice", 10_000);
    expect((await invoicesOf(org, cus)).map((i) => i.fees_amount_cents)).toEqual([2000]);
  });

  it("stop lets the transaction in progress commit and resolves after it; nothing more is taken", async () => {
    const { org, p, cus, sub } = await seatsCustomer(false);
    await org.freeze("2026-07-02T00:00:00Z");
    // The app's own worker would bill these first: a second subscription's events are held back
    // from it by pausing inside the other worker's transaction.
    let entered!: () => void;
    const inside = new Promise<void>((r) => (entered = r));
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    const worker = new AdvanceBilling({
      db: t.db,
      clock: t.app.testClock,
      subscriptions: t.app.subscriptions,
      customers: t.app.customers,
      invoicing: t.app.invoicing,
      pollMs: 50,
      onInvoiceIssued: async () => {
        entered();
        await held;
      },
      onError: () => {},
    });
    await t.app.advanceBilling.stop();
    await send(org, sub, p.seats, 1, "2026-07-02T00:00:00Z");
    await send(org, sub, p.seats, 1, "2026-07-02T00:00:00Z");
    expect(await scalar(t.db, "SELECT count(*) AS n FROM advance_charge_events WHERE org_id = $1", [org.orgId])).toBe(2);
    worker.start();
    await inside;
    let stopped = false;
    const stopping = worker.stop().then(() => (stopped = true));
    await new Promise((r) => setTimeout(r, 100));
    expect(stopped).toBe(false);
    release();
    await stopping;
    // The transaction in progress committed both queued events (one transaction takes up to 10) and their invoices.
    expect((await invoicesOf(org, cus)).map((i) => i.fees_amount_cents)).toEqual([1000, 1000]);
    expect(await scalar(t.db, "SELECT count(*) AS n FROM advance_charge_events WHERE org_id = $1", [org.orgId])).toBe(0);
    // Stopped: a new event stays queued.
    await send(org, sub, p.seats, 1, "2026-07-02T00:00:00Z");
    await new Promise((r) => setTimeout(r, 200));
    expect(await scalar(t.db, "SELECT count(*) AS n FROM advance_charge_events WHERE org_id = $1", [org.orgId])).toBe(1);
  });
});
