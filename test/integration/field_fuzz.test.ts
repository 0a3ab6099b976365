// Every write route, one field at a time: each route starts from one valid body (answered 2xx),
// then, for every field path in it (nested objects and list items included, found by walking the
// JSON), sends that body with just that one field replaced by a hostile value (null, a list, an
// object, NUL bytes, lone surrogates, huge or negative numbers, impossible dates...) or removed.
// The rest of the body stays valid, so the validation and business logic behind the first check run
// too. Each answer is below 500. (route_fuzz.test.ts breaks every field at once; this is its
// complement.)
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DB_KIND } from "../helpers/db.ts";
import { startTestApp, type TestApp } from "../helpers/app.ts";
import { ADMIN_TOKEN, BILLING_ENV, type Org, customer, newOrg, plan, subscribe } from "./billing_support.ts";
import { bearer, uid } from "./support.ts";

const REMOVED = Symbol("removed");
const HOSTILE: unknown[] = [
  null,
  [],
  {},
  "",
  "\u0000",
  "a\ud800b",
  "x".repeat(300),
  -1,
  0,
  1.5,
  1e308,
  "1e400",
  "99999999999999999999999999.9999999999999",
  99999999999999999999,
  true,
  "not a value",
  "2026-02-30T25:61:00Z",
  "-0",
  REMOVED,
];

type Path = (string | number)[];
type Json = Record<string, unknown>;

/** Every path below the root of a JSON value: object keys and list indexes, depth first. */
export function pathsOf(value: unknown, prefix: Path = []): Path[] {
  const out: Path[] = [];
  if (Array.isArray(value)) {
    value.forEach((v, i) => out.push([...prefix, i], ...pathsOf(v, [...prefix, i])));
  } else if (value !== null && typeof value === "object") {
    for (const [k, v] of Object.entries(value)) out.push([...prefix, k], ...pathsOf(v, [...prefix, k]));
  }
  return out;
}

/** `body` with the value at `path` replaced by `v` (or removed). */
export function mutate(body: Json, path: Path, v: unknown): Json {
  const copy = structuredClone(body);
  let node: any = copy;
  for (const key of path.slice(0, -1)) node = node[key];
  const last = path[path.length - 1]!;
  if (v !== REMOVED) node[last] = v;
  else if (Array.isArray(node)) node.splice(last as number, 1);
  else delete node[last];
  return copy;
}

const show = (v: unknown) => (v === REMOVED ? "<removed>" : typeof v === "string" && v.length > 20 ? `"${v.slice(0, 8)}…(${v.length})"` : JSON.stringify(v));
const pathText = (p: Path) => p.map((k) => (typeof k === "number" ? `[${k}]` : `.${k}`)).join("").slice(1);

/** A query value percent-encoded, a lone surrogate as the bytes it would have in UTF-8 (%ED%A0%80). */
const queryValue = (v: string) => encodeURIComponent(v.replace(/\ud800/g, "\u0001")).replace(/%01/g, "%ED%A0%80");

interface Case {
  name: string;
  method: "POST" | "PUT" | "DELETE";
  /** The URL (for each request: a fresh target may be made by `fresh`). */
  url: (f: Json) => string;
  /** A valid body, fresh codes and ids each call. For DELETE, the query string's keys and values. */
  body: (f: Json) => Json;
  /** What each request needs of its own (a target it consumes, one of a pool in turn), given to `url` and `body`. */
  fresh?: () => Promise<Json>;
  admin?: boolean;
  /** After a 2xx: undoes what it made (when it would refuse the next requests), or follows it in `f`. */
  undo?: (answer: any, f: Json) => Promise<void>;
}

describe(`every write route, one field at a time, on ${DB_KIND}`, () => {
  let t: TestApp;
  let org: Org;
  const c: Record<string, any> = {};
  const cases: Case[] = [];

  beforeAll(async () => {
    t = await startTestApp({ env: BILLING_ENV });
    org = await newOrg(t);
    await org.freeze("2026-03-15T12:00:00Z");
    const api = org.api;
    c.tax = (await api("POST", "/api/v1/taxes", { tax: { name: "VAT", code: uid("vat"), rate: "20" } })).tax.code;
    const p = await plan(org, { amount_cents: 1000 });
    c.calls = p.calls;
    c.plan = p.plan;
    c.planJson = p.planJson;
    c.region = (
      await api("POST", "/api/v1/billable_metrics", {
        billable_metric: { name: "Region calls", code: uid("region"), aggregation_type: "count_agg", filters: [{ key: "region", values: ["eu", "us", "ap"] }] },
      })
    ).billable_metric;
    c.gb = (await api("POST", "/api/v1/billable_metrics", { billable_metric: { name: "GB", code: uid("gb"), aggregation_type: "sum_agg", field_name: "gb" } })).billable_metric;
    c.spareMetric = (
      await api("POST", "/api/v1/billable_metrics", { billable_metric: { name: "Spare", code: uid("spare"), aggregation_type: "sum_agg", field_name: "v" } })
    ).billable_metric.code;
    c.cus = await customer(org, { tax_codes: [c.tax] });
    c.upsertCus = await customer(org);
    c.sub = await subscribe(org, c.cus, c.plan);
    // A plan of its own for the charge routes: a charge `api` with a filter on `region`.
    c.chargePlan = (
      await api("POST", "/api/v1/plans", {
        plan: {
          name: "Charges",
          code: uid("charges"),
          interval: "monthly",
          amount_cents: 0,
          amount_currency: "EUR",
          charges: [
            { billable_metric_id: c.region.lago_id, charge_model: "standard", code: "api", properties: { amount: "1" }, filters: [{ values: { region: ["eu"] }, properties: { amount: "2" } }] },
          ],
        },
      })
    ).plan;
    c.filterId = (await api("GET", `/api/v1/plans/${c.chargePlan.code}/charges/api/filters`)).filters[0].lago_id;
    // Charges are added to plans of their own, in turn (each grows with the charges the fuzz adds).
    c.addPlans = [];
    for (let i = 0; i < 16; i++) {
      c.addPlans.push((await api("POST", "/api/v1/plans", { plan: { name: "Add", code: uid("add"), interval: "monthly", amount_cents: 0, amount_currency: "EUR" } })).plan.code);
    }
    // Filters are added to one charge on a metric of many values, each filter on values of its own.
    c.zone = (
      await api("POST", "/api/v1/billable_metrics", {
        billable_metric: { name: "Zones", code: uid("zone"), aggregation_type: "count_agg", filters: [{ key: "zone", values: Array.from({ length: 600 }, (_, i) => `z${i}`) }] },
      })
    ).billable_metric;
    c.zonePlan = (
      await api("POST", "/api/v1/plans", {
        plan: { name: "Zones", code: uid("zones"), interval: "monthly", amount_cents: 0, amount_currency: "EUR", charges: [{ billable_metric_id: c.zone.lago_id, code: "zones", charge_model: "standard", properties: { amount: "1" } }] },
      })
    ).plan.code;
    // A subscription has one alert of a type and metric: each alert the fuzz makes watches a metric of its own.
    const alertMetrics: string[] = [];
    for (let i = 0; i < 300; i++) {
      alertMetrics.push((await api("POST", "/api/v1/billable_metrics", { billable_metric: { name: "A", code: uid("a"), aggregation_type: "count_agg" } })).billable_metric.code);
    }
    let alertTurn = 0;
    c.nextAlertMetric = () => alertMetrics[alertTurn++ % alertMetrics.length];
    let turn = 0;
    c.nextAddPlan = () => c.addPlans[turn++ % c.addPlans.length];
    let zone = 0;
    c.nextZones = () => [`z${zone++ % 600}`, `z${zone++ % 600}`];
    c.updPlan = (await api("POST", "/api/v1/plans", { plan: { name: "Upd", code: uid("upd"), interval: "monthly", amount_cents: 100, amount_currency: "EUR" } })).plan.code;
    // A plan whose charge is paid in advance, for the estimate.
    c.advPlan = (
      await api("POST", "/api/v1/plans", {
        plan: {
          name: "Adv",
          code: uid("adv"),
          interval: "monthly",
          amount_cents: 0,
          amount_currency: "EUR",
          charges: [{ billable_metric_id: c.gb.lago_id, charge_model: "standard", pay_in_advance: true, invoiceable: false, properties: { amount: "0.5" } }],
        },
      })
    ).plan.code;
    c.advSub = await subscribe(org, c.cus, c.advPlan);
    c.addOn = (await api("POST", "/api/v1/add_ons", { add_on: { name: "Big", code: uid("big"), amount_cents: 100_000_000, amount_currency: "EUR" } })).add_on.code;
    c.coupon = (
      await api("POST", "/api/v1/coupons", {
        coupon: { name: "Ten", code: uid("ten"), coupon_type: "fixed_amount", amount_cents: 1000, amount_currency: "EUR", frequency: "recurring", frequency_duration: 3, expiration: "no_expiration", reusable: true },
      })
    ).coupon.code;
    const oneOff = async () =>
      (await api("POST", "/api/v1/invoices", { invoice: { external_customer_id: c.cus, currency: "EUR", fees: [{ add_on_code: c.addOn, units: 1 }] } })).invoice;
    // Paid: credit notes may refund it. Unpaid: payments pay it, cent by cent.
    const paid = await oneOff();
    await api("PUT", `/api/v1/invoices/${paid.lago_id}`, { invoice: { payment_status: "succeeded" } });
    c.paid = paid.lago_id;
    c.paidFee = paid.fees[0].lago_id;
    c.unpaid = (await oneOff()).lago_id;
    c.toFail = (await oneOff()).lago_id;
    c.refundNote = (
      await api("POST", "/api/v1/credit_notes", { credit_note: { invoice_id: c.paid, reason: "other", refund_amount_cents: 120, items: [{ fee_id: c.paidFee, amount_cents: 100 }] } })
    ).credit_note.lago_id;
    c.wallet = (
      await api("POST", "/api/v1/wallets", { wallet: { external_customer_id: c.cus, currency: "EUR", rate_amount: "1", granted_credits: "1000000", code: uid("w") } })
    ).wallet.lago_id;
    c.hook = (await api("POST", "/api/v1/webhook_endpoints", { webhook_endpoint: { webhook_url: `http://127.0.0.1:9/${uid("h")}`, signature_algo: "hmac" } })).webhook_endpoint
      .lago_id;
    c.alert = (
      await api("POST", `/api/v1/subscriptions/${c.sub}/alerts`, { alert: { alert_type: "current_usage_amount", code: uid("alert"), thresholds: [{ value: "1000" }] } })
    ).alert.code;
    c.updMetric = (
      await api("POST", "/api/v1/billable_metrics", { billable_metric: { name: "Upd", code: uid("updm"), aggregation_type: "sum_agg", field_name: "v" } })
    ).billable_metric.code;
    c.updCoupon = (
      await api("POST", "/api/v1/coupons", {
        coupon: { name: "Upd", code: uid("updc"), coupon_type: "fixed_amount", amount_cents: 100, amount_currency: "EUR", frequency: "once", expiration: "no_expiration" },
      })
    ).coupon.code;
    c.updAddOn = (await api("POST", "/api/v1/add_ons", { add_on: { name: "Upd", code: uid("upda"), amount_cents: 100, amount_currency: "EUR" } })).add_on.code;
    c.updTax = (await api("POST", "/api/v1/taxes", { tax: { name: "Upd", code: uid("updt"), rate: "5" } })).tax.code;
    const adminOrg = await t.app.http.inject({ method: "POST", url: "/admin/v1/organizations", headers: bearer(ADMIN_TOKEN), payload: { organization: { name: uid("Admin") } } });
    c.adminOrg = JSON.parse(adminOrg.body).organization.id;
    c.clockOrg = await newOrg(t);

    const later = "2027-01-01T00:00:00Z";
    // The plan fuzz's metrics, taken in turn: each plan written re-reads every charge of its
    // metrics (their rollup group keys), so thousands of plans on two metrics would slow down.
    const pool: { region: any; gb: any }[] = [];
    for (let i = 0; i < 12; i++) {
      pool.push({
        region: (await api("POST", "/api/v1/billable_metrics", { billable_metric: { name: "R", code: uid("r"), aggregation_type: "count_agg", filters: [{ key: "region", values: ["eu", "us"] }] } }))
          .billable_metric,
        gb: (await api("POST", "/api/v1/billable_metrics", { billable_metric: { name: "G", code: uid("g"), aggregation_type: "sum_agg", field_name: "gb" } })).billable_metric,
      });
    }
    let metricTurn = 0;
    const metrics = () => pool[metricTurn++ % pool.length]!;
    /** A plan of one charge (on a metric of `pool`), with a filter. */
    const byIdPlan = async () => {
      const { region } = metrics();
      const made = (
        await org.api("POST", "/api/v1/plans", {
          plan: {
            name: "ById",
            code: uid("byid"),
            interval: "monthly",
            amount_cents: 0,
            amount_currency: "EUR",
            charges: [{ billable_metric_id: region.lago_id, charge_model: "standard", properties: { amount: "1" }, filters: [{ values: { region: ["eu"] }, properties: { amount: "2" } }] }],
          },
        })
      ).plan;
      return { code: made.code, charge: made.charges[0].lago_id, metric: region.lago_id };
    };
    const byIdPlans: Json[] = [];
    for (let i = 0; i < 16; i++) byIdPlans.push(await byIdPlan());
    let byIdTurn = 0;
    c.nextByIdPlan = async () => byIdPlans[byIdTurn++ % byIdPlans.length];
    const charges = ({ region, gb } = metrics()) => [
      {
        billable_metric_id: region.lago_id,
        charge_model: "standard",
        invoice_display_name: "API calls",
        min_amount_cents: 500,
        pay_in_advance: false,
        invoiceable: true,
        tax_codes: [c.tax],
        properties: { amount: "0.25", grouped_by: ["agent"] },
        filters: [{ invoice_display_name: "Europe", properties: { amount: "0.1" }, values: { region: ["eu"] } }],
      },
      { billable_metric_id: region.lago_id, charge_model: "graduated", properties: { graduated_ranges: [{ from_value: 0, to_value: 10, per_unit_amount: "0.5", flat_amount: "10" }, { from_value: 11, to_value: null, per_unit_amount: "0.4", flat_amount: "0" }] } },
      { billable_metric_code: gb.code, charge_model: "volume", properties: { volume_ranges: [{ from_value: 0, to_value: 100, per_unit_amount: "2", flat_amount: "1" }, { from_value: 101, to_value: null, per_unit_amount: "1", flat_amount: "0" }] } },
      { billable_metric_id: region.lago_id, charge_model: "package", code: "bulk", properties: { amount: "30", free_units: 100, package_size: 1000 } },
      {
        billable_metric_id: gb.lago_id,
        charge_model: "percentage",
        properties: { rate: "1.5", fixed_amount: "0.5", free_units_per_events: 5, free_units_per_total_aggregation: "500", per_transaction_min_amount: "1.75", per_transaction_max_amount: "3.75" },
      },
      { billable_metric_id: gb.lago_id, charge_model: "graduated_percentage", properties: { graduated_percentage_ranges: [{ from_value: 0, to_value: 10, rate: "1", flat_amount: "10" }, { from_value: 11, to_value: null, rate: "0.5", flat_amount: "0" }] } },
      { billable_metric_id: gb.lago_id, charge_model: "standard", pay_in_advance: true, invoiceable: false, regroup_paid_fees: "invoice", properties: { amount: "1" } },
    ];
    const chargeId = c.planJson.charges[0].lago_id;
    const overrides = () => ({
      name: "Deal",
      invoice_display_name: "Deal plan",
      description: "Negotiated",
      amount_cents: 5000,
      amount_currency: "EUR",
      trial_period: 3,
      tax_codes: [c.tax],
      charges: [{ id: chargeId, invoice_display_name: "Calls", min_amount_cents: 200, tax_codes: [c.tax], properties: { amount: "0.25" } }],
      minimum_commitment: { amount_cents: 40000, invoice_display_name: "Deal minimum", tax_codes: [c.tax] },
      usage_thresholds: [{ amount_cents: 2000, threshold_display_name: "Deal step" }, { amount_cents: 5000, recurring: true }],
    });
    const event = () => ({
      transaction_id: uid("tx"),
      external_subscription_id: c.sub,
      code: c.calls,
      timestamp: Date.parse("2026-03-15T11:00:00Z") / 1000,
      properties: { region: "eu", gb: "3" },
      precise_total_amount_cents: "12.5",
    });
    const rule = () => ({
      trigger: "interval",
      interval: "monthly",
      method: "fixed",
      paid_credits: "10",
      granted_credits: "5",
      started_at: later,
      expiration_at: "2028-01-01T00:00:00Z",
      invoice_requires_successful_payment: false,
      transaction_name: "Monthly top-up",
      transaction_metadata: [{ key: "k", value: "v" }],
    });
    const freshCustomer = async () => ({ cus: await customer(org) });

    cases.push(
      {
        name: "create a customer",
        method: "POST",
        url: () => "/api/v1/customers",
        body: () => ({
          customer: {
            external_id: uid("cus"),
            name: "Gavin Belson",
            firstname: "Gavin",
            lastname: "Belson",
            email: "gavin@hooli.test",
            phone: "+33 1 23 45 67 89",
            url: "https://hooli.test",
            currency: "EUR",
            timezone: "Europe/Paris",
            country: "FR",
            address_line1: "5230 Penfield Ave",
            address_line2: "Suite 1",
            city: "Paris",
            state: "IDF",
            zipcode: "75001",
            legal_name: "Hooli",
            legal_number: "123",
            tax_identification_number: "EU123456789",
            customer_type: "company",
            account_type: "customer",
            net_payment_term: 30,
            invoice_grace_period: 2,
            finalize_zero_amount_invoice: "inherit",
            tax_codes: [c.tax],
            shipping_address: { address_line1: "1 rue", city: "Lyon", zipcode: "69001", state: "ARA", country: "FR" },
            billing_configuration: { invoice_grace_period: 3, document_locale: "fr", payment_provider: "stripe", payment_provider_code: "stripe_1", provider_customer_id: "cus_1" },
            metadata: [{ key: "PO", value: "123", display_in_invoice: true }],
          },
        }),
      },
      {
        name: "update a customer (upsert)",
        method: "POST",
        url: () => "/api/v1/customers",
        body: () => ({ customer: { external_id: c.upsertCus, name: "New", email: "a@b.co", net_payment_term: 15, metadata: [{ key: "k", value: "v", display_in_invoice: false }] } }),
      },
      {
        name: "create a billable metric",
        method: "POST",
        url: () => "/api/v1/billable_metrics",
        body: () => ({
          billable_metric: {
            name: "Storage",
            code: uid("storage"),
            description: "GB stored",
            aggregation_type: "sum_agg",
            field_name: "gb",
            recurring: true,
            rounding_function: "ceil",
            rounding_precision: 2,
            filters: [
              { key: "region", values: ["us", "eu"] },
              { key: "cloud", values: ["aws"] },
            ],
          },
        }),
      },
      {
        name: "create a weighted metric",
        method: "POST",
        url: () => "/api/v1/billable_metrics",
        body: () => ({ billable_metric: { name: "Weighted", code: uid("w"), aggregation_type: "weighted_sum_agg", field_name: "v", weighted_interval: "seconds", recurring: true } }),
      },
      {
        name: "update a billable metric",
        method: "PUT",
        url: () => `/api/v1/billable_metrics/${c.updMetric}`,
        body: () => ({ billable_metric: { name: "Renamed", description: "d", aggregation_type: "max_agg", field_name: "other", filters: [{ key: "region", values: ["eu"] }] } }),
      },
      {
        name: "create a plan",
        method: "POST",
        url: () => "/api/v1/plans",
        body: () => ({
          plan: {
            name: "Pro",
            invoice_display_name: "Pro plan",
            code: uid("pro"),
            interval: "yearly",
            description: "For teams",
            amount_cents: 120000,
            amount_currency: "EUR",
            trial_period: 14.5,
            pay_in_advance: true,
            bill_charges_monthly: true,
            tax_codes: [c.tax],
            charges: charges(),
            minimum_commitment: { amount_cents: 50000, invoice_display_name: "Contract minimum", tax_codes: [c.tax] },
            usage_thresholds: [
              { amount_cents: 1000, threshold_display_name: "Step 1" },
              { amount_cents: 5000, threshold_display_name: "Every €50", recurring: true },
            ],
          },
        }),
      },
      {
        name: "update a plan",
        method: "PUT",
        url: () => `/api/v1/plans/${c.updPlan}`,
        body: () => ({
          plan: {
            name: "Upd",
            invoice_display_name: "Upd plan",
            description: "d",
            amount_cents: 200,
            amount_currency: "EUR",
            interval: "monthly",
            trial_period: 1,
            pay_in_advance: false,
            tax_codes: [c.tax],
            charges: [{ billable_metric_id: metrics().region.lago_id, charge_model: "standard", properties: { amount: "1" }, filters: [{ values: { region: ["eu"] }, properties: { amount: "2" } }] }],
            minimum_commitment: { amount_cents: 1000 },
            usage_thresholds: [{ amount_cents: 3000, threshold_display_name: "Step" }],
          },
        }),
      },
      {
        name: "update a plan's charge by its id",
        method: "PUT",
        // Plans of one charge, in turn; after each 2xx the plan's entry follows its (maybe new) charge.
        fresh: async () => c.nextByIdPlan(),
        undo: async (answer, f) => {
          const charge = answer.plan.charges[0];
          if (charge !== undefined) Object.assign(f, { charge: charge.lago_id, metric: charge.lago_billable_metric_id });
          else Object.assign(f, await byIdPlan());
        },
        url: (f) => `/api/v1/plans/${f["code"]}`,
        body: (f) => ({
          plan: {
            charges: [
              {
                id: f["charge"],
                billable_metric_id: f["metric"],
                charge_model: "standard",
                invoice_display_name: "Calls",
                min_amount_cents: 100,
                properties: { amount: "1.5" },
                filters: [{ invoice_display_name: "EU", values: { region: ["eu"] }, properties: { amount: "2.5" } }],
              },
            ],
          },
        }),
      },
      {
        name: "add a charge to a plan",
        method: "POST",
        fresh: async () => ({ plan: c.nextAddPlan() }),
        url: (f) => `/api/v1/plans/${f["plan"]}/charges`,
        body: () => ({
          charge: {
            billable_metric_code: c.region.code,
            code: uid("ch"),
            charge_model: "graduated",
            invoice_display_name: "Tiers",
            min_amount_cents: 100,
            pay_in_advance: false,
            invoiceable: true,
            tax_codes: [c.tax],
            properties: { graduated_ranges: [{ from_value: 0, to_value: null, per_unit_amount: "0.1", flat_amount: "0" }] },
            filters: [{ values: { region: ["us"] }, properties: { graduated_ranges: [{ from_value: 0, to_value: null, per_unit_amount: "0.2", flat_amount: "1" }] } }],
          },
        }),
      },
      {
        name: "update a filter",
        method: "PUT",
        url: () => `/api/v1/plans/${c.chargePlan.code}/charges/api/filters/${c.filterId}`,
        body: () => ({ filter: { invoice_display_name: "Europe", values: { region: ["eu"] }, properties: { amount: "2.5" } } }),
      },
      {
        name: "update a charge",
        method: "PUT",
        url: () => `/api/v1/plans/${c.chargePlan.code}/charges/api`,
        body: () => ({
          charge: {
            charge_model: "standard",
            invoice_display_name: "API",
            min_amount_cents: 10,
            tax_codes: [c.tax],
            properties: { amount: "1.5" },
            filters: [{ invoice_display_name: "EU", values: { region: ["eu"] }, properties: { amount: "2" } }],
          },
        }),
      },
      {
        name: "add a filter to a charge",
        method: "POST",
        // Values no other filter of the charge has, for each request (a filter's values are unique on its charge).
        url: () => `/api/v1/plans/${c.zonePlan}/charges/zones/filters`,
        body: () => ({ filter: { invoice_display_name: "Zone", values: { zone: c.nextZones() }, properties: { amount: "3" } } }),
      },
      {
        name: "create a subscription with plan_overrides",
        method: "POST",
        url: () => "/api/v1/subscriptions",
        body: () => ({
          subscription: {
            external_customer_id: c.cus,
            plan_code: c.plan,
            external_id: uid("sub"),
            name: "Repository A",
            billing_time: "anniversary",
            subscription_at: "2026-03-15T00:00:00Z",
            ending_at: later,
            plan_overrides: overrides(),
          },
        }),
      },
      {
        name: "create a subscription for a new customer",
        method: "POST",
        url: () => "/api/v1/subscriptions",
        body: () => ({ subscription: { external_customer_id: uid("cus"), plan_code: c.plan, external_id: uid("sub"), billing_time: "calendar", subscription_at: later } }),
      },
      {
        name: "update a subscription",
        method: "PUT",
        url: () => `/api/v1/subscriptions/${c.sub}`,
        body: () => ({ subscription: { name: "Renamed", ending_at: later, plan_overrides: overrides() } }),
      },
      {
        name: "terminate a subscription (query)",
        method: "DELETE",
        fresh: async () => ({ sub: await subscribe(org, c.cus, c.plan) }),
        url: (f) => `/api/v1/subscriptions/${f["sub"]}`,
        body: () => ({ status: "active", on_termination_credit_note: "credit", on_termination_invoice: "generate" }),
      },
      {
        name: "create a fixed coupon",
        method: "POST",
        url: () => "/api/v1/coupons",
        body: () => ({
          coupon: {
            name: "Spring",
            code: uid("spring"),
            description: "d",
            coupon_type: "fixed_amount",
            amount_cents: 1000,
            amount_currency: "EUR",
            frequency: "recurring",
            frequency_duration: 3,
            reusable: false,
            expiration: "time_limit",
            expiration_at: later,
            applies_to: { plan_codes: [c.plan] },
          },
        }),
      },
      {
        name: "create a percentage coupon",
        method: "POST",
        url: () => "/api/v1/coupons",
        body: () => ({
          coupon: {
            name: "Ten",
            code: uid("pct"),
            coupon_type: "percentage",
            percentage_rate: "10.5",
            frequency: "forever",
            expiration: "no_expiration",
            applies_to: { billable_metric_codes: [c.calls] },
          },
        }),
      },
      {
        name: "update a coupon",
        method: "PUT",
        url: () => `/api/v1/coupons/${c.updCoupon}`,
        body: () => ({ coupon: { name: "Upd", description: "d", amount_cents: 200, amount_currency: "EUR", frequency: "recurring", frequency_duration: 2, expiration: "time_limit", expiration_at: later } }),
      },
      {
        name: "apply a coupon",
        method: "POST",
        fresh: freshCustomer,
        url: () => "/api/v1/applied_coupons",
        body: (f) => ({ applied_coupon: { external_customer_id: f["cus"], coupon_code: c.coupon, amount_cents: 500, amount_currency: "EUR", frequency: "recurring", frequency_duration: 2 } }),
      },
      {
        name: "create an add-on",
        method: "POST",
        url: () => "/api/v1/add_ons",
        body: () => ({ add_on: { name: "Setup", invoice_display_name: "Setup fee", code: uid("setup"), amount_cents: 50000, amount_currency: "EUR", description: "d", tax_codes: [c.tax] } }),
      },
      {
        name: "update an add-on",
        method: "PUT",
        url: () => `/api/v1/add_ons/${c.updAddOn}`,
        body: () => ({ add_on: { name: "Upd", invoice_display_name: "U", amount_cents: 600, amount_currency: "EUR", description: "d", tax_codes: [c.tax] } }),
      },
      {
        name: "create a tax",
        method: "POST",
        url: () => "/api/v1/taxes",
        body: () => ({ tax: { name: "TVA", code: uid("tva"), rate: "20.0", description: "French VAT", applied_to_organization: false } }),
      },
      {
        name: "update a tax",
        method: "PUT",
        url: () => `/api/v1/taxes/${c.updTax}`,
        body: () => ({ tax: { name: "Upd", rate: "19.6", description: "d", applied_to_organization: false } }),
      },
      { name: "send an event", method: "POST", url: () => "/api/v1/events", body: () => ({ event: event() }) },
      { name: "send a batch of events", method: "POST", url: () => "/api/v1/events/batch", body: () => ({ events: [event(), event()] }) },
      {
        name: "estimate an event's fees",
        method: "POST",
        url: () => "/api/v1/events/estimate_fees",
        body: () => ({ event: { code: c.gb.code, external_subscription_id: c.advSub, transaction_id: uid("tx"), timestamp: Date.parse("2026-03-15T11:00:00Z") / 1000, properties: { gb: "3" } } }),
      },
      {
        name: "create a one-off invoice",
        method: "POST",
        url: () => "/api/v1/invoices",
        body: () => ({
          invoice: {
            external_customer_id: c.cus,
            currency: "EUR",
            fees: [
              { add_on_code: c.addOn, unit_amount_cents: 12050, units: "2.5", description: "Onboarding", invoice_display_name: "Training", tax_codes: [c.tax], from_datetime: "2026-03-01T00:00:00Z", to_datetime: "2026-03-10T00:00:00Z" },
              { add_on_code: c.addOn, units: 0.5 },
            ],
          },
        }),
      },
      {
        name: "update an invoice",
        method: "PUT",
        url: () => `/api/v1/invoices/${c.toFail}`,
        body: () => ({ invoice: { payment_status: "failed", metadata: [] } }),
      },
      {
        name: "preview an invoice for a subscription",
        method: "POST",
        url: () => "/api/v1/invoices/preview",
        body: () => ({
          customer: { external_id: c.cus },
          subscriptions: { external_ids: [c.sub], terminated_at: "2026-03-20T00:00:00Z" },
          coupons: [{ code: "spring", name: "Spring", coupon_type: "fixed_amount", amount_cents: 1000, amount_currency: "EUR" }],
        }),
      },
      {
        name: "preview an invoice for a prospect",
        method: "POST",
        url: () => "/api/v1/invoices/preview",
        body: () => ({
          customer: {
            name: "Prospect",
            currency: "EUR",
            timezone: "Europe/Paris",
            tax_identification_number: "FR1",
            address_line1: "1 rue",
            city: "Paris",
            zipcode: "75001",
            country: "FR",
            shipping_address: { city: "Lyon", country: "FR" },
            integration_customers: [],
          },
          plan_code: c.plan,
          billing_time: "calendar",
          subscription_at: "2026-03-10T00:00:00Z",
          coupons: [{ code: "ten", coupon_type: "percentage", percentage_rate: "10", frequency: "recurring", frequency_duration: 2 }],
        }),
      },
      {
        name: "create a credit note",
        method: "POST",
        url: () => "/api/v1/credit_notes",
        body: () => ({
          credit_note: { invoice_id: c.paid, reason: "order_cancellation", description: "d", credit_amount_cents: 6, refund_amount_cents: 6, items: [{ fee_id: c.paidFee, amount_cents: 10 }] },
        }),
      },
      {
        name: "estimate a credit note",
        method: "POST",
        url: () => "/api/v1/credit_notes/estimate",
        body: () => ({ credit_note: { invoice_id: c.paid, items: [{ fee_id: c.paidFee, amount_cents: 500 }] } }),
      },
      {
        name: "update a credit note",
        method: "PUT",
        url: () => `/api/v1/credit_notes/${c.refundNote}`,
        body: () => ({ credit_note: { refund_status: "pending" } }),
      },
      {
        name: "create a wallet with an interval rule",
        method: "POST",
        url: () => "/api/v1/wallets",
        body: () => ({
          wallet: {
            external_customer_id: c.cus,
            code: uid("w"),
            name: "Prepaid",
            currency: "EUR",
            rate_amount: "1.5",
            paid_credits: "10",
            granted_credits: "5",
            priority: 5,
            expiration_at: later,
            invoice_requires_successful_payment: false,
            transaction_name: "First top-up",
            metadata: [{ key: "k", value: "v" }],
            recurring_transaction_rules: [rule()],
          },
        }),
      },
      {
        name: "create a wallet with a threshold rule",
        method: "POST",
        url: () => `/api/v1/customers/${c.cus}/wallets`,
        body: () => ({
          wallet: {
            code: uid("w"),
            currency: "EUR",
            rate_amount: "1",
            granted_credits: "50",
            recurring_transaction_rules: [{ trigger: "threshold", method: "target", threshold_credits: "20", target_ongoing_balance: "100", grants_target_top_up: true }],
          },
        }),
      },
      {
        name: "update a wallet",
        method: "PUT",
        url: () => `/api/v1/wallets/${c.wallet}`,
        body: () => ({ wallet: { name: "Renamed", priority: 3, expiration_at: later, invoice_requires_successful_payment: true, recurring_transaction_rules: [rule()] } }),
      },
      {
        name: "create wallet transactions",
        method: "POST",
        url: () => "/api/v1/wallet_transactions",
        body: () => ({
          wallet_transaction: {
            wallet_id: c.wallet,
            paid_credits: "1",
            granted_credits: "1",
            voided_credits: "1",
            invoice_requires_successful_payment: false,
            name: "Top-up",
            metadata: [{ key: "k", value: "v" }],
          },
        }),
      },
      {
        name: "record a payment",
        method: "POST",
        url: () => "/api/v1/payments",
        body: () => ({ payment: { invoice_id: c.unpaid, amount_cents: 1, reference: uid("wire"), paid_at: "2026-03-14T00:00:00Z" } }),
      },
      {
        name: "create a webhook endpoint",
        method: "POST",
        // An organization has 10 endpoints at most: each one made goes (8 requests in flight, and c.hook).
        undo: async (answer) => void (await org.api("DELETE", `/api/v1/webhook_endpoints/${answer.webhook_endpoint.lago_id}`)),
        url: () => "/api/v1/webhook_endpoints",
        body: () => ({ webhook_endpoint: { webhook_url: `http://127.0.0.1:9/${uid("hook")}`, signature_algo: "hmac", name: "prod", event_types: ["invoice.created"] } }),
      },
      {
        name: "update a webhook endpoint",
        method: "PUT",
        url: () => `/api/v1/webhook_endpoints/${c.hook}`,
        body: () => ({ webhook_endpoint: { webhook_url: `http://127.0.0.1:9/${uid("hook")}`, signature_algo: "jwt", name: "v2", event_types: ["invoice.created", "customer.created"] } }),
      },
      {
        name: "create an alert",
        method: "POST",
        url: () => `/api/v1/subscriptions/${c.sub}/alerts`,
        body: () => ({
          alert: {
            alert_type: "billable_metric_current_usage_amount",
            code: uid("alert"),
            name: "Calls spend",
            billable_metric_code: c.nextAlertMetric(),
            thresholds: [{ value: 5000, code: "hard" }, { value: "1000", code: "soft" }, { value: 2500, recurring: true }],
          },
        }),
      },
      {
        name: "update an alert",
        method: "PUT",
        url: () => `/api/v1/subscriptions/${c.sub}/alerts/${c.alert}`,
        body: () => ({ alert: { name: "Budget", thresholds: [{ value: 200.5, code: "warn" }, { value: 100, recurring: true }] } }),
      },
      {
        name: "create an organization",
        method: "POST",
        admin: true,
        url: () => "/admin/v1/organizations",
        body: () => ({ organization: { name: uid("Org") } }),
      },
      {
        name: "create an API key",
        method: "POST",
        admin: true,
        url: () => `/admin/v1/organizations/${c.adminOrg}/api_keys`,
        body: () => ({ api_key: { name: "ci" } }),
      },
    );
  }, 120_000);

  afterAll(async () => {
    await t?.close();
  });

  const failures: string[] = [];
  let requests = 0;
  const inFlight = new Set<Promise<void>>();
  async function hit(run: () => Promise<void>) {
    const p = run().finally(() => inFlight.delete(p));
    inFlight.add(p);
    if (inFlight.size >= 8) await Promise.race(inFlight);
  }
  const settled = () => Promise.all(inFlight);

  async function send(key: string, cs: Case, build: (f: Json) => Json, label: string): Promise<{ status: number; body: string }> {
    try {
      return await sendOne(key, cs, build, label);
    } catch (err) {
      failures.push(`${cs.name}: ${label} threw ${String(err).slice(0, 300)}`);
      return { status: 0, body: "" };
    }
  }
  async function sendOne(key: string, cs: Case, build: (f: Json) => Json, label: string): Promise<{ status: number; body: string }> {
    const f = cs.fresh ? await cs.fresh() : {};
    const body = build(f);
    let url = cs.url(f);
    let payload: string | undefined;
    if (cs.method === "DELETE") {
      const q = Object.entries(body).map(([k, v]) => `${k}=${queryValue(typeof v === "string" ? v : JSON.stringify(v))}`);
      url += q.length > 0 ? `?${q.join("&")}` : "";
    } else payload = JSON.stringify(body);
    requests++;
    const r = await t.app.http.inject({
      method: cs.method,
      url,
      headers: { ...bearer(cs.admin ? ADMIN_TOKEN : key), ...(payload === undefined ? {} : { "content-type": "application/json" }) },
      ...(payload === undefined ? {} : { payload }),
    });
    if (r.statusCode < 300 && cs.undo) await cs.undo(JSON.parse(r.body), f);
    statuses[Math.floor(r.statusCode / 100)] = (statuses[Math.floor(r.statusCode / 100)] ?? 0) + 1;
    if (r.statusCode >= 500) failures.push(`${cs.name}: ${cs.method} ${url.slice(0, 120)} ${label} -> ${r.statusCode} ${r.body.slice(0, 300)}`);
    return { status: r.statusCode, body: r.body };
  }

  const timings: string[] = [];
  let statuses: Record<number, number> = {};
  async function fuzz(cs: Case, key: string) {
    const t0 = Date.now();
    const n0 = requests;
    statuses = {};
    // The valid body first: a 2xx, or the mutations prove nothing.
    const valid = await send(key, cs, cs.body, "<valid body>");
    if (valid.status >= 300) failures.push(`${cs.name}: the valid body answered ${valid.status} ${valid.body.slice(0, 300)}`);
    for (const path of pathsOf(cs.body({}))) {
      for (const v of HOSTILE) await hit(async () => void (await send(key, cs, (f) => mutate(cs.body(f), path, v), `${pathText(path)}=${show(v)}`)));
    }
    await settled();
    timings.push(`${cs.name}: ${requests - n0} requests (2xx ${statuses[2] ?? 0}, 4xx ${statuses[4] ?? 0}), ${Date.now() - t0} ms`);
  }

  it("each route answers its valid body with a 2xx, and each one-field mutation below 500", async () => {
    const started = Date.now();
    for (const cs of cases) await fuzz(cs, org.key);
    // The test clock last, on an organization of its own (the mutations move its time).
    await fuzz(
      { name: "freeze the test clock", method: "PUT", url: () => "/api/v1/test_clock", body: () => ({ test_clock: { frozen_time: "2026-03-20T00:00:00Z" } }) },
      c.clockOrg.key,
    );
    await settled();
    console.log(`field fuzz on ${DB_KIND}: ${cases.length + 1} cases, ${requests} requests, ${Date.now() - started} ms, ${failures.length} failures`);
    console.log(timings.join("\n"));
    if (failures.length > 0) console.log(failures.join("\n"));
    expect(failures).toEqual([]);
  }, 600_000);

  it("names the field and the reason of what the fuzz found unstorable (NUL, unpaired surrogates)", async () => {
    const details = async (method: "POST" | "PUT", url: string, payload: unknown) => {
      const r = await org.raw(method, url, payload);
      expect(r.statusCode, r.body).toBe(422);
      expect(JSON.parse(r.body).code).toBe("validation_errors");
      return JSON.parse(r.body).error_details;
    };
    const sub = { external_customer_id: c.cus, plan_code: c.plan, external_id: uid("sub") };
    expect(await details("POST", "/api/v1/subscriptions", { subscription: { ...sub, plan_overrides: { name: "a\ud800b", usage_thresholds: [{ amount_cents: 100, threshold_display_name: "\udfff" }] } } })).toEqual({
      "plan_overrides.name": ["invalid_unicode"],
      "plan_overrides.usage_thresholds[0].threshold_display_name": ["invalid_unicode"],
    });
    expect(await details("PUT", `/api/v1/subscriptions/${c.sub}`, { subscription: { plan_overrides: { minimum_commitment: { amount_cents: 100, invoice_display_name: "a\ud800" } } } })).toEqual({
      "plan_overrides.minimum_commitment.invoice_display_name": ["invalid_unicode"],
    });
    expect(await details("POST", "/api/v1/plans", { plan: { name: "a\ud800b", code: uid("p"), interval: "monthly", amount_cents: 0, amount_currency: "EUR" } })).toEqual({
      name: ["invalid_unicode"],
    });
    expect(await details("POST", "/api/v1/events/estimate_fees", { event: { code: c.gb.code, external_subscription_id: c.advSub, properties: { gb: "\u0000" } } })).toEqual({
      properties: ["contains_nul_character"],
    });
    expect(await details("POST", "/api/v1/events/estimate_fees", { event: { code: c.gb.code, external_subscription_id: c.advSub, properties: { "\ud800": 1 } } })).toEqual({
      properties: ["invalid_unicode (unpaired surrogate)"],
    });
    expect(await details("POST", "/api/v1/invoices", { invoice: { external_customer_id: c.cus, currency: "EUR", fees: [{ add_on_code: c.addOn, description: "a\ud800b" }] } })).toEqual({
      "fees[0].description": ["invalid_unicode"],
    });
    expect(await details("POST", "/api/v1/wallet_transactions", { wallet_transaction: { wallet_id: c.wallet, granted_credits: "1", metadata: [{ key: "\ud800", value: "v" }] } })).toEqual({
      "metadata[0].key": ["invalid_unicode"],
    });
    expect(await details("POST", "/api/v1/webhook_endpoints", { webhook_endpoint: { webhook_url: "http://127.0.0.1:9/x", name: "a\u0000" } })).toEqual({ name: ["contains_nul_character"] });
    expect(await details("PUT", `/api/v1/webhook_endpoints/${c.hook}`, { webhook_endpoint: { name: "a\ud800" } })).toEqual({ name: ["invalid_unicode"] });
  });

  it("plan writes naming the same metrics at once, in any order, all succeed (PostgreSQL deadlocked them)", async () => {
    const metric = async () =>
      (await org.api("POST", "/api/v1/billable_metrics", { billable_metric: { name: "Race", code: uid("race"), aggregation_type: "count_agg" } })).billable_metric;
    const [a, b] = [await metric(), await metric()];
    const answers = await Promise.all(
      Array.from({ length: 8 }, (_, i) =>
        org.raw("POST", "/api/v1/plans", {
          plan: {
            name: "Race",
            code: uid("race"),
            interval: "monthly",
            amount_cents: 0,
            amount_currency: "EUR",
            charges: (i % 2 === 0 ? [a, b] : [b, a]).map((m) => ({ billable_metric_id: m.lago_id, charge_model: "standard", pay_in_advance: i % 3 === 0, properties: { amount: "1" } })),
          },
        }),
      ),
    );
    expect(answers.map((r) => r.statusCode)).toEqual(Array(8).fill(200));
  });

  it("the server still answers", async () => {
    expect((await t.app.http.inject({ method: "GET", url: "/health" })).statusCode).toBe(200);
    expect((await org.raw("GET", `/api/v1/subscriptions/${c.sub}`)).statusCode).toBe(200);
  });
});
