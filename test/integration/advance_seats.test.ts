// Seats: charges paid in advance on recurring unique counts, whose events add a value or remove it
// (Lago's `operation_type`). Replays periods under a test clock: an add above the most seats held in
// the period bills one seat, a removal lowers the count and refunds nothing, a seat removed and added
// again (or swapped for another) within the period is not paid twice, and the seats held when a
// period ends are billed in advance on the periodic invoice that closes it. Amounts by hand. PGlite
// by default, PostgreSQL with TEST_DATABASE_URL.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestApp, type TestApp } from "../helpers/app.ts";
import { uid } from "./support.ts";
import { BILLING_ENV, customer, invoiceOf, invoicesOf, newOrg, seatsPlanOf, subscribe, type Org } from "./billing_support.ts";

let t: TestApp;
beforeAll(async () => {
  t = await startTestApp({ env: BILLING_ENV });
});
afterAll(async () => {
  await t?.close();
});

async function seatsPlan(org: Org, charge: Record<string, unknown>, recurring = true) {
  const { metric, plan } = await seatsPlanOf(org, { aggregation_type: "unique_count_agg", field_name: "user_id", recurring }, charge);
  return { code: metric.code as string, plan: plan.code as string };
}

const chronological = (list: any[]) => [...list].sort((a, b) => a.organization_sequential_id - b.organization_sequential_id);

/** An invoice's fees as [item type, units, amount cents, from date], in a stable order. */
const feeLines = async (org: Org, lagoId: string) =>
  ((await invoiceOf(org, lagoId)).fees as any[]).map((f) => [f.item.type, f.units, f.amount_cents, f.from_date?.slice(0, 10) ?? null]).sort();

function seats(org: Org, sub: string, code: string) {
  const txs = new Map<string, string>();
  /** Freezes the clock at `at`, sends the seat events there and bills them; answers the events' transaction ids. */
  const at = async (when: string, ...ops: string[]) => {
    await org.freeze(when);
    for (const op of ops) {
      const remove = op.startsWith("-");
      const user = op.replace(/^[-+]/, "");
      const tx = uid("tx");
      txs.set(op, tx);
      await org.api("POST", "/api/v1/events", {
        event: {
          transaction_id: tx,
          external_subscription_id: sub,
          code,
          timestamp: Math.floor(Date.parse(when) / 1000),
          properties: { user_id: user, ...(remove ? { operation_type: "remove" } : op.startsWith("+") ? { operation_type: "add" } : {}) },
        },
      });
      await t.app.advanceBilling.runDue({ orgId: org.orgId });
    }
  };
  return { at, txs };
}

/** A new organization on July 1st 2026, a customer subscribed to a seats plan of `charge`, and its seats. */
async function seatsCustomer(charge: Record<string, unknown>, recurring = true) {
  const org = await newOrg(t);
  await org.freeze("2026-07-01T00:00:00Z");
  const { code, plan } = await seatsPlan(org, charge, recurring);
  const cus = await customer(org);
  const sub = await subscribe(org, cus, plan);
  return { org, code, cus, sub, s: seats(org, sub, code) };
}

describe("seats: charges paid in advance on recurring unique counts", () => {
  it("bills a seat only above the most held in the period, refunds no removal, and carries the seats held into the next period", async () => {
    const { org, code, cus, sub, s } = await seatsCustomer({ charge_model: "standard", properties: { amount: "10" } });
    const amounts = async () => chronological(await invoicesOf(org, cus)).map((i) => i.fees_amount_cents);

    // July 5th: alice and bob, €10 each (one invoice per event); alice added again: already held, nothing.
    await s.at("2026-07-05T00:00:00Z", "alice", "+bob", "alice");
    expect(await amounts()).toEqual([1000, 1000]);
    // bob removed: 1 held, nothing back; bob added again: 2 held, paid already in July.
    await s.at("2026-07-10T00:00:00Z", "-bob");
    await s.at("2026-07-12T00:00:00Z", "+bob");
    // alice swapped for carol: still 2 held, nothing; removing someone not held changes nothing.
    await s.at("2026-07-15T00:00:00Z", "-alice", "carol", "-zoe");
    expect(await amounts()).toEqual([1000, 1000]);
    // dave is a third seat held at once: €10. Removed on the 25th: nothing back.
    await s.at("2026-07-20T00:00:00Z", "dave");
    await s.at("2026-07-25T00:00:00Z", "-dave");
    expect(await amounts()).toEqual([1000, 1000, 1000]);
    // No fee is ever negative, and only the three adds above the high-water mark have one.
    const billed = await t.db.query<{ n: string }>(
      "SELECT count(*) AS n FROM fees WHERE org_id = $1 AND pay_in_advance AND amount_cents > 0",
      [org.orgId],
    );
    expect(Number(billed.rows[0]!.n)).toBe(3);

    // August 1st: July's periodic invoice bills the 2 seats held (bob, carol) for August: €20.00.
    await org.freeze("2026-08-01T01:00:00Z");
    let invoices = chronological(await invoicesOf(org, cus));
    expect(invoices.map((i) => i.fees_amount_cents)).toEqual([1000, 1000, 1000, 2000]);
    expect(await feeLines(org, invoices[3].lago_id)).toEqual([
      ["charge", "2", 2000, "2026-08-01"],
      ["subscription", "1", 0, "2026-07-01"],
    ]);
    const carried = (await invoiceOf(org, invoices[3].lago_id)).fees.find((f: any) => f.item.type === "charge");
    expect(carried).toMatchObject({ pay_in_advance: true, events_count: 0, item: expect.objectContaining({ code }) });
    // Its events: the adds of the seats it billed (bob's second add, carol's).
    const listed = (await org.api("GET", `/api/v1/fees/${carried.lago_id}/events`)).events as any[];
    expect(listed.map((e) => e.transaction_id)).toEqual([s.txs.get("+bob"), s.txs.get("carol")]);

    // August: erin is a third seat above the 2 paid: €10; erin swapped for frank: nothing.
    await s.at("2026-08-10T00:00:00Z", "erin");
    await s.at("2026-08-11T00:00:00Z", "-erin", "frank");
    // bob removed and added back: nothing.
    await s.at("2026-08-12T00:00:00Z", "-bob", "bob");
    expect(await amounts()).toEqual([1000, 1000, 1000, 2000, 1000]);

    // Current usage shows the 3 seats held, worth what August paid in advance (€20 carried + €10).
    const usage = (await org.api("GET", `/api/v1/customers/${cus}/current_usage?external_subscription_id=${sub}`)).customer_usage;
    expect(usage.charges_usage[0]).toMatchObject({ units: "3", amount_cents: 3000 });
    // September 1st: bob, carol and frank held: €30.00 for September.
    await org.freeze("2026-09-01T01:00:00Z");
    invoices = chronological(await invoicesOf(org, cus));
    expect(invoices.map((i) => i.fees_amount_cents)).toEqual([1000, 1000, 1000, 2000, 1000, 3000]);
    expect(await feeLines(org, invoices[5].lago_id)).toEqual([
      ["charge", "3", 3000, "2026-09-01"],
      ["subscription", "1", 0, "2026-08-01"],
    ]);
    // The billing job run again issues nothing more; no event was set aside.
    await t.app.invoicing.runBillingJob({ orgId: org.orgId });
    expect(await invoicesOf(org, cus)).toHaveLength(6);
    expect((await t.db.query("SELECT 1 FROM advance_charge_events WHERE org_id = $1", [org.orgId])).rows).toEqual([]);

    // A quiet month: October 1st carries the same 3 seats again.
    await org.freeze("2026-10-01T01:00:00Z");
    invoices = chronological(await invoicesOf(org, cus));
    expect(invoices.map((i) => i.fees_amount_cents)).toEqual([1000, 1000, 1000, 2000, 1000, 3000, 3000]);
  });

  it("prorated seats pay the days left from their day; the carried seats pay the whole next period", async () => {
    const { org, cus, s } = await seatsCustomer({ charge_model: "standard", prorated: true, properties: { amount: "10" } });

    // July 10th: 3 seats, each €10 × 22/31 = €7.0967… → €7.10.
    await s.at("2026-07-10T00:00:00Z", "a", "b", "c");
    // July 20th: c removed, d added the next day: 3 held, as many as paid: nothing.
    await s.at("2026-07-20T00:00:00Z", "-c");
    await s.at("2026-07-21T00:00:00Z", "d");
    // August 1st: 3 seats for all of August, €30.00. August 16th: a fourth for 16 of 31 days: €5.16.
    await org.freeze("2026-08-01T01:00:00Z");
    await s.at("2026-08-16T00:00:00Z", "e");
    // September 1st: 4 seats, €40.00.
    await org.freeze("2026-09-01T01:00:00Z");
    const invoices = chronological(await invoicesOf(org, cus));
    expect(invoices.map((i) => i.fees_amount_cents)).toEqual([710, 710, 710, 3000, 516, 4000]);
    expect(await feeLines(org, invoices[5].lago_id)).toEqual([
      ["charge", "4", 4000, "2026-09-01"],
      ["subscription", "1", 0, "2026-08-01"],
    ]);
  });

  it("graduated seats pay the tier the period's high-water mark reaches", async () => {
    // Seats 1–2 free, from the 3rd €5 each.
    const { org, cus, s } = await seatsCustomer({
      charge_model: "graduated",
      properties: {
        graduated_ranges: [
          { from_value: 0, to_value: 2, per_unit_amount: "0", flat_amount: "0" },
          { from_value: 3, to_value: null, per_unit_amount: "5", flat_amount: "0" },
        ],
      },
    });
    // a and b free; c €5; a swapped for d: nothing; e: a 4th held at once, €5.
    await s.at("2026-07-03T00:00:00Z", "a", "b", "c", "-a", "d", "e");
    // August 1st: b, c, d, e held: price(4) = €10.00.
    await org.freeze("2026-08-01T01:00:00Z");
    const invoices = chronological(await invoicesOf(org, cus));
    expect(invoices.map((i) => i.fees_amount_cents)).toEqual([500, 500, 1000]);
    // August: 2 removed then 1 added: 3 held, under the 4 paid: nothing.
    await s.at("2026-08-05T00:00:00Z", "-b", "-c", "f");
    expect(chronological(await invoicesOf(org, cus)).map((i) => i.fees_amount_cents)).toEqual([500, 500, 1000]);
    // September 1st: d, e, f: price(3) = €5.00.
    await org.freeze("2026-09-01T01:00:00Z");
    expect(chronological(await invoicesOf(org, cus)).map((i) => i.fees_amount_cents)).toEqual([500, 500, 1000, 500]);
  });

  it("a late seat of a closed period is billed in its period and counts as paid in the next one", async () => {
    const { org, code, cus, sub, s } = await seatsCustomer({ charge_model: "standard", properties: { amount: "10" } });
    await s.at("2026-07-05T00:00:00Z", "a", "b");
    // August 1st: a and b for August, €20.00; August 3rd: d, a third seat, €10.
    await org.freeze("2026-08-01T01:00:00Z");
    await s.at("2026-08-03T00:00:00Z", "d");
    // August 5th: c arrives, dated July 25th: a third seat held in July, €10 (from July 1st).
    await org.freeze("2026-08-05T00:00:00Z");
    await org.api("POST", "/api/v1/events", {
      event: { transaction_id: uid("tx"), external_subscription_id: sub, code, timestamp: Math.floor(Date.parse("2026-07-25T00:00:00Z") / 1000), properties: { user_id: "c" } },
    });
    await t.app.advanceBilling.runDue({ orgId: org.orgId });
    let invoices = chronological(await invoicesOf(org, cus));
    expect(invoices.map((i) => i.fees_amount_cents)).toEqual([1000, 1000, 2000, 1000, 1000]);
    expect((await invoiceOf(org, invoices[4].lago_id)).fees[0].from_date.slice(0, 10)).toBe("2026-07-01");
    // In August, c is held and counted as paid: 4 held, 4 paid; e is a fifth, €10.
    await s.at("2026-08-10T00:00:00Z", "e");
    // September 1st: a, b, c, d, e: €50.00.
    await org.freeze("2026-09-01T01:00:00Z");
    invoices = chronological(await invoicesOf(org, cus));
    expect(invoices.map((i) => i.fees_amount_cents)).toEqual([1000, 1000, 2000, 1000, 1000, 1000, 5000]);
  });

  it("an upgrade moves the seats held to the new plan: paid for the rest of the period, then carried on the new price", async () => {
    const org = await newOrg(t);
    await org.freeze("2026-07-01T00:00:00Z");
    const { code, plan } = await seatsPlan(org, { charge_model: "standard", properties: { amount: "10" } });
    const metric = (await org.api("GET", `/api/v1/billable_metrics/${code}`)).billable_metric;
    // The same seats at €20 (an upgrade: same amount, changed now).
    const premium = uid("premium");
    await org.api("POST", "/api/v1/plans", {
      plan: {
        name: "Premium",
        code: premium,
        interval: "monthly",
        amount_cents: 0,
        amount_currency: "EUR",
        charges: [{ billable_metric_id: metric.lago_id, charge_model: "standard", pay_in_advance: true, properties: { amount: "20" } }],
      },
    });
    const cus = await customer(org);
    const sub = await subscribe(org, cus, plan);
    const s = seats(org, sub, code);
    // July 5th: a, b, z at €10; b removed: 2 held, 3 paid.
    await s.at("2026-07-05T00:00:00Z", "a", "b", "z");
    await s.at("2026-07-10T00:00:00Z", "-b");
    // July 15th: upgraded; the old subscription's final invoice bills no seats again.
    await org.freeze("2026-07-15T00:00:00Z");
    await org.api("POST", "/api/v1/subscriptions", { subscription: { external_customer_id: cus, plan_code: premium, external_id: sub, billing_time: "calendar" } });
    const amounts = async () => chronological(await invoicesOf(org, cus)).map((i) => i.fees_amount_cents);
    expect(await amounts()).toEqual([1000, 1000, 1000, 0]);
    // c is a third seat held, paid already in July; d a fourth: €20 on the new plan.
    await s.at("2026-07-20T00:00:00Z", "c", "d");
    // a, added on the old plan, removed on the new one; e takes its place: nothing (4 held, 4 paid).
    await s.at("2026-07-22T00:00:00Z", "-a", "e");
    expect(await amounts()).toEqual([1000, 1000, 1000, 0, 2000]);
    // July 24th, two late events of the old plan's days: y added on the 12th (3 held, 3 paid there:
    // nothing), z removed on the 13th. Billed on the old subscription, they move the new one's seats.
    await org.freeze("2026-07-24T00:00:00Z");
    const late = (user: string, at: string, remove = false) => {
      const tx = uid("tx");
      s.txs.set(remove ? `-${user}` : user, tx);
      return org.api("POST", "/api/v1/events", {
        event: { transaction_id: tx, external_subscription_id: sub, code, timestamp: Math.floor(Date.parse(at) / 1000), properties: { user_id: user, ...(remove ? { operation_type: "remove" } : {}) } },
      });
    };
    await late("y", "2026-07-12T00:00:00Z");
    await late("z", "2026-07-13T00:00:00Z", true);
    await t.app.advanceBilling.runDue({ orgId: org.orgId });
    expect(await amounts()).toEqual([1000, 1000, 1000, 0, 2000]);
    // August 1st: y, c, d, e carried into August at €20: €80.00.
    await org.freeze("2026-08-01T01:00:00Z");
    const invoices = chronological(await invoicesOf(org, cus));
    expect(invoices.map((i) => i.fees_amount_cents)).toEqual([1000, 1000, 1000, 0, 2000, 8000]);
    const carried = (await invoiceOf(org, invoices[5].lago_id)).fees.find((f: any) => f.item.type === "charge");
    expect([carried.units, carried.amount_cents, carried.from_date.slice(0, 10)]).toEqual(["4", 8000, "2026-08-01"]);
    const listed = (await org.api("GET", `/api/v1/fees/${carried.lago_id}/events`)).events as any[];
    expect(listed.map((e) => e.transaction_id)).toEqual([s.txs.get("y"), s.txs.get("c"), s.txs.get("d"), s.txs.get("e")]);
  });

  it("an upgrade moves a recurring sum's units to the new plan's price (a late event of the old plan's days too), not to a charge that groups differently", async () => {
    const org = await newOrg(t);
    await org.freeze("2026-07-01T00:00:00Z");
    const gb = (
      await org.api("POST", "/api/v1/billable_metrics", { billable_metric: { name: "GB", code: uid("gb"), aggregation_type: "sum_agg", field_name: "gb", recurring: true } })
    ).billable_metric;
    const planOf = async (charges: Record<string, unknown>[]) => {
      const code = uid("gb");
      await org.api("POST", "/api/v1/plans", {
        plan: { name: "GB", code, interval: "monthly", amount_cents: 0, amount_currency: "EUR", charges: charges.map((c) => ({ billable_metric_id: gb.lago_id, pay_in_advance: true, ...c })) },
      });
      return code;
    };
    const basic = await planOf([{ charge_model: "standard", properties: { amount: "1" } }]);
    // Two charges on the metric: one like basic's at €2, one grouped by region at €5.
    const pro = await planOf([
      { charge_model: "standard", properties: { amount: "2" } },
      { charge_model: "standard", properties: { amount: "5", pricing_group_keys: ["region"] } },
    ]);
    const cus = await customer(org);
    const sub = await subscribe(org, cus, basic);
    const send = async (at: string, n: number) => {
      await org.freeze(at);
      await org.api("POST", "/api/v1/events", {
        event: { transaction_id: uid("tx"), external_subscription_id: sub, code: gb.code, timestamp: Math.floor(Date.parse(at) / 1000), properties: { gb: n, region: "eu" } },
      });
      await t.app.advanceBilling.runDue({ orgId: org.orgId });
    };
    // July 5th: 5 GB at €1.
    await send("2026-07-05T00:00:00Z", 5);
    await org.freeze("2026-07-15T00:00:00Z");
    await org.api("POST", "/api/v1/subscriptions", { subscription: { external_customer_id: cus, plan_code: pro, external_id: sub, billing_time: "calendar" } });
    // July 20th, 1 GB: €2 on the like charge (on top of the 5 held), €5 on the grouped one (from nothing).
    await send("2026-07-20T00:00:00Z", 1);
    let invoices = chronological(await invoicesOf(org, cus));
    expect(invoices.map((i) => i.fees_amount_cents)).toEqual([500, 0, 700]);
    // A late event of the old plan's days (3 GB on July 10th): €3 on the old plan, and the like charge's 6 GB become 9.
    await org.freeze("2026-07-25T00:00:00Z");
    await org.api("POST", "/api/v1/events", {
      event: { transaction_id: uid("tx"), external_subscription_id: sub, code: gb.code, timestamp: Math.floor(Date.parse("2026-07-10T00:00:00Z") / 1000), properties: { gb: 3, region: "eu" } },
    });
    await t.app.advanceBilling.runDue({ orgId: org.orgId });
    // August 1st: 9 GB at €2 and 1 GB at €5 carried into August: €23.00.
    await org.freeze("2026-08-01T01:00:00Z");
    invoices = chronological(await invoicesOf(org, cus));
    expect(invoices.map((i) => i.fees_amount_cents)).toEqual([500, 0, 700, 300, 2300]);
    expect((await feeLines(org, invoices[4].lago_id)).filter((l) => l[0] === "charge")).toEqual([
      ["charge", "1", 500, "2026-08-01"],
      ["charge", "9", 1800, "2026-08-01"],
    ]);
  });

  it("estimate_fees answers what an add or a remove would cost now, storing nothing", async () => {
    const { org, code, cus, sub, s } = await seatsCustomer({ charge_model: "standard", properties: { amount: "10" } });
    await s.at("2026-07-05T00:00:00Z", "a", "b", "-b");
    const estimate = async (properties: Record<string, unknown>) =>
      ((await org.api("POST", "/api/v1/events/estimate_fees", { event: { code, external_subscription_id: sub, properties } })).fees as any[]).map(
        (f) => [f.units, f.amount_cents],
      );
    // 1 held, 2 paid: a new seat is paid already (no unit to pay), a held one adds nothing, a removal refunds nothing.
    expect(await estimate({ user_id: "c" })).toEqual([["0", 0]]);
    expect(await estimate({ user_id: "a" })).toEqual([["0", 0]]);
    expect(await estimate({ user_id: "a", operation_type: "remove" })).toEqual([["0", 0]]);
    await s.at("2026-07-06T00:00:00Z", "c");
    // 2 held, 2 paid: the next one costs €10.
    expect(await estimate({ user_id: "d" })).toEqual([["1", 1000]]);
    expect(chronological(await invoicesOf(org, cus)).map((i) => i.fees_amount_cents)).toEqual([1000, 1000]);
  });

  it("metered unique counts in advance keep their per-period values and carry nothing over", async () => {
    const { org, cus, s } = await seatsCustomer({ charge_model: "standard", properties: { amount: "10" } }, false);
    await s.at("2026-07-05T00:00:00Z", "a", "b");
    await org.freeze("2026-08-01T01:00:00Z");
    await s.at("2026-08-05T00:00:00Z", "a");
    const invoices = chronological(await invoicesOf(org, cus));
    // July's invoice has only its subscription fee; a is paid again in August.
    expect(invoices.map((i) => i.fees_amount_cents)).toEqual([1000, 1000, 0, 1000]);
  });
});
