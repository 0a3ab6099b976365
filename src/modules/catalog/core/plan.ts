// Plan input rules: the plan's own fields, then each charge (metric, model, properties, filters,
// Lago's combination rules). Metric lookups are handed in; nothing here does IO.
import { CHARGE_MODELS, type ChargeModel, isChargeModel } from "../../pricing/index.ts";
import { isCurrency } from "../../../shared/money.ts";
import {
  type FilterDraft,
  chargeRuleErrors,
  defaultProperties,
  isBlankProperties,
  readChargeFilters,
  readProperties,
} from "./charge.ts";
import { type Checked, ErrorSink, Fields, INVALID, MANDATORY, TAKEN, isRecord } from "./fields.ts";
import {
  type BillableMetric,
  type Charge,
  type MinimumCommitment,
  PLAN_INTERVALS,
  type Plan,
  type PlanInterval,
  type UsageThreshold,
} from "./types.ts";

export interface ChargeDraft {
  /** Internal id of the charge this entry updates; null for a new charge. */
  readonly existingId: number | null;
  readonly metric: BillableMetric;
  readonly code: string | null;
  readonly invoiceDisplayName: string | null;
  readonly chargeModel: ChargeModel;
  readonly payInAdvance: boolean;
  readonly invoiceable: boolean;
  readonly regroupPaidFees: "invoice" | null;
  readonly prorated: boolean;
  readonly minAmountCents: bigint;
  readonly properties: Record<string, unknown>;
  /** null: an updated charge sent without `filters` keeps the ones it has. */
  readonly filters: readonly FilterDraft[] | null;
  readonly taxCodes: readonly string[];
}

export interface PlanDraft {
  readonly code: string;
  readonly name: string;
  readonly invoiceDisplayName: string | null;
  readonly description: string | null;
  readonly interval: PlanInterval;
  readonly amountCents: bigint;
  readonly amountCurrency: string;
  readonly trialPeriod: number | null;
  readonly payInAdvance: boolean;
  readonly billChargesMonthly: boolean | null;
  /** The plan's whole list of charges; null when an update leaves them as they are. */
  readonly charges: readonly ChargeDraft[] | null;
  readonly taxCodes: readonly string[];
  readonly minimumCommitment: CommitmentDraft | null;
  /** Ordered by amount, the recurring one last. */
  readonly usageThresholds: readonly ThresholdDraft[];
}

/** A minimum commitment as sent; `lagoId` and `createdAt` are kept from the plan's (null: new). */
export interface CommitmentDraft {
  readonly lagoId: string | null;
  readonly amountCents: bigint;
  readonly invoiceDisplayName: string | null;
  readonly taxCodes: readonly string[];
  readonly createdAt: Date | null;
}

export interface ThresholdDraft {
  readonly lagoId: string | null;
  readonly amountCents: bigint;
  readonly thresholdDisplayName: string | null;
  readonly recurring: boolean;
  readonly createdAt: Date | null;
}

/** The draft's commitment and thresholds as stored: new ones get an id and `now` as creation time. */
export function planExtrasOf(
  d: Pick<PlanDraft, "minimumCommitment" | "usageThresholds">,
  newId: () => string,
  now: Date,
): { minimumCommitment: MinimumCommitment | null; usageThresholds: UsageThreshold[] } {
  const c = d.minimumCommitment;
  return {
    minimumCommitment:
      c === null
        ? null
        : { lagoId: c.lagoId ?? newId(), amountCents: c.amountCents, invoiceDisplayName: c.invoiceDisplayName, taxCodes: c.taxCodes, createdAt: c.createdAt ?? now, updatedAt: now },
    usageThresholds: d.usageThresholds.map((t) => ({
      lagoId: t.lagoId ?? newId(),
      amountCents: t.amountCents,
      thresholdDisplayName: t.thresholdDisplayName,
      recurring: t.recurring,
      createdAt: t.createdAt ?? now,
      updatedAt: now,
    })),
  };
}

/**
 * The plan's charges with a code each: a charge sent without one gets its metric's code, or, when
 * another charge of the plan has that code, the metric's code with `_2`, `_3`, … (the first one
 * free), charges taken in list order. Migration 0025 gave existing charges codes by the same rule.
 */
export function withChargeCodes(charges: readonly ChargeDraft[]): ChargeDraft[] {
  const taken = new Set(charges.flatMap((c) => (c.code === null ? [] : [c.code])));
  return charges.map((c) => {
    if (c.code !== null) return c;
    let code = c.metric.code;
    for (let n = 2; taken.has(code); n++) code = `${c.metric.code}_${n}`;
    taken.add(code);
    return { ...c, code };
  });
}

/** The organization's (non-deleted) metrics that a plan body refers to. */
export interface MetricLookup {
  byLagoId(lagoId: string): BillableMetric | undefined;
  byCode(code: string): BillableMetric | undefined;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const SUPPORTED_MODELS: readonly string[] = CHARGE_MODELS;
// A trial longer than ten years is a typo, not a trial.
const MAX_TRIAL_DAYS = 3660;

/** Metric ids (Lago's `billable_metric_id`) and codes (our `billable_metric_code`) a plan body names. */
export function metricRefs(raw: unknown): { lagoIds: string[]; codes: string[] } {
  const lagoIds = new Set<string>();
  const codes = new Set<string>();
  const charges = isRecord(raw) && Array.isArray(raw["charges"]) ? raw["charges"] : [];
  for (const c of charges) {
    if (!isRecord(c)) continue;
    const id = c["billable_metric_id"];
    const code = c["billable_metric_code"];
    if (typeof id === "string" && UUID.test(id)) lagoIds.add(id.toLowerCase());
    if (typeof code === "string" && code !== "" && code.length <= 255 && !code.includes("\u0000")) codes.add(code);
  }
  return { lagoIds: [...lagoIds], codes: [...codes] };
}

export function checkPlanCreate(raw: unknown, metrics: MetricLookup): Checked<PlanDraft> {
  return readPlan(raw, null, metrics);
}

/**
 * An update applies the fields sent onto `current`. `charges`, when sent, is the plan's whole
 * list (Lago's Plans::UpdateService): an entry whose `id` is one of the plan's charges updates it,
 * any other entry adds a charge, and charges left out are removed.
 */
export function checkPlanUpdate(raw: unknown, current: Plan, metrics: MetricLookup): Checked<PlanDraft> {
  return readPlan(raw, current, metrics);
}

function readPlan(raw: unknown, base: Plan | null, metrics: MetricLookup): Checked<PlanDraft> {
  const sink = new ErrorSink();
  const f = new Fields(raw, sink);
  const take = <T>(key: string, read: () => T | undefined, fallback: T): T => f.take(base !== null, key, read, fallback);

  const name = take("name", () => f.requiredText("name"), base?.name ?? "");
  const code = take("code", () => f.requiredText("code"), base?.code ?? "");
  const invoiceDisplayName = take("invoice_display_name", () => f.optionalText("invoice_display_name", 255), base?.invoiceDisplayName ?? null);
  const description = take("description", () => f.optionalText("description"), base?.description ?? null);

  let interval: PlanInterval = base?.interval ?? "monthly";
  if (base === null || f.has("interval")) {
    const v = f.oneOf("interval", PLAN_INTERVALS);
    if (v === null || (v === undefined && !f.has("interval"))) f.fail("interval", MANDATORY);
    if (v) interval = v;
  }

  let amountCents = base?.amountCents ?? 0n;
  if (base === null || f.has("amount_cents")) {
    const v = f.cents("amount_cents");
    if (v === undefined && (f.obj["amount_cents"] === undefined || f.obj["amount_cents"] === null)) f.fail("amount_cents", MANDATORY);
    if (v !== undefined) amountCents = v;
  }

  let amountCurrency = base?.amountCurrency ?? "";
  if (base === null || f.has("amount_currency")) {
    const v = f.obj["amount_currency"];
    if (v === undefined || v === null || v === "") f.fail("amount_currency", MANDATORY);
    else if (!isCurrency(v)) f.fail("amount_currency", INVALID);
    else amountCurrency = v;
  }

  const trialPeriod = take("trial_period", () => f.nonNegativeNumber("trial_period", MAX_TRIAL_DAYS), base?.trialPeriod ?? null);
  const payInAdvance = take("pay_in_advance", () => f.bool("pay_in_advance"), base?.payInAdvance ?? false);
  // Lago keeps bill_charges_monthly only where it means something (yearly plans) and stores null
  // elsewhere instead of refusing it.
  const monthly = take("bill_charges_monthly", () => f.bool("bill_charges_monthly"), base?.billChargesMonthly ?? false);
  const billChargesMonthly = interval === "yearly" ? (monthly ?? false) : null;

  // `charges: null` leaves an existing plan's charges alone (Lago's `if params[:charges]`); `[]` removes them all.
  let charges: ChargeDraft[] | null = base === null ? [] : null;
  const list = f.array("charges");
  if (list) charges = readCharges(f, list, base, metrics);
  // Whether the codes name taxes is checked by the service (it knows the organization's taxes).
  const taxCodes = take("tax_codes", () => f.stringList("tax_codes") ?? [], base?.taxCodes ?? []);
  const minimumCommitment = f.has("minimum_commitment") ? readCommitment(f, base) : commitmentOf(base);
  const usageThresholds = f.has("usage_thresholds") ? readThresholds(f, base) : thresholdsOf(base);

  return sink.result({
    code,
    name,
    invoiceDisplayName,
    description,
    interval,
    amountCents,
    amountCurrency,
    trialPeriod,
    payInAdvance,
    billChargesMonthly,
    charges,
    taxCodes,
    minimumCommitment,
    usageThresholds,
  });
}

const commitmentOf = (base: Plan | null): CommitmentDraft | null => base?.minimumCommitment ?? null;
const thresholdsOf = (base: Plan | null): ThresholdDraft[] => [...(base?.usageThresholds ?? [])];

/**
 * Lago's `minimum_commitment`: `amount_cents` (more than 0), `invoice_display_name`, `tax_codes`.
 * null or `{}` removes the plan's commitment (Lago's Plans::UpdateService on a blank one).
 */
export function readCommitment(f: Fields, base: Plan | null): CommitmentDraft | null {
  const raw = f.obj["minimum_commitment"];
  if (raw === null || (isRecord(raw) && Object.keys(raw).length === 0)) return null;
  if (!isRecord(raw)) {
    f.fail("minimum_commitment", INVALID);
    return commitmentOf(base);
  }
  const g = new Fields(raw, f.sink, `${f.prefix}minimum_commitment.`);
  const current = base?.minimumCommitment ?? null;
  let amountCents = current?.amountCents;
  if (current === null || g.has("amount_cents")) {
    const v = g.cents("amount_cents");
    if (v === undefined && (raw["amount_cents"] === undefined || raw["amount_cents"] === null)) g.fail("amount_cents", MANDATORY);
    else if (v === 0n) g.fail("amount_cents", "value_is_out_of_range");
    else if (v !== undefined) amountCents = v;
  }
  const invoiceDisplayName = g.take(current !== null, "invoice_display_name", () => g.optionalText("invoice_display_name", 255), current?.invoiceDisplayName ?? null);
  const taxCodes = g.take(current !== null, "tax_codes", () => g.stringList("tax_codes") ?? [], current?.taxCodes ?? []);
  if (amountCents === undefined) return commitmentOf(base);
  return { lagoId: current?.lagoId ?? null, amountCents, invoiceDisplayName, taxCodes, createdAt: current?.createdAt ?? null };
}

/**
 * Lago's `usage_thresholds`: the plan's whole list (null or [] removes them). Each has
 * `amount_cents` (more than 0), `threshold_display_name` and `recurring`; at most one is
 * recurring and fixed amounts are distinct. A threshold kept with the same amount and kind keeps its id.
 */
export function readThresholds(f: Fields, base: Plan | null): ThresholdDraft[] {
  const list = f.array("usage_thresholds");
  if (list === null) return [];
  if (list === undefined) return thresholdsOf(base);
  const existing = new Map((base?.usageThresholds ?? []).map((t) => [`${t.recurring}:${t.amountCents}`, t]));
  const out: ThresholdDraft[] = [];
  const amounts = new Set<bigint>();
  let recurringSeen = false;
  list.forEach((item, i) => {
    const at = `usage_thresholds[${i}]`;
    if (!isRecord(item)) return f.fail(at, INVALID);
    const g = new Fields(item, f.sink, `${f.prefix}${at}.`);
    const amountCents = g.cents("amount_cents");
    if (amountCents === undefined && (item["amount_cents"] === undefined || item["amount_cents"] === null)) g.fail("amount_cents", MANDATORY);
    if (amountCents === 0n) g.fail("amount_cents", "value_is_out_of_range");
    const thresholdDisplayName = g.optionalText("threshold_display_name", 255) ?? null;
    const recurring = g.bool("recurring") ?? false;
    if (amountCents === undefined || amountCents === 0n) return;
    if (recurring) {
      if (recurringSeen) return g.fail("recurring", TAKEN);
      recurringSeen = true;
    } else {
      if (amounts.has(amountCents)) return g.fail("amount_cents", TAKEN);
      amounts.add(amountCents);
    }
    const kept = existing.get(`${recurring}:${amountCents}`);
    out.push({ lagoId: kept?.lagoId ?? null, amountCents, thresholdDisplayName, recurring, createdAt: kept?.createdAt ?? null });
  });
  return out.sort((a, b) => (a.recurring !== b.recurring ? (a.recurring ? 1 : -1) : a.amountCents < b.amountCents ? -1 : a.amountCents > b.amountCents ? 1 : 0));
}

function readCharges(f: Fields, list: unknown[], base: Plan | null, metrics: MetricLookup): ChargeDraft[] {
  const existing = new Map((base?.charges ?? []).map((c) => [c.lagoId, c]));
  const usedIds = new Set<string>();
  const codes = new Set<string>();
  const out: ChargeDraft[] = [];
  list.forEach((item, i) => {
    const at = `charges[${i}]`;
    if (!isRecord(item)) return f.fail(at, INVALID);
    const g = new Fields(item, f.sink, `${at}.`);
    let current: Charge | undefined;
    const id = item["id"];
    if (id !== undefined && id !== null) {
      current = typeof id === "string" ? existing.get(id.toLowerCase()) : undefined;
      if (current && usedIds.has(current.lagoId)) return g.fail("id", TAKEN);
      if (current) usedIds.add(current.lagoId);
    }
    const draft = readCharge(g, current ?? null, metrics);
    if (draft === undefined) return;
    if (draft.code !== null) {
      if (codes.has(draft.code)) return g.fail("code", TAKEN);
      codes.add(draft.code);
    }
    out.push(draft);
  });
  return out;
}

/** One charge entry; `current` is the plan's charge it updates (absent fields keep its values). */
function readCharge(g: Fields, current: Charge | null, metrics: MetricLookup): ChargeDraft | undefined {
  const take = <T>(key: string, read: () => T | undefined, fallback: T): T => {
    if (current !== null && !g.has(key)) return fallback;
    const value = read();
    return value === undefined ? fallback : value;
  };
  const metric = readMetricRef(g, current, metrics);

  let chargeModel: ChargeModel | undefined = current?.chargeModel;
  if (current === null || g.has("charge_model")) {
    const v = g.obj["charge_model"];
    if (v === undefined || v === null || v === "") g.fail("charge_model", MANDATORY);
    else if (!isChargeModel(v) || !SUPPORTED_MODELS.includes(v)) g.fail("charge_model", INVALID);
    else chargeModel = v;
  }

  const code = take("code", () => g.optionalText("code", 255), current?.code ?? null);
  const invoiceDisplayName = take("invoice_display_name", () => g.optionalText("invoice_display_name", 255), current?.invoiceDisplayName ?? null);
  const payInAdvance = take("pay_in_advance", () => g.bool("pay_in_advance"), current?.payInAdvance ?? false);
  const invoiceable = take("invoiceable", () => g.bool("invoiceable"), current?.invoiceable ?? true);
  const prorated = take("prorated", () => g.bool("prorated"), current?.prorated ?? false);
  const regroupPaidFees = take("regroup_paid_fees", () => g.oneOf("regroup_paid_fees", ["invoice"] as const), current?.regroupPaidFees ?? null);
  const minAmountCents = take("min_amount_cents", () => g.cents("min_amount_cents"), current?.minAmountCents ?? 0n);
  const taxCodes = take("tax_codes", () => g.stringList("tax_codes") ?? [], current?.taxCodes ?? []);
  if (chargeModel === undefined) return undefined;

  // An updated charge sent without properties keeps its price while its model stays; a new charge
  // (or a new model) without properties gets Lago's defaults for the model. (Lago resets an updated
  // charge's properties and minimum to the defaults whenever they are left out; keeping them is
  // our choice, so a partial update never silently makes a charge free.)
  const sameModel = current !== null && current.chargeModel === chargeModel;
  const rawProps = g.obj["properties"];
  let properties: Record<string, unknown> | undefined;
  if (sameModel && rawProps === undefined) properties = { ...current.properties };
  else properties = readProperties(g, "properties", chargeModel, isBlankProperties(rawProps) ? defaultProperties(chargeModel) : rawProps);

  let filters: FilterDraft[] | null = null;
  const list = g.array("filters");
  if (metric !== undefined) {
    if (list !== undefined) filters = readChargeFilters(g, list ?? [], metric, chargeModel);
    else if (current === null) filters = [];
    else if (!sameModel || metric.id !== current.metric.id) {
      // The kept filters must still fit the charge's (new) model and metric.
      filters = readChargeFilters(g, current.filters.map((cf) => ({ ...cf, invoice_display_name: cf.invoiceDisplayName })), metric, chargeModel);
    }
  }

  if (metric === undefined || properties === undefined) return undefined;
  const shape = { metric, chargeModel, payInAdvance, invoiceable, regroupPaidFees, prorated, minAmountCents };
  for (const e of chargeRuleErrors(shape)) g.fail(e.field, e.code);
  return { existingId: current?.id ?? null, code, invoiceDisplayName, properties, filters, taxCodes, ...shape };
}

/**
 * `billable_metric_id` (Lago) or `billable_metric_code` (ours); an update may leave both out.
 * Lago answers an unknown metric id with a 404 (`billable_metrics_not_found`) for the whole
 * request; issue 3 asks for a 422 naming the field, which also lets it be reported alongside every
 * other broken field. A Lago client sees an error either way.
 */
function readMetricRef(g: Fields, current: Charge | null, metrics: MetricLookup): BillableMetric | undefined {
  const id = g.obj["billable_metric_id"];
  const code = g.obj["billable_metric_code"];
  const hasId = id !== undefined && id !== null && id !== "";
  const hasCode = code !== undefined && code !== null && code !== "";
  if (!hasId && !hasCode) {
    if (current !== null) return current.metric;
    g.fail("billable_metric_id", MANDATORY);
    return undefined;
  }
  let byId: BillableMetric | undefined;
  if (hasId) {
    byId = typeof id === "string" && UUID.test(id) ? metrics.byLagoId(id.toLowerCase()) : undefined;
    if (byId === undefined) g.fail("billable_metric_id", "billable_metric_not_found");
  }
  if (hasCode) {
    const byCode = typeof code === "string" ? metrics.byCode(code) : undefined;
    if (byCode === undefined) g.fail("billable_metric_code", "billable_metric_not_found");
    else if (hasId && byId !== undefined && byId.id !== byCode.id) g.fail("billable_metric_code", INVALID);
    return hasId ? byId : byCode;
  }
  return byId;
}
