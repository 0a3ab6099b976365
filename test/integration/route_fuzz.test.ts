// Every route the server registers, driven with hostile input: broken path parameters, query
// strings of the wrong type or size, bodies whose every known field holds a value of the wrong
// kind (null, arrays, objects, NUL bytes, lone surrogates, huge numbers, impossible dates...), on
// made-up ids and on real ones (so validation past the lookup runs too). Each answer is below 500,
// and the server keeps answering. The route list is read from the server itself, so a route added
// later is fuzzed without touching this file.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DB_KIND } from "../helpers/db.ts";
import { startTestApp, type TestApp } from "../helpers/app.ts";
import { ADMIN_TOKEN, BILLING_ENV, type Org, customer, newOrg, plan, subscribe } from "./billing_support.ts";
import { bearer, uid } from "./support.ts";

interface Route {
  path: string;
  methods: string[];
}

/** The registered routes, from fastify's route tree (`printRoutes` without a common prefix). */
export function routesOf(tree: string): Route[] {
  const out: Route[] = [];
  const stack: string[] = [];
  for (const line of tree.split("\n")) {
    const m = /^([│ ]*)[├└]── (\S+)(?: \(([^)]*)\))?/.exec(line);
    if (!m) continue;
    const depth = m[1]!.length / 4;
    stack.length = depth;
    // `/:external_id|:external_customer_id`: one node for two parameter names; the first serves.
    stack.push(m[2]!.replace(/\|:[a-z_]+/g, ""));
    const methods = (m[3] ?? "").split(",").map((s) => s.trim()).filter((s) => s !== "" && s !== "HEAD");
    if (methods.length > 0) out.push({ path: stack.join(""), methods });
  }
  return out;
}

// Longer than any stored text (255) yet well inside the body limit, so validation sees it.
const LONG = "x".repeat(300);
// Values of the wrong kind for any field: each body sets every known field to one of them.
const HOSTILE: unknown[] = [
  null,
  [],
  {},
  "",
  "\u0000",
  "a\ud800b",
  LONG,
  -1,
  1.5,
  1e308,
  "1e400",
  "-0",
  "2026-02-30T25:61:00Z",
  "not a value",
  true,
  99999999999999999999,
  "99999999999999999999999999.999999999999",
  [[[null]]],
  { "": { "\u0000": [] } },
];
const FIELDS = `external_id external_customer_id external_subscription_id name code plan_code billable_metric_id
  billable_metric_code charge_model amount_cents amount_currency currency interval pay_in_advance invoiceable
  trial_period properties rate rate_amount paid_credits granted_credits expiration_at started_at ending_at
  subscription_at billing_time timezone email coupon_code coupon_type frequency frequency_duration percentage_rate
  reusable expiration add_on_code units unit_amount_cents invoice_id reason refund_amount_cents credit_amount_cents
  items fee_id webhook_url signature_algo alert_type thresholds value recurring field_name aggregation_type
  weighted_interval filters values key invoice_display_name tax_codes applied_to_organization description timestamp
  transaction_id precise_total_amount_cents payment_status status frozen_time lago_id amount reference grouped_by
  charge_code metadata wallet_id voided_credits min_amount_cents usage_thresholds threshold_display_name
  recurring_transaction_rules trigger target_ongoing_balance method transaction_status
  invoice_requires_successful_payment plan parent_id net_payment_term invoice_grace_period document_locale
  tax_identification_number fees charges customer subscriptions coupons external_ids plan_overrides
  billing_configuration payment_provider amount_cents_overridden percentage_rate_overridden terminated_at
  on_termination_credit_note on_termination_invoice applied_taxes expiration_date event_types`
  .split(/\s+/)
  .filter(Boolean);
const fieldsAll = (v: unknown) => Object.fromEntries(FIELDS.map((f) => [f, v]));
// Lists and objects Lago nests, each holding a record of every field set to the value.
const nested = (v: unknown) => ({
  ...fieldsAll(v),
  ...Object.fromEntries(
    ["charges", "filters", "fees", "items", "usage_thresholds", "thresholds", "metadata", "recurring_transaction_rules", "events"].map((k) => [k, [fieldsAll(v)]]),
  ),
  ...Object.fromEntries(["properties", "customer", "subscriptions", "plan_overrides", "billing_configuration", "values"].map((k) => [k, fieldsAll(v)])),
});

/** The body's root key Lago uses for a route's resource (`/api/v1/plans/:code/charges` → `charge`). */
function rootOf(path: string): string[] {
  const statics = path.split("/").filter((s) => s !== "" && !s.startsWith(":"));
  const last = statics[statics.length - 1] ?? "";
  const special: Record<string, string[]> = {
    batch: ["events"],
    estimate_fees: ["event"],
    estimate: ["credit_note"],
    preview: ["customer", "subscriptions"],
    alerts: ["alert", "alerts"],
    api_keys: ["api_key"],
    applied_coupons: ["applied_coupon"],
    test_clock: ["test_clock"],
  };
  if (special[last]) return special[last]!;
  const singular = last.endsWith("ies") ? last.slice(0, -3) + "y" : last.endsWith("s") ? last.slice(0, -1) : last;
  return [singular];
}

const BAD_PARAMS = ["%00", "a%ED%A0%80", "%FF", "t".repeat(5000), "00000000-0000-4000-8000-000000000000", "not-a-uuid", "%F0%9F%98%80", "..%2F..", "%20"];
const QUERY_KEYS = `page per_page external_customer_id external_subscription_id code currency status payment_status
  payment_overdue invoice_type issuing_date_from issuing_date_to timestamp_from timestamp_to months
  billable_metric_code plan_code time_granularity search_term from_date to_date apply_taxes charge_id
  filter_by_charge_id filter_by_group full_usage transaction_id event_type customer_external_id wallet_id
  transaction_type self_billed partner_billing amount_from amount_to`
  .split(/\s+/)
  .filter(Boolean);
const QUERY_VALUES = ["%00", "%ED%A0%80", "%FF", "", "q".repeat(3000), "2026-02-30", "-1", "99999999999999999999", "1e400", "maybe", "0", "%20%20"];

describe(`every route, hostile input, on ${DB_KIND}`, () => {
  let t: TestApp;
  let org: Org;
  let routes: Route[];
  const real: Record<string, string> = {};
  /** Fields naming objects that exist, so a body gets past its lookups to the rest of its validation. */
  let existing: Record<string, unknown> = {};

  beforeAll(async () => {
    t = await startTestApp({ env: BILLING_ENV });
    org = await newOrg(t);
    await org.freeze("2026-03-15T12:00:00Z");
    const p = await plan(org, { amount_cents: 1000 });
    const cus = await customer(org);
    const sub = await subscribe(org, cus, p.plan);
    const addOn = (await org.api("POST", "/api/v1/add_ons", { add_on: { name: "Setup", code: uid("setup"), amount_cents: 500, amount_currency: "EUR" } })).add_on;
    const invoice = (await org.api("POST", "/api/v1/invoices", { invoice: { external_customer_id: cus, currency: "EUR", fees: [{ add_on_code: addOn.code, units: 1 }] } })).invoice;
    const wallet = (await org.api("POST", "/api/v1/wallets", { wallet: { external_customer_id: cus, rate_amount: "1", currency: "EUR", granted_credits: "10" } })).wallet;
    const tax = (await org.api("POST", "/api/v1/taxes", { tax: { name: "VAT", code: uid("vat"), rate: "20" } })).tax;
    const coupon = (await org.api("POST", "/api/v1/coupons", { coupon: { name: "Ten", code: uid("ten"), coupon_type: "fixed_amount", amount_cents: 1000, amount_currency: "EUR", frequency: "once", expiration: "no_expiration" } })).coupon;
    const alert = (await org.api("POST", `/api/v1/subscriptions/${sub}/alerts`, { alert: { alert_type: "current_usage_amount", code: uid("alert"), thresholds: [{ value: "1000" }] } })).alert;
    existing = {
      external_customer_id: cus,
      external_subscription_id: sub,
      plan_code: p.plan,
      billable_metric_code: p.calls,
      billable_metric_id: p.planJson.charges[0].billable_metric_id,
      invoice_id: invoice.lago_id,
      fee_id: invoice.fees[0].lago_id,
      wallet_id: wallet.lago_id,
      add_on_code: addOn.code,
      coupon_code: coupon.code,
      tax_codes: [tax.code],
      currency: "EUR",
      amount_currency: "EUR",
    };
    Object.assign(real, {
      "/api/v1/customers/:external_id": cus,
      "/api/v1/subscriptions/:external_id": sub,
      "/api/v1/plans/:code": p.plan,
      "/api/v1/plans/:code/charges/:charge_code": p.planJson.charges[0].code,
      "/api/v1/billable_metrics/:code": p.calls,
      "/api/v1/add_ons/:code": addOn.code,
      "/api/v1/invoices/:lago_id": invoice.lago_id,
      "/api/v1/fees/:lago_id": invoice.fees[0].lago_id,
      "/api/v1/wallets/:lago_id": wallet.lago_id,
      "/api/v1/taxes/:code": tax.code,
      "/api/v1/coupons/:code": coupon.code,
      "/api/v1/subscriptions/:external_id/alerts/:code": alert.code,
    });
    routes = routesOf(t.app.http.printRoutes({ commonPrefix: false }));
  });
  afterAll(async () => {
    await t?.close();
  });

  /** The route's path with its parameters: all `bad`, or each the real id of its object where known. */
  function fill(path: string, bad: string | null): string {
    if (bad !== null) return path.replace(/:[a-z_]+/gi, bad);
    let out = "";
    let prefix = "";
    for (const seg of path.split("/").slice(1)) {
      prefix += "/" + seg;
      out += "/" + (seg.startsWith(":") ? encodeURIComponent(real[prefix] ?? "00000000-0000-4000-8000-000000000000") : seg);
    }
    return out;
  }

  const failures: string[] = [];
  // Up to 16 requests in flight: the server's own concurrency, and a run that fits in CI.
  const inFlight = new Set<Promise<void>>();
  async function hit(method: string, url: string, payload?: string) {
    const p = send(method, url, payload).finally(() => inFlight.delete(p));
    inFlight.add(p);
    if (inFlight.size >= 16) await Promise.race(inFlight);
  }
  const settled = () => Promise.all(inFlight);
  async function send(method: string, url: string, payload?: string) {
    const key = url.startsWith("/admin/") ? ADMIN_TOKEN : org.key;
    const r = await t.app.http.inject({
      method: method as "GET",
      url,
      headers: { ...bearer(key), ...(payload === undefined ? {} : { "content-type": "application/json" }) },
      ...(payload === undefined ? {} : { payload }),
    });
    if (r.statusCode >= 500) failures.push(`${method} ${url.slice(0, 200)} ${payload?.slice(0, 200) ?? ""} -> ${r.statusCode} ${r.body.slice(0, 300)}`);
  }

  it("a NUL byte in a path parameter is the 404 of what it names, in a query value a 422 naming the key", async () => {
    const cus = real["/api/v1/customers/:external_id"]!;
    for (const [url, status, body] of [
      ["/api/v1/customers/a%00b/invoices", 404, { code: "customer_not_found" }],
      ["/api/v1/customers/%00/wallets", 404, { code: "customer_not_found" }],
      ["/api/v1/taxes/%00", 404, { code: "tax_not_found" }],
      [`/api/v1/plans/${real["/api/v1/plans/:code"]}/charges/%00`, 404, { code: "charge_not_found" }],
      ["/api/v1/invoices?external_customer_id=%00&currency=EUR", 422, { code: "validation_errors", error_details: { external_customer_id: ["contains_nul_character"] } }],
      [`/api/v1/customers/${cus}/invoices?currency=%00`, 422, { code: "validation_errors", error_details: { currency: ["contains_nul_character"] } }],
      ["/api/v1/analytics/usage?plan_code=%00&billable_metric_code=x%00", 422, { error_details: { plan_code: ["contains_nul_character"], billable_metric_code: ["contains_nul_character"] } }],
    ] as const) {
      const r = await org.raw("GET", url);
      expect(r.statusCode, url).toBe(status);
      expect(JSON.parse(r.body), url).toMatchObject({ status, ...body });
    }
    // Without a key, nothing but 401.
    expect((await t.app.http.inject({ method: "GET", url: "/api/v1/customers/%00/invoices" })).statusCode).toBe(401);
    const name = await t.app.http.inject({ method: "POST", url: "/admin/v1/organizations", headers: bearer(ADMIN_TOKEN), payload: { organization: { name: "Acme\u0000" } } });
    expect(name.statusCode).toBe(422);
    expect(JSON.parse(name.body).error_details).toEqual({ name: ["contains_nul_character"] });
  });

  it("the route list is read from the server (and holds the routes of every module)", () => {
    const paths = new Set(routes.map((r) => r.path));
    for (const p of ["/api/v1/events/batch", "/api/v1/plans/:code/charges/:charge_code/filters/:filter_id", "/api/v1/invoices/preview", "/api/v1/analytics/mrr", "/admin/v1/organizations/:id/api_keys/:keyId"]) {
      expect(paths, p).toContain(p);
    }
    expect(routes.length).toBeGreaterThan(60);
  });

  it("broken path parameters and query strings answer below 500", async () => {
    for (const route of routes) {
      for (const method of route.methods.filter((m) => m !== "DELETE")) {
        const hasParams = route.path.includes(":");
        for (const bad of hasParams ? BAD_PARAMS : []) await hit(method, fill(route.path, bad), method === "GET" ? undefined : "{}");
        if (method !== "GET") continue;
        const base = fill(route.path, null);
        for (const v of QUERY_VALUES) await hit(method, `${base}?${QUERY_KEYS.map((k) => `${k}=${v}`).join("&")}`);
        for (const k of QUERY_KEYS) {
          for (const q of [`${k}=%00`, `${k}[]=1&${k}[a]=2`]) await hit(method, `${base}?${q}`);
        }
      }
    }
    await settled();
    expect(failures).toEqual([]);
  }, 600_000);

  it("bodies of the wrong shape, and every field of the wrong kind, answer below 500", async () => {
    for (const route of routes) {
      for (const method of route.methods.filter((m) => m === "POST" || m === "PUT")) {
        for (const url of route.path.includes(":") ? [fill(route.path, null), fill(route.path, "00000000-0000-4000-8000-000000000000")] : [route.path]) {
          for (const raw of ["{}", "[]", "null", "1", '"x"', '{"a":', "{\"\\u0000\":1}"]) await hit(method, url, raw);
          for (const root of rootOf(route.path)) {
            for (const shape of [null, [], "x", 1, {}, [{}]]) await hit(method, url, JSON.stringify({ [root]: shape }));
            for (const v of HOSTILE) {
              await hit(method, url, JSON.stringify({ [root]: fieldsAll(v), ...fieldsAll(v) }));
              await hit(method, url, JSON.stringify({ [root]: nested(v) }));
              await hit(method, url, JSON.stringify({ [root]: { ...fieldsAll(v), ...existing } }));
            }
            await hit(method, url, JSON.stringify({ [root]: [nested("")] }));
          }
        }
      }
    }
    await settled();
    expect(failures).toEqual([]);
  }, 600_000);

  it("deletes on made-up and real ids answer below 500, and the server still answers after all of it", async () => {
    for (const route of routes.filter((r) => r.methods.includes("DELETE"))) {
      for (const bad of BAD_PARAMS) await hit("DELETE", fill(route.path, bad));
    }
    await settled();
    // Deepest first: a charge before its plan, an alert before its subscription.
    for (const route of routes.filter((r) => r.methods.includes("DELETE")).sort((a, b) => b.path.length - a.path.length)) {
      await hit("DELETE", fill(route.path, null));
      await settled();
    }
    expect(failures).toEqual([]);
    expect((await t.app.http.inject({ method: "GET", url: "/health" })).statusCode).toBe(200);
    expect((await org.raw("GET", "/api/v1/customers")).statusCode).toBe(200);
  });
});
