// Charges paid in advance at period boundaries and plan changes, with the background worker stopped
// (so nothing bills an event between the test's steps unless the code under test does): events still
// queued when a period closes are billed before its carry-over is computed (clock moves and the
// billing job alone), a downgrade carries the seats and units held into the new plan and bills them
// there, and a plan change's hand-over waits for the worker's transaction on the queue's lock.
// Amounts by hand. PGlite by default, PostgreSQL with TEST_DATABASE_URL.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestApp, type TestApp } from "../helpers/app.ts";
import { uid } from "./support.ts";
import { BILLING_ENV, customer, invoiceOf, invoicesOf, newOrg, subscribe, type Org } from "./billing_support.ts";

let t: TestApp;
beforeAll(async () => {
  t = await startTestApp({ env: BILLING_ENV });
  // No poll, no kick after ingest: queued events wait for what the tests run.
  await t.app.advanceBilling.stop();
});
afterAll(async () => {
  await t?.close();
});

async function metric(org: Org, aggregation: "unique_count_agg" | "sum_agg", field: string) {
  return (
    await org.api("POST", "/api/v1/billable_metrics", {
      billable_metric: { name: field, code: uid(field), aggregation_type: aggregation, field_name: field, recurring: true },
    })
  ).billable_metric as { lago_id: string; code: string };
}

async function planWith(org: Org, amountCents: number, charges: Record<string, unknown>[]) {
  return (
    await org.api("POST", "/api/v1/plans", {
      plan: { name: "Plan", code: uid("plan"), interval: "monthly", amount_cents: amountCents, amount_currency: "EUR", charges: charges.map((c) => ({ pay_in_advance: true, ...c })) },
    })
  ).plan.code as string;
}

const standard = (m: { lago_id: string }, amount: string, extra: Record<string, unknown> = {}) => ({
  billable_metric_id: m.lago_id,
  charge_model: "standard",
  properties: { amount },
  ...extra,
});

const send = (org: Org, sub: string, code: string, at: string, properties: Record<string, unknown>) =>
  org.api("POST", "/api/v1/events", {
    event: { transaction_id: uid("tx"), external_subscription_id: sub, code, timestamp: Math.floor(Date.parse(at) / 1000), properties },
  });

const chronological = (list: any[]) => [...list].sort((a, b) => a.organization_sequential_id - b.organization_sequential_id);
const amounts = async (org: Org, cus: string) => chronological(await invoicesOf(org, cus)).map((i) => i.fees_amount_cents);
/** An invoice's fees as [item type, units, amount cents, from date, subscription], in a stable order. */
const feeLines = async (org: Org, lagoId: string) =>
  ((await invoiceOf(org, lagoId)).fees as any[]).map((f) => [f.item.type, f.units, f.amount_cents, f.from_date?.slice(0, 10) ?? null, f.external_subscription_id]).sort();
const queued = async (org: Org) => Number((await t.db.query<{ n: string }>("SELECT count(*) AS n FROM advance_charge_events WHERE org_id = $1", [org.orgId])).rows[0]!.n);

describe("charges paid in advance at period boundaries", () => {
  it("a clock move bills the events still queued before the periodic invoice carries the seats and units over", async () => {
    const org = await newOrg(t);
    await org.freeze("2026-07-01T00:00:00Z");
    const seats = await metric(org, "unique_count_agg", "user_id");
    const gb = await metric(org, "sum_agg", "gb");
    const plan = await planWith(org, 0, [standard(seats, "10"), standard(gb, "1")]);
    const cus = await customer(org);
    const sub = await subscribe(org, cus, plan);

    // July: a and b, 5 GB; nothing runs the worker between the events.
    await org.freeze("2026-07-05T00:00:00Z");
    await send(org, sub, seats.code, "2026-07-05T00:00:00Z", { user_id: "a" });
    await send(org, sub, seats.code, "2026-07-05T00:00:00Z", { user_id: "b" });
    await send(org, sub, gb.code, "2026-07-05T00:00:00Z", { gb: 5 });
    // Stamped the last second of July, still queued when August's invoice is built.
    await org.freeze("2026-07-31T23:59:59Z");
    await send(org, sub, seats.code, "2026-07-31T23:59:59Z", { user_id: "c" });
    await send(org, sub, gb.code, "2026-07-31T23:59:59Z", { gb: 3 });
    expect(await queued(org)).toBe(2);

    // August 1st: c and the 3 GB billed in July first (€10, €3), then July's invoice carries 3 seats
    // (€30) and 8 GB (€8) into August.
    await org.freeze("2026-08-01T01:00:00Z");
    expect(await queued(org)).toBe(0);
    const invoices = chronological(await invoicesOf(org, cus));
    expect(invoices.map((i) => i.fees_amount_cents)).toEqual([1000, 1000, 500, 1000, 300, 3800]);
    expect(await feeLines(org, invoices[5].lago_id)).toEqual([
      ["charge", "3", 3000, "2026-08-01", sub],
      ["charge", "8", 800, "2026-08-01", sub],
      ["subscription", "1", 0, "2026-07-01", sub],
    ]);

    // August: d is a 4th seat above the 3 paid (€10); 2 GB more (€2). September carries 4 seats and 10 GB.
    await org.freeze("2026-08-10T00:00:00Z");
    await send(org, sub, seats.code, "2026-08-10T00:00:00Z", { user_id: "d" });
    await send(org, sub, gb.code, "2026-08-10T00:00:00Z", { gb: 2 });
    await org.freeze("2026-09-01T01:00:00Z");
    expect(await amounts(org, cus)).toEqual([1000, 1000, 500, 1000, 300, 3800, 1000, 200, 5000]);
  });

  it("the billing job alone (the wall-clock scheduler's) bills the queue before closing the period", async () => {
    const org = await newOrg(t);
    // No test clock: the organization runs on the server's clock.
    t.clock.set(Date.parse("2026-07-01T00:00:00Z"));
    const seats = await metric(org, "unique_count_agg", "user_id");
    const plan = await planWith(org, 0, [standard(seats, "10")]);
    const cus = await customer(org);
    const sub = await subscribe(org, cus, plan);
    t.clock.set(Date.parse("2026-07-05T00:00:00Z"));
    await send(org, sub, seats.code, "2026-07-05T00:00:00Z", { user_id: "a" });
    t.clock.set(Date.parse("2026-07-31T23:59:59Z"));
    await send(org, sub, seats.code, "2026-07-31T23:59:59Z", { user_id: "b" });
    t.clock.set(Date.parse("2026-08-01T01:00:00Z"));
    await t.app.invoicing.runBillingJob({ orgId: org.orgId });
    expect(await queued(org)).toBe(0);
    const invoices = chronological(await invoicesOf(org, cus));
    expect(invoices.map((i) => i.fees_amount_cents)).toEqual([1000, 1000, 2000]);
    expect(await feeLines(org, invoices[2].lago_id)).toEqual([
      ["charge", "2", 2000, "2026-08-01", sub],
      ["subscription", "1", 0, "2026-07-01", sub],
    ]);
  });

  it("a downgrade carries the seats and units held into the new plan and bills them there for its first period", async () => {
    const org = await newOrg(t);
    await org.freeze("2026-07-01T00:00:00Z");
    const seats = await metric(org, "unique_count_agg", "user_id");
    const gb = await metric(org, "sum_agg", "gb");
    // Plan A €20 a month, seats €10, GB €1; plan B €10 a month (a downgrade), seats €5, GB €0.50 prorated.
    const planA = await planWith(org, 2000, [standard(seats, "10"), standard(gb, "1")]);
    const planB = await planWith(org, 1000, [standard(seats, "5"), standard(gb, "0.5", { prorated: true })]);
    const cus = await customer(org);
    const sub = await subscribe(org, cus, planA);
    await org.freeze("2026-07-05T00:00:00Z");
    for (const user of ["a", "b"]) await send(org, sub, seats.code, "2026-07-05T00:00:00Z", { user_id: user });
    await send(org, sub, gb.code, "2026-07-05T00:00:00Z", { gb: 4 });
    await org.freeze("2026-07-06T00:00:00Z");
    expect(await amounts(org, cus)).toEqual([1000, 1000, 400]);

    // July 15th: downgrade to B, taking over August 1st.
    await org.freeze("2026-07-15T00:00:00Z");
    await org.api("POST", "/api/v1/subscriptions", { subscription: { external_customer_id: cus, plan_code: planB, external_id: sub, billing_time: "calendar" } });
    // c, stamped the last second of July, still queued at the switch: billed in July on plan A.
    await org.freeze("2026-07-31T23:59:59Z");
    await send(org, sub, seats.code, "2026-07-31T23:59:59Z", { user_id: "c" });

    // August 1st: A's final invoice (July's €20, nothing carried: A has no August); c €10 in July;
    // B's invoice carries a, b, c (3 × €5) and 4 GB (€2) into August.
    await org.freeze("2026-08-01T01:00:00Z");
    let invoices = chronological(await invoicesOf(org, cus));
    expect(invoices.map((i) => i.fees_amount_cents)).toEqual([1000, 1000, 400, 1000, 2000, 1700]);
    expect(await feeLines(org, invoices[4].lago_id)).toEqual([["subscription", "1", 2000, "2026-07-01", sub]]);
    const carried = await invoiceOf(org, invoices[5].lago_id);
    expect(await feeLines(org, carried.lago_id)).toEqual([
      ["charge", "3", 1500, "2026-08-01", sub],
      ["charge", "4", 200, "2026-08-01", sub],
    ]);
    const active = (await org.api("GET", `/api/v1/subscriptions/${sub}`)).subscription;
    expect(active.plan_code).toBe(planB);
    expect((carried.fees as any[]).map((f) => f.lago_subscription_id)).toEqual([active.lago_id, active.lago_id]);

    // August 10th: d is a 4th seat above the 3 paid (€5); b removed: nothing back.
    await org.freeze("2026-08-10T00:00:00Z");
    await send(org, sub, seats.code, "2026-08-10T00:00:00Z", { user_id: "d" });
    await send(org, sub, seats.code, "2026-08-10T00:00:00Z", { user_id: "b", operation_type: "remove" });
    await org.freeze("2026-08-11T00:00:00Z");
    expect(await amounts(org, cus)).toEqual([1000, 1000, 400, 1000, 2000, 1700, 500]);

    // September 1st: B's periodic invoice: August's €10, a, c, d (3 × €5) and 4 GB (€2) carried.
    await org.freeze("2026-09-01T01:00:00Z");
    invoices = chronological(await invoicesOf(org, cus));
    expect(invoices.map((i) => i.fees_amount_cents)).toEqual([1000, 1000, 400, 1000, 2000, 1700, 500, 2700]);
    // The billing job run again issues nothing more.
    await t.app.invoicing.runBillingJob({ orgId: org.orgId });
    expect(await invoicesOf(org, cus)).toHaveLength(8);
  });

  it("seat events out of order: an add stamped before a stored remove of the value, or a remove before its add, changes nothing", async () => {
    const org = await newOrg(t);
    await org.freeze("2026-07-01T00:00:00Z");
    const seats = await metric(org, "unique_count_agg", "user_id");
    const plan = await planWith(org, 0, [standard(seats, "10")]);
    const cus = await customer(org);
    const sub = await subscribe(org, cus, plan);
    const at = async (when: string, user: string, remove = false) => {
      await org.freeze(when);
      await send(org, sub, seats.code, when, { user_id: user, ...(remove ? { operation_type: "remove" } : {}) });
    };
    // u1 held July 5th–20th (€10), u2 from the 25th (the same seat count: nothing).
    await at("2026-07-05T00:00:00Z", "u1");
    await at("2026-07-20T00:00:00Z", "u1", true);
    await at("2026-07-25T00:00:00Z", "u2");
    await org.freeze("2026-07-26T00:00:00Z");
    expect(await amounts(org, cus)).toEqual([1000]);
    // Late: u1 added on the 10th (held then already), u2 removed on the 22nd (before its add).
    await send(org, sub, seats.code, "2026-07-10T00:00:00Z", { user_id: "u1" });
    await send(org, sub, seats.code, "2026-07-22T00:00:00Z", { user_id: "u2", operation_type: "remove" });
    await org.freeze("2026-07-27T00:00:00Z");
    expect(await queued(org)).toBe(0);
    expect(await amounts(org, cus)).toEqual([1000]);
    // August 1st: u2 alone is held and carried (€10).
    await org.freeze("2026-08-01T01:00:00Z");
    const invoices = chronological(await invoicesOf(org, cus));
    expect(invoices.map((i) => i.fees_amount_cents)).toEqual([1000, 1000]);
    expect(await feeLines(org, invoices[1].lago_id)).toEqual([
      ["charge", "1", 1000, "2026-08-01", sub],
      ["subscription", "1", 0, "2026-07-01", sub],
    ]);
    const held = await t.db.query<{ value: string }>(
      "SELECT value FROM advance_charge_seats WHERE org_id = $1 AND removed_at IS NULL ORDER BY value",
      [org.orgId],
    );
    expect(held.rows.map((r) => r.value)).toEqual(["u2"]);
  });

  /**
   * Seat a (added July 10th) queued; another transaction holds the queue's lock while the worker
   * (reading the subscription as basic and active) and an upgrade to premium on July 15th start, in
   * either order; then it lets go. Whoever goes first, a is billed on basic (€10) and held by premium,
   * which carries it into August at €20.
   */
  const handOverRace = async (upgradeFirst: boolean) => {
    const org = await newOrg(t);
    await org.freeze("2026-07-01T00:00:00Z");
    const seats = await metric(org, "unique_count_agg", "user_id");
    const basic = await planWith(org, 0, [standard(seats, "10")]);
    const premium = await planWith(org, 0, [standard(seats, "20")]);
    const cus = await customer(org);
    const sub = await subscribe(org, cus, basic);
    await org.freeze("2026-07-15T00:00:00Z");
    await send(org, sub, seats.code, "2026-07-10T00:00:00Z", { user_id: "a" });
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    let locked!: () => void;
    const isLocked = new Promise<void>((resolve) => (locked = resolve));
    const holder = t.db.transaction(async (tx) => {
      await tx.query("SELECT pg_advisory_xact_lock($1::int, hashtext($2::text))", [7_221_016, `${org.orgId}:${sub}`]);
      locked();
      await released;
    });
    await isLocked;
    const pause = () => new Promise((r) => setTimeout(r, 300));
    const upgrade = () =>
      org.raw("POST", "/api/v1/subscriptions", { subscription: { external_customer_id: cus, plan_code: premium, external_id: sub, billing_time: "calendar" } });
    let answer: ReturnType<typeof upgrade>;
    let worker: ReturnType<typeof t.app.advanceBilling.billQueuedNow>;
    if (upgradeFirst) {
      answer = upgrade();
      await pause();
      worker = t.app.advanceBilling.billQueuedNow({ orgId: org.orgId });
    } else {
      worker = t.app.advanceBilling.billQueuedNow({ orgId: org.orgId });
      await pause();
      answer = upgrade();
    }
    await pause();
    release();
    await holder;
    const [run, res] = await Promise.all([worker, answer]);
    expect(res.statusCode, res.body).toBe(200);
    expect(run.events).toBe(1);
    await org.freeze("2026-08-01T01:00:00Z");
    const lines = chronological(await invoicesOf(org, cus)).map((i) => i.fees_amount_cents);
    expect(lines).toEqual(upgradeFirst ? [0, 1000, 2000] : [1000, 0, 2000]);
  };

  it.skipIf(!process.env["TEST_DATABASE_URL"])("a plan change's hand-over and the worker take turns on the queue's lock: worker first (PostgreSQL)", () => handOverRace(false), 20_000);
  it.skipIf(!process.env["TEST_DATABASE_URL"])("a plan change's hand-over and the worker take turns on the queue's lock: upgrade first (PostgreSQL)", () => handOverRace(true), 20_000);
});
