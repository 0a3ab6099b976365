// Projected usage (Lago's projected_usage): the open period's usage so far, extrapolated to the
// period's end. A metered metric grows with time: each bucket's units are scaled by the period's
// days over the days elapsed (calendar days in the customer's timezone, today and the first day
// counted, as proration counts them) and priced again at the projected units, so tiers and
// packages apply to the projection, not to a scaled amount. A recurring metric (seats, storage)
// is taken to stay where it is (Lago's guide: its projection is its current usage). Percentage
// charges rate each transaction: their amount is scaled like their units. Pure.
import { dayOf } from "../../billing/core/index.ts";
import { rate } from "../../pricing/index.ts";
import { Decimal, toCents } from "../../../shared/money.ts";
import { applyRounding } from "./aggregate.ts";
import type { ChargeUsage, FeeUsage, SubscriptionUsage } from "./usage.ts";
import { chargeUsageJson, usageJson } from "./json.ts";

// Projected units keep this many decimals (a count projected over 31 days is rarely whole).
const UNIT_DECIMALS = 6;

export interface ProjectedUsage {
  readonly usage: SubscriptionUsage;
  /** Days in the window over days elapsed (1 once the period is over). */
  readonly ratio: Decimal;
  /** The charges priced at their projected units, in `usage.charges`' order. */
  readonly projected: readonly ChargeUsage[];
  readonly projectedAmountCents: bigint;
}

/** Days of the window and days of it elapsed at `now`, in the period's timezone, start day included. */
export function projectionDays(usage: SubscriptionUsage, now: Date): { total: number; elapsed: number } {
  const w = usage.window;
  const tz = w.period.timezone;
  const first = dayOf(w.from.getTime(), tz);
  const total = dayOf(w.to.getTime() - 1, tz) - first + 1;
  const elapsed = Math.min(total, Math.max(1, dayOf(now.getTime(), tz) - first + 1));
  return { total, elapsed };
}

function projectFee(charge: ChargeUsage["charge"], fee: FeeUsage, ratio: Decimal, currency: string): FeeUsage {
  const metric = charge.metric;
  const units = applyRounding(fee.units.times(ratio), metric.roundingFunction, metric.roundingPrecision).toDecimalPlaces(UNIT_DECIMALS, Decimal.ROUND_HALF_UP);
  const price = fee.filter?.price ?? charge.price;
  const rated =
    price.model === "percentage" || fee.proratedUnits !== null
      ? { ...fee.rated, amount: fee.rated.amount.times(ratio) }
      : rate(price, { units });
  return {
    ...fee,
    units,
    totalAggregatedUnits: fee.totalAggregatedUnits.times(ratio).toDecimalPlaces(UNIT_DECIMALS, Decimal.ROUND_HALF_UP),
    rated,
    amountCents: BigInt(toCents(rated.amount, currency)),
  };
}

/** The usage projected to the end of its window, as of `now`. */
export function projectUsage(usage: SubscriptionUsage, now: Date): ProjectedUsage {
  const { total, elapsed } = projectionDays(usage, now);
  const ratio = new Decimal(total).div(elapsed);
  const projected = usage.charges.map((c): ChargeUsage => {
    if (c.charge.metric.recurring || ratio.eq(1)) return c;
    const fees = c.fees.map((f) => projectFee(c.charge, f, ratio, usage.currency));
    return {
      ...c,
      fees,
      units: fees.reduce((a, f) => a.plus(f.units), new Decimal(0)),
      totalAggregatedUnits: fees.reduce((a, f) => a.plus(f.totalAggregatedUnits), new Decimal(0)),
      amountCents: fees.reduce((a, f) => a + f.amountCents, 0n),
    };
  });
  return { usage, ratio, projected, projectedAmountCents: projected.reduce((a, c) => a + c.amountCents, 0n) };
}

type Totals = { units: string; amount_cents: number };
type Breakdown = Totals & { filters?: Totals[] };

/** Adds `projected_units` / `projected_amount_cents` to a breakdown from its projected twin (same shape, same order). */
function withProjection<T extends Totals>(current: T, projected: Totals): T & { projected_units: string; projected_amount_cents: number } {
  return { ...current, projected_units: projected.units, projected_amount_cents: projected.amount_cents };
}

/** Lago's CustomerProjectedUsageObject. */
export function projectedUsageJson(p: ProjectedUsage) {
  const base = usageJson(p.usage);
  const currency = p.usage.currency;
  return {
    ...base,
    projected_amount_cents: Number(p.projectedAmountCents),
    charges_usage: p.usage.charges.map((c, i) => {
      const now = chargeUsageJson(c, currency);
      const later = chargeUsageJson(p.projected[i]!, currency);
      return {
        ...withProjection(now, later),
        filters: now.filters.map((f, j) => withProjection(f, later.filters[j]!)),
        grouped_usage: now.grouped_usage.map((g: Breakdown, j) => {
          const twin = later.grouped_usage[j]! as Breakdown;
          return { ...withProjection(g, twin), filters: (g.filters ?? []).map((f, k) => withProjection(f, twin.filters![k]!)) };
        }),
      };
    }),
  };
}
