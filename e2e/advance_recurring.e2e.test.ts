// End to end: a prorated charge paid in advance on a recurring metric, with the real server in a
// child process driven through `lago-javascript-client` (the test clock through plain HTTP), over
// two periods. Runs on a fresh PGlite DATA_DIR, or on PostgreSQL when TEST_DATABASE_URL is set.
//
// Amounts, worked out by hand. Plan €10.00 a month in arrears (calendar, UTC).
//   seats (recurring sum of `seats`), paid in advance, standard €10 a seat, prorated:
//     March 10th, 3 seats: 22 of March's 31 days left  → 3 × 10 × 22/31 = €21.2903… → €21.29
//   April 1st, March's invoice: plan €10.00 + the 3 seats carried into April, whole month €30.00 = €40.00
//     April 21st, 1 seat: 10 of April's 30 days left → 10 × 10/30 = €3.333… → €3.33
//   May 1st, April's invoice: plan €10.00 + 4 seats carried into May €40.00 = €50.00
import crypto from "node:crypto";
import { describe, expect, it } from "vitest";
import { subscribeCustomer } from "./helpers/lago.ts";
import { at, eventually, scenario } from "./helpers/scenario.ts";
import { E2E_DB_KIND } from "./helpers/server.ts";

describe(`prorated charges paid in advance on a recurring metric, real server on ${E2E_DB_KIND}`, () => {
  const run = crypto.randomBytes(3).toString("hex");
  const planCode = `seats-${run}`;
  const customerId = `cust-seats-${run}`;
  const subscriptionId = `sub-seats-${run}`;
  const seats = `seats_${run}`;
  const t = scenario();
  const { freeze } = t;
  const invoices = async () =>
    [...(await t.lago.invoices.findAllInvoices({ external_customer_id: customerId, per_page: 100 })).data.invoices].sort(
      (a, b) => (a.sequential_id ?? 0) - (b.sequential_id ?? 0),
    );
  const addSeats = (tx: string, iso: string, n: number) =>
    t.lago.events.createEvent({ event: { transaction_id: `${tx}-${run}`, external_subscription_id: subscriptionId, code: seats, timestamp: at(iso), properties: { seats: n } } });
  const chargeFees = async (lagoId: string) =>
    ((await t.lago.invoices.findInvoice(lagoId)).data.invoice.fees ?? [])
      .filter((f) => f.item.type === "charge")
      .map((f) => [f.units, f.amount_cents, f.pay_in_advance, f.from_date?.slice(0, 10)]);

  it("sets up March: seats, recurring, paid in advance and prorated", async () => {
    await freeze("2024-03-01T00:00:00Z");
    const metric = await t.lago.billableMetrics.createBillableMetric({
      billable_metric: { name: "Seats", code: seats, aggregation_type: "sum_agg", field_name: "seats", recurring: true },
    });
    const plan = await t.lago.plans.createPlan({
      plan: {
        name: "Seats",
        code: planCode,
        interval: "monthly",
        amount_cents: 1000,
        amount_currency: "EUR",
        pay_in_advance: false,
        charges: [
          { billable_metric_id: metric.data.billable_metric.lago_id, charge_model: "standard", pay_in_advance: true, prorated: true, properties: { amount: "10" } },
        ],
      },
    } as never);
    expect(plan.data.plan.charges?.map((c) => [c.pay_in_advance, c.prorated])).toEqual([[true, true]]);
    await subscribeCustomer(t.lago, { customerId, name: "Seats Co", planCode, subscriptionId });
  });

  it("March 10th: 3 seats for the 22 days left, €21.29, invoiced as the event arrives", async () => {
    await freeze("2024-03-10T12:00:00Z");
    await addSeats("s1", "2024-03-10T12:00:00Z", 3);
    const list = await eventually("the advance invoice", invoices, (l) => l.length === 1);
    expect(list.map((i) => i.fees_amount_cents)).toEqual([2129]);
    expect(await chargeFees(list[0]!.lago_id)).toEqual([["3", 2129, true, "2024-03-01"]]);
  });

  it("April 1st: March's invoice bills the 3 seats carried into April, the whole month", async () => {
    await freeze("2024-04-01T00:00:00Z");
    const list = await invoices();
    expect(list.map((i) => i.fees_amount_cents)).toEqual([2129, 4000]);
    expect(await chargeFees(list[1]!.lago_id)).toEqual([["3", 3000, true, "2024-04-01"]]);
  });

  it("April 21st: 1 seat more for 10 days, €3.33; May 1st carries 4 seats into May", async () => {
    await freeze("2024-04-21T00:00:00Z");
    await addSeats("s2", "2024-04-21T00:00:00Z", 1);
    await eventually("the second advance invoice", invoices, (l) => l.length === 3);
    await freeze("2024-05-01T00:00:00Z");
    const list = await invoices();
    expect(list.map((i) => i.fees_amount_cents)).toEqual([2129, 4000, 333, 5000]);
    expect(await chargeFees(list[3]!.lago_id)).toEqual([["4", 4000, true, "2024-05-01"]]);
    // Current usage shows the 4 seats held.
    const usage = (await t.lago.customers.findCustomerCurrentUsage(customerId, { external_subscription_id: subscriptionId })).data.customer_usage;
    expect(usage.charges_usage.map((c) => c.units)).toEqual(["4"]);
  });
});
