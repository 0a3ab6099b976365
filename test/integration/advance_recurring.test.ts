// Charges paid in advance on recurring sums against a real database, replaying two periods under a
// test clock: the units held when a period ends are billed again, in advance, on the subscription's
// periodic invoice that closes it (Lago), priced from nothing (prorated charges: the whole period);
// the next period's events are priced on top of them, and a late event of a closed period moves the
// units carried after it. Amounts by hand. PGlite by default, PostgreSQL with TEST_DATABASE_URL.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestApp, type TestApp } from "../helpers/app.ts";
import { uid } from "./support.ts";
import { BILLING_ENV, customer, invoiceOf, invoicesOf, newOrg, subscribe, type Org } from "./billing_support.ts";

let t: TestApp;
beforeAll(async () => {
  t = await startTestApp({ env: BILLING_ENV });
});
afterAll(async () => {
  await t?.close();
});

async function seatsMetric(org: Org, recurring: boolean) {
  return (
    await org.api("POST", "/api/v1/billable_metrics", {
      billable_metric: { name: "Seats", code: uid("seats"), aggregation_type: "sum_agg", field_name: "seats", recurring },
    })
  ).billable_metric;
}

async function planWith(org: Org, amountCents: number, charge: Record<string, unknown>) {
  return (
    await org.api("POST", "/api/v1/plans", {
      plan: { name: "Seats", code: uid("seats"), interval: "monthly", amount_cents: amountCents, amount_currency: "EUR", charges: [{ pay_in_advance: true, ...charge }] },
    })
  ).plan.code as string;
}

/** Units 0–10 at €1, from 11 at €0.50 plus a €2 flat fee: 10 cost €10, 12 €13, 13 €13.50, 14 €14. */
const TIERS = {
  graduated_ranges: [
    { from_value: 0, to_value: 10, per_unit_amount: "1", flat_amount: "0" },
    { from_value: 11, to_value: null, per_unit_amount: "0.5", flat_amount: "2" },
  ],
};

const send = (org: Org, sub: string, code: string, seats: number, at: string) =>
  org.api("POST", "/api/v1/events", {
    event: { transaction_id: uid("tx"), external_subscription_id: sub, code, timestamp: Math.floor(Date.parse(at) / 1000), properties: { seats } },
  });

const chronological = (list: any[]) => [...list].sort((a, b) => a.organization_sequential_id - b.organization_sequential_id);

/** An invoice's fees as [item type, units, amount cents, from date], in a stable order. */
const feeLines = async (org: Org, lagoId: string) =>
  ((await invoiceOf(org, lagoId)).fees as any[]).map((f) => [f.item.type, f.units, f.amount_cents, f.from_date?.slice(0, 10) ?? null]).sort();

describe("charges paid in advance on recurring metrics", () => {
  it("bills the units carried over on each periodic invoice and prices the next period's events on top of them", async () => {
    const org = await newOrg(t);
    await org.freeze("2026-07-01T00:00:00Z");
    const seats = await seatsMetric(org, true);
    const planCode = await planWith(org, 1000, { billable_metric_id: seats.lago_id, charge_model: "graduated", properties: TIERS });
    const cus = await customer(org);
    const sub = await subscribe(org, cus, planCode);
    const advance = async () => {
      await t.app.advanceBilling.runDue({ orgId: org.orgId });
      return chronological(await invoicesOf(org, cus)).map((i) => i.fees_amount_cents);
    };

    // July: 12 seats cost €13.00; 2 removed: nothing back, 10 held.
    await org.freeze("2026-07-05T00:00:00Z");
    await send(org, sub, seats.code, 12, "2026-07-05T00:00:00Z");
    await org.freeze("2026-07-20T00:00:00Z");
    await send(org, sub, seats.code, -2, "2026-07-20T00:00:00Z");
    expect(await advance()).toEqual([1300]);

    // August 1st: July's invoice, with the 10 seats carried into August billed in advance (€10.00).
    await org.freeze("2026-08-01T01:00:00Z");
    let invoices = chronological(await invoicesOf(org, cus));
    expect(invoices.map((i) => i.fees_amount_cents)).toEqual([1300, 2000]);
    expect(await feeLines(org, invoices[1].lago_id)).toEqual([
      ["charge", "10", 1000, "2026-08-01"],
      ["subscription", "1", 1000, "2026-07-01"],
    ]);
    const carried = (await invoiceOf(org, invoices[1].lago_id)).fees.find((f: any) => f.item.type === "charge");
    expect(carried).toMatchObject({ pay_in_advance: true, events_count: 0, item: expect.objectContaining({ code: seats.code }) });
    // Carried units have no events of their own in August.
    expect((await org.api("GET", `/api/v1/fees/${carried.lago_id}/events`)).events).toEqual([]);

    // August 10th: 3 seats on top of the 10: price(13) − price(10) = €3.50 (from nothing they would cost €3.00).
    await org.freeze("2026-08-10T00:00:00Z");
    await send(org, sub, seats.code, 3, "2026-08-10T00:00:00Z");
    expect(await advance()).toEqual([1300, 2000, 350]);
    // A late event of July (1 seat on July 25th): billed in July, on top of July's 10 (€2.50), and carried from then on.
    await org.freeze("2026-08-12T00:00:00Z");
    await send(org, sub, seats.code, 1, "2026-07-25T00:00:00Z");
    expect(await advance()).toEqual([1300, 2000, 350, 250]);
    // Current usage shows the 14 seats held.
    const usage = (await org.api("GET", `/api/v1/customers/${cus}/current_usage?external_subscription_id=${sub}`)).customer_usage;
    expect(usage.charges_usage[0]).toMatchObject({ units: "14" });

    // September 1st: August's invoice carries the 14 seats into September: €14.00.
    await org.freeze("2026-09-01T01:00:00Z");
    invoices = chronological(await invoicesOf(org, cus));
    expect(invoices.map((i) => i.fees_amount_cents)).toEqual([1300, 2000, 350, 250, 2400]);
    expect(await feeLines(org, invoices[4].lago_id)).toEqual([
      ["charge", "14", 1400, "2026-09-01"],
      ["subscription", "1", 1000, "2026-08-01"],
    ]);
    // The billing job run again issues nothing more.
    await t.app.invoicing.runBillingJob({ orgId: org.orgId });
    expect(await invoicesOf(org, cus)).toHaveLength(5);
  });

  it("a prorated charge pays the carried units for the whole next period, and the period's additions prorated", async () => {
    const org = await newOrg(t);
    await org.freeze("2026-07-01T00:00:00Z");
    const seats = await seatsMetric(org, true);
    const planCode = await planWith(org, 0, { billable_metric_id: seats.lago_id, charge_model: "standard", prorated: true, properties: { amount: "10" } });
    const cus = await customer(org);
    const sub = await subscribe(org, cus, planCode);

    // July 10th: 3 seats × €10 × 22/31 = €21.29.
    await org.freeze("2026-07-10T00:00:00Z");
    await send(org, sub, seats.code, 3, "2026-07-10T00:00:00Z");
    await t.app.advanceBilling.runDue({ orgId: org.orgId });
    // August 1st: the 3 seats for all of August, €30.00.
    await org.freeze("2026-08-01T01:00:00Z");
    // August 16th: 1 seat for 16 of 31 days: €5.1612… → €5.16.
    await org.freeze("2026-08-16T00:00:00Z");
    await send(org, sub, seats.code, 1, "2026-08-16T00:00:00Z");
    await t.app.advanceBilling.runDue({ orgId: org.orgId });
    // September 1st: 4 seats for all of September, €40.00.
    await org.freeze("2026-09-01T01:00:00Z");
    const invoices = chronological(await invoicesOf(org, cus));
    expect(invoices.map((i) => i.fees_amount_cents)).toEqual([2129, 3000, 516, 4000]);
    expect(await feeLines(org, invoices[3].lago_id)).toEqual([
      ["charge", "4", 4000, "2026-09-01"],
      ["subscription", "1", 0, "2026-08-01"],
    ]);
  });

  it("a subscription terminated mid-period carries nothing into a period it will not have", async () => {
    const org = await newOrg(t);
    await org.freeze("2026-07-01T00:00:00Z");
    const seats = await seatsMetric(org, true);
    const planCode = await planWith(org, 0, { billable_metric_id: seats.lago_id, charge_model: "standard", properties: { amount: "10" } });
    const cus = await customer(org);
    const sub = await subscribe(org, cus, planCode);
    await org.freeze("2026-07-05T00:00:00Z");
    await send(org, sub, seats.code, 2, "2026-07-05T00:00:00Z");
    await t.app.advanceBilling.runDue({ orgId: org.orgId });
    // August 1st: the 2 seats for August, €20.00.
    await org.freeze("2026-08-01T01:00:00Z");
    await org.freeze("2026-08-15T00:00:00Z");
    await org.api("DELETE", `/api/v1/subscriptions/${sub}`);
    const invoices = chronological(await invoicesOf(org, cus));
    expect(invoices.map((i) => i.fees_amount_cents)).toEqual([2000, 2000, 0]);
    // The final invoice (August 1st to 15th) bills no seats again.
    expect((await feeLines(org, invoices[2].lago_id)).filter((l) => l[0] === "charge")).toEqual([]);
  });

  it("metered sums paid in advance start each period from nothing and carry nothing over", async () => {
    const org = await newOrg(t);
    await org.freeze("2026-07-01T00:00:00Z");
    const seats = await seatsMetric(org, false);
    const planCode = await planWith(org, 1000, { billable_metric_id: seats.lago_id, charge_model: "graduated", properties: TIERS });
    const cus = await customer(org);
    const sub = await subscribe(org, cus, planCode);
    await org.freeze("2026-07-05T00:00:00Z");
    await send(org, sub, seats.code, 12, "2026-07-05T00:00:00Z");
    await t.app.advanceBilling.runDue({ orgId: org.orgId });
    await org.freeze("2026-08-10T00:00:00Z");
    // 3 in August: from nothing, €3.00.
    await send(org, sub, seats.code, 3, "2026-08-10T00:00:00Z");
    await t.app.advanceBilling.runDue({ orgId: org.orgId });
    const invoices = chronological(await invoicesOf(org, cus));
    expect(invoices.map((i) => i.fees_amount_cents)).toEqual([1300, 1000, 300]);
    expect(await feeLines(org, invoices[1].lago_id)).toEqual([["subscription", "1", 1000, "2026-07-01"]]);
  });
});
