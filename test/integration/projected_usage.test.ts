// GET /customers/:id/projected_usage against a real database, under a test clock: metered usage
// scaled by the period's days over the days elapsed and priced again (tiers apply to the
// projection), recurring usage kept as it is, filters broken down; amounts worked out by hand.
// On PGlite by default, PostgreSQL with TEST_DATABASE_URL.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestApp, type TestApp } from "../helpers/app.ts";
import { json, uid } from "./support.ts";
import { BILLING_ENV, customer, expect422, newOrg, subscribe, type Org } from "./billing_support.ts";

let t: TestApp;
beforeAll(async () => {
  t = await startTestApp({ env: BILLING_ENV });
});
afterAll(async () => {
  await t?.close();
});

/**
 * A monthly plan in arrears: calls at €0.05 (€0.10 in the `eu` filter), tokens graduated (first
 * 1,000 at €0.01, then €0.005), seats recurring at €2. Subscribed on March 1st; on March 1st:
 * 100 eu calls, 200 other calls, 500 tokens, 3 seats.
 */
async function setup() {
  const org = await newOrg(t);
  await org.freeze("2026-03-01T00:00:00Z");
  const metric = async (name: string, aggregation_type: string, extra: object = {}) =>
    (await org.api("POST", "/api/v1/billable_metrics", { billable_metric: { name, code: uid(name.toLowerCase()), aggregation_type, ...extra } })).billable_metric;
  const calls = await metric("Calls", "count_agg", { filters: [{ key: "region", values: ["eu", "us"] }] });
  const tokens = await metric("Tokens", "sum_agg", { field_name: "n" });
  const seats = await metric("Seats", "sum_agg", { field_name: "n", recurring: true });
  const plan = uid("plan");
  await org.api("POST", "/api/v1/plans", {
    plan: {
      name: "Usage",
      code: plan,
      interval: "monthly",
      amount_cents: 0,
      amount_currency: "EUR",
      charges: [
        {
          billable_metric_id: calls.lago_id,
          charge_model: "standard",
          properties: { amount: "0.05" },
          filters: [{ invoice_display_name: "Europe", properties: { amount: "0.10" }, values: { region: ["eu"] } }],
        },
        {
          billable_metric_id: tokens.lago_id,
          charge_model: "graduated",
          properties: {
            graduated_ranges: [
              { from_value: 0, to_value: 1000, per_unit_amount: "0.01", flat_amount: "0" },
              { from_value: 1001, to_value: null, per_unit_amount: "0.005", flat_amount: "0" },
            ],
          },
        },
        { billable_metric_id: seats.lago_id, charge_model: "standard", properties: { amount: "2" } },
      ],
    },
  });
  const cus = await customer(org);
  const sub = await subscribe(org, cus, plan);
  const ts = Math.floor(Date.parse("2026-03-01T08:00:00Z") / 1000);
  const event = (code: string, properties: object = {}) => ({ transaction_id: uid("tx"), external_subscription_id: sub, code, timestamp: ts, properties });
  await org.api("POST", "/api/v1/events/batch", {
    events: [
      ...Array.from({ length: 100 }, () => event(calls.code, { region: "eu" })),
      ...Array.from({ length: 200 }, () => event(calls.code)),
      event(tokens.code, { n: 500 }),
      event(seats.code, { n: 3 }),
    ],
  });
  return { org, cus, sub, codes: { calls: calls.code as string, tokens: tokens.code as string, seats: seats.code as string } };
}

const projected = (org: Org, cus: string, query: string) => org.raw("GET", `/api/v1/customers/${encodeURIComponent(cus)}/projected_usage?${query}`);

describe("projected usage", () => {
  it("projects metered charges to the period's end by days elapsed, prices them again, keeps recurring ones", async () => {
    const { org, cus, sub, codes } = await setup();
    // March 10th, noon: 10 of 31 days elapsed (the 10th counted), ratio 3.1.
    await org.freeze("2026-03-10T12:00:00Z");
    const r = await projected(org, cus, `external_subscription_id=${sub}`);
    expect(r.statusCode, r.body).toBe(200);
    const u = json(r).customer_projected_usage;
    // Now: calls 100 × €0.10 + 200 × €0.05 = €20; tokens 500 × €0.01 = €5; seats 3 × €2 = €6.
    // Projected: calls 310 × €0.10 + 620 × €0.05 = €62; tokens 1,550 = 1,000 × €0.01 + 550 × €0.005
    // = €12.75 (not 3.1 × €5); seats stay 3 = €6.
    expect(u).toMatchObject({
      from_datetime: "2026-03-01T00:00:00Z",
      to_datetime: "2026-03-31T23:59:59Z",
      issuing_date: "2026-04-01",
      currency: "EUR",
      amount_cents: 3100,
      projected_amount_cents: 8075,
      taxes_amount_cents: 0,
      total_amount_cents: 3100,
    });
    const byCode = Object.fromEntries(u.charges_usage.map((c: any) => [c.billable_metric.code, c]));
    expect(byCode[codes.calls]).toMatchObject({ units: "300", projected_units: "930", amount_cents: 2000, projected_amount_cents: 6200 });
    expect(byCode[codes.calls].filters).toEqual([
      expect.objectContaining({ values: { region: ["eu"] }, units: "100", projected_units: "310", amount_cents: 1000, projected_amount_cents: 3100 }),
    ]);
    expect(byCode[codes.tokens]).toMatchObject({ units: "500", projected_units: "1550", amount_cents: 500, projected_amount_cents: 1275 });
    expect(byCode[codes.seats]).toMatchObject({ units: "3", projected_units: "3", amount_cents: 600, projected_amount_cents: 600 });

    // On the period's last day nothing is left to project.
    await org.freeze("2026-03-31T12:00:00Z");
    const last = json(await projected(org, cus, `external_subscription_id=${sub}`)).customer_projected_usage;
    expect(last).toMatchObject({ amount_cents: 3100, projected_amount_cents: 3100 });
  });

  it("projects units that do not divide evenly to six decimals, and prices them exactly once", async () => {
    const { org, cus, sub, codes } = await setup();
    // March 3rd: 3 of 31 days. Calls: 100 eu → 1,033.333333 (× €0.10 = €103.33), 200 other → 2,066.666667 (× €0.05 = €103.33).
    await org.freeze("2026-03-03T09:00:00Z");
    await org.api("POST", "/api/v1/events/batch", {
      events: [{ transaction_id: uid("tx"), external_subscription_id: sub, code: codes.calls, timestamp: Math.floor(Date.parse("2026-03-02T00:00:00Z") / 1000), properties: {} }],
    });
    const u = json(await projected(org, cus, `external_subscription_id=${sub}`)).customer_projected_usage;
    const calls = u.charges_usage.find((c: any) => c.billable_metric.code === codes.calls);
    // 201 other calls now: × 31 / 3 = 2,077 exactly; 100 eu calls → 1,033.333333.
    expect(calls).toMatchObject({ units: "301", projected_units: "3110.333333", amount_cents: 2005 });
    expect(calls.filters[0]).toMatchObject({ projected_units: "1033.333333", projected_amount_cents: 10333 });
    // 2,077 × €0.05 = €103.85; plus €103.33.
    expect(calls.projected_amount_cents).toBe(10333 + 10385);
  });

  it("answers Lago's 404 and 422s, scoped to the organization", async () => {
    const { org, cus, sub } = await setup();
    expect422(await projected(org, cus, ""), "external_subscription_id");
    expect422(await projected(org, cus, `external_subscription_id=${sub}&apply_taxes=maybe`), "apply_taxes");
    const missing = await projected(org, "nobody", `external_subscription_id=${sub}`);
    expect(missing.statusCode).toBe(404);
    expect(json(missing)).toMatchObject({ status: 404, code: "customer_not_found" });
    // As current usage answers: a subscription that is not the customer's active one.
    const notActive = await projected(org, cus, "external_subscription_id=nope");
    expect(notActive.statusCode).toBe(405);
    expect(json(notActive)).toMatchObject({ code: "no_active_subscription" });

    const other = await newOrg(t);
    const theirs = await projected(other, cus, `external_subscription_id=${sub}`);
    expect(theirs.statusCode).toBe(404);
    expect(json(theirs)).toMatchObject({ code: "customer_not_found" });
  });
});
