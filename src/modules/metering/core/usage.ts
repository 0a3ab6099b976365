// Usage priced: each bucket of a charge (its filters, then the default bucket) is one fee, rated
// by the bucket's price and rounded once to the currency's minor unit (half-up), as Lago's fees.
import type { Charge, ChargeFilter } from "../../catalog/index.ts";
import { type Rated, rate } from "../../pricing/index.ts";
import { type Decimal, toCents } from "../../../shared/money.ts";
import { type Aggregate, EMPTY, applyRounding } from "./aggregate.ts";
import type { UsageWindow } from "./window.ts";

/** One bucket's aggregate; `eventAmounts` only for percentage charges (each transaction, in stream order). */
export interface BucketAggregate extends Aggregate {
  readonly eventAmounts?: readonly Decimal[];
}

export interface FeeUsage {
  /** The charge filter the fee prices, null for the default bucket. */
  readonly filter: ChargeFilter | null;
  /** After the metric's rounding. */
  readonly units: Decimal;
  readonly totalAggregatedUnits: Decimal;
  readonly eventsCount: number;
  /** Exact, before rounding. */
  readonly rated: Rated;
  readonly amountCents: bigint;
}

export interface ChargeUsage {
  readonly charge: Charge;
  /** One per filter, in the charge's order, then the default bucket. */
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

/** Prices the buckets of a charge: `buckets[i]` is filter i's aggregate, `buckets[filters.length]` the default bucket's. */
export function priceCharge(charge: Charge, buckets: readonly BucketAggregate[], currency: string): ChargeUsage {
  const metric = charge.metric;
  const fees: FeeUsage[] = [];
  const bucketCount = charge.filters.length + 1;
  for (let i = 0; i < bucketCount; i++) {
    const filter = charge.filters[i] ?? null;
    const agg: BucketAggregate = buckets[i] ?? EMPTY;
    const units = applyRounding(agg.units, metric.roundingFunction, metric.roundingPrecision);
    const price = filter?.price ?? charge.price;
    const rated = rate(price, agg.eventAmounts === undefined ? { units } : { units, eventAmounts: agg.eventAmounts });
    fees.push({
      filter,
      units,
      totalAggregatedUnits: agg.totalAggregatedUnits,
      eventsCount: agg.eventsCount,
      rated,
      amountCents: BigInt(toCents(rated.amount, currency)),
    });
  }
  let units = fees[0]!.units;
  let totalAggregated = fees[0]!.totalAggregatedUnits;
  for (const f of fees.slice(1)) {
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
