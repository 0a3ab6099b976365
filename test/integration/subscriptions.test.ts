// Subscriptions API in Lago's shapes: create (customer created on the fly), get, list, update,
// terminate; future starts; plan upgrades now and downgrades at period end under a test clock;
// plan_overrides; customer deletion; currency rules; concurrency and tenancy. On PGlite by default,
// PostgreSQL with TEST_DATABASE_URL.
import type { InjectOptions, LightMyRequestResponse } from "fastify";
import { Client, type HttpResponse } from "lago-javascript-client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { rate } from "../../src/modules/pricing/index.ts";
import { d } from "../../src/shared/money.ts";
import { DB_KIND } from "../helpers/db.ts";
import { startTestApp, type TestApp } from "../helpers/app.ts";
import { T0, bearer, json, scalar, uid } from "./support.ts";

const ADMIN_TOKEN = "admin-token-for-subscription-tests-0123456789";
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const lago = (ms: number | string) => new Date(ms).toISOString().replace(/\.\d{3}Z$/, "Z");
const DAY = 86_400_000;
const NOT_FOUND = { status: 404, error: "Not Found", code: "subscription_not_found" };

let t: TestApp;
let key: string;

beforeAll(async () => {
  t = await startTestApp({ env: { VALUEVERSE_ADMIN_TOKEN: ADMIN_TOKEN, VALUEVERSE_TEST_CLOCK: "on" }, listen: true });
  key = t.apiKey;
});
afterAll(async () => {
  await t?.close();
});

type Method = "GET" | "POST" | "PUT" | "DELETE";
const call = (method: Method, url: string, payload?: unknown, apiKey = key) =>
  t.app.http.inject({ method, url, headers: bearer(apiKey), ...(payload === undefined ? {} : { payload: payload as InjectOptions["payload"] }) });
const ok = (r: LightMyRequestResponse) => {
  expect(r.statusCode, r.body).toBe(200);
  return json(r);
};
const expect422 = (r: LightMyRequestResponse, details: Record<string, string[]>) => {
  expect(r.statusCode, r.body).toBe(422);
  expect(json(r)).toEqual({ status: 422, error: "Unprocessable Entity", code: "validation_errors", error_details: details });
};

const subscribe = (subscription: Record<string, unknown>, apiKey = key) => call("POST", "/api/v1/subscriptions", { subscription }, apiKey);
const sub = (externalId: string, query = "", apiKey = key) => call("GET", `/api/v1/subscriptions/${encodeURIComponent(externalId)}${query}`, undefined, apiKey);
const update = (externalId: string, subscription: Record<string, unknown>, query = "", apiKey = key) =>
  call("PUT", `/api/v1/subscriptions/${encodeURIComponent(externalId)}${query}`, { subscription }, apiKey);
const terminate = (externalId: string, query = "", apiKey = key) => call("DELETE", `/api/v1/subscriptions/${encodeURIComponent(externalId)}${query}`, undefined, apiKey);
const list = (query = "", apiKey = key) => call("GET", `/api/v1/subscriptions${query ? `?${query}` : ""}`, undefined, apiKey);
const freeze = async (at: string, apiKey: string) => ok(await call("PUT", "/api/v1/test_clock", { test_clock: { frozen_time: at } }, apiKey));

async function newOrg(): Promise<{ key: string; orgId: number }> {
  const r = await t.app.http.inject({ method: "POST", url: "/admin/v1/organizations", headers: bearer(ADMIN_TOKEN), payload: { organization: { name: uid("Org") } } });
  expect(r.statusCode).toBe(200);
  const apiKey = json(r).api_key as string;
  return { key: apiKey, orgId: (await t.app.orgs.authenticate(apiKey))! };
}

async function createMetric(apiKey = key) {
  return ok(await call("POST", "/api/v1/billable_metrics", { billable_metric: { name: "Calls", code: uid("calls"), aggregation_type: "count_agg" } }, apiKey))
    .billable_metric;
}

async function createPlan(fields: Record<string, unknown> = {}, apiKey = key) {
  return ok(
    await call("POST", "/api/v1/plans", {
      plan: { name: "Startup", code: uid("plan"), interval: "monthly", amount_cents: 10_000, amount_currency: "USD", ...fields },
    }, apiKey),
  ).plan;
}

async function createCustomer(fields: Record<string, unknown> = {}, apiKey = key) {
  return ok(await call("POST", "/api/v1/customers", { customer: { external_id: uid("cus"), ...fields } }, apiKey)).customer;
}

describe(`subscriptions API on ${DB_KIND}`, () => {
  it("subscribes a customer it creates on the fly, answering Lago's subscription object with the plan", async () => {
    const plan = await createPlan({ trial_period: 5 });
    const externalCustomerId = uid("cus");
    const externalId = uid("sub");
    const r = ok(await subscribe({ external_customer_id: externalCustomerId, plan_code: plan.code, external_id: externalId, name: "Repository A" }));
    const customer = ok(await call("GET", `/api/v1/customers/${externalCustomerId}`)).customer;
    expect(customer.currency).toBe("USD");
    expect(r.subscription).toEqual({
      lago_id: expect.stringMatching(UUID),
      external_id: externalId,
      lago_customer_id: customer.lago_id,
      external_customer_id: externalCustomerId,
      name: "Repository A",
      plan_code: plan.code,
      plan_amount_cents: 10_000,
      plan_amount_currency: "USD",
      status: "active",
      billing_time: "calendar",
      subscription_at: lago(T0),
      started_at: new Date(T0).toISOString(),
      trial_ended_at: null,
      ending_at: null,
      terminated_at: null,
      canceled_at: null,
      created_at: lago(T0),
      previous_plan_code: null,
      next_plan_code: null,
      downgrade_plan_date: null,
      current_billing_period_started_at: "2026-03-15T12:00:00Z",
      current_billing_period_ending_at: "2026-03-31T23:59:59Z",
      on_termination_credit_note: null,
      on_termination_invoice: "generate",
      progressive_billing_disabled: false,
      consolidate_invoice: true,
      payment_method: { payment_method_id: null, payment_method_type: "provider" },
      plan: { ...plan },
    });
    expect(ok(await sub(externalId)).subscription).toEqual(r.subscription);
  });

  it("bills anniversary subscriptions from their own day, in the customer's timezone", async () => {
    const plan = await createPlan();
    const customer = await createCustomer({ timezone: "Europe/Paris" });
    const externalId = uid("sub");
    const s = ok(
      await subscribe({ external_customer_id: customer.external_id, plan_code: plan.code, external_id: externalId, billing_time: "anniversary", subscription_at: "2026-01-10T08:00:00Z" }),
    ).subscription;
    expect(s).toMatchObject({
      status: "active",
      billing_time: "anniversary",
      started_at: "2026-01-10T08:00:00.000Z",
      current_billing_period_started_at: "2026-03-09T23:00:00Z",
      current_billing_period_ending_at: "2026-04-09T21:59:59Z",
    });
  });

  it("refuses a request naming every broken field, with Lago's codes", async () => {
    expect422(await subscribe({}), {
      external_customer_id: ["value_is_mandatory"],
      plan_code: ["value_is_mandatory"],
      external_id: ["value_is_mandatory"],
    });
    const plan = await createPlan();
    expect422(
      await subscribe({ external_customer_id: uid("cus"), plan_code: plan.code, external_id: uid("sub"), billing_time: "daily", subscription_at: "soon", ending_at: "2026-03-01T00:00:00Z" }),
      { billing_time: ["value_is_invalid"], subscription_at: ["invalid_date"], ending_at: ["invalid_date"] },
    );
    expect422(await subscribe({ external_customer_id: uid("cus"), plan_code: "nope", external_id: "", name: 3 }), {
      plan_code: ["plan_not_found"],
      external_id: ["value_is_mandatory"],
      name: ["value_is_invalid"],
    });
    const missing = await subscribe({ external_customer_id: uid("cus"), plan_code: "no-such-plan", external_id: uid("sub") });
    expect(missing.statusCode).toBe(404);
    expect(json(missing)).toEqual({ status: 404, error: "Not Found", code: "plan_not_found" });
    const noBody = await call("POST", "/api/v1/subscriptions", { nothing: true });
    expect(noBody.statusCode).toBe(400);
  });

  it("keeps external_id unique among live subscriptions of the organization", async () => {
    const plan = await createPlan();
    const externalId = uid("sub");
    ok(await subscribe({ external_customer_id: uid("cus"), plan_code: plan.code, external_id: externalId }));
    expect422(await subscribe({ external_customer_id: uid("cus"), plan_code: plan.code, external_id: externalId }), { external_id: ["value_already_exist"] });
    // The same customer asking again for the same plan changes nothing.
    const first = ok(await sub(externalId)).subscription;
    const again = ok(await subscribe({ external_customer_id: first.external_customer_id, plan_code: plan.code, external_id: externalId })).subscription;
    expect(again.lago_id).toBe(first.lago_id);
    expect(await scalar(t.db, "SELECT count(*)::text AS n FROM subscriptions WHERE external_id = $1", [externalId])).toBe(1);
  });

  it("refuses a plan in another currency than the customer's, and then the customer's currency change", async () => {
    const usd = await createPlan({ amount_currency: "USD" });
    const eur = await createPlan({ amount_currency: "EUR" });
    const customer = await createCustomer({ currency: "EUR" });
    expect422(await subscribe({ external_customer_id: customer.external_id, plan_code: usd.code, external_id: uid("sub") }), { currency: ["currencies_does_not_match"] });
    const externalId = uid("sub");
    ok(await subscribe({ external_customer_id: customer.external_id, plan_code: eur.code, external_id: externalId }));
    // A plan change into another currency is refused too.
    expect422(await subscribe({ external_customer_id: customer.external_id, plan_code: usd.code, external_id: externalId }), { currency: ["currencies_does_not_match"] });
    expect422(await call("POST", "/api/v1/customers", { customer: { external_id: customer.external_id, currency: "USD" } }), { currency: ["currencies_does_not_match"] });
  });

  it("lists subscriptions with Lago's filters and pagination (active only unless status[] says otherwise)", async () => {
    const org = await newOrg();
    const a = await createPlan({}, org.key);
    const b = await createPlan({}, org.key);
    const customer = await createCustomer({}, org.key);
    const ids: string[] = [];
    for (const [i, plan] of [a, a, b].entries()) {
      const externalId = `s-${i}`;
      ids.push(externalId);
      ok(await subscribe({ external_customer_id: customer.external_id, plan_code: plan.code, external_id: externalId, subscription_at: lago(T0 - (10 - i) * DAY) }, org.key));
    }
    ok(await subscribe({ external_customer_id: uid("other"), plan_code: a.code, external_id: "s-future", subscription_at: lago(T0 + 40 * DAY) }, org.key));
    ok(await terminate("s-0", "", org.key));

    const all = ok(await list("", org.key));
    expect(all.subscriptions.map((s: { external_id: string }) => s.external_id)).toEqual(["s-2", "s-1"]);
    expect(all.meta).toEqual({ current_page: 1, next_page: null, prev_page: null, total_pages: 1, total_count: 2 });
    expect(all.subscriptions[0].plan).toBeUndefined();

    const everything = ok(await list("status[]=active&status[]=pending&status[]=terminated", org.key));
    expect(everything.subscriptions.map((s: { external_id: string }) => s.external_id)).toEqual(["s-future", "s-2", "s-1", "s-0"]);
    expect(ok(await list(`plan_code=${a.code}&status[]=active&status[]=terminated`, org.key)).subscriptions.map((s: { external_id: string }) => s.external_id)).toEqual([
      "s-1",
      "s-0",
    ]);
    expect(ok(await list(`external_customer_id=${customer.external_id}&status[]=pending`, org.key)).meta.total_count).toBe(0);
    const page2 = ok(await list("status[]=active&status[]=pending&per_page=2&page=2", org.key));
    expect(page2.subscriptions.map((s: { external_id: string }) => s.external_id)).toEqual(["s-1"]);
    expect(page2.meta).toEqual({ current_page: 2, next_page: null, prev_page: 1, total_pages: 2, total_count: 3 });
    expect(ok(await call("GET", `/api/v1/customers/${customer.external_id}/subscriptions?status[]=terminated`, undefined, org.key)).subscriptions.map((s: { external_id: string }) => s.external_id)).toEqual(["s-0"]);
    expect(json(await call("GET", "/api/v1/customers/nobody/subscriptions", undefined, org.key))).toEqual({ status: 404, error: "Not Found", code: "customer_not_found" });
    expect422(await list("status[]=gone", org.key), { status: ["value_is_invalid"] });
  });

  it("updates name and ending_at, answering 404 for what does not exist", async () => {
    const plan = await createPlan();
    const externalId = uid("sub");
    ok(await subscribe({ external_customer_id: uid("cus"), plan_code: plan.code, external_id: externalId }));
    const updated = ok(await update(externalId, { name: "Renamed", ending_at: "2026-06-30T00:00:00Z" })).subscription;
    expect(updated).toMatchObject({ name: "Renamed", ending_at: "2026-06-30T00:00:00Z", status: "active" });
    expect(ok(await update(externalId, { ending_at: null })).subscription).toMatchObject({ name: "Renamed", ending_at: null });
    expect422(await update(externalId, { ending_at: "2020-01-01T00:00:00Z" }), { ending_at: ["invalid_date"] });
    // subscription_at of a started subscription is left alone (Lago ignores it).
    expect(ok(await update(externalId, { subscription_at: "2020-01-01T00:00:00Z" })).subscription.subscription_at).toBe(lago(T0));
    const missing = await update("no-such-subscription", { name: "x" });
    expect(missing.statusCode).toBe(404);
    expect(json(missing)).toEqual(NOT_FOUND);
  });

  it("terminates an active subscription (DELETE), then reads it only with status=terminated", async () => {
    const plan = await createPlan();
    const externalId = uid("sub");
    ok(await subscribe({ external_customer_id: uid("cus"), plan_code: plan.code, external_id: externalId, subscription_at: "2026-03-01T00:00:00Z" }));
    const ended = ok(await terminate(externalId)).subscription;
    expect(ended).toMatchObject({
      status: "terminated",
      terminated_at: lago(T0),
      current_billing_period_started_at: "2026-03-01T00:00:00Z",
      current_billing_period_ending_at: "2026-03-15T12:00:00Z",
    });
    expect(json(await sub(externalId))).toEqual(NOT_FOUND);
    expect(ok(await sub(externalId, "?status=terminated")).subscription.lago_id).toBe(ended.lago_id);
    expect(json(await terminate(externalId))).toEqual(NOT_FOUND);
    // The external_id is free again once terminated.
    ok(await subscribe({ external_customer_id: uid("cus"), plan_code: plan.code, external_id: externalId }));
  });

  it("keeps a future subscription pending, editable with status=pending, and cancels it on DELETE", async () => {
    const plan = await createPlan();
    const externalId = uid("sub");
    const s = ok(await subscribe({ external_customer_id: uid("cus"), plan_code: plan.code, external_id: externalId, subscription_at: "2026-04-10T00:00:00Z" })).subscription;
    expect(s).toMatchObject({
      status: "pending",
      started_at: null,
      subscription_at: "2026-04-10T00:00:00Z",
      current_billing_period_started_at: "2026-04-10T00:00:00Z",
      current_billing_period_ending_at: "2026-04-30T23:59:59Z",
    });
    expect(json(await sub(externalId))).toEqual(NOT_FOUND);
    expect(ok(await sub(externalId, "?status=pending")).subscription.lago_id).toBe(s.lago_id);
    expect(ok(await update(externalId, { subscription_at: "2026-05-02T00:00:00Z" }, "?status=pending")).subscription.subscription_at).toBe("2026-05-02T00:00:00Z");
    expect(await t.app.subscriptions.getByExternalId((await t.app.orgs.authenticate(key))!, externalId)).toBeNull();
    const canceled = ok(await terminate(externalId, "?status=pending")).subscription;
    expect(canceled).toMatchObject({ status: "canceled", canceled_at: lago(T0), terminated_at: null, current_billing_period_started_at: null });
  });

  it("starts a pending subscription when its start date moves to the past", async () => {
    const plan = await createPlan();
    const externalId = uid("sub");
    ok(await subscribe({ external_customer_id: uid("cus"), plan_code: plan.code, external_id: externalId, subscription_at: "2026-04-10T00:00:00Z" }));
    const s = ok(await update(externalId, { subscription_at: "2026-03-02T00:00:00Z" })).subscription;
    expect(s).toMatchObject({ status: "active", started_at: "2026-03-02T00:00:00.000Z" });
  });

  it("terminates a deleted customer's subscriptions and cancels the pending ones", async () => {
    const plan = await createPlan();
    const customer = await createCustomer();
    const active = uid("sub");
    const future = uid("sub");
    ok(await subscribe({ external_customer_id: customer.external_id, plan_code: plan.code, external_id: active }));
    ok(await subscribe({ external_customer_id: customer.external_id, plan_code: plan.code, external_id: future, subscription_at: "2026-05-01T00:00:00Z" }));
    ok(await call("DELETE", `/api/v1/customers/${customer.external_id}`));
    expect(ok(await sub(active, "?status=terminated")).subscription).toMatchObject({ status: "terminated", terminated_at: lago(T0) });
    expect(ok(await sub(future, "?status=canceled")).subscription).toMatchObject({ status: "canceled", canceled_at: lago(T0) });
  });

  it("applies plan_overrides to the effective plan (amount, trial, a charge's price) and merges updates into them", async () => {
    const metric = await createMetric();
    const plan = await createPlan({ charges: [{ billable_metric_id: metric.lago_id, charge_model: "standard", properties: { amount: "1" } }] });
    const chargeId = plan.charges[0].lago_id;
    const externalId = uid("sub");
    const s = ok(
      await subscribe({
        external_customer_id: uid("cus"),
        plan_code: plan.code,
        external_id: externalId,
        plan_overrides: { amount_cents: 5_000, trial_period: 3, charges: [{ id: chargeId, properties: { amount: "0.25" }, min_amount_cents: 200 }] },
      }),
    ).subscription;
    expect(s).toMatchObject({ plan_code: plan.code, plan_amount_cents: 5_000 });
    expect(s.plan).toMatchObject({ amount_cents: 5_000, trial_period: 3, charges: [{ lago_id: chargeId, properties: { amount: "0.25" }, min_amount_cents: 200 }] });

    const orgId = (await t.app.orgs.authenticate(key))!;
    const effective = (await t.app.subscriptions.getByExternalId(orgId, externalId))!;
    // 10 units at the overridden 0.25 instead of the plan's 1.
    expect(rate(effective.plan.charges[0]!.price, { units: d("10") }).amount.toString()).toBe("2.5");
    expect(effective.plan.charges[0]!.minAmountCents).toBe(200n);
    expect(effective.plan.amountCents).toBe(5_000n);
    // The plan itself is untouched.
    expect(ok(await call("GET", `/api/v1/plans/${plan.code}`)).plan.charges[0].properties).toEqual({ amount: "1" });

    const merged = ok(await update(externalId, { plan_overrides: { charges: [{ id: chargeId, properties: { amount: "0.5" } }] } })).subscription;
    expect(merged.plan).toMatchObject({ amount_cents: 5_000, trial_period: 3, charges: [{ properties: { amount: "0.5" }, min_amount_cents: 200 }] });
    expect(rate((await t.app.subscriptions.getByExternalId(orgId, externalId))!.plan.charges[0]!.price, { units: d("10") }).amount.toString()).toBe("5");
    expect(ok(await update(externalId, { plan_overrides: { amount_cents: null } })).subscription.plan_amount_cents).toBe(10_000);

    expect422(
      await update(externalId, { plan_overrides: { amount_cents: -5, charges: [{ id: chargeId, properties: { amount: "free" } }, { id: "00000000-0000-4000-8000-000000000000" }] } }),
      {
        "plan_overrides.amount_cents": ["value_is_out_of_range"],
        "plan_overrides.charges[0].properties.amount": ["invalid_amount"],
        "plan_overrides.charges[1].id": ["charge_not_found"],
      },
    );
  });

  it("lets the create and its overrides fail together, every field named", async () => {
    const plan = await createPlan();
    expect422(await subscribe({ external_customer_id: uid("cus"), plan_code: plan.code, external_id: uid("sub"), ending_at: "x", plan_overrides: { amount_currency: "ZZZ" } }), {
      ending_at: ["invalid_date"],
      "plan_overrides.amount_currency": ["value_is_invalid"],
    });
  });

  it("serializes concurrent creates of one external_id: one subscription, the others refused", async () => {
    const plan = await createPlan();
    const externalId = uid("sub");
    const answers = await Promise.all(
      Array.from({ length: 6 }, () => subscribe({ external_customer_id: uid("cus"), plan_code: plan.code, external_id: externalId })),
    );
    expect(answers.map((r) => r.statusCode).sort()).toEqual([200, 422, 422, 422, 422, 422]);
    expect(await scalar(t.db, "SELECT count(*)::text AS n FROM subscriptions WHERE external_id = $1", [externalId])).toBe(1);
  });
});

describe(`plan changes and time under a test clock on ${DB_KIND}`, () => {
  it("upgrades now: the old subscription terminated, the new one active, linked both ways", async () => {
    const org = await newOrg();
    await freeze("2026-03-10T09:00:00Z", org.key);
    const basic = await createPlan({ amount_cents: 1_000 }, org.key);
    const pro = await createPlan({ amount_cents: 5_000 }, org.key);
    const customer = await createCustomer({}, org.key);
    const before = ok(await subscribe({ external_customer_id: customer.external_id, plan_code: basic.code, external_id: "acme", subscription_at: "2026-03-01T00:00:00Z" }, org.key)).subscription;
    await freeze("2026-03-20T15:00:00Z", org.key);

    const upgraded = ok(await subscribe({ external_customer_id: customer.external_id, plan_code: pro.code, external_id: "acme" }, org.key)).subscription;
    expect(upgraded).toMatchObject({
      status: "active",
      plan_code: pro.code,
      previous_plan_code: basic.code,
      next_plan_code: null,
      started_at: "2026-03-20T15:00:00.000Z",
      subscription_at: "2026-03-01T00:00:00Z",
      current_billing_period_started_at: "2026-03-20T15:00:00Z",
      current_billing_period_ending_at: "2026-03-31T23:59:59Z",
    });
    expect(upgraded.lago_id).not.toBe(before.lago_id);
    expect(ok(await sub("acme", "?status=terminated", org.key)).subscription).toMatchObject({
      lago_id: before.lago_id,
      terminated_at: "2026-03-20T15:00:00Z",
      next_plan_code: pro.code,
    });

    // Events are attached to the subscription active when they happened.
    const at = (iso: string) => t.app.subscriptions.getByExternalId(org.orgId, "acme", new Date(iso));
    expect((await at("2026-03-05T00:00:00Z"))?.plan.code).toBe(basic.code);
    expect((await at("2026-03-20T16:00:00Z"))?.plan.code).toBe(pro.code);
    expect(await at("2026-02-01T00:00:00Z")).toBeNull();
  });

  it("downgrades at the end of the period: pending until then, switched when the clock gets there", async () => {
    const org = await newOrg();
    await freeze("2026-03-10T09:00:00Z", org.key);
    const pro = await createPlan({ amount_cents: 5_000 }, org.key);
    const basic = await createPlan({ amount_cents: 1_000 }, org.key);
    const customer = await createCustomer({}, org.key);
    const current = ok(await subscribe({ external_customer_id: customer.external_id, plan_code: pro.code, external_id: "acme" }, org.key)).subscription;

    const answer = ok(await subscribe({ external_customer_id: customer.external_id, plan_code: basic.code, external_id: "acme", name: "Basic" }, org.key)).subscription;
    // Lago answers with the current subscription, now showing what comes next and when.
    expect(answer).toMatchObject({ lago_id: current.lago_id, status: "active", plan_code: pro.code, next_plan_code: basic.code, downgrade_plan_date: "2026-04-01" });
    const pending = ok(await sub("acme", "?status=pending", org.key)).subscription;
    expect(pending).toMatchObject({
      status: "pending",
      name: "Basic",
      plan_code: basic.code,
      previous_plan_code: pro.code,
      started_at: null,
      downgrade_plan_date: "2026-04-01",
      current_billing_period_started_at: "2026-04-01T00:00:00Z",
    });

    await freeze("2026-03-31T23:59:59Z", org.key);
    expect(ok(await sub("acme", "", org.key)).subscription.plan_code).toBe(pro.code);
    // The switch has happened when the PUT answers, before any read.
    await freeze("2026-04-01T00:00:00Z", org.key);
    const rows = await t.db.query<{ status: string; plan_code: string }>(
      "SELECT s.status, p.code AS plan_code FROM subscriptions s JOIN plans p ON p.id = s.plan_id WHERE s.org_id = $1 ORDER BY s.id",
      [org.orgId],
    );
    expect(rows.rows).toEqual([
      { status: "terminated", plan_code: pro.code },
      { status: "active", plan_code: basic.code },
    ]);
    expect(ok(await sub("acme", "", org.key)).subscription).toMatchObject({
      lago_id: pending.lago_id,
      status: "active",
      started_at: "2026-04-01T00:00:00.000Z",
      previous_plan_code: pro.code,
      current_billing_period_started_at: "2026-04-01T00:00:00Z",
      current_billing_period_ending_at: "2026-04-30T23:59:59Z",
    });
    expect(ok(await sub("acme", "?status=terminated", org.key)).subscription).toMatchObject({ terminated_at: "2026-04-01T00:00:00Z", next_plan_code: basic.code });
  });

  it("lets an upgrade replace a scheduled downgrade, which is canceled", async () => {
    const org = await newOrg();
    await freeze("2026-03-10T09:00:00Z", org.key);
    const mid = await createPlan({ amount_cents: 3_000 }, org.key);
    const low = await createPlan({ amount_cents: 1_000 }, org.key);
    const high = await createPlan({ amount_cents: 9_000 }, org.key);
    const customer = await createCustomer({}, org.key);
    ok(await subscribe({ external_customer_id: customer.external_id, plan_code: mid.code, external_id: "acme" }, org.key));
    ok(await subscribe({ external_customer_id: customer.external_id, plan_code: low.code, external_id: "acme" }, org.key));
    const up = ok(await subscribe({ external_customer_id: customer.external_id, plan_code: high.code, external_id: "acme" }, org.key)).subscription;
    expect(up).toMatchObject({ status: "active", plan_code: high.code, previous_plan_code: mid.code });
    expect(ok(await sub("acme", "?status=canceled", org.key)).subscription).toMatchObject({ plan_code: low.code, canceled_at: "2026-03-10T09:00:00Z" });
    await freeze("2026-04-02T00:00:00Z", org.key);
    expect(ok(await sub("acme", "", org.key)).subscription.plan_code).toBe(high.code);
  });

  it("starts future subscriptions on their day and ends subscriptions at ending_at as the clock moves", async () => {
    const org = await newOrg();
    await freeze("2026-03-10T09:00:00Z", org.key);
    const plan = await createPlan({ trial_period: 10 }, org.key);
    ok(await subscribe({ external_customer_id: uid("cus"), plan_code: plan.code, external_id: "later", subscription_at: "2026-03-20T12:00:00Z" }, org.key));
    ok(await subscribe({ external_customer_id: uid("cus"), plan_code: plan.code, external_id: "ending", ending_at: "2026-03-25T00:00:00Z" }, org.key));

    await freeze("2026-03-20T00:00:00Z", org.key);
    const statuses = async () =>
      (await t.db.query<{ external_id: string; status: string }>("SELECT external_id, status FROM subscriptions WHERE org_id = $1 ORDER BY external_id", [org.orgId])).rows;
    expect(await statuses()).toEqual([
      { external_id: "ending", status: "active" },
      { external_id: "later", status: "active" },
    ]);
    expect(ok(await sub("later", "", org.key)).subscription).toMatchObject({ started_at: "2026-03-20T12:00:00.000Z", trial_ended_at: null });
    // Ten days from its start on 2026-03-10T09:00: the trial is still running.
    expect(ok(await sub("ending", "", org.key)).subscription.trial_ended_at).toBeNull();

    await freeze("2026-03-26T00:00:00Z", org.key);
    expect(await statuses()).toEqual([
      { external_id: "ending", status: "terminated" },
      { external_id: "later", status: "active" },
    ]);
    expect(ok(await sub("ending", "?status=terminated", org.key)).subscription).toMatchObject({
      terminated_at: "2026-03-25T00:00:00Z",
      trial_ended_at: "2026-03-20T09:00:00Z",
    });
  });

  it("applies what is due lazily on reads, without a clock move (the wall clock passing)", async () => {
    const org = await newOrg();
    const plan = await createPlan({}, org.key);
    ok(await subscribe({ external_customer_id: uid("cus"), plan_code: plan.code, external_id: "wall", subscription_at: lago(T0 + 3 * DAY) }, org.key));
    t.clock.set(T0 + 4 * DAY);
    try {
      expect(ok(await sub("wall", "", org.key)).subscription).toMatchObject({ status: "active", started_at: new Date(T0 + 3 * DAY).toISOString() });
    } finally {
      t.clock.set(T0);
    }
  });
});

describe(`the Lago client against subscriptions on ${DB_KIND}`, () => {
  it("creates, reads, lists, updates and terminates through lago-javascript-client", async () => {
    const plan = await createPlan();
    const lagoClient = Client(key, { baseUrl: `${t.url}/api/v1` });
    const externalId = uid("sub");
    const externalCustomerId = uid("cus");
    const created = await lagoClient.subscriptions.createSubscription({
      subscription: { external_customer_id: externalCustomerId, plan_code: plan.code, external_id: externalId, billing_time: "anniversary" },
    });
    expect(created.data.subscription).toMatchObject({ external_id: externalId, status: "active", billing_time: "anniversary", plan: { code: plan.code } });
    expect((await lagoClient.subscriptions.findSubscription(externalId)).data.subscription.lago_id).toBe(created.data.subscription.lago_id);
    const listed = await lagoClient.subscriptions.findAllSubscriptions({ external_customer_id: externalCustomerId, "status[]": ["active", "pending"], per_page: 10 });
    expect(listed.data.subscriptions.map((s) => s.external_id)).toEqual([externalId]);
    const updated = await lagoClient.subscriptions.updateSubscription(externalId, { subscription: { name: "Via client", ending_at: "2027-01-01T00:00:00Z" } });
    expect(updated.data.subscription).toMatchObject({ name: "Via client", ending_at: "2027-01-01T00:00:00Z" });
    expect((await lagoClient.subscriptions.destroySubscription(externalId)).data.subscription.status).toBe("terminated");
    const missing = await lagoClient.subscriptions.findSubscription(externalId).catch((e: HttpResponse<unknown, unknown>) => e);
    expect(missing.status).toBe(404);
    expect((await lagoClient.subscriptions.findSubscription(externalId, { status: "terminated" })).data.subscription.status).toBe("terminated");
  });
});

describe(`tenancy on ${DB_KIND}`, () => {
  it("keeps one organization from seeing or changing another's subscriptions, on every route", async () => {
    const plan = await createPlan();
    const externalId = uid("sub");
    const s = ok(await subscribe({ external_customer_id: uid("cus"), plan_code: plan.code, external_id: externalId })).subscription;
    const other = await newOrg();

    expect(json(await sub(externalId, "", other.key))).toEqual(NOT_FOUND);
    for (const status of ["active", "pending", "terminated", "canceled"]) expect(json(await sub(externalId, `?status=${status}`, other.key))).toEqual(NOT_FOUND);
    expect(ok(await list("status[]=active&status[]=pending&status[]=terminated&status[]=canceled", other.key)).meta.total_count).toBe(0);
    expect(ok(await list(`external_customer_id=${s.external_customer_id}`, other.key)).meta.total_count).toBe(0);
    expect(json(await call("GET", `/api/v1/customers/${s.external_customer_id}/subscriptions`, undefined, other.key))).toEqual({ status: 404, error: "Not Found", code: "customer_not_found" });
    expect(json(await update(externalId, { name: "hijacked" }, "", other.key))).toEqual(NOT_FOUND);
    expect(json(await terminate(externalId, "", other.key))).toEqual(NOT_FOUND);
    expect(json(await terminate(externalId, "?status=pending", other.key))).toEqual(NOT_FOUND);
    // The other organization's plan code means nothing here, and its own plan with our external ids creates its own, separate subscription.
    expect((await subscribe({ external_customer_id: s.external_customer_id, plan_code: plan.code, external_id: externalId }, other.key)).statusCode).toBe(404);
    const theirPlan = await createPlan({ amount_cents: 99_999 }, other.key);
    const theirs = ok(await subscribe({ external_customer_id: s.external_customer_id, plan_code: theirPlan.code, external_id: externalId }, other.key)).subscription;
    expect(theirs.lago_id).not.toBe(s.lago_id);
    expect(theirs.lago_customer_id).not.toBe(s.lago_customer_id);
    expect(await t.app.subscriptions.getByExternalId(other.orgId, externalId)).toMatchObject({ lagoId: theirs.lago_id });

    expect(ok(await sub(externalId)).subscription).toEqual({ ...s });
  });
});
