import type { FastifyInstance } from "fastify";
import { AppError, validationFailed, type FieldErrors } from "../../shared/errors.ts";
import type { BillableMetric, Charge, ChargeFilter, MinimumCommitment, Plan, UsageThreshold } from "./core/index.ts";
import type { CatalogService, MetricView, Page } from "./service.ts";
import { paginationMeta, positiveIntParam } from "../../shared/pagination.ts";

// Lago renders times with `iso8601`: seconds, UTC, "Z".
const iso = (d: Date) => d.toISOString().replace(/\.\d{3}Z$/, "Z");

// The JSON number a Lago client expects; inputs are capped at 2^53 - 1, so this is exact.
const cents = (v: bigint) => Number(v);

/** Lago answers both spellings of the grouping keys (`grouped_by` is deprecated). */
function propertiesJson(properties: Readonly<Record<string, unknown>>): Record<string, unknown> {
  const keys = properties["pricing_group_keys"];
  return Array.isArray(keys) ? { ...properties, grouped_by: keys } : { ...properties };
}

export function metricJson({ metric: m, plansCount }: MetricView) {
  return {
    lago_id: m.lagoId,
    name: m.name,
    code: m.code,
    description: m.description,
    aggregation_type: m.aggregationType,
    weighted_interval: m.weightedInterval,
    recurring: m.recurring,
    rounding_function: m.roundingFunction,
    rounding_precision: m.roundingPrecision,
    created_at: iso(m.createdAt),
    expression: null,
    field_name: m.fieldName,
    // Subscriptions and invoices do not exist yet in this module's view; their modules own these counts.
    active_subscriptions_count: 0,
    draft_invoices_count: 0,
    plans_count: plansCount,
    filters: filtersJson(m),
  };
}

const filtersJson = (m: BillableMetric) => m.filters.map((f) => ({ key: f.key, values: [...f.values] }));

const chargeFilterJson = (f: ChargeFilter) => ({
  invoice_display_name: f.invoiceDisplayName,
  properties: propertiesJson(f.properties),
  values: f.values,
});

/** Lago's ChargeFilterFullObject: a filter addressed on its own (…/charges/:charge_code/filters). */
export const chargeFilterFullJson = (c: Charge, f: ChargeFilter) => ({
  lago_id: f.lagoId ?? null,
  charge_code: c.code,
  ...chargeFilterJson(f),
});

/** A tax as its JSON, by code: what `taxes` of plans and charges show. */
export type TaxesJson = ReadonlyMap<string, unknown>;
const taxesOf = (codes: readonly string[] | undefined, taxes: TaxesJson | undefined) =>
  (codes ?? []).map((code) => taxes?.get(code)).filter((t) => t !== undefined);

export const chargeJson = (c: Charge, taxes?: TaxesJson) => ({
  lago_id: c.lagoId,
  lago_billable_metric_id: c.metric.lagoId,
  billable_metric_code: c.metric.code,
  code: c.code,
  invoice_display_name: c.invoiceDisplayName,
  created_at: iso(c.createdAt),
  charge_model: c.chargeModel,
  invoiceable: c.invoiceable,
  regroup_paid_fees: c.regroupPaidFees,
  pay_in_advance: c.payInAdvance,
  prorated: c.prorated,
  min_amount_cents: cents(c.minAmountCents),
  properties: propertiesJson(c.properties),
  filters: c.filters.map(chargeFilterJson),
  taxes: taxesOf(c.taxCodes, taxes),
  // Ours, as for customers: the codes as set.
  tax_codes: [...(c.taxCodes ?? [])],
});

export const planJson = (p: Plan, taxes?: TaxesJson) => ({
  lago_id: p.lagoId,
  name: p.name,
  invoice_display_name: p.invoiceDisplayName,
  created_at: iso(p.createdAt),
  code: p.code,
  interval: p.interval,
  description: p.description,
  amount_cents: cents(p.amountCents),
  amount_currency: p.amountCurrency,
  trial_period: p.trialPeriod,
  pay_in_advance: p.payInAdvance,
  bill_charges_monthly: p.billChargesMonthly,
  // Subscriptions and invoices own these counts; the plan itself does not know them yet.
  customers_count: 0,
  active_subscriptions_count: 0,
  draft_invoices_count: 0,
  parent_id: null,
  // Lago answers a DELETE with the plan marked pending deletion.
  pending_deletion: p.deletedAt !== null,
  charges: p.charges.map((c) => chargeJson(c, taxes)),
  taxes: taxesOf(p.taxCodes, taxes),
  tax_codes: [...(p.taxCodes ?? [])],
  minimum_commitment: p.minimumCommitment == null ? null : commitmentJson(p, p.minimumCommitment, taxes),
  usage_thresholds: (p.usageThresholds ?? []).map(usageThresholdJson),
});

/** Lago's MinimumCommitmentObject. */
export const commitmentJson = (p: Plan, c: MinimumCommitment, taxes?: TaxesJson) => ({
  lago_id: c.lagoId,
  plan_code: p.code,
  amount_cents: cents(c.amountCents),
  invoice_display_name: c.invoiceDisplayName,
  interval: p.interval,
  created_at: iso(c.createdAt),
  updated_at: iso(c.updatedAt),
  taxes: taxesOf(c.taxCodes, taxes),
  tax_codes: [...c.taxCodes],
});

/** Lago's UsageThresholdObject. */
export const usageThresholdJson = (t: UsageThreshold) => ({
  lago_id: t.lagoId,
  threshold_display_name: t.thresholdDisplayName,
  amount_cents: cents(t.amountCents),
  recurring: t.recurring,
  created_at: iso(t.createdAt),
  updated_at: iso(t.updatedAt),
});

/** Every tax code a plan and its charges name. */
export const planTaxCodes = (p: Plan): string[] => [
  ...new Set([...(p.taxCodes ?? []), ...p.charges.flatMap((c) => c.taxCodes ?? []), ...(p.minimumCommitment?.taxCodes ?? [])]),
];

function body(raw: unknown, key: string): unknown {
  const value = (raw as Record<string, unknown> | null)?.[key];
  if (raw === null || typeof raw !== "object" || value === undefined || value === null) {
    throw new AppError("bad_request", "missing_parameter", `the request body must be {"${key}": {...}}`, { [key]: ["value_is_mandatory"] });
  }
  if (typeof value !== "object" || Array.isArray(value)) throw validationFailed({ [key]: ["value_is_invalid"] });
  return value;
}

const objectBody = (raw: unknown, key: string) => body(raw, key) as Record<string, unknown>;

// Lago's default page size.
const PER_PAGE = 100;
const MAX_PER_PAGE = 1000;

function parsePage(q: Record<string, unknown>): Page {
  const errors: FieldErrors = {};
  const int = (name: string, fallback: number, max: number): number => positiveIntParam(q[name], name, fallback, max, errors);
  const page = { page: int("page", 1, 1_000_000), perPage: int("per_page", PER_PAGE, MAX_PER_PAGE) };
  if (Object.keys(errors).length > 0) throw validationFailed(errors, "invalid query parameters");
  return page;
}

const meta = (page: Page, total: number) => paginationMeta(page.page, page.perPage, total);

type ByCode = { Params: { code: string } };
type ByCharge = { Params: { code: string; charge_code: string } };
type ByFilter = { Params: { code: string; charge_code: string; filter_id: string } };

/** Renders taxes by code for an organization (the taxes module); without it plans show none. */
export type TaxesResolver = (orgId: number, codes: readonly string[]) => Promise<TaxesJson>;

export function registerCatalogRoutes(app: FastifyInstance, catalog: CatalogService, resolveTaxes?: TaxesResolver): void {
  const render = async (orgId: number, plans: readonly Plan[]) => {
    const codes = [...new Set(plans.flatMap(planTaxCodes))];
    const taxes = resolveTaxes !== undefined && codes.length > 0 ? await resolveTaxes(orgId, codes) : undefined;
    return plans.map((p) => planJson(p, taxes));
  };
  app.post("/api/v1/billable_metrics", async (request) => ({
    billable_metric: metricJson(await catalog.createMetric(request.orgId, body(request.body, "billable_metric"))),
  }));
  app.get("/api/v1/billable_metrics", async (request) => {
    const page = parsePage(request.query as Record<string, unknown>);
    const { items, total } = await catalog.listMetrics(request.orgId, page);
    return { billable_metrics: items.map(metricJson), meta: meta(page, total) };
  });
  app.get<ByCode>("/api/v1/billable_metrics/:code", async (request) => ({
    billable_metric: metricJson(await catalog.getMetric(request.orgId, request.params.code)),
  }));
  app.put<ByCode>("/api/v1/billable_metrics/:code", async (request) => ({
    billable_metric: metricJson(await catalog.updateMetric(request.orgId, request.params.code, body(request.body, "billable_metric"))),
  }));
  app.delete<ByCode>("/api/v1/billable_metrics/:code", async (request) => ({
    billable_metric: metricJson(await catalog.deleteMetric(request.orgId, request.params.code)),
  }));

  const one = async (orgId: number, plan: Plan) => ({ plan: (await render(orgId, [plan]))[0] });
  app.post("/api/v1/plans", async (request) => one(request.orgId, await catalog.createPlan(request.orgId, body(request.body, "plan"))));
  app.get("/api/v1/plans", async (request) => {
    const page = parsePage(request.query as Record<string, unknown>);
    const { items, total } = await catalog.listPlans(request.orgId, page);
    return { plans: await render(request.orgId, items), meta: meta(page, total) };
  });
  app.get<ByCode>("/api/v1/plans/:code", async (request) => one(request.orgId, await catalog.getPlan(request.orgId, request.params.code)));
  app.put<ByCode>("/api/v1/plans/:code", async (request) =>
    one(request.orgId, await catalog.updatePlan(request.orgId, request.params.code, body(request.body, "plan"))),
  );
  app.delete<ByCode>("/api/v1/plans/:code", async (request) => one(request.orgId, await catalog.deletePlan(request.orgId, request.params.code)));

  // One charge of a plan, addressed by its code; each write is a plan update (CatalogService.editPlan).
  const renderCharges = async (orgId: number, charges: readonly Charge[]) => {
    const codes = [...new Set(charges.flatMap((c) => c.taxCodes ?? []))];
    const taxes = resolveTaxes !== undefined && codes.length > 0 ? await resolveTaxes(orgId, codes) : undefined;
    return charges.map((c) => chargeJson(c, taxes));
  };
  const oneCharge = async (orgId: number, charge: Charge) => ({ charge: (await renderCharges(orgId, [charge]))[0] });
  app.post<ByCode>("/api/v1/plans/:code/charges", async (request) =>
    oneCharge(request.orgId, await catalog.createCharge(request.orgId, request.params.code, objectBody(request.body, "charge"))),
  );
  app.get<ByCode>("/api/v1/plans/:code/charges", async (request) => {
    const page = parsePage(request.query as Record<string, unknown>);
    const { items, total } = await catalog.listCharges(request.orgId, request.params.code, page);
    return { charges: await renderCharges(request.orgId, items), meta: meta(page, total) };
  });
  app.get<ByCharge>("/api/v1/plans/:code/charges/:charge_code", async (request) =>
    oneCharge(request.orgId, await catalog.getCharge(request.orgId, request.params.code, request.params.charge_code)),
  );
  app.put<ByCharge>("/api/v1/plans/:code/charges/:charge_code", async (request) =>
    oneCharge(
      request.orgId,
      await catalog.updateCharge(request.orgId, request.params.code, request.params.charge_code, objectBody(request.body, "charge")),
    ),
  );
  // Lago's body here (`charge.cascade_updates`) only concerns children plans, which we do not have.
  app.delete<ByCharge>("/api/v1/plans/:code/charges/:charge_code", async (request) =>
    oneCharge(request.orgId, await catalog.deleteCharge(request.orgId, request.params.code, request.params.charge_code)),
  );

  const oneFilter = ({ charge, filter }: { charge: Charge; filter: ChargeFilter }) => ({ filter: chargeFilterFullJson(charge, filter) });
  app.post<ByCharge>("/api/v1/plans/:code/charges/:charge_code/filters", async (request) =>
    oneFilter(
      await catalog.createChargeFilter(request.orgId, request.params.code, request.params.charge_code, objectBody(request.body, "filter")),
    ),
  );
  app.get<ByCharge>("/api/v1/plans/:code/charges/:charge_code/filters", async (request) => {
    const page = parsePage(request.query as Record<string, unknown>);
    const { charge, items, total } = await catalog.listChargeFilters(request.orgId, request.params.code, request.params.charge_code, page);
    return { filters: items.map((f) => chargeFilterFullJson(charge, f)), meta: meta(page, total) };
  });
  app.get<ByFilter>("/api/v1/plans/:code/charges/:charge_code/filters/:filter_id", async (request) =>
    oneFilter(await catalog.getChargeFilter(request.orgId, request.params.code, request.params.charge_code, request.params.filter_id)),
  );
  app.put<ByFilter>("/api/v1/plans/:code/charges/:charge_code/filters/:filter_id", async (request) =>
    oneFilter(
      await catalog.updateChargeFilter(
        request.orgId,
        request.params.code,
        request.params.charge_code,
        request.params.filter_id,
        objectBody(request.body, "filter"),
      ),
    ),
  );
  app.delete<ByFilter>("/api/v1/plans/:code/charges/:charge_code/filters/:filter_id", async (request) =>
    oneFilter(await catalog.deleteChargeFilter(request.orgId, request.params.code, request.params.charge_code, request.params.filter_id)),
  );
}
