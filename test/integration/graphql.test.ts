// The GraphQL read API: the same data as the REST API (nested customer → subscriptions → usage,
// customer → invoices), organization scoping, API-key auth, depth and complexity limits, and
// GraphQL-format 400s for bad queries. On PGlite by default, PostgreSQL with TEST_DATABASE_URL.
import type { InjectOptions, LightMyRequestResponse } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { getIntrospectionQuery } from "graphql";
import { DB_KIND } from "../helpers/db.ts";
import { startTestApp, type TestApp } from "../helpers/app.ts";
import { bearer, json, uid } from "./support.ts";

const ADMIN_TOKEN = "admin-token-for-graphql-tests-0123456789";

let t: TestApp;
let other: string;
const fx = { customer: "", sub: "", plan: "", metric: "" };

beforeAll(async () => {
  t = await startTestApp({ env: { VALUEVERSE_ADMIN_TOKEN: ADMIN_TOKEN, BILLING_SCHEDULER: "off" } });
  const r = await t.app.http.inject({ method: "POST", url: "/admin/v1/organizations", headers: bearer(ADMIN_TOKEN), payload: { organization: { name: uid("Other") } } });
  expect(r.statusCode, r.body).toBe(200);
  other = json(r).api_key;

  fx.metric = uid("calls");
  await rest("POST", "/api/v1/billable_metrics", { billable_metric: { name: "API calls", code: fx.metric, aggregation_type: "count_agg" } });
  const metric = (await rest("GET", `/api/v1/billable_metrics/${fx.metric}`)).billable_metric;
  fx.plan = uid("growth");
  await rest("POST", "/api/v1/plans", {
    plan: {
      name: "Growth",
      code: fx.plan,
      interval: "monthly",
      amount_cents: 4900,
      amount_currency: "EUR",
      // Paid in advance: the subscription's start issues an invoice.
      pay_in_advance: true,
      charges: [{ billable_metric_id: metric.lago_id, charge_model: "standard", properties: { amount: "0.05" } }],
    },
  });
  fx.customer = uid("cus");
  await rest("POST", "/api/v1/customers", { customer: { external_id: fx.customer, name: "Ada", email: "ada@example.com", currency: "EUR" } });
  fx.sub = uid("sub");
  await rest("POST", "/api/v1/subscriptions", {
    subscription: { external_customer_id: fx.customer, plan_code: fx.plan, external_id: fx.sub, billing_time: "calendar" },
  });
  const events = Array.from({ length: 7 }, () => ({
    transaction_id: uid("tx"),
    external_subscription_id: fx.sub,
    code: fx.metric,
    timestamp: Math.floor(t.clock.now() / 1000),
  }));
  await rest("POST", "/api/v1/events/batch", { events });
});
afterAll(async () => {
  await t?.close();
});

type Method = "GET" | "POST";
async function rest(method: Method, url: string, payload?: unknown, key = t.apiKey): Promise<any> {
  const r = await t.app.http.inject({ method, url, headers: bearer(key), ...(payload === undefined ? {} : { payload: payload as InjectOptions["payload"] }) });
  expect(r.statusCode, r.body).toBe(200);
  return json(r);
}

function gql(query: string, variables?: Record<string, unknown>, opts: { key?: string | null; url?: string } = {}): Promise<LightMyRequestResponse> {
  const key = opts.key === undefined ? t.apiKey : opts.key;
  return t.app.http.inject({
    method: "POST",
    url: opts.url ?? "/graphql",
    headers: key === null ? {} : bearer(key),
    payload: { query, ...(variables ? { variables } : {}) },
  });
}

const NESTED = /* GraphQL */ `
  query Nested($id: String!) {
    customer(externalId: $id) {
      lago_id external_id name email currency created_at
      subscriptions(perPage: 10) {
        lago_id external_id plan_code plan_amount_cents status started_at
        current_billing_period_started_at current_billing_period_ending_at
        currentUsage { from_datetime to_datetime currency amount_cents total_amount_cents charges_usage }
      }
      invoices(perPage: 10) { lago_id number status total_amount_cents fees_amount_cents currency customer { external_id } fees }
    }
  }
`;

describe(`GraphQL read API on ${DB_KIND}`, () => {
  it("a nested query answers the same data as the REST API", async () => {
    const r = await gql(NESTED, { id: fx.customer });
    expect(r.statusCode, r.body).toBe(200);
    const body = json(r);
    expect(body.errors).toBeUndefined();
    const c = body.data.customer;

    const restCustomer = (await rest("GET", `/api/v1/customers/${fx.customer}`)).customer;
    expect(c).toMatchObject({
      lago_id: restCustomer.lago_id,
      external_id: fx.customer,
      name: "Ada",
      email: "ada@example.com",
      currency: "EUR",
      created_at: restCustomer.created_at,
    });

    const restSubs = (await rest("GET", `/api/v1/customers/${fx.customer}/subscriptions`)).subscriptions;
    expect(restSubs).toHaveLength(1);
    expect(c.subscriptions).toHaveLength(1);
    const s = c.subscriptions[0];
    const rs = restSubs[0];
    expect(s).toMatchObject({
      lago_id: rs.lago_id,
      external_id: fx.sub,
      plan_code: fx.plan,
      plan_amount_cents: String(rs.plan_amount_cents),
      status: rs.status,
      started_at: rs.started_at,
      current_billing_period_started_at: rs.current_billing_period_started_at,
      current_billing_period_ending_at: rs.current_billing_period_ending_at,
    });

    const usage = (await rest("GET", `/api/v1/customers/${fx.customer}/current_usage?external_subscription_id=${fx.sub}`)).customer_usage;
    expect(usage.charges_usage[0].units).toBe("7");
    expect(s.currentUsage).toEqual({
      from_datetime: usage.from_datetime,
      to_datetime: usage.to_datetime,
      currency: usage.currency,
      amount_cents: String(usage.amount_cents),
      total_amount_cents: String(usage.total_amount_cents),
      charges_usage: usage.charges_usage,
    });

    const restInvoices = (await rest("GET", `/api/v1/customers/${fx.customer}/invoices?per_page=10`)).invoices;
    expect(restInvoices.length).toBeGreaterThan(0);
    expect(c.invoices.map((i: any) => i.lago_id)).toEqual(restInvoices.map((i: any) => i.lago_id));
    for (const [i, inv] of c.invoices.entries()) {
      const ri = restInvoices[i];
      expect(inv).toMatchObject({
        number: ri.number,
        status: ri.status,
        total_amount_cents: String(ri.total_amount_cents),
        fees_amount_cents: String(ri.fees_amount_cents),
        currency: ri.currency,
        customer: { external_id: fx.customer },
      });
      expect(inv.fees).toEqual((await rest("GET", `/api/v1/invoices/${ri.lago_id}`)).invoice.fees);
    }
  });

  it("answers the top-level queries, by POST or GET, under /graphql and /api/v1/graphql", async () => {
    const q = `query($c: String!, $s: String!) {
      customers(perPage: 100) { external_id }
      subscriptions(externalCustomerId: $c) { external_id customer { external_id } }
      subscription(externalId: $s) { external_id currentUsage { amount_cents } }
      currentUsage(externalCustomerId: $c, externalSubscriptionId: $s) { amount_cents }
      invoices(externalCustomerId: $c) { lago_id }
      missing: customer(externalId: "nobody") { external_id }
    }`;
    const vars = { c: fx.customer, s: fx.sub };
    const post = await gql(q, vars, { url: "/api/v1/graphql" });
    expect(post.statusCode, post.body).toBe(200);
    const d = json(post).data;
    expect(d.customers.map((c: any) => c.external_id)).toContain(fx.customer);
    expect(d.subscriptions).toEqual([{ external_id: fx.sub, customer: { external_id: fx.customer } }]);
    expect(d.subscription.external_id).toBe(fx.sub);
    expect(d.currentUsage.amount_cents).toBe(d.subscription.currentUsage.amount_cents);
    expect(d.missing).toBeNull();

    const get = await t.app.http.inject({
      method: "GET",
      url: `/graphql?query=${encodeURIComponent(q)}&variables=${encodeURIComponent(JSON.stringify(vars))}`,
      headers: bearer(t.apiKey),
    });
    expect(get.statusCode, get.body).toBe(200);
    expect(json(get).data).toEqual(d);

    if (d.invoices.length > 0) {
      const one = await gql(`query($id: ID!) { invoice(id: $id) { lago_id customer { external_id } } }`, { id: d.invoices[0].lago_id });
      expect(json(one).data.invoice).toEqual({ lago_id: d.invoices[0].lago_id, customer: { external_id: fx.customer } });
    }
  });

  it("another organization's key sees none of it", async () => {
    const r = await gql(
      `query($c: String!, $s: String!) {
        customers { external_id }
        customer(externalId: $c) { external_id }
        subscription(externalId: $s) { external_id }
        currentUsage(externalCustomerId: $c, externalSubscriptionId: $s) { amount_cents }
        invoices { lago_id }
      }`,
      { c: fx.customer, s: fx.sub },
      { key: other },
    );
    expect(r.statusCode, r.body).toBe(200);
    expect(json(r).data).toEqual({ customers: [], customer: null, subscription: null, currentUsage: null, invoices: [] });

    const mine = json(await gql(`{ invoices(perPage: 100) { lago_id } }`)).data.invoices.map((i: any) => i.lago_id);
    for (const id of mine) {
      expect(json(await gql(`query($id: ID!) { invoice(id: $id) { lago_id } }`, { id }, { key: other })).data.invoice).toBeNull();
    }
  });

  it("refuses without a valid API key (401)", async () => {
    for (const url of ["/graphql", "/api/v1/graphql"]) {
      const none = await gql("{ customers { external_id } }", undefined, { key: null, url });
      expect(none.statusCode).toBe(401);
      expect(json(none)).toEqual({ status: 401, error: "Unauthorized" });
      const wrong = await gql("{ customers { external_id } }", undefined, { key: "not-a-key", url });
      expect(wrong.statusCode).toBe(401);
    }
    const get = await t.app.http.inject({ method: "GET", url: "/graphql?query=%7B__typename%7D" });
    expect(get.statusCode).toBe(401);
  });

  it("refuses a query deeper than 8 levels, naming the limit", async () => {
    // customer → subscriptions → customer → subscriptions → customer → subscriptions → customer → subscriptions → external_id: depth 9.
    const deep = `{ customer(externalId: "x") { subscriptions(perPage: 1) { customer { subscriptions(perPage: 1) { customer { subscriptions(perPage: 1) { customer { subscriptions(perPage: 1) { external_id } } } } } } } } }`;
    const r = await gql(deep);
    expect(r.statusCode).toBe(400);
    const errors = json(r).errors;
    expect(errors).toHaveLength(1);
    expect(errors[0].message).toBe("query depth 9 exceeds the maximum depth of 8");
    expect(errors[0].extensions).toMatchObject({ code: "max_depth_exceeded", limit: 8 });

    // Fragments count too.
    const viaFragments = `{ customer(externalId: "x") { ...A } }
      fragment A on Customer { subscriptions(perPage: 1) { customer { ...B } } }
      fragment B on Customer { subscriptions(perPage: 1) { customer { subscriptions(perPage: 1) { customer { subscriptions(perPage: 1) { external_id } } } } } }`;
    expect(json(await gql(viaFragments)).errors[0].extensions.code).toBe("max_depth_exceeded");

    // Eight levels pass.
    const ok = await gql(`{ customer(externalId: "x") { subscriptions(perPage: 1) { customer { subscriptions(perPage: 1) { customer { subscriptions(perPage: 1) { customer { external_id } } } } } } } }`);
    expect(ok.statusCode, ok.body).toBe(200);
  });

  it("refuses a query over the complexity budget, naming the limit (perPage from variables counts)", async () => {
    const r = await gql(`{ customers(perPage: 100) { external_id subscriptions(perPage: 100) { external_id } } }`);
    expect(r.statusCode).toBe(400);
    const [e] = json(r).errors;
    expect(e.message).toMatch(/^query complexity \d+ exceeds the maximum complexity of 1000$/);
    expect(e.extensions).toMatchObject({ code: "max_complexity_exceeded", limit: 1000 });
    expect(e.extensions.complexity).toBe(1 + 100 * (1 + 1 + 100 * 1));

    const viaVariable = await gql(`query($n: Int) { customers(perPage: $n) { external_id invoices(perPage: $n) { lago_id } } }`, { n: 50 });
    expect(viaVariable.statusCode).toBe(400);
    expect(json(viaVariable).errors[0].extensions.code).toBe("max_complexity_exceeded");

    const within = await gql(`query($n: Int) { customers(perPage: $n) { external_id invoices(perPage: $n) { lago_id } } }`, { n: 10 });
    expect(within.statusCode, within.body).toBe(200);
  });

  it("answers bad queries with 400 in GraphQL's error format, never 500", async () => {
    const syntax = await gql("{ customers { external_id ");
    expect(syntax.statusCode).toBe(400);
    expect(json(syntax).errors[0]).toMatchObject({ message: expect.stringContaining("Syntax Error"), locations: [expect.any(Object)] });

    const unknown = await gql("{ customers { no_such_field } }");
    expect(unknown.statusCode).toBe(400);
    expect(json(unknown).errors[0].message).toContain("no_such_field");

    const mutation = await gql("mutation { x }");
    expect(mutation.statusCode).toBe(400);
    expect(json(mutation).errors[0].message).toMatch(/mutation/);

    const missing = await t.app.http.inject({ method: "POST", url: "/graphql", headers: bearer(t.apiKey), payload: {} });
    expect(missing.statusCode).toBe(400);
    expect(json(missing).errors[0].message).toMatch(/query/);

    const badVariables = await gql("query($n: Int) { customers(perPage: $n) { external_id } }", { n: "many" });
    expect(badVariables.statusCode).toBe(400);
    expect(json(badVariables).errors).toHaveLength(1);

    // An argument out of range is an execution error: 200, the field null, the error named.
    const tooMany = await gql("{ customers(perPage: 5000) { external_id } }");
    expect([200, 400]).toContain(tooMany.statusCode);
    expect(json(tooMany).errors[0].message).toMatch(/perPage|complexity/);

    const getBad = await t.app.http.inject({ method: "GET", url: "/graphql?query=%7B", headers: bearer(t.apiKey) });
    expect(getBad.statusCode).toBe(400);
    expect(json(getBad).errors[0].message).toContain("Syntax Error");
  });

  it("allows introspection (not counted against the limits)", async () => {
    const r = await gql(getIntrospectionQuery());
    expect(r.statusCode, r.body).toBe(200);
    const types = json(r).data.__schema.types.map((x: any) => x.name);
    expect(types).toEqual(expect.arrayContaining(["Customer", "Subscription", "Usage", "Invoice"]));
  });
});
