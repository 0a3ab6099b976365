import crypto from "node:crypto";
import type { Db, Queryable } from "../../db/db.ts";
import { isDataError, sqlState } from "../../db/db.ts";
import type { Clock } from "../../shared/clock.ts";
import { isLookupCode } from "../../shared/codes.ts";
import { AppError, type FieldErrors, notFound, validationFailed } from "../../shared/errors.ts";
import { Cache } from "../cache/index.ts";
import { CatalogCache } from "./cache.ts";
import {
  type BillableMetric,
  type Charge,
  type ChargeDraft,
  type ChargeFilter,
  type Checked,
  type PlanEdit,
  addCharge,
  addFilter,
  changeCharge,
  changeFilter,
  chargeIndex,
  removeCharge,
  removeFilter,
  renameErrors,
  type MetricLookup,
  type Plan,
  type PlanDraft,
  checkMetricCreate,
  checkMetricUpdate,
  checkPlanCreate,
  checkPlanUpdate,
  draftOf,
  metricRefs,
  narrowFilterValues,
  withChargeCodes,
} from "./core/index.ts";
import * as store from "./store.ts";

export interface MetricView {
  readonly metric: BillableMetric;
  /** Live plans with a charge on the metric. */
  readonly plansCount: number;
}

export interface Page {
  /** From 1. */
  readonly page: number;
  readonly perPage: number;
}

export interface Paged<T> {
  readonly items: T[];
  readonly total: number;
}

/** A metric as it was and as it is after a write in the catalog: created (before null), changed, deleted (after null). */
export interface MetricChange {
  readonly before: BillableMetric | null;
  readonly after: BillableMetric | null;
}

/** Runs inside the transaction that writes the metric, after the write (metering rebuilds its rollups there). */
export type MetricChangeListener = (tx: Queryable, change: MetricChange) => Promise<void>;

/**
 * Runs after a plan write committed, with the metrics whose charges it may have changed (metering
 * keeps their rollups by the charges' pricing group keys, in a transaction of its own).
 */
export type ChargesChangeListener = (orgId: number, metricIds: readonly number[]) => Promise<void>;

/** Refuses (422, naming each field) tax codes the organization has no tax for; field name → codes. */
export type TaxCodeCheck = (tx: Queryable, orgId: number, fields: ReadonlyMap<string, readonly string[]>) => Promise<void>;

/** The fields of a plan draft that name taxes. */
function taxCodeFields(draft: PlanDraft): Map<string, readonly string[]> {
  const fields = new Map<string, readonly string[]>();
  if (draft.taxCodes.length > 0) fields.set("tax_codes", draft.taxCodes);
  const commitmentTaxes = draft.minimumCommitment?.taxCodes ?? [];
  if (commitmentTaxes.length > 0) fields.set("minimum_commitment.tax_codes", commitmentTaxes);
  draft.charges?.forEach((c, i) => {
    if (c.taxCodes.length > 0) fields.set(`charges[${i}].tax_codes`, c.taxCodes);
  });
  return fields;
}

export interface CatalogOptions {
  /** The shared two-tier cache (app.ts); by default an in-process one for this service alone. */
  cache?: Cache;
  newId?: () => string;
}

const TAKEN = "value_already_exist";
const codeOf = (raw: unknown): string | undefined => {
  const code = (raw as { code?: unknown } | null)?.code;
  return typeof code === "string" && code !== "" ? code : undefined;
};

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Index of the plan's charge with this code; a 404 when it has none. */
function chargeAt(plan: Plan, chargeCode: string): number {
  const index = chargeIndex(plan, chargeCode);
  if (index < 0) throw notFound("charge", chargeCode);
  return index;
}

/** Index of the charge's filter with this Lago id; a 404 when it has none. */
function filterAt(charge: Charge, filterId: string): number {
  const id = UUID.test(filterId) ? filterId.toLowerCase() : null;
  const index = id === null ? -1 : charge.filters.findIndex((f) => f.lagoId === id);
  if (index < 0) throw notFound("charge_filter", filterId);
  return index;
}

const sameList = (a: readonly string[], b: readonly string[]) => a.length === b.length && a.every((x, i) => x === b[i]);

/** Whether saving `draft` over the stored charge would change nothing but its `updated_at` (filters aside). */
function unchanged(stored: Charge | undefined, draft: ChargeDraft): boolean {
  return (
    stored !== undefined &&
    stored.metric.id === draft.metric.id &&
    stored.code === draft.code &&
    stored.invoiceDisplayName === draft.invoiceDisplayName &&
    stored.chargeModel === draft.chargeModel &&
    stored.payInAdvance === draft.payInAdvance &&
    stored.invoiceable === draft.invoiceable &&
    stored.regroupPaidFees === draft.regroupPaidFees &&
    stored.prorated === draft.prorated &&
    stored.minAmountCents === draft.minAmountCents &&
    sameList(stored.taxCodes ?? [], draft.taxCodes) &&
    JSON.stringify(stored.properties) === JSON.stringify(draft.properties)
  );
}

/** Every charge of the draft with a code (a charge sent without one gets one derived from its metric). */
const coded = (draft: PlanDraft): PlanDraft => (draft.charges === null ? draft : { ...draft, charges: withChargeCodes(draft.charges) });

function fail(errors: FieldErrors, message: string): never {
  throw validationFailed(errors, message);
}

/** Errors of `checked` plus a taken code, all in one 422. */
function collect<T>(checked: Checked<T>, codeTaken: boolean, message: string): T {
  const errors: FieldErrors = checked.ok ? {} : { ...checked.errors };
  if (codeTaken) errors["code"] = [...(errors["code"] ?? []), TAKEN];
  if (!checked.ok || codeTaken) fail(errors, message);
  return checked.value;
}

/**
 * A unique index refusing a code another request took meanwhile is the same 422 as the pre-check;
 * any other data error the database raises on input the rules let through is a 422 too, never a 500.
 */
async function guarded<T>(work: () => Promise<T>, entity: string, message: string): Promise<T> {
  try {
    return await work();
  } catch (err) {
    if (sqlState(err) === "23505") fail({ code: [TAKEN] }, message);
    if (isDataError(err)) fail({ [entity]: ["value_is_invalid"] }, message);
    throw err;
  }
}

// Codes are at most 255 characters without U+0000 (which PostgreSQL text cannot hold): anything
// else names nothing, and is answered without a query.

const NO_METRICS: readonly BillableMetric[] = Object.freeze([]);

function lookupOf(metrics: readonly BillableMetric[]): MetricLookup {
  const byLagoId = new Map(metrics.map((m) => [m.lagoId.toLowerCase(), m]));
  const byCode = new Map(metrics.map((m) => [m.code, m]));
  return { byLagoId: (id) => byLagoId.get(id), byCode: (code) => byCode.get(code) };
}

/**
 * The catalog: billable metrics and plans (charges, filters, prices). Writes run in one transaction
 * each (load -> core rules -> save); hot-path reads (`getMetricByCode`, `getMetricsForCode`,
 * `getPlanByCode`, `getPlanById`) are served from an in-process cache invalidated by every write.
 */
export class CatalogService {
  private readonly cache: CatalogCache;
  private readonly newId: () => string;
  /** One list per cached metric object, so the per-event lookup allocates nothing. */
  private readonly metricLists = new WeakMap<BillableMetric, readonly BillableMetric[]>();
  private readonly metricListeners: MetricChangeListener[] = [];
  private readonly chargesListeners: ChargesChangeListener[] = [];
  private taxCodeCheck: TaxCodeCheck | null = null;

  constructor(
    private readonly db: Db,
    private readonly clock: Clock,
    options: CatalogOptions = {},
  ) {
    this.cache = new CatalogCache(options.cache ?? new Cache());
    this.newId = options.newId ?? (() => crypto.randomUUID());
  }

  private now(orgId: number): Date {
    return new Date(this.clock.now(orgId));
  }

  /** Work another module does in the same transaction as every metric create, update and delete. */
  onMetricChange(listener: MetricChangeListener): void {
    this.metricListeners.push(listener);
  }

  /** Work another module does after every plan create and update committed. */
  onChargesChange(listener: ChargesChangeListener): void {
    this.chargesListeners.push(listener);
  }

  private async chargesChanged(orgId: number, ...plans: Plan[]): Promise<void> {
    const metricIds = [...new Set(plans.flatMap((p) => p.charges.map((c) => c.metric.id)))];
    for (const listener of this.chargesListeners) await listener(orgId, metricIds);
  }

  /** How plan and charge `tax_codes` are checked (the taxes module's rule). */
  checkTaxCodesWith(check: TaxCodeCheck): void {
    this.taxCodeCheck = check;
  }

  private async metricChanged(tx: Queryable, change: MetricChange): Promise<void> {
    for (const listener of this.metricListeners) await listener(tx, change);
  }

  // ---------------------------------------------------------------------------------------------
  // Hot paths (cached)

  /** The organization's live metric with this code, or null. */
  getMetricByCode(orgId: number, code: string): Promise<BillableMetric | null> {
    if (!isLookupCode(code)) return Promise.resolve(null);
    return this.cache.metric(orgId, code, () => store.metricByCode(this.db, orgId, code));
  }

  /**
   * The metrics an event with this `code` feeds. Codes are unique per organization, so this is at
   * most one metric today; a list keeps callers unchanged if derived metrics arrive.
   */
  async getMetricsForCode(orgId: number, code: string): Promise<readonly BillableMetric[]> {
    const metric = await this.getMetricByCode(orgId, code);
    if (metric === null) return NO_METRICS;
    let list = this.metricLists.get(metric);
    if (list === undefined) this.metricLists.set(metric, (list = Object.freeze([metric])));
    return list;
  }

  /** The organization's live plan with this code (charges, metrics, filters, parsed prices), or null. */
  getPlanByCode(orgId: number, code: string): Promise<Plan | null> {
    if (!isLookupCode(code)) return Promise.resolve(null);
    return this.cache.planByCode(orgId, code, async () => {
      const row = await store.planRowByCode(this.db, orgId, code);
      return row === null ? null : ((await store.loadPlans(this.db, orgId, [row]))[0] ?? null);
    });
  }

  /**
   * A plan by internal id, deleted ones included (`deletedAt` set): subscriptions keep theirs. A
   * miss is read through `q` (inside a transaction, pass it: the embedded database has one connection).
   */
  getPlanById(orgId: number, id: number, q: Queryable = this.db): Promise<Plan | null> {
    if (!Number.isSafeInteger(id) || id < 1) return Promise.resolve(null);
    return this.cache.planById(orgId, id, async () => {
      const row = await store.planRowById(q, orgId, id);
      return row === null ? null : ((await store.loadPlans(q, orgId, [row]))[0] ?? null);
    });
  }

  // ---------------------------------------------------------------------------------------------
  // Billable metrics

  async createMetric(orgId: number, input: unknown): Promise<MetricView> {
    const message = "the billable metric is invalid";
    const checked = checkMetricCreate(input);
    const code = codeOf(input);
    const metric = await guarded(
      () =>
        this.db.transaction(async (tx) => {
          const taken = code !== undefined && (await store.metricCodeTaken(tx, orgId, code));
          const draft = collect(checked, taken, message);
          const metric = await store.insertMetric(tx, orgId, this.newId(), draft, this.now(orgId));
          await this.metricChanged(tx, { before: null, after: metric });
          return metric;
        }),
      "billable_metric",
      message,
    );
    // A new metric is in no plan yet: only its code's cached absence goes.
    await this.cache.invalidateMetric(orgId, [metric.code], []);
    return { metric, plansCount: 0 };
  }

  async getMetric(orgId: number, code: string): Promise<MetricView> {
    const metric = isLookupCode(code) ? await store.metricByCode(this.db, orgId, code) : null;
    if (metric === null) throw notFound("billable_metric", code);
    return (await this.views(this.db, orgId, [metric]))[0]!;
  }

  async listMetrics(orgId: number, page: Page): Promise<Paged<MetricView>> {
    const { metrics, total } = await store.listMetrics(this.db, orgId, page.perPage, (page.page - 1) * page.perPage);
    return { items: await this.views(this.db, orgId, metrics), total };
  }

  async updateMetric(orgId: number, code: string, input: unknown): Promise<MetricView> {
    const message = "the billable metric is invalid";
    const result = await guarded(
      () =>
        this.db.transaction(async (tx) => {
          if (!isLookupCode(code)) throw notFound("billable_metric", code);
          const current = await store.metricByCode(tx, orgId, code, "update");
          if (current === null) throw notFound("billable_metric", code);
          const plansCount = (await store.plansCountByMetric(tx, orgId, [current.id])).get(current.id) ?? 0;
          const checked = checkMetricUpdate(input, draftOf(current), plansCount > 0);
          const newCode = checked.ok ? checked.value.code : code;
          const taken = newCode !== current.code && (await store.metricCodeTaken(tx, orgId, newCode));
          const draft = collect(checked, taken, message);
          const now = this.now(orgId);
          const metric = await store.updateMetric(tx, orgId, current.id, draft, now);
          if (JSON.stringify(metric.filters) !== JSON.stringify(current.filters)) await this.narrowChargeFilters(tx, metric, now);
          await this.metricChanged(tx, { before: current, after: metric });
          return { metric, plansCount, oldCode: current.code, plans: await store.plansWithMetric(tx, orgId, current.id) };
        }),
      "billable_metric",
      message,
    );
    await this.cache.invalidateMetric(orgId, [result.oldCode, result.metric.code], result.plans);
    return { metric: result.metric, plansCount: result.plansCount };
  }

  /** Charge filters on the metric lose the values its filters no longer offer (Lago's cascade). */
  private async narrowChargeFilters(tx: Queryable, metric: BillableMetric, now: Date): Promise<void> {
    for (const filter of await store.chargeFiltersOfMetric(tx, metric.orgId, metric.id)) {
      const narrowed = narrowFilterValues(filter.values, metric);
      if (JSON.stringify(narrowed) !== JSON.stringify(filter.values)) {
        await store.setChargeFilterValues(tx, metric.orgId, filter.id, narrowed, now);
      }
    }
  }

  /**
   * Lago deletes a metric even when plans use it: the metric and every charge priced on it are
   * removed (BillableMetrics::DestroyService), so those plans stop billing it.
   */
  async deleteMetric(orgId: number, code: string): Promise<MetricView> {
    const view = await this.db.transaction(async (tx) => {
      const metric = isLookupCode(code) ? await store.metricByCode(tx, orgId, code, "update") : null;
      if (metric === null) throw notFound("billable_metric", code);
      const [view] = await this.views(tx, orgId, [metric]);
      // Before the delete: it removes the charges that name these plans.
      const plans = await store.plansWithMetric(tx, orgId, metric.id);
      await store.deleteMetric(tx, orgId, metric.id, this.now(orgId));
      await this.metricChanged(tx, { before: metric, after: null });
      return { view: view!, plans };
    });
    await this.cache.invalidateMetric(orgId, [code], view.plans);
    return view.view;
  }

  private async views(q: Queryable, orgId: number, metrics: readonly BillableMetric[]): Promise<MetricView[]> {
    const counts = await store.plansCountByMetric(q, orgId, metrics.map((m) => m.id));
    return metrics.map((metric) => ({ metric, plansCount: counts.get(metric.id) ?? 0 }));
  }

  // ---------------------------------------------------------------------------------------------
  // Plans

  /** Plans another module changed (a tax code renamed on them): their cached copies go. */
  async plansChanged(orgId: number, plans: readonly { id: number; code: string }[]): Promise<void> {
    for (const p of plans) await this.cache.invalidatePlan(orgId, [p.code], p.id);
  }

  async createPlan(orgId: number, input: unknown): Promise<Plan> {
    const message = "the plan is invalid";
    const code = codeOf(input);
    const plan = await guarded(
      () =>
        this.db.transaction(async (tx) => {
          const metrics = await this.referencedMetrics(tx, orgId, input);
          const checked = checkPlanCreate(input, metrics);
          const taken = code !== undefined && (await store.planCodeTaken(tx, orgId, code));
          const draft = coded(collect(checked, taken, message));
          await this.taxCodeCheck?.(tx, orgId, taxCodeFields(draft));
          const id = await store.insertPlan(tx, orgId, this.newId(), draft, this.now(orgId), this.newId);
          await this.saveCharges(tx, orgId, id, draft);
          return this.loadPlan(tx, orgId, id);
        }),
      "plan",
      message,
    );
    await this.cache.invalidatePlan(orgId, [plan.code], plan.id);
    await this.chargesChanged(orgId, plan);
    return plan;
  }

  /** The API's read: from the database, so it is exact even while another process just wrote. */
  async getPlan(orgId: number, code: string): Promise<Plan> {
    const row = isLookupCode(code) ? await store.planRowByCode(this.db, orgId, code) : null;
    if (row === null) throw notFound("plan", code);
    return (await store.loadPlans(this.db, orgId, [row]))[0]!;
  }

  async listPlans(orgId: number, page: Page): Promise<Paged<Plan>> {
    const { rows, total } = await store.listPlanRows(this.db, orgId, page.perPage, (page.page - 1) * page.perPage);
    return { items: await store.loadPlans(this.db, orgId, rows), total };
  }

  async updatePlan(orgId: number, code: string, input: unknown): Promise<Plan> {
    return (await this.writePlan(orgId, code, input, "the plan is invalid", (current, metrics) => checkPlanUpdate(input, current, metrics))).plan;
  }

  // ---------------------------------------------------------------------------------------------
  // One charge, one charge filter (Lago's /plans/:code/charges…). Each write is a plan update:
  // read the locked plan, change the one charge or filter, and write the plan through `writePlan`,
  // so validation, codes, taxes, cache invalidation and metering's group keys are those of PUT /plans.

  async listCharges(orgId: number, planCode: string, page: Page): Promise<Paged<Charge>> {
    const { charges } = await this.getPlan(orgId, planCode);
    const start = (page.page - 1) * page.perPage;
    return { items: charges.slice(start, start + page.perPage), total: charges.length };
  }

  async getCharge(orgId: number, planCode: string, chargeCode: string): Promise<Charge> {
    const plan = await this.getPlan(orgId, planCode);
    return plan.charges[chargeAt(plan, chargeCode)]!;
  }

  async createCharge(orgId: number, planCode: string, input: Record<string, unknown>): Promise<Charge> {
    const { plan, before } = await this.editPlan(orgId, planCode, input, "the charge is invalid", (current) => ({ edit: addCharge(current, input) }));
    return plan.charges.find((c) => !before.charges.some((b) => b.id === c.id))!;
  }

  async updateCharge(orgId: number, planCode: string, chargeCode: string, input: Record<string, unknown>): Promise<Charge> {
    let lagoId = "";
    const { plan } = await this.editPlan(orgId, planCode, input, "the charge is invalid", (current) => {
      const index = chargeAt(current, chargeCode);
      lagoId = current.charges[index]!.lagoId;
      return { edit: changeCharge(current, index, input) };
    });
    return plan.charges.find((c) => c.lagoId === lagoId)!;
  }

  /**
   * Lago's documented behaviour when a plan loses a charge: it is gone from every subscription on
   * the plan at once (current usage, the next invoices); fees already issued keep pointing at it.
   */
  async deleteCharge(orgId: number, planCode: string, chargeCode: string): Promise<Charge> {
    let removed: Charge | null = null;
    await this.editPlan(orgId, planCode, {}, "the charge is invalid", (current) => {
      const index = chargeAt(current, chargeCode);
      removed = current.charges[index]!;
      return { edit: removeCharge(current, index), renameIndex: null };
    });
    return removed!;
  }

  async listChargeFilters(orgId: number, planCode: string, chargeCode: string, page: Page): Promise<Paged<ChargeFilter> & { charge: Charge }> {
    const charge = await this.getCharge(orgId, planCode, chargeCode);
    const start = (page.page - 1) * page.perPage;
    return { charge, items: charge.filters.slice(start, start + page.perPage), total: charge.filters.length };
  }

  async getChargeFilter(orgId: number, planCode: string, chargeCode: string, filterId: string): Promise<{ charge: Charge; filter: ChargeFilter }> {
    const charge = await this.getCharge(orgId, planCode, chargeCode);
    return { charge, filter: charge.filters[filterAt(charge, filterId)]! };
  }

  async createChargeFilter(orgId: number, planCode: string, chargeCode: string, input: Record<string, unknown>): Promise<{ charge: Charge; filter: ChargeFilter }> {
    let chargeId = 0;
    const { plan, before } = await this.editPlan(orgId, planCode, {}, "the charge filter is invalid", (current) => {
      const index = chargeAt(current, chargeCode);
      const charge = current.charges[index]!;
      chargeId = charge.id;
      return { edit: addFilter(current, index, input), filterIndex: charge.filters.length, filterIds: charge.filters.map((f) => f.id) };
    });
    const charge = plan.charges.find((c) => c.id === chargeId)!;
    const old = new Set(before.charges.find((c) => c.id === chargeId)!.filters.map((f) => f.id));
    return { charge, filter: charge.filters.find((f) => !old.has(f.id))! };
  }

  async updateChargeFilter(
    orgId: number, planCode: string, chargeCode: string, filterId: string, input: Record<string, unknown>,
  ): Promise<{ charge: Charge; filter: ChargeFilter }> {
    let chargeId = 0;
    let id = 0;
    const { plan } = await this.editPlan(orgId, planCode, {}, "the charge filter is invalid", (current) => {
      const index = chargeAt(current, chargeCode);
      const charge = current.charges[index]!;
      const filterIndex = filterAt(charge, filterId);
      chargeId = charge.id;
      id = charge.filters[filterIndex]!.id;
      return { edit: changeFilter(current, index, filterIndex, input), filterIndex, filterIds: charge.filters.map((f) => f.id) };
    });
    const charge = plan.charges.find((c) => c.id === chargeId)!;
    return { charge, filter: charge.filters.find((f) => f.id === id)! };
  }

  async deleteChargeFilter(orgId: number, planCode: string, chargeCode: string, filterId: string): Promise<{ charge: Charge; filter: ChargeFilter }> {
    let removed: { charge: Charge; filter: ChargeFilter } | null = null;
    await this.editPlan(orgId, planCode, {}, "the charge filter is invalid", (current) => {
      const index = chargeAt(current, chargeCode);
      const charge = current.charges[index]!;
      const filterIndex = filterAt(charge, filterId);
      removed = { charge, filter: charge.filters[filterIndex]! };
      return { edit: removeFilter(current, index, filterIndex), filterIds: charge.filters.filter((_, j) => j !== filterIndex).map((f) => f.id) };
    });
    return removed!;
  }

  /**
   * A plan update said as one charge's change (`edit`). `input` names the metrics to lock; errors are
   * named as the route sees them (`renameErrors`); `filterIds` are the stored filters the edited
   * charge's filter entries rewrite, in order (entries past them are new filters).
   */
  private async editPlan(
    orgId: number,
    planCode: string,
    input: Record<string, unknown>,
    message: string,
    edit: (current: Plan) => { edit: PlanEdit; renameIndex?: null; filterIndex?: number; filterIds?: readonly number[] },
  ): Promise<{ plan: Plan; before: Plan }> {
    const naming: { rename?: (details: FieldErrors) => FieldErrors } = {};
    try {
      return await this.writePlan(orgId, planCode, { charges: [input] }, message, (current, metrics) => {
        const e = edit(current);
        const index = e.edit.index;
        if (e.renameIndex !== null) naming.rename = (details) => renameErrors(details, index, e.filterIndex ?? null);
        const checked = checkPlanUpdate(e.edit.body, current, metrics);
        if (!checked.ok || e.filterIds === undefined) return checked;
        const ids = e.filterIds;
        const charges = checked.value.charges!.map((c, i) =>
          i !== index || c.filters === null ? c : { ...c, filters: c.filters.map((f, j) => ({ ...f, existingId: ids[j] ?? null })) },
        );
        return { ok: true, value: { ...checked.value, charges } };
      });
    } catch (err) {
      if (naming.rename !== undefined && err instanceof AppError && err.category === "validation" && err.details !== undefined) {
        throw validationFailed(naming.rename(err.details as FieldErrors), err.message);
      }
      throw err;
    }
  }

  /**
   * Every plan update: the whole-plan PUT and the charge and charge filter routes. Locks the live
   * plan, reads `body` against it (`read`, with the metrics `body` names), checks codes and taxes,
   * saves, and after the commit invalidates the cached plan and tells metering which metrics' charges
   * may have changed. Returns the plan as it was and as it is.
   */
  private async writePlan(
    orgId: number,
    code: string,
    /** The body whose metric references are read and locked. */
    body: unknown,
    message: string,
    read: (current: Plan, metrics: MetricLookup) => Checked<PlanDraft>,
  ): Promise<{ plan: Plan; before: Plan }> {
    const result = await guarded(
      () =>
        this.db.transaction(async (tx) => {
          const row = isLookupCode(code) ? await store.planRowByCode(tx, orgId, code, "update") : null;
          if (row === null) throw notFound("plan", code);
          const current = (await store.loadPlans(tx, orgId, [row]))[0]!;
          const metrics = await this.referencedMetrics(tx, orgId, body);
          const checked = read(current, metrics);
          const newCode = checked.ok ? checked.value.code : code;
          const taken = newCode !== current.code && (await store.planCodeTaken(tx, orgId, newCode));
          const draft = coded(collect(checked, taken, message));
          await this.taxCodeCheck?.(tx, orgId, taxCodeFields(draft));
          await store.updatePlanRow(tx, orgId, current.id, draft, this.now(orgId), this.newId);
          if (draft.charges !== null) await this.saveCharges(tx, orgId, current.id, draft, current);
          return { plan: await this.loadPlan(tx, orgId, current.id), before: current };
        }),
      "plan",
      message,
    );
    await this.cache.invalidatePlan(orgId, [result.before.code, result.plan.code], result.plan.id);
    await this.chargesChanged(orgId, result.before, result.plan);
    return result;
  }

  /** Soft-deletes the plan; its charges stay attached so billing history still reads them. */
  async deletePlan(orgId: number, code: string): Promise<Plan> {
    const plan = await this.db.transaction(async (tx) => {
      const row = isLookupCode(code) ? await store.planRowByCode(tx, orgId, code, "update") : null;
      if (row === null) throw notFound("plan", code);
      const plan = (await store.loadPlans(tx, orgId, [row]))[0]!;
      const now = this.now(orgId);
      await store.deletePlanRow(tx, orgId, plan.id, now);
      return { ...plan, deletedAt: now };
    });
    await this.cache.invalidatePlan(orgId, [plan.code], plan.id);
    return plan;
  }

  /**
   * The metrics a plan body names, locked (in id order) until the plan is saved: against deletion,
   * and for the charges trigger, which writes each charge's metric row (see store.Lock).
   */
  private async referencedMetrics(tx: Queryable, orgId: number, input: unknown): Promise<MetricLookup> {
    const { lagoIds, codes } = metricRefs(input);
    return lookupOf(await store.metricsByRefs(tx, orgId, lagoIds, codes, "no key update"));
  }

  /** `current`: the plan as it was (an update); its charges the draft leaves exactly as they are are not rewritten. */
  private async saveCharges(tx: Queryable, orgId: number, planId: number, draft: PlanDraft, current: Plan | null = null): Promise<void> {
    if (draft.charges === null) return;
    const now = this.now(orgId);
    const stored = new Map((current?.charges ?? []).map((c) => [c.id, c]));
    const positions = current === null ? new Map<number, number>() : await store.chargePositions(tx, orgId, planId);
    // Charges left out go first and kept ones changing code drop it, so no code is held twice on the way.
    const kept = draft.charges.flatMap((c) => (c.existingId === null ? [] : [{ id: c.existingId, code: c.code }]));
    await store.deleteChargesExcept(tx, orgId, planId, kept.map((c) => c.id), now);
    await store.clearChangingChargeCodes(tx, orgId, kept);
    for (const [position, charge] of draft.charges.entries()) {
      let chargeId = charge.existingId;
      if (chargeId === null) chargeId = await store.insertCharge(tx, orgId, planId, this.newId(), position, charge, now);
      else if (positions.get(chargeId) !== position || !unchanged(stored.get(chargeId), charge)) {
        await store.updateCharge(tx, orgId, chargeId, position, charge, now);
      }
      if (charge.filters !== null) await store.replaceChargeFilters(tx, orgId, chargeId, charge.filters, now, this.newId);
    }
  }

  private async loadPlan(q: Queryable, orgId: number, id: number): Promise<Plan> {
    const row = await store.planRowById(q, orgId, id);
    return (await store.loadPlans(q, orgId, [row!]))[0]!;
  }
}
