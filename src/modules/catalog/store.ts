// SQL for the catalog. Every statement is scoped by org_id; rows are soft-deleted.
import type { Queryable } from "../../db/db.ts";
import { parsePrice, type Price } from "../pricing/index.ts";
import type {
  AggregationType,
  BillableMetric,
  Charge,
  ChargeDraft,
  ChargeFilter,
  FilterDraft,
  FilterValues,
  MetricDraft,
  MetricFilter,
  MinimumCommitment,
  Plan,
  PlanDraft,
  PlanInterval,
  RoundingFunction,
  UsageThreshold,
} from "./core/index.ts";
import { canonicalFilterValues, planExtrasOf } from "./core/index.ts";

interface MetricRow {
  id: string;
  org_id: number;
  lago_id: string;
  code: string;
  name: string;
  description: string | null;
  aggregation_type: AggregationType;
  field_name: string | null;
  weighted_interval: "seconds" | null;
  recurring: boolean;
  rounding_function: RoundingFunction | null;
  rounding_precision: number | null;
  filters: MetricFilter[];
  created_at: Date;
}

const toMetric = (r: MetricRow): BillableMetric => ({
  id: Number(r.id),
  orgId: Number(r.org_id),
  lagoId: r.lago_id,
  code: r.code,
  name: r.name,
  description: r.description,
  aggregationType: r.aggregation_type,
  fieldName: r.field_name,
  weightedInterval: r.weighted_interval,
  recurring: r.recurring,
  roundingFunction: r.rounding_function,
  roundingPrecision: r.rounding_precision === null ? null : Number(r.rounding_precision),
  filters: r.filters,
  createdAt: new Date(r.created_at),
});

// `no key update`: what a plain UPDATE of the row takes (the charges trigger writes a metric's
// has_advance_charges on every charge write), so a transaction that will write charges holds its
// metrics' rows before the trigger needs them, in id order: two plan writes naming the same
// metrics queue instead of deadlocking (as they did holding FOR SHARE, each waiting for the other's
// share to write). A metric's update or delete (FOR UPDATE) waits for it all the same.
export type Lock = "none" | "share" | "no key update" | "update";
const lockClause = (lock: Lock) =>
  lock === "update" ? " FOR UPDATE" : lock === "share" ? " FOR SHARE" : lock === "no key update" ? " FOR NO KEY UPDATE" : "";

// ---------------------------------------------------------------------------------------------
// Billable metrics

export async function insertMetric(q: Queryable, orgId: number, lagoId: string, d: MetricDraft, now: Date): Promise<BillableMetric> {
  const { rows } = await q.query<MetricRow>(
    `INSERT INTO billable_metrics (org_id, lago_id, code, name, description, aggregation_type, field_name, weighted_interval,
                                   recurring, rounding_function, rounding_precision, filters, created_at, updated_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12::jsonb, $13, $13) RETURNING *`,
    [orgId, lagoId, d.code, d.name, d.description, d.aggregationType, d.fieldName, d.weightedInterval, d.recurring,
     d.roundingFunction, d.roundingPrecision, JSON.stringify(d.filters), now],
  );
  return toMetric(rows[0]!);
}

export async function updateMetric(q: Queryable, orgId: number, id: number, d: MetricDraft, now: Date): Promise<BillableMetric> {
  const { rows } = await q.query<MetricRow>(
    `UPDATE billable_metrics SET code = $3, name = $4, description = $5, aggregation_type = $6, field_name = $7,
            weighted_interval = $8, recurring = $9, rounding_function = $10, rounding_precision = $11, filters = $12::jsonb,
            updated_at = $13
      WHERE org_id = $1 AND id = $2 AND deleted_at IS NULL RETURNING *`,
    [orgId, id, d.code, d.name, d.description, d.aggregationType, d.fieldName, d.weightedInterval, d.recurring,
     d.roundingFunction, d.roundingPrecision, JSON.stringify(d.filters), now],
  );
  return toMetric(rows[0]!);
}

export async function metricByCode(q: Queryable, orgId: number, code: string, lock: Lock = "none"): Promise<BillableMetric | null> {
  const { rows } = await q.query<MetricRow>(
    `SELECT * FROM billable_metrics WHERE org_id = $1 AND code = $2 AND deleted_at IS NULL${lockClause(lock)}`,
    [orgId, code],
  );
  return rows[0] ? toMetric(rows[0]) : null;
}

/** The organization's live metrics among these Lago ids and codes (locked against deletion when asked). */
export async function metricsByRefs(
  q: Queryable,
  orgId: number,
  lagoIds: readonly string[],
  codes: readonly string[],
  lock: Lock,
): Promise<BillableMetric[]> {
  if (lagoIds.length === 0 && codes.length === 0) return [];
  const { rows } = await q.query<MetricRow>(
    `SELECT * FROM billable_metrics
      WHERE org_id = $1 AND deleted_at IS NULL AND (lago_id = ANY($2::uuid[]) OR code = ANY($3::text[]))
      ORDER BY id${lockClause(lock)}`,
    [orgId, lagoIds, codes],
  );
  return rows.map(toMetric);
}

async function metricsByIds(q: Queryable, orgId: number, ids: readonly number[]): Promise<Map<number, BillableMetric>> {
  if (ids.length === 0) return new Map();
  const { rows } = await q.query<MetricRow>("SELECT * FROM billable_metrics WHERE org_id = $1 AND id = ANY($2::int8[])", [orgId, ids]);
  return new Map(rows.map((r) => [Number(r.id), toMetric(r)]));
}

export async function listMetrics(q: Queryable, orgId: number, limit: number, offset: number): Promise<{ metrics: BillableMetric[]; total: number }> {
  const [page, count] = await Promise.all([
    q.query<MetricRow>(
      `SELECT * FROM billable_metrics WHERE org_id = $1 AND deleted_at IS NULL
        ORDER BY created_at DESC, id DESC LIMIT $2 OFFSET $3`,
      [orgId, limit, offset],
    ),
    q.query<{ n: string }>("SELECT count(*)::text AS n FROM billable_metrics WHERE org_id = $1 AND deleted_at IS NULL", [orgId]),
  ]);
  return { metrics: page.rows.map(toMetric), total: Number(count.rows[0]?.n ?? 0) };
}

export async function metricCodeTaken(q: Queryable, orgId: number, code: string): Promise<boolean> {
  const { rows } = await q.query("SELECT 1 FROM billable_metrics WHERE org_id = $1 AND code = $2 AND deleted_at IS NULL", [orgId, code]);
  return rows.length > 0;
}

/** Live plans with a live charge on each metric. */
export async function plansCountByMetric(q: Queryable, orgId: number, metricIds: readonly number[]): Promise<Map<number, number>> {
  if (metricIds.length === 0) return new Map();
  const { rows } = await q.query<{ metric_id: string; n: string }>(
    `SELECT c.billable_metric_id AS metric_id, count(DISTINCT c.plan_id)::text AS n
       FROM charges c JOIN plans p ON p.id = c.plan_id AND p.org_id = c.org_id AND p.deleted_at IS NULL
      WHERE c.org_id = $1 AND c.deleted_at IS NULL AND c.billable_metric_id = ANY($2::int8[])
      GROUP BY c.billable_metric_id`,
    [orgId, metricIds],
  );
  return new Map(rows.map((r) => [Number(r.metric_id), Number(r.n)]));
}

/** Soft-deletes the metric and, as Lago does, every charge priced on it. */
export async function deleteMetric(q: Queryable, orgId: number, id: number, now: Date): Promise<void> {
  await q.query("UPDATE billable_metrics SET deleted_at = $3, updated_at = $3 WHERE org_id = $1 AND id = $2", [orgId, id, now]);
  await q.query(
    "UPDATE charges SET deleted_at = $3, updated_at = $3 WHERE org_id = $1 AND billable_metric_id = $2 AND deleted_at IS NULL",
    [orgId, id, now],
  );
}

/** Live filters of live charges priced on the metric. */
export async function chargeFiltersOfMetric(q: Queryable, orgId: number, metricId: number): Promise<{ id: number; values: FilterValues }[]> {
  const { rows } = await q.query<{ id: string; filter_values: FilterValues }>(
    `SELECT f.id, f.filter_values FROM charge_filters f
       JOIN charges c ON c.id = f.charge_id AND c.org_id = f.org_id AND c.deleted_at IS NULL
      WHERE f.org_id = $1 AND c.billable_metric_id = $2 AND f.deleted_at IS NULL
      ORDER BY f.id FOR UPDATE OF f`,
    [orgId, metricId],
  );
  return rows.map((r) => ({ id: Number(r.id), values: r.filter_values }));
}

export async function setChargeFilterValues(q: Queryable, orgId: number, id: number, values: FilterValues | null, now: Date): Promise<void> {
  if (values === null) {
    await q.query("UPDATE charge_filters SET deleted_at = $3, updated_at = $3 WHERE org_id = $1 AND id = $2", [orgId, id, now]);
  } else {
    await q.query("UPDATE charge_filters SET filter_values = $3::jsonb, updated_at = $4 WHERE org_id = $1 AND id = $2", [
      orgId, id, JSON.stringify(values), now,
    ]);
  }
}

// ---------------------------------------------------------------------------------------------
// Plans, charges and charge filters

interface PlanRow {
  id: string;
  org_id: number;
  lago_id: string;
  code: string;
  name: string;
  invoice_display_name: string | null;
  description: string | null;
  interval: PlanInterval;
  amount_cents: string;
  amount_currency: string;
  trial_period: string | null;
  pay_in_advance: boolean;
  bill_charges_monthly: boolean | null;
  tax_codes: string[] | null;
  minimum_commitment: StoredCommitment | string | null;
  usage_thresholds: StoredThreshold[] | string | null;
  created_at: Date;
  deleted_at: Date | null;
}

// A plan's commitment and thresholds as stored (JSON; amounts as strings so no digit is lost).
type StoredCommitment = { lago_id: string; amount_cents: string; invoice_display_name: string | null; tax_codes: string[]; created_at: string; updated_at: string };
type StoredThreshold = { lago_id: string; amount_cents: string; threshold_display_name: string | null; recurring: boolean; created_at: string; updated_at: string };

const parsed = <T>(v: T | string | null): T | null => (typeof v === "string" ? (JSON.parse(v) as T) : v);

function commitmentFrom(v: StoredCommitment | string | null): MinimumCommitment | null {
  const c = parsed(v);
  if (c === null) return null;
  return {
    lagoId: c.lago_id,
    amountCents: BigInt(c.amount_cents),
    invoiceDisplayName: c.invoice_display_name,
    taxCodes: c.tax_codes,
    createdAt: new Date(c.created_at),
    updatedAt: new Date(c.updated_at),
  };
}

function thresholdsFrom(v: StoredThreshold[] | string | null): UsageThreshold[] {
  return (parsed(v) ?? []).map((t) => ({
    lagoId: t.lago_id,
    amountCents: BigInt(t.amount_cents),
    thresholdDisplayName: t.threshold_display_name,
    recurring: t.recurring,
    createdAt: new Date(t.created_at),
    updatedAt: new Date(t.updated_at),
  }));
}

function storedExtras(d: PlanDraft, newId: () => string, now: Date): [string | null, string] {
  const { minimumCommitment: c, usageThresholds } = planExtrasOf(d, newId, now);
  const commitment: StoredCommitment | null =
    c === null
      ? null
      : {
          lago_id: c.lagoId,
          amount_cents: c.amountCents.toString(),
          invoice_display_name: c.invoiceDisplayName,
          tax_codes: [...c.taxCodes],
          created_at: c.createdAt.toISOString(),
          updated_at: c.updatedAt.toISOString(),
        };
  const thresholds: StoredThreshold[] = usageThresholds.map((t) => ({
    lago_id: t.lagoId,
    amount_cents: t.amountCents.toString(),
    threshold_display_name: t.thresholdDisplayName,
    recurring: t.recurring,
    created_at: t.createdAt.toISOString(),
    updated_at: t.updatedAt.toISOString(),
  }));
  return [commitment === null ? null : JSON.stringify(commitment), JSON.stringify(thresholds)];
}

interface ChargeRow {
  id: string;
  lago_id: string;
  plan_id: string;
  billable_metric_id: string;
  code: string | null;
  invoice_display_name: string | null;
  charge_model: string;
  pay_in_advance: boolean;
  invoiceable: boolean;
  regroup_paid_fees: "invoice" | null;
  prorated: boolean;
  min_amount_cents: string;
  properties: Record<string, unknown>;
  tax_codes: string[] | null;
  created_at: Date;
}

interface FilterRow {
  id: string;
  lago_id: string;
  charge_id: string;
  invoice_display_name: string | null;
  filter_values: FilterValues;
  properties: Record<string, unknown>;
}

/** Stored properties were validated on the way in; failing here means the row was altered by hand. */
function priceOf(model: string, properties: unknown, what: string): Price {
  const parsed = parsePrice(model, properties);
  if (!parsed.ok) throw new Error(`stored ${what} has invalid ${model} properties: ${JSON.stringify(parsed.errors)}`);
  return parsed.value;
}

const groupKeysOf = (properties: Record<string, unknown>): string[] | null =>
  Array.isArray(properties["pricing_group_keys"]) ? (properties["pricing_group_keys"] as string[]) : null;

export async function planRowByCode(q: Queryable, orgId: number, code: string, lock: Lock = "none"): Promise<PlanRow | null> {
  const { rows } = await q.query<PlanRow>(
    `SELECT * FROM plans WHERE org_id = $1 AND code = $2 AND deleted_at IS NULL${lockClause(lock)}`,
    [orgId, code],
  );
  return rows[0] ?? null;
}

/** By internal id, deleted plans included (subscriptions keep pointing at the plan they had). */
export async function planRowById(q: Queryable, orgId: number, id: number): Promise<PlanRow | null> {
  const { rows } = await q.query<PlanRow>("SELECT * FROM plans WHERE org_id = $1 AND id = $2", [orgId, id]);
  return rows[0] ?? null;
}

export async function planCodeTaken(q: Queryable, orgId: number, code: string): Promise<boolean> {
  const { rows } = await q.query("SELECT 1 FROM plans WHERE org_id = $1 AND code = $2 AND deleted_at IS NULL", [orgId, code]);
  return rows.length > 0;
}

export async function listPlanRows(q: Queryable, orgId: number, limit: number, offset: number): Promise<{ rows: PlanRow[]; total: number }> {
  const [page, count] = await Promise.all([
    q.query<PlanRow>(
      "SELECT * FROM plans WHERE org_id = $1 AND deleted_at IS NULL ORDER BY created_at DESC, id DESC LIMIT $2 OFFSET $3",
      [orgId, limit, offset],
    ),
    q.query<{ n: string }>("SELECT count(*)::text AS n FROM plans WHERE org_id = $1 AND deleted_at IS NULL", [orgId]),
  ]);
  return { rows: page.rows, total: Number(count.rows[0]?.n ?? 0) };
}

/** Plans with their live charges (in plan order), each with its metric, filters and parsed prices. */
export async function loadPlans(q: Queryable, orgId: number, planRows: readonly PlanRow[]): Promise<Plan[]> {
  if (planRows.length === 0) return [];
  const planIds = planRows.map((p) => Number(p.id));
  const charges = (
    await q.query<ChargeRow>(
      "SELECT * FROM charges WHERE org_id = $1 AND plan_id = ANY($2::int8[]) AND deleted_at IS NULL ORDER BY plan_id, position, id",
      [orgId, planIds],
    )
  ).rows;
  const chargeIds = charges.map((c) => Number(c.id));
  const [metrics, filterRows] = await Promise.all([
    metricsByIds(q, orgId, [...new Set(charges.map((c) => Number(c.billable_metric_id)))]),
    chargeIds.length === 0
      ? Promise.resolve({ rows: [] as FilterRow[] })
      : q.query<FilterRow>(
          "SELECT * FROM charge_filters WHERE org_id = $1 AND charge_id = ANY($2::int8[]) AND deleted_at IS NULL ORDER BY charge_id, position, id",
          [orgId, chargeIds],
        ),
  ]);
  const filtersByCharge = new Map<number, ChargeFilter[]>();
  for (const r of filterRows.rows) {
    const model = charges.find((c) => c.id === r.charge_id)!.charge_model;
    const list = filtersByCharge.get(Number(r.charge_id)) ?? [];
    list.push({
      id: Number(r.id),
      lagoId: r.lago_id,
      invoiceDisplayName: r.invoice_display_name,
      values: r.filter_values,
      properties: r.properties,
      price: priceOf(model, r.properties, `charge filter ${r.id}`),
      pricingGroupKeys: groupKeysOf(r.properties),
    });
    filtersByCharge.set(Number(r.charge_id), list);
  }
  const chargesByPlan = new Map<number, Charge[]>();
  for (const r of charges) {
    const price = priceOf(r.charge_model, r.properties, `charge ${r.lago_id}`);
    const list = chargesByPlan.get(Number(r.plan_id)) ?? [];
    list.push({
      id: Number(r.id),
      lagoId: r.lago_id,
      code: r.code,
      invoiceDisplayName: r.invoice_display_name,
      metric: metrics.get(Number(r.billable_metric_id))!,
      chargeModel: price.model,
      payInAdvance: r.pay_in_advance,
      invoiceable: r.invoiceable,
      regroupPaidFees: r.regroup_paid_fees,
      prorated: r.prorated,
      minAmountCents: BigInt(r.min_amount_cents),
      properties: r.properties,
      price,
      pricingGroupKeys: groupKeysOf(r.properties),
      filters: filtersByCharge.get(Number(r.id)) ?? [],
      taxCodes: r.tax_codes ?? [],
      createdAt: new Date(r.created_at),
    });
    chargesByPlan.set(Number(r.plan_id), list);
  }
  return planRows.map((p) => ({
    id: Number(p.id),
    orgId: Number(p.org_id),
    lagoId: p.lago_id,
    code: p.code,
    name: p.name,
    invoiceDisplayName: p.invoice_display_name,
    description: p.description,
    interval: p.interval,
    amountCents: BigInt(p.amount_cents),
    amountCurrency: p.amount_currency,
    trialPeriod: p.trial_period === null ? null : Number(p.trial_period),
    payInAdvance: p.pay_in_advance,
    billChargesMonthly: p.bill_charges_monthly,
    charges: chargesByPlan.get(Number(p.id)) ?? [],
    taxCodes: p.tax_codes ?? [],
    minimumCommitment: commitmentFrom(p.minimum_commitment),
    usageThresholds: thresholdsFrom(p.usage_thresholds),
    createdAt: new Date(p.created_at),
    deletedAt: p.deleted_at === null ? null : new Date(p.deleted_at),
  }));
}

const planParams = (d: PlanDraft) => [
  d.code, d.name, d.invoiceDisplayName, d.description, d.interval, d.amountCents.toString(), d.amountCurrency,
  d.trialPeriod === null ? null : String(d.trialPeriod), d.payInAdvance, d.billChargesMonthly, [...d.taxCodes],
];

/** `newId`: ids of a new commitment and new thresholds. */
export async function insertPlan(q: Queryable, orgId: number, lagoId: string, d: PlanDraft, now: Date, newId: () => string): Promise<number> {
  const { rows } = await q.query<{ id: string }>(
    `INSERT INTO plans (org_id, lago_id, code, name, invoice_display_name, description, interval, amount_cents, amount_currency,
                        trial_period, pay_in_advance, bill_charges_monthly, tax_codes, created_at, updated_at, minimum_commitment, usage_thresholds)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8::int8, $9, $10::numeric, $11, $12, $13::text[], $14, $14, $15::jsonb, $16::jsonb) RETURNING id`,
    [orgId, lagoId, ...planParams(d), now, ...storedExtras(d, newId, now)],
  );
  return Number(rows[0]!.id);
}

export async function updatePlanRow(q: Queryable, orgId: number, id: number, d: PlanDraft, now: Date, newId: () => string): Promise<void> {
  await q.query(
    `UPDATE plans SET code = $3, name = $4, invoice_display_name = $5, description = $6, interval = $7, amount_cents = $8::int8,
            amount_currency = $9, trial_period = $10::numeric, pay_in_advance = $11, bill_charges_monthly = $12, tax_codes = $13::text[],
            updated_at = $14, minimum_commitment = $15::jsonb, usage_thresholds = $16::jsonb
      WHERE org_id = $1 AND id = $2`,
    [orgId, id, ...planParams(d), now, ...storedExtras(d, newId, now)],
  );
}

export async function deletePlanRow(q: Queryable, orgId: number, id: number, now: Date): Promise<void> {
  await q.query("UPDATE plans SET deleted_at = $3, updated_at = $3 WHERE org_id = $1 AND id = $2", [orgId, id, now]);
}

const chargeParams = (c: ChargeDraft) => [
  c.metric.id, c.code, c.invoiceDisplayName, c.chargeModel, c.payInAdvance, c.invoiceable, c.regroupPaidFees, c.prorated,
  c.minAmountCents.toString(), JSON.stringify(c.properties), [...c.taxCodes],
];

export async function insertCharge(
  q: Queryable, orgId: number, planId: number, lagoId: string, position: number, c: ChargeDraft, now: Date,
): Promise<number> {
  const { rows } = await q.query<{ id: string }>(
    `INSERT INTO charges (org_id, plan_id, lago_id, position, billable_metric_id, code, invoice_display_name, charge_model,
                          pay_in_advance, invoiceable, regroup_paid_fees, prorated, min_amount_cents, properties, tax_codes, created_at, updated_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13::int8, $14::jsonb, $15::text[], $16, $16) RETURNING id`,
    [orgId, planId, lagoId, position, ...chargeParams(c), now],
  );
  return Number(rows[0]!.id);
}

export async function updateCharge(q: Queryable, orgId: number, id: number, position: number, c: ChargeDraft, now: Date): Promise<void> {
  await q.query(
    `UPDATE charges SET position = $3, billable_metric_id = $4, code = $5, invoice_display_name = $6, charge_model = $7,
            pay_in_advance = $8, invoiceable = $9, regroup_paid_fees = $10, prorated = $11, min_amount_cents = $12::int8,
            properties = $13::jsonb, tax_codes = $14::text[], updated_at = $15
      WHERE org_id = $1 AND id = $2`,
    [orgId, id, position, ...chargeParams(c), now],
  );
}

/** The plan's live charges: id → position. */
export async function chargePositions(q: Queryable, orgId: number, planId: number): Promise<Map<number, number>> {
  const { rows } = await q.query<{ id: string; position: number }>(
    "SELECT id, position FROM charges WHERE org_id = $1 AND plan_id = $2 AND deleted_at IS NULL",
    [orgId, planId],
  );
  return new Map(rows.map((r) => [Number(r.id), Number(r.position)]));
}

/** Removes the plan's live charges other than `keep`. */
export async function deleteChargesExcept(q: Queryable, orgId: number, planId: number, keep: readonly number[], now: Date): Promise<void> {
  await q.query(
    `UPDATE charges SET deleted_at = $4, updated_at = $4
      WHERE org_id = $1 AND plan_id = $2 AND deleted_at IS NULL AND NOT (id = ANY($3::int8[]))`,
    [orgId, planId, keep, now],
  );
}

/**
 * The charge's live filters become exactly `filters`, in this order. A draft rewrites the filter it
 * names (`existingId`) or else the live filter with the same values, so a filter keeps its id and
 * lago_id across plan writes; the other live filters are removed and the remaining drafts added.
 */
export async function replaceChargeFilters(
  q: Queryable, orgId: number, chargeId: number, filters: readonly FilterDraft[], now: Date, newId: () => string,
): Promise<void> {
  const { rows } = await q.query<{ id: string; filter_values: FilterValues }>(
    "SELECT id, filter_values FROM charge_filters WHERE org_id = $1 AND charge_id = $2 AND deleted_at IS NULL ORDER BY position, id",
    [orgId, chargeId],
  );
  const live = rows.map((r) => ({ id: Number(r.id), key: canonicalFilterValues(r.filter_values) }));
  const used = new Set<number>();
  const targets = filters.map((f) => {
    const id = f.existingId ?? null;
    if (id !== null && live.some((l) => l.id === id) && !used.has(id)) {
      used.add(id);
      return id;
    }
    return null;
  });
  filters.forEach((f, i) => {
    if (targets[i] !== null || f.existingId != null) return;
    const key = canonicalFilterValues(f.values);
    const match = live.find((l) => l.key === key && !used.has(l.id));
    if (match) {
      used.add(match.id);
      targets[i] = match.id;
    }
  });
  await q.query(
    `UPDATE charge_filters SET deleted_at = $4, updated_at = $4
      WHERE org_id = $1 AND charge_id = $2 AND deleted_at IS NULL AND NOT (id = ANY($3::int8[]))`,
    [orgId, chargeId, [...used], now],
  );
  for (const [position, f] of filters.entries()) {
    const id = targets[position];
    const params = [f.invoiceDisplayName, JSON.stringify(f.values), JSON.stringify(f.properties), position, now];
    if (id !== null && id !== undefined) {
      await q.query(
        `UPDATE charge_filters SET invoice_display_name = $3, filter_values = $4::jsonb, properties = $5::jsonb, position = $6, updated_at = $7
          WHERE org_id = $1 AND id = $2`,
        [orgId, id, ...params],
      );
    } else {
      await q.query(
        `INSERT INTO charge_filters (org_id, charge_id, lago_id, invoice_display_name, filter_values, properties, position, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5::jsonb, $6::jsonb, $7, $8, $8)`,
        [orgId, chargeId, newId(), ...params],
      );
    }
  }
}

/**
 * Clears the codes of live charges that are about to change code, so a plan write may swap codes
 * between its charges without tripping the unique index (charges_plan_code_idx) half-way.
 */
export async function clearChangingChargeCodes(
  q: Queryable, orgId: number, changes: readonly { id: number; code: string | null }[],
): Promise<void> {
  if (changes.length === 0) return;
  await q.query(
    `UPDATE charges c SET code = NULL
       FROM unnest($2::int8[], $3::text[]) AS n(id, code)
      WHERE c.org_id = $1 AND c.id = n.id AND c.deleted_at IS NULL AND c.code IS DISTINCT FROM n.code`,
    [orgId, changes.map((c) => c.id), changes.map((c) => c.code)],
  );
}

/** Plans (deleted ones included: read by id they still answer) with a live charge on the metric: cached plans embedding it. */
export async function plansWithMetric(q: Queryable, orgId: number, metricId: number): Promise<{ id: number; code: string }[]> {
  const { rows } = await q.query<{ id: string; code: string }>(
    `SELECT DISTINCT p.id::text AS id, p.code
       FROM charges c JOIN plans p ON p.id = c.plan_id AND p.org_id = c.org_id
      WHERE c.org_id = $1 AND c.billable_metric_id = $2 AND c.deleted_at IS NULL`,
    [orgId, metricId],
  );
  return rows.map((r) => ({ id: Number(r.id), code: r.code }));
}
