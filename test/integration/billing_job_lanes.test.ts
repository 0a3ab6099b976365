// The billing job bills several subscriptions at once on PostgreSQL (one at a time on PGlite): its
// summary still counts every invoice, each subscription gets exactly one, and the organization's
// invoice numbers stay gapless, even with two jobs racing.
import type { InjectOptions } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DB_KIND } from "../helpers/db.ts";
import { startTestApp, type TestApp } from "../helpers/app.ts";
import { bearer, json, uid } from "./support.ts";

const SUBSCRIPTIONS = 24;
let t: TestApp;

beforeAll(async () => {
  t = await startTestApp({ env: { BILLING_SCHEDULER: "off" } });
});
afterAll(async () => {
  await t?.close();
});

const api = async (method: "GET" | "POST", url: string, payload?: unknown) => {
  const r = await t.app.http.inject({ method, url, headers: bearer(t.apiKey), ...(payload === undefined ? {} : { payload: payload as InjectOptions["payload"] }) });
  expect(r.statusCode, r.body).toBe(200);
  return json(r);
};

describe(`billing job lanes on ${DB_KIND}`, () => {
  it(`${SUBSCRIPTIONS} subscriptions due at once: one invoice each, all counted, numbers 1..${SUBSCRIPTIONS} without gaps`, async () => {
    const plan = uid("plan");
    await api("POST", "/api/v1/plans", { plan: { name: "Flat", code: plan, interval: "monthly", amount_cents: 1000, amount_currency: "EUR", pay_in_advance: false, charges: [] } });
    const subs: string[] = [];
    for (let i = 0; i < SUBSCRIPTIONS; i++) {
      const customer = uid("cus");
      const sub = uid("sub");
      await api("POST", "/api/v1/customers", { customer: { external_id: customer, currency: "EUR" } });
      await api("POST", "/api/v1/subscriptions", {
        subscription: { external_customer_id: customer, plan_code: plan, external_id: sub, billing_time: "calendar", subscription_at: "2026-03-01T00:00:00Z" },
      });
      subs.push(sub);
    }
    t.clock.set(Date.UTC(2026, 3, 1, 0, 0, 5));
    const [a, b] = await Promise.all([t.app.invoicing.runBillingJob(), t.app.invoicing.runBillingJob()]);
    expect(a.failures + b.failures).toBe(0);
    expect(a.invoicesIssued + b.invoicesIssued).toBe(SUBSCRIPTIONS);

    const { rows } = await t.db.query<{ sub: string; invoices: string; numbers: string[] }>(
      `SELECT s.external_id AS sub, count(*)::text AS invoices, array_agg(i.organization_sequential_id::text) AS numbers
         FROM invoice_subscriptions b JOIN subscriptions s ON s.id = b.subscription_id JOIN invoices i ON i.id = b.invoice_id
        GROUP BY s.external_id`,
    );
    expect(rows.map((r) => r.sub).sort()).toEqual([...subs].sort());
    expect(rows.every((r) => r.invoices === "1")).toBe(true);
    const numbers = rows.map((r) => Number(r.numbers[0])).sort((x, y) => x - y);
    expect(numbers).toEqual(Array.from({ length: SUBSCRIPTIONS }, (_, i) => i + 1));
    expect((await api("GET", "/api/v1/invoices?per_page=100")).invoices.every((i: { total_amount_cents: number }) => i.total_amount_cents === 1000)).toBe(true);

    const again = await t.app.invoicing.runBillingJob();
    expect(again.invoicesIssued).toBe(0);
  });
});
