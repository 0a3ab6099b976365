// End to end: seats — a charge paid in advance on a recurring unique count, whose events carry
// Lago's `operation_type` "add" / "remove" — with the real server in a child process driven through
// `lago-javascript-client` (the test clock and GET /fees/:id/events through plain HTTP), over two
// periods. Runs on a fresh PGlite DATA_DIR, or on PostgreSQL when TEST_DATABASE_URL is set.
//
// Amounts, worked out by hand. Plan €0 a month in arrears (calendar, UTC); users (recurring unique
// count of `user_id`), paid in advance, standard €10 a seat, not prorated. A seat is billed only
// when more are held at once than the period has paid for:
//   March 5th: ann, bob added → 2 held, 2 paid: €10.00 + €10.00 (one invoice each)
//   March 10th: bob removed → 1 held: nothing back
//   March 12th: bob added again → 2 held, 2 paid already: nothing
//   March 14th: ann removed, cid added → 2 held: nothing
//   March 20th: dan added → 3 held at once: €10.00
//   April 1st, March's invoice: the 3 seats held (bob, cid, dan), carried into April: €30.00
//   April 8th: cid removed, eve added → 3 held, 3 paid: nothing; fay added → 4: €10.00
//   May 1st, April's invoice: 4 seats (bob, dan, eve, fay) for May: €40.00
import crypto from "node:crypto";
import { describe, expect, it } from "vitest";
import { call } from "./helpers/http.ts";
import { subscribeCustomer } from "./helpers/lago.ts";
import { at, eventually, scenario } from "./helpers/scenario.ts";
import { E2E_DB_KIND } from "./helpers/server.ts";

describe(`seats paid in advance on a recurring unique count, real server on ${E2E_DB_KIND}`, () => {
  const run = crypto.randomBytes(3).toString("hex");
  const planCode = `users-${run}`;
  const customerId = `cust-users-${run}`;
  const subscriptionId = `sub-users-${run}`;
  const users = `users_${run}`;
  const t = scenario();
  const { freeze } = t;
  const invoices = async () =>
    [...(await t.lago.invoices.findAllInvoices({ external_customer_id: customerId, per_page: 100 })).data.invoices].sort(
      (a, b) => (a.sequential_id ?? 0) - (b.sequential_id ?? 0),
    );
  const seat = (tx: string, iso: string, user: string, operation: "add" | "remove") =>
    t.lago.events.createEvent({
      event: { transaction_id: `${tx}-${run}`, external_subscription_id: subscriptionId, code: users, timestamp: at(iso), properties: { user_id: user, operation_type: operation } },
    });
  const chargeFees = async (lagoId: string) =>
    ((await t.lago.invoices.findInvoice(lagoId)).data.invoice.fees ?? [])
      .filter((f) => f.item.type === "charge")
      .map((f) => [f.units, f.amount_cents, f.pay_in_advance, f.from_date?.slice(0, 10)]);

  it("sets up March: users, a recurring unique count paid in advance", async () => {
    await freeze("2024-03-01T00:00:00Z");
    const metric = await t.lago.billableMetrics.createBillableMetric({
      billable_metric: { name: "Users", code: users, aggregation_type: "unique_count_agg", field_name: "user_id", recurring: true },
    });
    await t.lago.plans.createPlan({
      plan: {
        name: "Users",
        code: planCode,
        interval: "monthly",
        amount_cents: 0,
        amount_currency: "EUR",
        pay_in_advance: false,
        charges: [{ billable_metric_id: metric.data.billable_metric.lago_id, charge_model: "standard", pay_in_advance: true, properties: { amount: "10" } }],
      },
    } as never);
    await subscribeCustomer(t.lago, { customerId, name: "Users Co", planCode, subscriptionId });
  });

  it("March: two seats paid; a removal, a re-add and a swap cost nothing; a third seat held at once is paid", async () => {
    await freeze("2024-03-05T00:00:00Z");
    await seat("ann", "2024-03-05T00:00:00Z", "ann", "add");
    await seat("bob", "2024-03-05T00:00:00Z", "bob", "add");
    await eventually("the two seat invoices", invoices, (l) => l.length === 2);
    await freeze("2024-03-10T00:00:00Z");
    await seat("bob-out", "2024-03-10T00:00:00Z", "bob", "remove");
    await freeze("2024-03-12T00:00:00Z");
    await seat("bob-back", "2024-03-12T00:00:00Z", "bob", "add");
    await freeze("2024-03-14T00:00:00Z");
    await seat("ann-out", "2024-03-14T00:00:00Z", "ann", "remove");
    await seat("cid", "2024-03-14T00:00:00Z", "cid", "add");
    await freeze("2024-03-20T00:00:00Z");
    await seat("dan", "2024-03-20T00:00:00Z", "dan", "add");
    // The worker bills a subscription's events in arrival order: the third invoice is dan's.
    const list = await eventually("the third seat's invoice", invoices, (l) => l.length === 3);
    expect(list.map((i) => i.fees_amount_cents)).toEqual([1000, 1000, 1000]);
    expect(await chargeFees(list[2]!.lago_id)).toEqual([["1", 1000, true, "2024-03-01"]]);
  });

  it("April 1st: March's invoice bills the 3 seats held for April; its events are the adds of those seats", async () => {
    await freeze("2024-04-01T00:00:00Z");
    const list = await invoices();
    expect(list.map((i) => i.fees_amount_cents)).toEqual([1000, 1000, 1000, 3000]);
    expect(await chargeFees(list[3]!.lago_id)).toEqual([["3", 3000, true, "2024-04-01"]]);
    const carried = (await t.lago.invoices.findInvoice(list[3]!.lago_id)).data.invoice.fees!.find((f) => f.item.type === "charge")!;
    const events = await call(t.server.url, "GET", `/api/v1/fees/${carried.lago_id}/events`, { apiKey: t.apiKey });
    expect(events.status).toBe(200);
    expect((events.body.events as any[]).map((e) => e.transaction_id)).toEqual([`bob-back-${run}`, `cid-${run}`, `dan-${run}`]);
  });

  it("April: a swap costs nothing, a fourth seat €10.00; May 1st carries 4 seats into May", async () => {
    await freeze("2024-04-08T00:00:00Z");
    await seat("cid-out", "2024-04-08T00:00:00Z", "cid", "remove");
    await seat("eve", "2024-04-08T00:00:00Z", "eve", "add");
    await seat("fay", "2024-04-08T00:00:00Z", "fay", "add");
    await eventually("the fourth seat's invoice", invoices, (l) => l.length === 5);
    await freeze("2024-05-01T00:00:00Z");
    const list = await invoices();
    expect(list.map((i) => i.fees_amount_cents)).toEqual([1000, 1000, 1000, 3000, 1000, 4000]);
    expect(await chargeFees(list[5]!.lago_id)).toEqual([["4", 4000, true, "2024-05-01"]]);
  });
});
