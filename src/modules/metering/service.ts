import type { Db, Queryable } from "../../db/db.ts";
import type { Clock } from "../../shared/clock.ts";
import { AppError, notFound } from "../../shared/errors.ts";
import { sum } from "../../shared/money.ts";
import type { Charge, MetricChangeListener, Plan } from "../catalog/index.ts";
import type { Customer, CustomerService } from "../customers/index.ts";
import {
  type BucketInput,
  type ChargeUsage,
  ChargeSlots,
  WHOLE,
  bucketInputs,
  type Span,
  type SubscriptionTimes,
  type SubscriptionUsage,
  type UsageWindow,
  type Partial,
  MAX_ROLLUP_ROWS_PER_EVENT,
  chargeOrder,
  combinePartials,
  isRolledUp,
  latestValue,
  priceCharge,
  prorationDays,
  proratedSum,
  proratedUniqueCount,
  splitByHours,
  subscriptionUsage,
  uniqueCount,
  usageWindowAt,
  weightedSum,
} from "./core/index.ts";
import * as store from "./store.ts";
import { type ProjectedUsage, projectUsage } from "./core/projected.ts";

/**
 * What usage needs of a subscription: structurally a subset of the subscriptions module's
 * `Subscription` (its service is the lookup in production).
 */
export interface UsageSubscription extends SubscriptionTimes {
  readonly lagoId: string;
  readonly externalId: string;
  readonly customerId: number;
  /** The effective plan (plan_overrides applied). */
  readonly plan: Plan;
}

export interface SubscriptionLookup {
  /** The subscription with this external id active at `at` (started by then, not terminated), or null. */
  getByExternalId(orgId: number, externalId: string, at?: Date): Promise<UsageSubscription | null>;
  /** When the latest subscription with this external id was terminated, or null if none was. */
  terminatedAt(orgId: number, externalId: string): Promise<Date | null>;
}

/** Until a subscription store is wired, no subscription exists. */
export const NO_SUBSCRIPTIONS: SubscriptionLookup = { getByExternalId: async () => null, terminatedAt: async () => null };

export interface PastUsageQuery {
  readonly page: number;
  readonly perPage: number;
  /** At most this many past periods (newest first). */
  readonly periodsCount?: number;
  readonly billableMetricCode?: string;
}

// Past periods are walked back one by one from the current one; this bounds the walk for a
// subscription that has run for decades on a weekly plan.
const MAX_PAST_PERIODS = 520;

/** The taxes (minor units) on a subscription's usage, as its invoice would bear them. */
export type UsageTaxes = (orgId: number, customer: Customer, plan: Plan, charges: readonly ChargeUsage[]) => Promise<bigint>;

const noActiveSubscription = () =>
  new AppError("not_allowed", "no_active_subscription", "the customer has no active subscription with this external_subscription_id");

/**
 * Metering: keeps each metric's hourly rollups exact (rebuilt in the catalog's transaction when a
 * metric is created or changes meaning), aggregates a charge's usage over a window (rollup hours
 * plus raw edge hours for count/sum/max, raw events for the rest), prices it, and lists the events
 * that match no metric or no subscription.
 */
export class MeteringService {
  private subscriptions: SubscriptionLookup;
  /** Where current/past usage and unmatched events are read: a read replica when configured, else the primary. */
  private reads: Queryable | null = null;
  private usageTaxes: UsageTaxes | null = null;
  private maxRollupRowsPerEvent = MAX_ROLLUP_ROWS_PER_EVENT;

  constructor(
    private readonly db: Db,
    private readonly clock: Clock,
    private readonly customers: CustomerService,
    subscriptions: SubscriptionLookup = NO_SUBSCRIPTIONS,
  ) {
    this.subscriptions = subscriptions;
  }

  /** How current usage is taxed (the taxes module's hierarchy); without it usage carries no taxes. */
  taxUsageWith(taxes: UsageTaxes): void {
    this.usageTaxes = taxes;
  }

  /** Wires the subscription store (the composition root builds it after this service). */
  useSubscriptions(lookup: SubscriptionLookup): void {
    this.subscriptions = lookup;
  }

  /**
   * Usage reads (GET current_usage / past_usage, unmatched events) from `reads` (src/db/replica.ts);
   * invoicing's reads, which pass their own `q`, stay on the primary.
   */
  readFrom(reads: Queryable): void {
    this.reads = reads;
  }

  /** Group keys that would make a metric's rollups more rows per event than this stay out of them (boundGroupKeys). */
  boundRollupGroupKeys(maxRowsPerEvent: number): void {
    this.maxRollupRowsPerEvent = maxRowsPerEvent;
  }

  /** For CatalogService.onMetricChange: rollups follow the metric in the same transaction. */
  readonly onMetricChange: MetricChangeListener = (tx, change) =>
    store.rebuildMetricRollups(tx, change.before, change.after, this.maxRollupRowsPerEvent);

  /**
   * For CatalogService.onChargesChange (and any write of plan_overrides), after the write
   * committed: each metric's rollups keep the group keys its charges now price by, rebuilt when
   * the set changed. Until this ran, grouped usage on a new key reads raw events (still exact).
   */
  readonly syncRollupGroupKeys = async (orgId: number, metricIds: Iterable<number>): Promise<void> => {
    for (const id of new Set(metricIds)) await store.syncRollupGroupKeys(this.db, orgId, id, this.maxRollupRowsPerEvent);
  };

  // ---------------------------------------------------------------------------------------------
  // The engine

  /**
   * The aggregate of each bucket of `charge` (its filters in order, then the default bucket), or of
   * each group of a bucket with pricing group keys, for the subscription's events in `window`.
   * Recurring metrics read all earlier history too. count/sum/max come from the rollups, grouped
   * ones too when the metric's rollups keep the charge's group keys (`syncRollupGroupKeys`; raw
   * events otherwise); prorated charges read raw events (they weigh each event by its day).
   */
  async aggregateCharge(
    orgId: number,
    externalSubscriptionId: string,
    charge: Charge,
    window: UsageWindow,
    q: Queryable = this.db,
  ): Promise<BucketInput[]> {
    const metric = charge.metric;
    const scope: store.MetricScope = { orgId, metricId: metric.id, externalSubscriptionId };
    const slots = new ChargeSlots(charge);
    const keys = slots.groupKeys;
    const windowSpan: Span = { from: window.from, to: window.to };
    const span: Span = metric.recurring ? { from: null, to: window.to } : windowSpan;
    const agg = metric.aggregationType;

    if (isProrated(charge)) {
      const days = prorationDays(window);
      if (agg === "sum_agg") {
        const events = slots.split(await store.readValuedEvents(q, scope, windowSpan, keys));
        const before = slots.split(await store.readSumsBefore(q, scope, window.from, keys));
        return bucketInputs(slots, slots.groupsOf(events, before), (b, g) =>
          proratedSum(sum(rowsOf(before, b, g).map((r) => r.sum)), rowsOf(events, b, g), days),
        );
      }
      const history = slots.split(await store.readUniqueEvents(q, scope, window.to, keys));
      return bucketInputs(slots, slots.groupsOf(history), (b, g) => proratedUniqueCount(rowsOf(history, b, g), days));
    }

    if (isRolledUp(agg)) {
      if (!slots.grouped && !usesEventAmounts(charge)) return rolledUpInputs(charge, slots, await store.readPartials(q, scope, splitByHours(span)));
      const partials = slots.grouped
        ? await store.readGroupedPartials(q, scope, span, splitByHours(span), keys)
        : (await store.readPartials(q, scope, splitByHours(span))).map((p) => ({ ...p, groups: WHOLE }));
      const parts = slots.split(partials);
      // Percentage charges rate each transaction (free events, per-transaction min/max, fixed fees).
      const events = usesEventAmounts(charge) ? slots.split(await store.readValuedEvents(q, scope, span, keys)) : null;
      return bucketInputs(slots, slots.groupsOf(parts, ...(events === null ? [] : [events])), (b, g) => {
        const a = combinePartials(agg, rowsOf(parts, b, g));
        return events === null ? a : { ...a, eventAmounts: rowsOf(events, b, g).map((e) => e.value) };
      });
    }
    switch (agg) {
      case "unique_count_agg": {
        const lasts = slots.split(await store.readUniqueLasts(q, scope, span, keys));
        return bucketInputs(slots, slots.groupsOf(lasts), (b, g) => uniqueCount(rowsOf(lasts, b, g)));
      }
      case "latest_agg": {
        const latest = slots.split(await store.readLatest(q, scope, span, keys));
        return bucketInputs(slots, slots.groupsOf(latest), (b, g) => latestValue(rowsOf(latest, b, g)));
      }
      case "weighted_sum_agg": {
        const events = slots.split(await store.readValuedEvents(q, scope, windowSpan, keys));
        const before = metric.recurring ? slots.split(await store.readSumsBefore(q, scope, window.from, keys)) : [];
        return bucketInputs(slots, slots.groupsOf(events, before), (b, g) =>
          weightedSum({
            events: rowsOf(events, b, g),
            initial: sum(rowsOf(before, b, g).map((r) => r.sum)),
            fromUs: window.from.getTime() * 1000,
            toUs: window.to.getTime() * 1000,
            periodSeconds: window.period.days * 86_400,
            recurring: metric.recurring,
          }),
        );
      }
      default:
        return assertNever(agg);
    }
  }

  /** One charge's usage in the window, priced in `currency`. */
  async chargeUsage(
    orgId: number,
    sub: UsageSubscription,
    charge: Charge,
    window: UsageWindow,
    currency: string,
    q: Queryable = this.db,
  ): Promise<ChargeUsage> {
    return priceCharge(charge, await this.aggregateCharge(orgId, sub.externalId, charge, window, q), currency);
  }

  /**
   * Every charge of the subscription's plan (or those of one metric) over the window, in Lago's
   * order. `q`: a transaction to read in (invoicing bills inside the transaction that ends a subscription).
   */
  async usage(
    orgId: number,
    sub: UsageSubscription,
    window: UsageWindow,
    billableMetricCode?: string,
    q: Queryable = this.db,
  ): Promise<SubscriptionUsage> {
    const plan = sub.plan;
    const charges = plan.charges
      .filter((c) => billableMetricCode === undefined || c.metric.code === billableMetricCode)
      .sort(chargeOrder);
    // The pools (primary, replica) read the charges concurrently; any other `q` may be one
    // transaction's connection, which runs one statement at a time (pg 9 refuses overlapping ones).
    const priced: ChargeUsage[] = [];
    if (q === this.db || q === this.reads) priced.push(...(await Promise.all(charges.map((c) => this.chargeUsage(orgId, sub, c, window, plan.amountCurrency, q)))));
    else for (const c of charges) priced.push(await this.chargeUsage(orgId, sub, c, window, plan.amountCurrency, q));
    return subscriptionUsage(window, plan.amountCurrency, priced);
  }

  /**
   * `usage` of many subscriptions over one window, one statement per metric: for the billing job's
   * batches. Every charge of every plan must be `batchableCharge` (the caller checks). Keyed by
   * external id.
   */
  async usageMany(orgId: number, subs: readonly UsageSubscription[], window: UsageWindow, q: Queryable = this.db): Promise<Map<string, SubscriptionUsage>> {
    const byMetric = new Map<number, { metric: Charge["metric"]; subs: Set<string> }>();
    for (const sub of subs) {
      for (const c of sub.plan.charges) {
        if (!batchableCharge(c)) throw new Error(`charge ${c.lagoId} cannot be read in a batch`);
        const m = byMetric.get(c.metric.id) ?? { metric: c.metric, subs: new Set<string>() };
        m.subs.add(sub.externalId);
        byMetric.set(c.metric.id, m);
      }
    }
    const partials = new Map<number, Map<string, Partial[]>>();
    for (const [metricId, { metric, subs: ids }] of byMetric) {
      const span: Span = metric.recurring ? { from: null, to: window.to } : { from: window.from, to: window.to };
      partials.set(metricId, await store.readPartialsMany(q, orgId, metricId, [...ids], splitByHours(span)));
    }
    // Slots per charge for this call (their bucket cache grows with the dims seen).
    const slots = new Map<Charge, ChargeSlots>();
    const slotsOf = (c: Charge): ChargeSlots => {
      let s = slots.get(c);
      if (s === undefined) slots.set(c, (s = new ChargeSlots(c)));
      return s;
    };
    const orders = new Map<Plan, Charge[]>();
    const out = new Map<string, SubscriptionUsage>();
    for (const sub of subs) {
      const plan = sub.plan;
      let ordered = orders.get(plan);
      if (ordered === undefined) orders.set(plan, (ordered = [...plan.charges].sort(chargeOrder)));
      const priced = ordered.map((c) => priceCharge(c, rolledUpInputs(c, slotsOf(c), partials.get(c.metric.id)?.get(sub.externalId) ?? []), plan.amountCurrency));
      out.set(sub.externalId, subscriptionUsage(window, plan.amountCurrency, priced));
    }
    return out;
  }

  /** GET /customers/:id/current_usage: the open period at the organization's now. */
  async currentUsage(orgId: number, externalCustomerId: string, externalSubscriptionId: string): Promise<SubscriptionUsage> {
    const customer = await this.customers.getByExternalId(orgId, externalCustomerId);
    const now = new Date(this.clock.now(orgId));
    const sub = await this.subscriptions.getByExternalId(orgId, externalSubscriptionId, now);
    if (sub === null || sub.customerId !== customer.id) throw noActiveSubscription();
    const window = usageWindowAt(sub, sub.plan, now);
    if (window === null) throw noActiveSubscription();
    const usage = await this.usage(orgId, sub, window, undefined, this.reads ?? this.db);
    if (this.usageTaxes === null) return usage;
    const taxes = await this.usageTaxes(orgId, customer, sub.plan, usage.charges);
    return { ...usage, taxesAmountCents: taxes, totalAmountCents: usage.amountCents + taxes };
  }

  /**
   * GET /customers/:id/projected_usage: current usage and its projection to the end of the open
   * period at the organization's now (core/projected.ts). `applyTaxes` false: no taxes.
   */
  async projectedUsage(orgId: number, externalCustomerId: string, externalSubscriptionId: string, applyTaxes = true): Promise<ProjectedUsage> {
    let usage = await this.currentUsage(orgId, externalCustomerId, externalSubscriptionId);
    if (!applyTaxes) usage = { ...usage, taxesAmountCents: 0n, totalAmountCents: usage.amountCents };
    return projectUsage(usage, new Date(this.clock.now(orgId)));
  }

  /**
   * GET /customers/:id/past_usage: the periods before the open one, newest first, as long as a
   * subscription with this external id was active (plan changes included: each period is priced on
   * the plan it ran on). Lago answers from issued invoices; until invoicing exists these are the
   * usage its invoices would carry.
   */
  async pastUsage(
    orgId: number,
    externalCustomerId: string,
    externalSubscriptionId: string,
    query: PastUsageQuery,
  ): Promise<{ items: SubscriptionUsage[]; total: number }> {
    const customer = await this.customers.getByExternalId(orgId, externalCustomerId);
    if (query.billableMetricCode !== undefined && !(await store.metricExists(this.db, orgId, query.billableMetricCode))) {
      throw notFound("billable_metric", query.billableMetricCode);
    }
    const now = new Date(this.clock.now(orgId));
    const current = await this.subscriptions.getByExternalId(orgId, externalSubscriptionId, now);
    // Periods before `before` are past: the open period's start, or, for a terminated subscription
    // (Lago lists its periods too), its termination, so the period the termination closed is included.
    let before: number;
    if (current !== null && current.customerId === customer.id) {
      before = (usageWindowAt(current, current.plan, now)?.from ?? now).getTime();
    } else {
      const ended = await this.subscriptions.terminatedAt(orgId, externalSubscriptionId);
      if (ended === null || ended.getTime() > now.getTime()) throw noActiveSubscription();
      before = ended.getTime();
    }
    const limit = Math.min(query.periodsCount ?? MAX_PAST_PERIODS, MAX_PAST_PERIODS);
    const past: { sub: UsageSubscription; window: UsageWindow }[] = [];
    while (past.length < limit) {
      const at = new Date(before - 1);
      const sub = await this.subscriptions.getByExternalId(orgId, externalSubscriptionId, at);
      if (sub === null || sub.customerId !== customer.id) break;
      const window = usageWindowAt(sub, sub.plan, at);
      if (window === null || window.from.getTime() >= before) break;
      past.push({ sub, window });
      before = window.from.getTime();
    }
    const page = past.slice((query.page - 1) * query.perPage, query.page * query.perPage);
    const items = await Promise.all(page.map((p) => this.usage(orgId, p.sub, p.window, query.billableMetricCode, this.reads ?? this.db)));
    return { items, total: past.length };
  }

  // ---------------------------------------------------------------------------------------------
  // Unmatched events

  listUnmatched(orgId: number, query: store.UnmatchedQuery): Promise<{ events: store.UnmatchedEvent[]; total: number }> {
    return store.listUnmatched(this.reads ?? this.db, orgId, query);
  }

  unmatchedTotals(): Promise<Record<store.UnmatchedReason, number>> {
    return store.unmatchedTotals(this.db);
  }
}

/**
 * Lago prorates recurring sums and unique counts when the charge asks for it (the catalog accepts
 * `prorated` only there, and only for standard, volume and graduated charges).
 */
function isProrated(charge: Charge): boolean {
  const agg = charge.metric.aggregationType;
  return charge.prorated && charge.metric.recurring && (agg === "sum_agg" || agg === "unique_count_agg");
}

const rowsOf = <T>(split: readonly Map<string, T[]>[], bucket: number, group: string): T[] => split[bucket]?.get(group) ?? [];

/**
 * Whether `usageMany` can read the charge: ungrouped count, sum or max (rollups), not prorated,
 * not rated per transaction (percentage).
 */
export function batchableCharge(charge: Charge): boolean {
  let yes = batchableCharges.get(charge);
  if (yes === undefined) {
    yes = isRolledUp(charge.metric.aggregationType) && !isProrated(charge) && !usesEventAmounts(charge) && !new ChargeSlots(charge).grouped;
    batchableCharges.set(charge, yes);
  }
  return yes;
}

// Decided once per charge object (plans are immutable: a changed plan is a new object).
const batchableCharges = new WeakMap<Charge, boolean>();

/** The buckets of an ungrouped rolled-up charge from its partials (one read or a batch's). */
function rolledUpInputs(charge: Charge, slots: ChargeSlots, partials: readonly Partial[]): BucketInput[] {
  const agg = charge.metric.aggregationType;
  if (!isRolledUp(agg)) throw new Error(`${agg} has no rollups`);
  const parts = slots.split(partials.map((p) => ({ ...p, groups: WHOLE })));
  return bucketInputs(slots, slots.groupsOf(parts), (b, g) => combinePartials(agg, rowsOf(parts, b, g)));
}

/** Percentage charges need each transaction's amount (on sum or count metrics; others rate the aggregate). */
function usesEventAmounts(charge: Charge): boolean {
  if (charge.chargeModel === "percentage") return true;
  return charge.filters.some((f) => f.price.model === "percentage");
}

function assertNever(value: never): never {
  throw new Error(`unhandled aggregation ${String(value)}`);
}
