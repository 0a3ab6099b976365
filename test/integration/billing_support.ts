// Helpers of the billing suites (taxes, coupons, credit notes, wallets, usage, charges paid in
// advance): an organization per test (through the admin API) with its own test clock, requests
// through `inject`, small catalogs, wallets and credit notes.
import type { InjectOptions, LightMyRequestResponse } from "fastify";
import { expect } from "vitest";
import type { TestApp } from "../helpers/app.ts";
import { bearer, json, uid } from "./support.ts";

export const ADMIN_TOKEN = "admin-token-for-billing-tests-0123456789";
export const BILLING_ENV = { VALUEVERSE_ADMIN_TOKEN: ADMIN_TOKEN, VALUEVERSE_TEST_CLOCK: "on", BILLING_SCHEDULER: "off" };

export type Method = "GET" | "POST" | "PUT" | "DELETE";

export interface Org {
  key: string;
  orgId: number;
  /** Asserts a 200 and answers the JSON body. */
  api: (method: Method, url: string, payload?: unknown) => Promise<any>;
  raw: (method: Method, url: string, payload?: unknown) => Promise<LightMyRequestResponse>;
  freeze: (at: string) => Promise<void>;
}

export async function newOrg(t: TestApp, name = uid("Acme")): Promise<Org> {
  const r = await t.app.http.inject({ method: "POST", url: "/admin/v1/organizations", headers: bearer(ADMIN_TOKEN), payload: { organization: { name } } });
  expect(r.statusCode, r.body).toBe(200);
  const key = json(r).api_key as string;
  const orgId = (await t.app.orgs.authenticate(key))!;
  const raw = (method: Method, url: string, payload?: unknown) =>
    t.app.http.inject({ method, url, headers: bearer(key), ...(payload === undefined ? {} : { payload: payload as InjectOptions["payload"] }) });
  const api = async (method: Method, url: string, payload?: unknown) => {
    const res = await raw(method, url, payload);
    expect(res.statusCode, `${method} ${url}: ${res.body.slice(0, 600)}`).toBe(200);
    return json(res);
  };
  return { key, orgId, raw, api, freeze: async (at) => void (await api("PUT", "/api/v1/test_clock", { test_clock: { frozen_time: at } })) };
}

/** A count metric `calls` (0.05 per call) on a monthly plan of `amount_cents` in EUR (and its `usage_thresholds`, if any). */
export async function plan(
  org: Org,
  p: { amount_cents: number; pay_in_advance?: boolean; tax_codes?: string[]; charge_tax_codes?: string[]; usage_thresholds?: Record<string, unknown>[] },
) {
  const calls = (await org.api("POST", "/api/v1/billable_metrics", { billable_metric: { name: "API calls", code: uid("calls"), aggregation_type: "count_agg" } }))
    .billable_metric;
  const created = (
    await org.api("POST", "/api/v1/plans", {
      plan: {
        name: "Growth",
        code: uid("growth"),
        interval: "monthly",
        amount_cents: p.amount_cents,
        amount_currency: "EUR",
        pay_in_advance: p.pay_in_advance ?? false,
        ...(p.tax_codes ? { tax_codes: p.tax_codes } : {}),
        charges: [
          { billable_metric_id: calls.lago_id, charge_model: "standard", properties: { amount: "0.05" }, ...(p.charge_tax_codes ? { tax_codes: p.charge_tax_codes } : {}) },
        ],
        ...(p.usage_thresholds ? { usage_thresholds: p.usage_thresholds } : {}),
      },
    })
  ).plan;
  return { calls: calls.code as string, plan: created.code as string, planJson: created };
}

export async function customer(org: Org, extra: Record<string, unknown> = {}): Promise<string> {
  const id = uid("cus");
  await org.api("POST", "/api/v1/customers", { customer: { external_id: id, currency: "EUR", ...extra } });
  return id;
}

export async function subscribe(org: Org, customerId: string, planCode: string): Promise<string> {
  const id = uid("sub");
  await org.api("POST", "/api/v1/subscriptions", {
    subscription: { external_customer_id: customerId, plan_code: planCode, external_id: id, billing_time: "calendar" },
  });
  return id;
}

export async function sendCalls(org: Org, sub: string, code: string, count: number, at: string): Promise<void> {
  const ts = Math.floor(Date.parse(at) / 1000);
  for (let i = 0; i < count; i += 100) {
    const events = Array.from({ length: Math.min(100, count - i) }, () => ({ transaction_id: uid("tx"), external_subscription_id: sub, code, timestamp: ts }));
    await org.api("POST", "/api/v1/events/batch", { events });
  }
}

export const invoicesOf = async (org: Org, customerId: string) =>
  (await org.api("GET", `/api/v1/invoices?external_customer_id=${encodeURIComponent(customerId)}&per_page=100`)).invoices as any[];
export const invoiceOf = async (org: Org, lagoId: string) => (await org.api("GET", `/api/v1/invoices/${lagoId}`)).invoice;

/** 422 naming each of `fields`. */
export function expect422(r: LightMyRequestResponse, ...fields: string[]) {
  expect(r.statusCode, r.body).toBe(422);
  const body = json(r);
  expect(body.code).toBe("validation_errors");
  for (const f of fields) expect(Object.keys(body.error_details), r.body).toContain(f);
  return body.error_details as Record<string, string[]>;
}

export interface UsageSub {
  customer: string;
  sub: string;
}

/**
 * An organization (`newOrg`) with the usage suites' kit: metrics from their fields, a monthly plan
 * of `charges` at no fee, a customer subscribed (calendar) from `at`, events in batches, current usage.
 */
export async function newUsageOrg(t: TestApp, name = uid("Org")) {
  const org = await newOrg(t, name);
  const { api } = org;
  return {
    ...org,
    metric: async (fields: Record<string, unknown>) =>
      (await api("POST", "/api/v1/billable_metrics", { billable_metric: { name: String(fields["code"]), ...fields } })).billable_metric,
    plan: async (charges: unknown[], code = uid("plan")) =>
      (await api("POST", "/api/v1/plans", { plan: { name: "Usage", code, interval: "monthly", amount_cents: 0, amount_currency: "EUR", charges } })).plan,
    /** A customer subscribed (calendar, monthly) to `planCode` from `at`. */
    subscribe: async (planCode: string, at: string, extra: Record<string, unknown> = {}): Promise<UsageSub> => {
      const customer = uid("cus");
      await api("POST", "/api/v1/customers", { customer: { external_id: customer, currency: "EUR" } });
      const sub = uid("sub");
      await api("POST", "/api/v1/subscriptions", {
        subscription: { external_customer_id: customer, plan_code: planCode, external_id: sub, billing_time: "calendar", subscription_at: at, ...extra },
      });
      return { customer, sub };
    },
    /** Events at `at` (epoch ms), 100 to a batch. */
    send: async (sub: string, events: { code: string; at: number; properties?: Record<string, unknown> }[]) => {
      const batch = events.map((e) => ({
        transaction_id: uid("tx"),
        external_subscription_id: sub,
        code: e.code,
        timestamp: e.at / 1000,
        properties: e.properties ?? {},
      }));
      for (let i = 0; i < batch.length; i += 100) await api("POST", "/api/v1/events/batch", { events: batch.slice(i, i + 100) });
    },
    usage: async (s: UsageSub) => (await api("GET", `/api/v1/customers/${s.customer}/current_usage?external_subscription_id=${s.sub}`)).customer_usage,
  };
}

/**
 * A count metric (FX transfers) on a monthly plan of no fee in EUR whose one charge, `amount` a
 * transfer, is paid in advance, not invoiced, and its paid fees regrouped on an invoice.
 */
export async function regroupedFeesPlan(org: Org, amount: string, tax_codes?: string[]): Promise<{ transfers: string; plan: string }> {
  const transfers = (
    await org.api("POST", "/api/v1/billable_metrics", { billable_metric: { name: "FX transfers", code: uid("fx"), aggregation_type: "count_agg" } })
  ).billable_metric;
  const planCode = uid("fx");
  await org.api("POST", "/api/v1/plans", {
    plan: {
      name: "FX",
      code: planCode,
      interval: "monthly",
      amount_cents: 0,
      amount_currency: "EUR",
      charges: [
        {
          billable_metric_id: transfers.lago_id,
          charge_model: "standard",
          pay_in_advance: true,
          invoiceable: false,
          regroup_paid_fees: "invoice",
          ...(tax_codes ? { tax_codes } : {}),
          properties: { amount },
        },
      ],
    },
  });
  return { transfers: transfers.code as string, plan: planCode };
}

/** The lago_ids of the organization's fees, in the order they were made. */
export async function feeIds(t: TestApp, orgId: number): Promise<string[]> {
  return (await t.db.query<{ lago_id: string }>("SELECT lago_id::text AS lago_id FROM fees WHERE org_id = $1 ORDER BY id", [orgId])).rows.map((r) => r.lago_id);
}

/** A metric of `metric` (Seats) on a monthly plan (Seats) of no fee in EUR whose one charge, `charge`, is paid in advance. */
export async function seatsPlanOf(org: Org, metric: Record<string, unknown>, charge: Record<string, unknown>): Promise<{ metric: any; plan: any }> {
  const created = (await org.api("POST", "/api/v1/billable_metrics", { billable_metric: { name: "Seats", code: uid("seats"), ...metric } })).billable_metric;
  const plan = (
    await org.api("POST", "/api/v1/plans", {
      plan: {
        name: "Seats",
        code: uid("seats"),
        interval: "monthly",
        amount_cents: 0,
        amount_currency: "EUR",
        charges: [{ billable_metric_id: created.lago_id, pay_in_advance: true, ...charge }],
      },
    })
  ).plan;
  return { metric: created, plan };
}

/** A new organization frozen at `at`, with a webhook endpoint (HMAC, to a closed port on 127.0.0.1). */
export async function orgWithHooks(t: TestApp, at = "2026-01-01T00:00:00Z"): Promise<Org> {
  const org = await newOrg(t);
  await org.freeze(at);
  await org.api("POST", "/api/v1/webhook_endpoints", { webhook_endpoint: { webhook_url: "http://127.0.0.1:9/hook", signature_algo: "hmac" } });
  return org;
}

export const walletOf = async (org: Org, id: string) => (await org.api("GET", `/api/v1/wallets/${id}`)).wallet;
export const walletTransactionsOf = async (org: Org, walletId: string, query = "") =>
  (await org.api("GET", `/api/v1/wallets/${walletId}/wallet_transactions${query}`)).wallet_transactions as any[];
/** Marks an invoice paid (asserting a 200). */
export const markInvoicePaid = (org: Org, invoice: string) => org.api("PUT", `/api/v1/invoices/${invoice}`, { invoice: { payment_status: "succeeded" } });

/** A wallet at 2.00 EUR a credit with `paid` credits bought (and `granted` given); answers it, the purchase, its credit invoice and fee. */
export async function walletPurchase(org: Org, cus: string, paid: string, granted = "0") {
  const wallet = (await org.api("POST", "/api/v1/wallets", { wallet: { external_customer_id: cus, currency: "EUR", rate_amount: "2", paid_credits: paid, granted_credits: granted } })).wallet;
  const bought = (await walletTransactionsOf(org, wallet.lago_id)).find((x) => x.transaction_status === "purchased");
  const invoice = await invoiceOf(org, bought.lago_invoice_id);
  return { wallet, invoice, fee: invoice.fees[0].lago_id as string, purchase: bought };
}

/** POST /credit_notes for `amount` cents of one fee (order_cancellation), as sent. */
export const postCreditNote = (org: Org, invoice: string, fee: string, amount: number, split: { credit_amount_cents?: number; refund_amount_cents?: number } = {}) =>
  org.raw("POST", "/api/v1/credit_notes", { credit_note: { invoice_id: invoice, reason: "order_cancellation", items: [{ fee_id: fee, amount_cents: amount }], ...split } });

/** A wallet of `cus` in EUR at `rate_amount` a credit, with the other fields of `extra`. */
export const createWallet = async (org: Org, cus: string, rate_amount: string, extra: Record<string, unknown> = {}) =>
  (await org.api("POST", "/api/v1/wallets", { wallet: { external_customer_id: cus, currency: "EUR", rate_amount, ...extra } })).wallet;
/** The payloads of the organization's webhooks of `type`. */
export const webhookPayloadsOf = async (org: Org, type: string) => ((await org.api("GET", `/api/v1/webhooks?webhook_type=${type}`)).webhooks as any[]).map((h) => h.payload);

/**
 * €100 a month in arrears, calls at €0.05, usage thresholds at €10 and €30 (sent in that order, or
 * the other way round), then every €50.
 */
export async function thresholdPlan(org: Org, o: { stepsReversed?: boolean } = {}) {
  const steps = [
    { amount_cents: 1000, threshold_display_name: "Step 1" },
    { amount_cents: 3000, threshold_display_name: "Step 2" },
  ];
  const p = await plan(org, {
    amount_cents: 10000,
    usage_thresholds: [...(o.stepsReversed ? steps.reverse() : steps), { amount_cents: 5000, threshold_display_name: "Every €50", recurring: true }],
  });
  return { calls: p.calls, plan: p.plan, json: p.planJson };
}
