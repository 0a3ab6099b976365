import type { FastifyInstance } from "fastify";
import { AppError, validationFailed } from "../../shared/errors.ts";
import { type TaxesJson, type TaxesResolver, planJson, planTaxCodes } from "../catalog/index.ts";
import { type SubscriptionListQuery, readListQuery, readStatusParam } from "./core/index.ts";
import type { SubscriptionService, SubscriptionView } from "./service.ts";
import { paginationMeta } from "../../shared/pagination.ts";

// Lago renders times with `iso8601`: seconds, UTC, "Z"; `started_at` alone with milliseconds (`iso8601(3)`).
const iso = (d: Date | null) => (d === null ? null : d.toISOString().replace(/\.\d{3}Z$/, "Z"));
const isoMs = (d: Date | null) => (d === null ? null : d.toISOString());

/**
 * Lago's SubscriptionObject (with `plan`, the effective one, on single-subscription answers:
 * SubscriptionObjectExtended). The plan's, charges' and commitment's `taxes` are rendered from
 * `taxes` (see subscriptionWithPlanJson); without it they are empty.
 */
export function subscriptionJson(v: SubscriptionView, withPlan = false, taxes?: TaxesJson) {
  const s = v.subscription;
  const plan = s.plan;
  return {
    lago_id: s.lagoId,
    external_id: s.externalId,
    lago_customer_id: s.customerLagoId,
    external_customer_id: s.customerExternalId,
    name: s.name,
    plan_code: plan.code,
    // Plans are capped at 2^53 - 1 minor units on the way in, so the JSON number is exact.
    plan_amount_cents: Number(plan.amountCents),
    plan_amount_currency: plan.amountCurrency,
    status: s.status,
    billing_time: s.billingTime,
    subscription_at: iso(s.subscriptionAt),
    started_at: isoMs(s.startedAt),
    trial_ended_at: iso(v.trialEndedAt),
    ending_at: iso(s.endingAt),
    terminated_at: iso(s.terminatedAt),
    canceled_at: iso(s.canceledAt),
    created_at: iso(s.createdAt),
    previous_plan_code: v.previousPlanCode,
    next_plan_code: v.nextPlanCode,
    downgrade_plan_date: v.downgradePlanDate,
    current_billing_period_started_at: iso(v.currentPeriod?.from ?? null),
    current_billing_period_ending_at: iso(v.currentPeriod?.to ?? null),
    // Lago's defaults: a credit note for the unused part of an advance payment; none for plans paid in arrears.
    on_termination_credit_note: plan.payInAdvance ? "credit" : null,
    on_termination_invoice: "generate",
    progressive_billing_disabled: false,
    consolidate_invoice: true,
    payment_method: { payment_method_id: null, payment_method_type: "provider" },
    ...(withPlan ? { plan: planJson(plan, taxes) } : {}),
  };
}

/** subscriptionJson with the effective plan and its taxes resolved (`resolveTaxes` reads them in the caller's transaction when given one). */
export async function subscriptionWithPlanJson(v: SubscriptionView, resolveTaxes: TaxesResolver | undefined) {
  const codes = [...new Set(planTaxCodes(v.subscription.plan))];
  const taxes = resolveTaxes !== undefined && codes.length > 0 ? await resolveTaxes(v.subscription.orgId, codes) : undefined;
  return subscriptionJson(v, true, taxes);
}

function body(raw: unknown): unknown {
  const value = (raw as Record<string, unknown> | null)?.["subscription"];
  if (raw === null || typeof raw !== "object" || value === undefined || value === null) {
    throw new AppError("bad_request", "missing_parameter", 'the request body must be {"subscription": {...}}', { subscription: ["value_is_mandatory"] });
  }
  if (typeof value !== "object" || Array.isArray(value)) throw validationFailed({ subscription: ["value_is_invalid"] });
  return value;
}

function status<S extends "active" | "pending" | "terminated" | "canceled">(raw: unknown, allowed: readonly S[]): S | undefined {
  const read = readStatusParam(raw, allowed);
  if (!read.ok) throw validationFailed(read.errors, "invalid status");
  return read.value as S | undefined;
}

function listQuery(q: unknown): SubscriptionListQuery {
  const read = readListQuery((q ?? {}) as Record<string, unknown>);
  if (!read.ok) throw validationFailed(read.errors, "invalid query parameters");
  return read.value;
}

function page(query: SubscriptionListQuery, { items, total }: { items: SubscriptionView[]; total: number }) {
  return { subscriptions: items.map((v) => subscriptionJson(v)), meta: paginationMeta(query.page, query.perPage, total) };
}

type ByExternalId = { Params: { external_id: string }; Querystring: { status?: unknown } };

export function registerSubscriptionRoutes(app: FastifyInstance, subscriptions: SubscriptionService, resolveTaxes?: TaxesResolver): void {
  const withPlan = (v: SubscriptionView) => subscriptionWithPlanJson(v, resolveTaxes);
  app.post("/api/v1/subscriptions", async (request) => ({
    subscription: await withPlan(await subscriptions.create(request.orgId, body(request.body))),
  }));

  app.get("/api/v1/subscriptions", async (request) => {
    const query = listQuery(request.query);
    return page(query, await subscriptions.list(request.orgId, query));
  });

  // Lago's "List all customer's subscriptions": 404 customer_not_found for an unknown customer.
  app.get<{ Params: { external_id: string } }>("/api/v1/customers/:external_id/subscriptions", async (request) => {
    const query = listQuery(request.query);
    return page(query, await subscriptions.list(request.orgId, query, request.params.external_id));
  });

  app.get<ByExternalId>("/api/v1/subscriptions/:external_id", async (request) => {
    const s = status(request.query.status, ["active", "pending", "terminated", "canceled"] as const);
    return { subscription: await withPlan(await subscriptions.get(request.orgId, request.params.external_id, s)) };
  });

  app.put<ByExternalId>("/api/v1/subscriptions/:external_id", async (request) => {
    // Lago reads `status` from the query; its update body documents it at the top level too.
    const raw = request.query.status ?? (request.body as { status?: unknown } | null)?.status;
    const s = status(raw, ["active", "pending"] as const);
    return { subscription: await withPlan(await subscriptions.update(request.orgId, request.params.external_id, body(request.body), s)) };
  });

  app.delete<ByExternalId>("/api/v1/subscriptions/:external_id", async (request) => {
    const s = status(request.query.status, ["active", "pending"] as const);
    return { subscription: await withPlan(await subscriptions.terminate(request.orgId, request.params.external_id, s)) };
  });
}
