// Usage priced: each bucket of a charge (its filters, then the default bucket) is one fee, or, in a
// bucket with pricing group keys, one fee per group; each fee is rated by the bucket's price and
// rounded once to the currency's minor unit (half-up), as Lago's fees.
import type { Charge, ChargeFilter } from "../../catalog/index.ts";
import { type Price, type ProratablePrice, type Rated, rate, rateProrated } from "../../pricing/index.ts";
import { type Decimal, ZERO, toCents } from "../../../shared/money.ts";
import { type Aggregate, EMPTY, applyRounding } from "./aggregate.ts";
import { type ChargeSlots, type GroupedBy, WHOLE } from "./groups.ts";
import type { Proration } from "./proration.ts";
import type { UsageWindow } from "./window.ts";

/**
 * One bucket's (or group's) aggregate; `eventAmounts` only for percentage charges (each
 * transaction, in stream order); `proration` only for prorated charges (`units` are then the full
 * units, what usage and invoices show; the amount comes from the prorated ones).
 */
export interface BucketAggregate extends Aggregate {
  readonly eventAmounts?: readonly Decimal[];
  readonly proration?: Proration;
}

/** The aggregate of one group of a bucket priced by pricing group keys. */
export interface GroupAggregate extends BucketAggregate {
  readonly groupedBy: GroupedBy;
}

/** What a bucket holds: one aggregate, or one per group when the bucket has pricing group keys. */
export type BucketInput = BucketAggregate | readonly GroupAggregate[];

export interface FeeUsage {
  /** The charge filter the fee prices, null for the default bucket. */
  readonly filter: ChargeFilter | null;
  /** Index of `filter` in the charge's filters; -1 for the default bucket. */
  readonly filterIndex: number;
  /** The group the fee prices, null when its bucket has no pricing group keys. */
  readonly groupedBy: GroupedBy | null;
  /** After the metric's rounding. */
  readonly units: Decimal;
  readonly totalAggregatedUnits: Decimal;
  readonly eventsCount: number;
  /** Prorated charges: the units the amount was computed from; null otherwise. */
  readonly proratedUnits: Decimal | null;
  /** Exact, before rounding. */
  readonly rated: Rated;
  readonly amountCents: bigint;
}

export interface ChargeUsage {
  readonly charge: Charge;
  /** Per filter, in the charge's order, then the default bucket; in a grouped bucket one per group. */
  readonly fees: readonly FeeUsage[];
  readonly units: Decimal;
  readonly totalAggregatedUnits: Decimal;
  readonly eventsCount: number;
  readonly amountCents: bigint;
}

export interface SubscriptionUsage {
  readonly window: UsageWindow;
  readonly currency: string;
  readonly charges: readonly ChargeUsage[];
  readonly amountCents: bigint;
  /** No taxes exist yet: 0. */
  readonly taxesAmountCents: bigint;
  readonly totalAmountCents: bigint;
}

const isProratable = (price: Price): price is ProratablePrice =>
  price.model === "standard" || price.model === "volume" || price.model === "graduated";

function priceFee(charge: Charge, filterIndex: number, agg: BucketAggregate, groupedBy: GroupedBy | null, currency: string): FeeUsage {
  const metric = charge.metric;
  const filter = charge.filters[filterIndex] ?? null;
  const units = applyRounding(agg.units, metric.roundingFunction, metric.roundingPrecision);
  const price = filter?.price ?? charge.price;
  let rated: Rated;
  const p = agg.proration;
  if (p !== undefined && isProratable(price)) {
    rated = rateProrated(price, { fullUnits: units, proratedUnits: p.units, slices: p.slices });
  } else {
    // A prorated charge whose price is none of Lago's prorated models (only reachable through a
    // plan override) bills its prorated units as plain units.
    const billed = p?.units ?? units;
    rated = rate(price, agg.eventAmounts === undefined ? { units: billed } : { units: billed, eventAmounts: agg.eventAmounts });
  }
  return {
    filter,
    filterIndex: filter === null ? -1 : filterIndex,
    groupedBy,
    units,
    totalAggregatedUnits: agg.totalAggregatedUnits,
    eventsCount: agg.eventsCount,
    proratedUnits: p?.units ?? null,
    rated,
    amountCents: BigInt(toCents(rated.amount, currency)),
  };
}

/**
 * Prices the buckets of a charge: `buckets[i]` is filter i's aggregate (or its groups'),
 * `buckets[filters.length]` the default bucket's. A missing bucket has no usage.
 */
export function priceCharge(charge: Charge, buckets: readonly BucketInput[], currency: string): ChargeUsage {
  const fees: FeeUsage[] = [];
  const bucketCount = charge.filters.length + 1;
  for (let i = 0; i < bucketCount; i++) {
    const input: BucketInput = buckets[i] ?? EMPTY;
    if (isGroups(input)) for (const g of input) fees.push(priceFee(charge, i, g, g.groupedBy, currency));
    else fees.push(priceFee(charge, i, input, null, currency));
  }
  let units = ZERO;
  let totalAggregated = ZERO;
  for (const f of fees) {
    units = units.plus(f.units);
    totalAggregated = totalAggregated.plus(f.totalAggregatedUnits);
  }
  return {
    charge,
    fees,
    units,
    totalAggregatedUnits: totalAggregated,
    eventsCount: fees.reduce((n, f) => n + f.eventsCount, 0),
    amountCents: fees.reduce((n, f) => n + f.amountCents, 0n),
  };
}

const isGroups = (input: BucketInput): input is readonly GroupAggregate[] => Array.isArray(input);

/** Lago lists a usage's charges by metric name (case and accents ignored). */
export function chargeOrder(a: Charge, b: Charge): number {
  const key = (c: Charge) => c.metric.name.normalize("NFD").replace(/\p{M}/gu, "").toLowerCase();
  const ka = key(a);
  const kb = key(b);
  return ka < kb ? -1 : ka > kb ? 1 : 0;
}

export function subscriptionUsage(window: UsageWindow, currency: string, charges: readonly ChargeUsage[]): SubscriptionUsage {
  const amount = charges.reduce((n, c) => n + c.amountCents, 0n);
  return { window, currency, charges, amountCents: amount, taxesAmountCents: 0n, totalAmountCents: amount };
}

/**
 * Each bucket's input from per-(bucket, group) aggregates: `groups[b]` lists bucket b's groups
 * (ChargeSlots.groupsOf); a bucket without pricing group keys has the one group WHOLE.
 */
export function bucketInputs(
  slots: ChargeSlots,
  groups: readonly (readonly string[])[],
  aggregate: (bucket: number, group: string) => BucketAggregate,
): BucketInput[] {
  return groups.map((list, b) =>
    slots.isGrouped(b) ? list.map((g) => ({ ...aggregate(b, g), groupedBy: slots.groupedBy(b, g)! })) : aggregate(b, WHOLE),
  );
}
