// Helpers for driving the server with lago-javascript-client.
import type { HttpResponse } from "lago-javascript-client";
import { at, type LagoClient } from "./scenario.ts";

/** The error a Lago client call rejects with: the HTTP response, with the parsed body in `error`. */
export async function lagoError<E = unknown>(promise: Promise<unknown>): Promise<{ status: number; body: E }> {
  try {
    await promise;
  } catch (err) {
    const r = err as HttpResponse<unknown, E>;
    if (typeof r?.status !== "number") throw err;
    return { status: r.status, body: r.error };
  }
  throw new Error("expected the Lago client call to fail");
}

/**
 * The usage scenarios' customer: a count metric `code` (Calls), the plan `starter-<run>` (monthly in
 * arrears, €50.00, calls at €0.10), the customer `cus` and its calendar subscription `sub`.
 */
export async function subscribeStarter(lago: LagoClient, p: { run: string; code: string; cus: string; sub: string }): Promise<void> {
  const metric = await lago.billableMetrics.createBillableMetric({ billable_metric: { name: "Calls", code: p.code, aggregation_type: "count_agg" } });
  await lago.plans.createPlan({
    plan: {
      name: "Starter",
      code: `starter-${p.run}`,
      interval: "monthly",
      amount_cents: 5000,
      amount_currency: "EUR",
      pay_in_advance: false,
      charges: [{ billable_metric_id: metric.data.billable_metric.lago_id, charge_model: "standard", properties: { amount: "0.10" } }],
    },
  } as never);
  await subscribeCustomer(lago, { customerId: p.cus, name: p.cus, planCode: `starter-${p.run}`, subscriptionId: p.sub });
}

/** A customer `customerId` (EUR) and its calendar subscription `subscriptionId` to `planCode`. */
export async function subscribeCustomer(lago: LagoClient, c: { customerId: string; name: string; planCode: string; subscriptionId: string }): Promise<void> {
  await lago.customers.createCustomer({ customer: { external_id: c.customerId, name: c.name, currency: "EUR" } } as never);
  await lago.subscriptions.createSubscription({
    subscription: { external_customer_id: c.customerId, plan_code: c.planCode, external_id: c.subscriptionId, billing_time: "calendar" },
  });
}

/** `count` events of `code` for `sub`, a second apart from `iso`, transaction ids `tx-<run>-<i>`. */
export const secondlyEvents = (p: { run: string; code: string; sub: string }, count: number, iso: string) =>
  Array.from({ length: count }, (_, i) => ({ transaction_id: `tx-${p.run}-${i}`, external_subscription_id: p.sub, code: p.code, timestamp: at(iso) + i }));
