// Helpers of the taxes, coupons, credit notes and wallets suites: an organization per test (through
// the admin API) with its own test clock, requests through `inject`, a small catalog.
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

/** A count metric `calls` (0.05 per call) on a monthly plan of `amount_cents` in EUR. */
export async function plan(org: Org, p: { amount_cents: number; pay_in_advance?: boolean; tax_codes?: string[]; charge_tax_codes?: string[] }) {
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
