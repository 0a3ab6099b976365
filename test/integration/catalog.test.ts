// The catalog API (billable metrics, plans, charges, filters) in Lago's shapes, its validation,
// tenancy and the in-process cache, on PGlite (default) or PostgreSQL (TEST_DATABASE_URL).
import type { LightMyRequestResponse } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DB_KIND } from "../helpers/db.ts";
import { startTestApp, type TestApp } from "../helpers/app.ts";
import { T0, bearer, json, uid } from "./support.ts";

const ADMIN_TOKEN = "admin-token-for-catalog-tests-0123456789";
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const T0_ISO = new Date(T0).toISOString().replace(".000Z", "Z");

let t: TestApp;
let orgId: number;

beforeAll(async () => {
  t = await startTestApp({ env: { VALUEVERSE_ADMIN_TOKEN: ADMIN_TOKEN } });
  orgId = (await t.app.orgs.authenticate(t.apiKey))!;
});
afterAll(async () => {
  await t?.close();
});

type Method = "GET" | "POST" | "PUT" | "DELETE";
const call = (method: Method, url: string, payload?: unknown, key = t.apiKey) =>
  t.app.http.inject({ method, url, headers: bearer(key), ...(payload === undefined ? {} : { payload: payload as object }) });

async function newOrg(): Promise<{ apiKey: string; orgId: number }> {
  const r = await t.app.http.inject({
    method: "POST",
    url: "/admin/v1/organizations",
    headers: bearer(ADMIN_TOKEN),
    payload: { organization: { name: uid("org") } },
  });
  expect(r.statusCode).toBe(200);
  const apiKey = json(r).api_key as string;
  return { apiKey, orgId: (await t.app.orgs.authenticate(apiKey))! };
}

async function createMetric(fields: Record<string, unknown> = {}, key = t.apiKey) {
  const r = await call("POST", "/api/v1/billable_metrics", {
    billable_metric: { name: "API calls", code: uid("calls"), aggregation_type: "count_agg", ...fields },
  }, key);
  expect(r.statusCode, r.body).toBe(200);
  return json(r).billable_metric;
}

async function createPlan(fields: Record<string, unknown> = {}, key = t.apiKey) {
  const r = await call("POST", "/api/v1/plans", {
    plan: { name: "Startup", code: uid("startup"), interval: "monthly", amount_cents: 10000, amount_currency: "USD", pay_in_advance: false, ...fields },
  }, key);
  expect(r.statusCode, r.body).toBe(200);
  return json(r).plan;
}

const expect422 = (r: LightMyRequestResponse, details: Record<string, string[]>) => {
  expect(r.statusCode, r.body).toBe(422);
  expect(json(r)).toEqual({ status: 422, error: "Unprocessable Entity", code: "validation_errors", error_details: details });
};

describe(`billable metrics on ${DB_KIND}`, () => {
  it("creates, reads, updates and deletes a metric in Lago's shape", async () => {
    const code = uid("storage");
    const create = await call("POST", "/api/v1/billable_metrics", {
      billable_metric: {
        name: "Storage",
        code,
        description: "GB stored",
        aggregation_type: "sum_agg",
        field_name: "gb",
        recurring: true,
        rounding_function: "ceil",
        rounding_precision: 2,
        filters: [
          { key: "region", values: ["us", "eu", "eu"] },
          { key: "cloud", values: ["aws"] },
        ],
      },
    });
    expect(create.statusCode, create.body).toBe(200);
    const metric = json(create).billable_metric;
    expect(metric).toEqual({
      lago_id: expect.stringMatching(UUID),
      name: "Storage",
      code,
      description: "GB stored",
      aggregation_type: "sum_agg",
      weighted_interval: null,
      recurring: true,
      rounding_function: "ceil",
      rounding_precision: 2,
      created_at: T0_ISO,
      expression: null,
      field_name: "gb",
      active_subscriptions_count: 0,
      draft_invoices_count: 0,
      plans_count: 0,
      // Ordered by key, duplicate values dropped, as Lago stores them.
      filters: [
        { key: "cloud", values: ["aws"] },
        { key: "region", values: ["us", "eu"] },
      ],
    });

    const read = await call("GET", `/api/v1/billable_metrics/${code}`);
    expect(read.statusCode).toBe(200);
    expect(json(read)).toEqual({ billable_metric: metric });

    const newCode = uid("storage-renamed");
    const update = await call("PUT", `/api/v1/billable_metrics/${code}`, {
      billable_metric: { name: "Storage (GB)", code: newCode, description: null, filters: [{ key: "region", values: ["eu"] }] },
    });
    expect(update.statusCode, update.body).toBe(200);
    expect(json(update).billable_metric).toEqual({
      ...metric,
      name: "Storage (GB)",
      code: newCode,
      description: null,
      filters: [{ key: "region", values: ["eu"] }],
    });
    expect((await call("GET", `/api/v1/billable_metrics/${code}`)).statusCode).toBe(404);

    const del = await call("DELETE", `/api/v1/billable_metrics/${newCode}`);
    expect(del.statusCode).toBe(200);
    expect(json(del).billable_metric).toMatchObject({ lago_id: metric.lago_id, code: newCode });
    const gone = await call("GET", `/api/v1/billable_metrics/${newCode}`);
    expect(gone.statusCode).toBe(404);
    expect(json(gone)).toEqual({ status: 404, error: "Not Found", code: "billable_metric_not_found" });
  });

  it.each([
    ["count_agg", {}, { field_name: null, weighted_interval: null }],
    ["sum_agg", { field_name: "amount" }, { field_name: "amount" }],
    ["max_agg", { field_name: "amount" }, { field_name: "amount" }],
    ["unique_count_agg", { field_name: "user_id" }, { field_name: "user_id" }],
    ["latest_agg", { field_name: "seats" }, { field_name: "seats" }],
    ["weighted_sum_agg", { field_name: "gb" }, { field_name: "gb", weighted_interval: "seconds" }],
  ])("creates a %s metric", async (aggregation_type, extra, expected) => {
    const metric = await createMetric({ aggregation_type, ...extra });
    expect(metric).toMatchObject({ aggregation_type, ...expected });
  });

  it("names every broken field of a metric in one 422", async () => {
    const r = await call("POST", "/api/v1/billable_metrics", {
      billable_metric: {
        name: "",
        aggregation_type: "median_agg",
        recurring: "yes",
        rounding_function: "truncate",
        filters: [{ key: "region", values: [] }, { key: "", values: ["a"] }],
      },
    });
    expect422(r, {
      name: ["value_is_mandatory"],
      code: ["value_is_mandatory"],
      aggregation_type: ["value_is_invalid"],
      recurring: ["value_is_invalid"],
      rounding_function: ["value_is_invalid"],
      "filters[0].values": ["value_is_mandatory"],
      "filters[1].key": ["value_is_mandatory"],
    });
  });

  it.each([
    ["a sum without field_name", { aggregation_type: "sum_agg" }, { field_name: ["value_is_mandatory"] }],
    ["a max without field_name", { aggregation_type: "max_agg" }, { field_name: ["value_is_mandatory"] }],
    ["a unique count without field_name", { aggregation_type: "unique_count_agg" }, { field_name: ["value_is_mandatory"] }],
    ["a latest without field_name", { aggregation_type: "latest_agg" }, { field_name: ["value_is_mandatory"] }],
    ["a weighted sum without field_name", { aggregation_type: "weighted_sum_agg" }, { field_name: ["value_is_mandatory"] }],
    ["a recurring count", { aggregation_type: "count_agg", recurring: true }, { recurring: ["not_compatible_with_aggregation_type"] }],
    ["an expression (not evaluated here)", { aggregation_type: "count_agg", expression: "round(a * b)" }, { expression: ["expression_not_supported"] }],
    ["a filter key twice", { aggregation_type: "count_agg", filters: [{ key: "r", values: ["a"] }, { key: "r", values: ["b"] }] }, { "filters[1].key": ["value_already_exist"] }],
  ])("refuses %s", async (_case, fields, details) => {
    expect422(await call("POST", "/api/v1/billable_metrics", { billable_metric: { name: "M", code: uid("m"), ...fields } }), details);
  });

  it("refuses a duplicate code, and frees the code once the metric is deleted", async () => {
    const metric = await createMetric();
    expect422(
      await call("POST", "/api/v1/billable_metrics", { billable_metric: { name: "again", code: metric.code, aggregation_type: "count_agg" } }),
      { code: ["value_already_exist"] },
    );
    const other = await createMetric();
    expect422(await call("PUT", `/api/v1/billable_metrics/${other.code}`, { billable_metric: { code: metric.code } }), {
      code: ["value_already_exist"],
    });
    expect((await call("DELETE", `/api/v1/billable_metrics/${metric.code}`)).statusCode).toBe(200);
    const again = await createMetric({ code: metric.code });
    expect(again.lago_id).not.toBe(metric.lago_id);
  });

  it("answers 400 when the body has no billable_metric", async () => {
    for (const payload of [{}, { billable_metric: null }]) {
      const r = await call("POST", "/api/v1/billable_metrics", payload);
      expect(r.statusCode).toBe(400);
      expect(json(r)).toMatchObject({ status: 400, code: "missing_parameter" });
    }
    expect422(await call("POST", "/api/v1/billable_metrics", { billable_metric: "x" }), { billable_metric: ["value_is_invalid"] });
  });

  it("answers 404 in Lago's body for an unknown code on every route", async () => {
    for (const [method, payload] of [["GET"], ["PUT", { billable_metric: { name: "x" } }], ["DELETE"]] as const) {
      const r = await call(method, `/api/v1/billable_metrics/${uid("nope")}`, payload);
      expect(r.statusCode, method).toBe(404);
      expect(json(r)).toEqual({ status: 404, error: "Not Found", code: "billable_metric_not_found" });
    }
  });

  it("pages the list newest first with Lago's pagination meta", async () => {
    const org = await newOrg();
    const codes: string[] = [];
    for (let i = 0; i < 5; i++) codes.push((await createMetric({ code: `m${i}` }, org.apiKey)).code);
    const page2 = await call("GET", "/api/v1/billable_metrics?page=2&per_page=2", undefined, org.apiKey);
    expect(page2.statusCode).toBe(200);
    const body = json(page2);
    expect(body.billable_metrics.map((m: { code: string }) => m.code)).toEqual(["m2", "m1"]);
    expect(body.meta).toEqual({ current_page: 2, next_page: 3, prev_page: 1, total_pages: 3, total_count: 5 });
    const all = json(await call("GET", "/api/v1/billable_metrics", undefined, org.apiKey));
    expect(all.billable_metrics).toHaveLength(5);
    expect(all.meta).toEqual({ current_page: 1, next_page: null, prev_page: null, total_pages: 1, total_count: 5 });
    expect422(await call("GET", "/api/v1/billable_metrics?per_page=0", undefined, org.apiKey), {
      per_page: ["must_be_an_integer_between_1_and_1000"],
    });
  });
});

// One charge per charge model, as a Lago client sends them.
const properties = {
  standard: { amount: "0.25" },
  graduated: {
    graduated_ranges: [
      { from_value: 0, to_value: 10, per_unit_amount: "0.5", flat_amount: "10" },
      { from_value: 11, to_value: null, per_unit_amount: "0.4", flat_amount: "0" },
    ],
  },
  volume: {
    volume_ranges: [
      { from_value: 0, to_value: 100, per_unit_amount: "2", flat_amount: "1" },
      { from_value: 101, to_value: null, per_unit_amount: "1", flat_amount: "0" },
    ],
  },
  package: { amount: "30", free_units: 100, package_size: 1000 },
  percentage: {
    rate: "1.5",
    fixed_amount: "0.5",
    free_units_per_events: 5,
    free_units_per_total_aggregation: "500",
    per_transaction_min_amount: "1.75",
    per_transaction_max_amount: "3.75",
  },
  graduated_percentage: {
    graduated_percentage_ranges: [
      { from_value: 0, to_value: 10, rate: "1", flat_amount: "10" },
      { from_value: 11, to_value: null, rate: "0.5", flat_amount: "0" },
    ],
  },
} as const;

describe(`plans on ${DB_KIND}`, () => {
  it("round-trips a plan with a charge of every model, filters and Lago's defaults", async () => {
    const calls = await createMetric({ filters: [{ key: "region", values: ["eu", "us", "asia"] }] });
    const amount = await createMetric({ aggregation_type: "sum_agg", field_name: "amount" });
    const code = uid("pro");
    const r = await call("POST", "/api/v1/plans", {
      plan: {
        name: "Pro",
        invoice_display_name: "Pro plan",
        code,
        interval: "yearly",
        description: "For teams",
        amount_cents: 120000,
        amount_currency: "EUR",
        trial_period: 14.5,
        pay_in_advance: true,
        bill_charges_monthly: true,
        charges: [
          {
            billable_metric_id: calls.lago_id,
            charge_model: "standard",
            invoice_display_name: "API calls",
            min_amount_cents: 500,
            properties: { ...properties.standard, grouped_by: ["agent"], ignored: "dropped" },
            filters: [
              { invoice_display_name: "Europe", properties: { amount: "0.1" }, values: { region: ["eu"] } },
              { properties: { amount: "0.2" }, values: { region: ["us", "asia"] } },
            ],
          },
          { billable_metric_id: calls.lago_id, charge_model: "graduated", properties: properties.graduated },
          { billable_metric_code: amount.code, charge_model: "volume", properties: properties.volume },
          { billable_metric_id: calls.lago_id, charge_model: "package", properties: { ...properties.package, rate: "9" } },
          { billable_metric_id: amount.lago_id, charge_model: "percentage", properties: properties.percentage },
          { billable_metric_id: amount.lago_id, charge_model: "graduated_percentage", properties: properties.graduated_percentage },
          // No properties: Lago's defaults for the model.
          { billable_metric_id: calls.lago_id, charge_model: "standard", pay_in_advance: true, invoiceable: false, regroup_paid_fees: "invoice" },
        ],
      },
    });
    expect(r.statusCode, r.body).toBe(200);
    const plan = json(r).plan;
    const charge = (metric: { lago_id: string; code: string }, model: string, props: object, extra: object = {}) => ({
      lago_id: expect.stringMatching(UUID),
      lago_billable_metric_id: metric.lago_id,
      billable_metric_code: metric.code,
      code: expect.any(String),
      invoice_display_name: null,
      created_at: T0_ISO,
      charge_model: model,
      invoiceable: true,
      regroup_paid_fees: null,
      pay_in_advance: false,
      prorated: false,
      min_amount_cents: 0,
      properties: props,
      filters: [],
      taxes: [],
      tax_codes: [],
      ...extra,
    });
    expect(plan).toEqual({
      lago_id: expect.stringMatching(UUID),
      name: "Pro",
      invoice_display_name: "Pro plan",
      created_at: T0_ISO,
      code,
      interval: "yearly",
      description: "For teams",
      amount_cents: 120000,
      amount_currency: "EUR",
      trial_period: 14.5,
      pay_in_advance: true,
      bill_charges_monthly: true,
      customers_count: 0,
      active_subscriptions_count: 0,
      draft_invoices_count: 0,
      parent_id: null,
      pending_deletion: false,
      taxes: [],
      tax_codes: [],
      minimum_commitment: null,
      usage_thresholds: [],
      charges: [
        charge(calls, "standard", { amount: "0.25", pricing_group_keys: ["agent"], grouped_by: ["agent"] }, {
          invoice_display_name: "API calls",
          min_amount_cents: 500,
          filters: [
            { invoice_display_name: "Europe", properties: { amount: "0.1" }, values: { region: ["eu"] } },
            { invoice_display_name: null, properties: { amount: "0.2" }, values: { region: ["us", "asia"] } },
          ],
        }),
        charge(calls, "graduated", properties.graduated),
        charge(amount, "volume", properties.volume),
        charge(calls, "package", properties.package),
        charge(amount, "percentage", properties.percentage),
        charge(amount, "graduated_percentage", properties.graduated_percentage),
        charge(calls, "standard", { amount: "0" }, { pay_in_advance: true, invoiceable: false, regroup_paid_fees: "invoice" }),
      ],
    });
    // Charges sent without a code get their metric's, then `_2`, `_3`, … (plan order).
    expect(plan.charges.map((c: { code: string }) => c.code)).toEqual([
      calls.code, `${calls.code}_2`, amount.code, `${calls.code}_3`, `${amount.code}_2`, `${amount.code}_3`, `${calls.code}_4`,
    ]);
    expect(json(await call("GET", `/api/v1/plans/${code}`))).toEqual({ plan });
    const listed = json(await call("GET", "/api/v1/plans?per_page=1000")).plans as { code: string }[];
    expect(listed.find((p) => p.code === code)).toEqual(plan);
    expect(json(await call("GET", `/api/v1/billable_metrics/${calls.code}`)).billable_metric.plans_count).toBe(1);

    // The cached plan carries parsed prices for rating.
    const cached = (await t.app.catalog.getPlanByCode(orgId, code))!;
    expect(cached.amountCents).toBe(120000n);
    expect(cached.charges.map((c) => c.price.model)).toEqual([
      "standard", "graduated", "volume", "package", "percentage", "graduated_percentage", "standard",
    ]);
    expect(cached.charges[0]!.filters[1]!.price).toMatchObject({ model: "standard" });
    expect(cached.charges[0]!.minAmountCents).toBe(500n);
  });

  it("stores bill_charges_monthly only for yearly plans and a null trial when none is sent", async () => {
    const plan = await createPlan({ bill_charges_monthly: true });
    expect(plan).toMatchObject({ interval: "monthly", bill_charges_monthly: null, trial_period: null, charges: [] });
  });

  it("names every broken plan field in one 422", async () => {
    const r = await call("POST", "/api/v1/plans", {
      plan: { name: "Bad", code: uid("bad"), interval: "daily", amount_cents: -1, amount_currency: "XXX", trial_period: -2, charges: {} },
    });
    expect422(r, {
      interval: ["value_is_invalid"],
      amount_cents: ["value_is_out_of_range"],
      amount_currency: ["value_is_invalid"],
      trial_period: ["value_is_out_of_range"],
      charges: ["value_is_invalid"],
    });
    expect422(await call("POST", "/api/v1/plans", { plan: {} }), {
      name: ["value_is_mandatory"],
      code: ["value_is_mandatory"],
      interval: ["value_is_mandatory"],
      amount_cents: ["value_is_mandatory"],
      amount_currency: ["value_is_mandatory"],
    });
  });

  it("names the broken charge fields by path", async () => {
    const calls = await createMetric({ filters: [{ key: "region", values: ["eu", "us"] }] });
    const peak = await createMetric({ aggregation_type: "max_agg", field_name: "n" });
    const r = await call("POST", "/api/v1/plans", {
      plan: {
        name: "Bad charges",
        code: uid("bad"),
        interval: "monthly",
        amount_cents: 0,
        amount_currency: "USD",
        charges: [
          { billable_metric_id: "00000000-0000-4000-8000-000000000000", charge_model: "standard", properties: { amount: "1" } },
          {
            billable_metric_id: calls.lago_id,
            charge_model: "graduated",
            properties: {
              graduated_ranges: [
                { from_value: 0, to_value: 10, per_unit_amount: "1", flat_amount: "0" },
                { from_value: 5, to_value: null, per_unit_amount: "-1", flat_amount: "0" },
              ],
            },
          },
          { billable_metric_id: calls.lago_id, charge_model: "volume", pay_in_advance: true, properties: properties.volume },
          { billable_metric_id: peak.lago_id, charge_model: "standard", pay_in_advance: true, min_amount_cents: 100, properties: { amount: "1" } },
          {
            billable_metric_id: calls.lago_id,
            charge_model: "standard",
            properties: { amount: "1" },
            filters: [
              { properties: { amount: "1" }, values: { region: ["mars"] } },
              { properties: { amount: "1" }, values: { planet: ["earth"] } },
              { properties: {}, values: { region: ["eu"] } },
            ],
          },
          { billable_metric_code: uid("missing"), charge_model: "dynamic" },
          { billable_metric_id: calls.lago_id, charge_model: "standard", invoiceable: false, prorated: true, min_amount_cents: -5 },
          "not a charge",
        ],
      },
    });
    expect422(r, {
      "charges[0].billable_metric_id": ["billable_metric_not_found"],
      "charges[1].properties.graduated_ranges[1].from_value": ["invalid_graduated_ranges"],
      "charges[1].properties.graduated_ranges[1].per_unit_amount": ["invalid_amount"],
      "charges[2].pay_in_advance": ["invalid_aggregation_type_or_charge_model"],
      "charges[3].pay_in_advance": ["invalid_aggregation_type_or_charge_model"],
      "charges[3].min_amount_cents": ["not_compatible_with_pay_in_advance"],
      "charges[4].filters[0].values.region": ["value_is_invalid"],
      "charges[4].filters[1].values.planet": ["value_is_invalid"],
      "charges[4].filters[2].properties.amount": ["invalid_amount"],
      "charges[5].billable_metric_code": ["billable_metric_not_found"],
      "charges[5].charge_model": ["value_is_invalid"],
      "charges[6].min_amount_cents": ["value_is_out_of_range"],
      "charges[6].invoiceable": ["must_be_true_unless_pay_in_advance"],
      "charges[6].prorated": ["invalid_billable_metric_or_charge_model"],
      "charges[7]": ["value_is_invalid"],
    });
    // Nothing of a refused plan is stored.
    const count = await t.db.query<{ n: string }>("SELECT count(*)::text AS n FROM plans WHERE name = 'Bad charges'");
    expect(count.rows[0]!.n).toBe("0");
  });

  it("refuses a duplicate plan code", async () => {
    const plan = await createPlan();
    expect422(
      await call("POST", "/api/v1/plans", { plan: { name: "x", code: plan.code, interval: "monthly", amount_cents: 1, amount_currency: "USD" } }),
      { code: ["value_already_exist"] },
    );
  });

  it("updates a plan: changed fields only, charges matched by id, missing charges removed, filters kept when not sent", async () => {
    const calls = await createMetric({ filters: [{ key: "region", values: ["eu", "us"] }] });
    const seats = await createMetric({ aggregation_type: "unique_count_agg", field_name: "user" });
    const plan = await createPlan({
      charges: [
        {
          billable_metric_id: calls.lago_id,
          charge_model: "standard",
          properties: { amount: "1" },
          filters: [{ properties: { amount: "2" }, values: { region: ["eu"] } }],
        },
        { billable_metric_id: seats.lago_id, charge_model: "package", properties: properties.package },
      ],
    });
    const [first, second] = plan.charges;
    const newCode = uid("renamed");
    const r = await call("PUT", `/api/v1/plans/${plan.code}`, {
      plan: {
        code: newCode,
        amount_cents: 20000,
        charges: [
          { id: first.lago_id, charge_model: "standard", properties: { amount: "1.5" } },
          { billable_metric_id: seats.lago_id, charge_model: "graduated", properties: properties.graduated },
        ],
      },
    });
    expect(r.statusCode, r.body).toBe(200);
    const updated = json(r).plan;
    expect(updated).toMatchObject({ lago_id: plan.lago_id, code: newCode, name: "Startup", amount_cents: 20000, amount_currency: "USD" });
    expect(updated.charges).toHaveLength(2);
    expect(updated.charges[0]).toMatchObject({
      lago_id: first.lago_id,
      properties: { amount: "1.5" },
      filters: [{ invoice_display_name: null, properties: { amount: "2" }, values: { region: ["eu"] } }],
    });
    expect(updated.charges[1].lago_id).not.toBe(second.lago_id);
    expect(updated.charges[1]).toMatchObject({ charge_model: "graduated", billable_metric_code: seats.code });
    expect((await call("GET", `/api/v1/plans/${plan.code}`)).statusCode).toBe(404);
    expect(json(await call("GET", `/api/v1/plans/${newCode}`)).plan).toEqual(updated);

    // `charges: []` removes them all; a plan update without `charges` leaves them alone.
    expect(json(await call("PUT", `/api/v1/plans/${newCode}`, { plan: { name: "Renamed" } })).plan.charges).toHaveLength(2);
    expect(json(await call("PUT", `/api/v1/plans/${newCode}`, { plan: { charges: [] } })).plan.charges).toEqual([]);
  });

  it("validates an update against the plan it changes", async () => {
    const plan = await createPlan();
    expect422(await call("PUT", `/api/v1/plans/${plan.code}`, { plan: { amount_cents: -5, interval: "hourly", name: null } }), {
      amount_cents: ["value_is_out_of_range"],
      interval: ["value_is_invalid"],
      name: ["value_is_mandatory"],
    });
    expect(json(await call("GET", `/api/v1/plans/${plan.code}`)).plan).toEqual(plan);
  });

  it("deletes a plan: gone from reads and lists, its code free again", async () => {
    const plan = await createPlan();
    const del = await call("DELETE", `/api/v1/plans/${plan.code}`);
    expect(del.statusCode).toBe(200);
    expect(json(del).plan).toEqual({ ...plan, pending_deletion: true });
    const gone = await call("GET", `/api/v1/plans/${plan.code}`);
    expect(gone.statusCode).toBe(404);
    expect(json(gone)).toEqual({ status: 404, error: "Not Found", code: "plan_not_found" });
    expect(await t.app.catalog.getPlanByCode(orgId, plan.code)).toBeNull();
    const list = json(await call("GET", "/api/v1/plans?per_page=1000")).plans as { code: string }[];
    expect(list.some((p) => p.code === plan.code)).toBe(false);
    expect((await createPlan({ code: plan.code })).lago_id).not.toBe(plan.lago_id);
  });

  it("answers 404 in Lago's body for an unknown plan on every route", async () => {
    for (const [method, payload] of [["GET"], ["PUT", { plan: { name: "x" } }], ["DELETE"]] as const) {
      const r = await call(method, `/api/v1/plans/${uid("nope")}`, payload);
      expect(r.statusCode, method).toBe(404);
      expect(json(r)).toEqual({ status: 404, error: "Not Found", code: "plan_not_found" });
    }
  });

  it("pages plans with Lago's pagination meta", async () => {
    const org = await newOrg();
    for (let i = 0; i < 3; i++) await createPlan({ code: `p${i}` }, org.apiKey);
    const body = json(await call("GET", "/api/v1/plans?per_page=2&page=2", undefined, org.apiKey));
    expect(body.plans.map((p: { code: string }) => p.code)).toEqual(["p0"]);
    expect(body.meta).toEqual({ current_page: 2, next_page: null, prev_page: 1, total_pages: 2, total_count: 3 });
  });
});

describe(`metrics used by plans on ${DB_KIND}`, () => {
  it("deleting a metric removes its charges from plans, as Lago does", async () => {
    const calls = await createMetric();
    const other = await createMetric();
    const plan = await createPlan({
      charges: [
        { billable_metric_id: calls.lago_id, charge_model: "standard", properties: { amount: "1" } },
        { billable_metric_id: other.lago_id, charge_model: "standard", properties: { amount: "2" } },
      ],
    });
    const del = await call("DELETE", `/api/v1/billable_metrics/${calls.code}`);
    expect(del.statusCode).toBe(200);
    expect(json(del).billable_metric.plans_count).toBe(1);
    const after = json(await call("GET", `/api/v1/plans/${plan.code}`)).plan;
    expect(after.charges.map((c: { billable_metric_code: string }) => c.billable_metric_code)).toEqual([other.code]);
    expect((await t.app.catalog.getPlanByCode(orgId, plan.code))!.charges).toHaveLength(1);
  });

  it("only name, description and filters change on a metric used by a plan", async () => {
    const metric = await createMetric({ aggregation_type: "sum_agg", field_name: "amount" });
    await createPlan({ charges: [{ billable_metric_id: metric.lago_id, charge_model: "standard", properties: { amount: "1" } }] });
    const r = await call("PUT", `/api/v1/billable_metrics/${metric.code}`, {
      billable_metric: { name: "Renamed", code: uid("other"), aggregation_type: "max_agg", field_name: "other" },
    });
    expect(r.statusCode, r.body).toBe(200);
    expect(json(r).billable_metric).toEqual({ ...metric, name: "Renamed", plans_count: 1 });
  });

  it("narrowing a metric's filters narrows the charge filters priced on it", async () => {
    const metric = await createMetric({ filters: [{ key: "region", values: ["eu", "us"] }, { key: "tier", values: ["gold"] }] });
    const plan = await createPlan({
      charges: [
        {
          billable_metric_id: metric.lago_id,
          charge_model: "standard",
          properties: { amount: "1" },
          filters: [
            { properties: { amount: "2" }, values: { region: ["eu", "us"] } },
            { properties: { amount: "3" }, values: { region: ["us"] } },
            { properties: { amount: "4" }, values: { region: ["us"], tier: ["gold"] } },
          ],
        },
      ],
    });
    expect((await t.app.catalog.getPlanByCode(orgId, plan.code))!.charges[0]!.filters).toHaveLength(3);
    const r = await call("PUT", `/api/v1/billable_metrics/${metric.code}`, {
      billable_metric: { filters: [{ key: "region", values: ["eu"] }, { key: "tier", values: ["gold"] }] },
    });
    expect(r.statusCode, r.body).toBe(200);
    const filters = json(await call("GET", `/api/v1/plans/${plan.code}`)).plan.charges[0].filters;
    expect(filters).toEqual([
      { invoice_display_name: null, properties: { amount: "2" }, values: { region: ["eu"] } },
      { invoice_display_name: null, properties: { amount: "4" }, values: { tier: ["gold"] } },
    ]);
    // The cached plan (which embeds the metric) was dropped with the metric write.
    const cached = (await t.app.catalog.getPlanByCode(orgId, plan.code))!;
    expect(cached.charges[0]!.filters.map((f) => f.values)).toEqual([{ region: ["eu"] }, { tier: ["gold"] }]);
    expect(cached.charges[0]!.metric.filters).toEqual([{ key: "region", values: ["eu"] }, { key: "tier", values: ["gold"] }]);
  });
});

describe(`catalog cache on ${DB_KIND}`, () => {
  it("serves plans from memory and shows a charge's new price on the next read after an update", async () => {
    const metric = await createMetric();
    const plan = await createPlan({ charges: [{ billable_metric_id: metric.lago_id, charge_model: "standard", properties: { amount: "1" } }] });
    const first = (await t.app.catalog.getPlanByCode(orgId, plan.code))!;
    expect(first.charges[0]!.price).toMatchObject({ model: "standard" });
    expect(first.charges[0]!.properties).toEqual({ amount: "1" });
    // The same object: no database round trip.
    expect(await t.app.catalog.getPlanByCode(orgId, plan.code)).toBe(first);
    expect(await t.app.catalog.getPlanById(orgId, first.id)).toEqual(first);

    const r = await call("PUT", `/api/v1/plans/${plan.code}`, {
      plan: { charges: [{ id: plan.charges[0].lago_id, charge_model: "standard", properties: { amount: "2.75" } }] },
    });
    expect(r.statusCode, r.body).toBe(200);
    const next = (await t.app.catalog.getPlanByCode(orgId, plan.code))!;
    expect(next).not.toBe(first);
    expect(next.charges[0]!.properties).toEqual({ amount: "2.75" });
    expect((next.charges[0]!.price as { amount: { toString(): string } }).amount.toString()).toBe("2.75");
    expect((await t.app.catalog.getPlanById(orgId, first.id))!.charges[0]!.properties).toEqual({ amount: "2.75" });
  });

  it("caches a missing code and forgets it when the metric or plan is created", async () => {
    const code = uid("later");
    expect(await t.app.catalog.getMetricByCode(orgId, code)).toBeNull();
    expect(await t.app.catalog.getMetricsForCode(orgId, code)).toEqual([]);
    expect(await t.app.catalog.getPlanByCode(orgId, code)).toBeNull();
    const metric = await createMetric({ code });
    const cached = await t.app.catalog.getMetricByCode(orgId, code);
    expect(cached).toMatchObject({ lagoId: metric.lago_id, code, aggregationType: "count_agg" });
    expect(await t.app.catalog.getMetricsForCode(orgId, code)).toEqual([cached]);
    await createPlan({ code });
    expect(await t.app.catalog.getPlanByCode(orgId, code)).toMatchObject({ code });
  });

  it("drops a renamed or deleted metric from the cache", async () => {
    const metric = await createMetric({ aggregation_type: "sum_agg", field_name: "a" });
    expect(await t.app.catalog.getMetricByCode(orgId, metric.code)).toMatchObject({ fieldName: "a" });
    const renamed = uid("renamed");
    await call("PUT", `/api/v1/billable_metrics/${metric.code}`, { billable_metric: { code: renamed, field_name: "b" } });
    expect(await t.app.catalog.getMetricByCode(orgId, metric.code)).toBeNull();
    expect(await t.app.catalog.getMetricByCode(orgId, renamed)).toMatchObject({ fieldName: "b" });
    await call("DELETE", `/api/v1/billable_metrics/${renamed}`);
    expect(await t.app.catalog.getMetricByCode(orgId, renamed)).toBeNull();
  });
});

describe(`catalog tenancy on ${DB_KIND}`, () => {
  it("one organization can never read, change or delete another's metrics and plans", async () => {
    const metric = await createMetric();
    const plan = await createPlan({ charges: [{ billable_metric_id: metric.lago_id, charge_model: "standard", properties: { amount: "1" } }] });
    const other = await newOrg();

    for (const [method, url, payload] of [
      ["GET", `/api/v1/billable_metrics/${metric.code}`],
      ["PUT", `/api/v1/billable_metrics/${metric.code}`, { billable_metric: { name: "stolen" } }],
      ["DELETE", `/api/v1/billable_metrics/${metric.code}`],
      ["GET", `/api/v1/plans/${plan.code}`],
      ["PUT", `/api/v1/plans/${plan.code}`, { plan: { name: "stolen" } }],
      ["DELETE", `/api/v1/plans/${plan.code}`],
    ] as const) {
      const r = await call(method, url, payload, other.apiKey);
      expect(r.statusCode, `${method} ${url}`).toBe(404);
    }
    expect(json(await call("GET", "/api/v1/billable_metrics", undefined, other.apiKey)).billable_metrics).toEqual([]);
    expect(json(await call("GET", "/api/v1/plans", undefined, other.apiKey)).plans).toEqual([]);

    // A plan in the other organization cannot price the first one's metric, by id or by code.
    expect422(
      await call("POST", "/api/v1/plans", {
        plan: {
          name: "x", code: uid("x"), interval: "monthly", amount_cents: 0, amount_currency: "USD",
          charges: [
            { billable_metric_id: metric.lago_id, charge_model: "standard", properties: { amount: "1" } },
            { billable_metric_code: metric.code, charge_model: "standard", properties: { amount: "1" } },
          ],
        },
      }, other.apiKey),
      { "charges[0].billable_metric_id": ["billable_metric_not_found"], "charges[1].billable_metric_code": ["billable_metric_not_found"] },
    );
    // Nor update one of the first organization's charges through its id.
    const own = await createPlan({}, other.apiKey);
    const ownMetric = await createMetric({}, other.apiKey);
    const r = await call("PUT", `/api/v1/plans/${own.code}`, {
      plan: { charges: [{ id: plan.charges[0].lago_id, billable_metric_id: ownMetric.lago_id, charge_model: "standard", properties: { amount: "9" } }] },
    }, other.apiKey);
    expect(r.statusCode, r.body).toBe(200);
    expect(json(r).plan.charges[0].lago_id).not.toBe(plan.charges[0].lago_id);

    // The same codes live independently in each organization.
    const twin = await createMetric({ code: metric.code }, other.apiKey);
    expect(twin.lago_id).not.toBe(metric.lago_id);
    const twinPlan = await createPlan({ code: plan.code }, other.apiKey);
    expect(await t.app.catalog.getPlanByCode(other.orgId, plan.code)).toMatchObject({ lagoId: twinPlan.lago_id });
    expect(await t.app.catalog.getPlanByCode(orgId, plan.code)).toMatchObject({ lagoId: plan.lago_id });
    expect(await t.app.catalog.getMetricByCode(other.orgId, metric.code)).toMatchObject({ lagoId: twin.lago_id });

    // And the first organization's objects are untouched.
    expect(json(await call("GET", `/api/v1/billable_metrics/${metric.code}`)).billable_metric).toMatchObject({ name: metric.name, plans_count: 1 });
    expect(json(await call("GET", `/api/v1/plans/${plan.code}`)).plan).toEqual(plan);
  });
});

describe(`catalog under concurrent writes on ${DB_KIND}`, () => {
  it("of concurrent creates with one code, exactly one succeeds and the others are told the code is taken", async () => {
    const code = uid("race");
    const metrics = await Promise.all(
      Array.from({ length: 6 }, () => call("POST", "/api/v1/billable_metrics", { billable_metric: { name: "m", code, aggregation_type: "count_agg" } })),
    );
    const plans = await Promise.all(
      Array.from({ length: 6 }, () =>
        call("POST", "/api/v1/plans", { plan: { name: "p", code, interval: "monthly", amount_cents: 0, amount_currency: "USD" } }),
      ),
    );
    for (const results of [metrics, plans]) {
      expect(results.map((r) => r.statusCode).sort()).toEqual([200, 422, 422, 422, 422, 422]);
      for (const r of results.filter((r) => r.statusCode === 422)) expect(json(r).error_details).toEqual({ code: ["value_already_exist"] });
    }
  });

  it("a metric deleted while a plan pricing it is created never leaves a live charge on a deleted metric", async () => {
    for (let i = 0; i < 5; i++) {
      const metric = await createMetric();
      const [del, create] = await Promise.all([
        call("DELETE", `/api/v1/billable_metrics/${metric.code}`),
        call("POST", "/api/v1/plans", {
          plan: {
            name: "p", code: uid("p"), interval: "monthly", amount_cents: 0, amount_currency: "USD",
            charges: [{ billable_metric_id: metric.lago_id, charge_model: "standard", properties: { amount: "1" } }],
          },
        }),
      ]);
      expect(del.statusCode).toBe(200);
      expect([200, 422]).toContain(create.statusCode);
    }
    const orphans = await t.db.query<{ n: string }>(
      `SELECT count(*)::text AS n FROM charges c JOIN billable_metrics m ON m.id = c.billable_metric_id
        WHERE c.deleted_at IS NULL AND m.deleted_at IS NOT NULL`,
    );
    expect(orphans.rows[0]!.n).toBe("0");
  });

  it("a cached plan read racing an update never keeps the old price once the update has answered", async () => {
    const metric = await createMetric();
    const plan = await createPlan({ charges: [{ billable_metric_id: metric.lago_id, charge_model: "standard", properties: { amount: "1" } }] });
    for (let i = 2; i < 8; i++) {
      const [, r] = await Promise.all([
        t.app.catalog.getPlanByCode(orgId, plan.code),
        call("PUT", `/api/v1/plans/${plan.code}`, {
          plan: { charges: [{ id: plan.charges[0].lago_id, charge_model: "standard", properties: { amount: String(i) } }] },
        }),
        t.app.catalog.getPlanByCode(orgId, plan.code),
      ]);
      expect(r.statusCode).toBe(200);
      expect((await t.app.catalog.getPlanByCode(orgId, plan.code))!.charges[0]!.properties).toEqual({ amount: String(i) });
    }
  });
});

describe(`catalog bad input on ${DB_KIND}`, () => {
  const nul = "a\u0000b";
  let metricCode = "";
  beforeAll(async () => {
    metricCode = (await createMetric()).code;
  });
  const planWith = (charge: Record<string, unknown>) => ({
    plan: {
      name: "n", code: uid("p"), interval: "monthly", amount_cents: 0, amount_currency: "USD",
      charges: [{ billable_metric_code: metricCode, ...charge }],
    },
  });
  it.each<[string, Method, string, () => unknown, number, Record<string, string[]> | null]>([
    ["a code with U+0000 in the path", "GET", `/api/v1/billable_metrics/${encodeURIComponent(nul)}`, () => undefined, 404, null],
    ["a plan code with U+0000 in the path", "DELETE", `/api/v1/plans/${encodeURIComponent(nul)}`, () => undefined, 404, null],
    ["a code of 3000 characters", "GET", `/api/v1/plans/${"x".repeat(3000)}`, () => undefined, 404, null],
    ["U+0000 in a metric name", "POST", "/api/v1/billable_metrics",
      () => ({ billable_metric: { name: nul, code: uid("c"), aggregation_type: "count_agg" } }), 422, { name: ["value_is_invalid"] }],
    ["U+0000 in a filter value", "POST", "/api/v1/billable_metrics",
      () => ({ billable_metric: { name: "n", code: uid("c"), aggregation_type: "count_agg", filters: [{ key: "k", values: [nul] }] } }), 422,
      { "filters[0].values": ["value_is_invalid"] }],
    ["U+0000 in a metric code a charge names", "POST", "/api/v1/plans", () => planWith({ billable_metric_code: nul, charge_model: "standard" }), 422,
      { "charges[0].billable_metric_code": ["billable_metric_not_found"] }],
    ["U+0000 deep inside charge tiers", "POST", "/api/v1/plans",
      () => planWith({ charge_model: "graduated", properties: { graduated_ranges: [{ from_value: 0, to_value: null, per_unit_amount: "1", note: nul }] } }), 422,
      { "charges[0].properties.graduated_ranges": ["value_is_invalid"] }],
    ["a plan body that is a list", "POST", "/api/v1/plans", () => ({ plan: [] }), 422, { plan: ["value_is_invalid"] }],
    ["an amount of 1e300", "POST", "/api/v1/plans",
      () => ({ plan: { name: "n", code: uid("p"), interval: "monthly", amount_cents: 1e300, amount_currency: "USD" } }), 422,
      { amount_cents: ["value_is_invalid"] }],
  ])("%s is a 4xx, never a 500", async (_case, method, url, payload, status, details) => {
    const r = await call(method, url, payload());
    expect(r.statusCode, r.body).toBe(status);
    if (details) expect(json(r).error_details).toEqual(details);
  });

  it("stores and returns a tier bound of 1e300 exactly as sent", async () => {
    const ranges = [{ from_value: 0, to_value: 1e300, per_unit_amount: "1", flat_amount: "0" }, { from_value: 1e300 + 1, to_value: null, per_unit_amount: "0", flat_amount: "0" }];
    const r = await call("POST", "/api/v1/plans", planWith({ charge_model: "volume", properties: { volume_ranges: ranges } }));
    expect(r.statusCode, r.body).toBe(200);
    expect(json(r).plan.charges[0].properties.volume_ranges[0].to_value).toBe(1e300);
  });
});
