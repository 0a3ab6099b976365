// Charges paid in advance (Lago's `pay_in_advance` charges), the pure part: what one event adds to
// a charge's usage of its period, and the fee that addition costs — the charge's price of the
// period's usage with the event less its price without it, so a period's advance fees add up to
// the price of its whole usage (as current usage shows it). The catalog admits advance charges on
// count, sum and unique count metrics with any charge model but volume (core/charge.ts there).
import type { AggregationType } from "../../catalog/index.ts";
import type { ChargeUsage, SubscriptionUsage } from "../../metering/index.ts";
import { type PercentagePrice, type Price, rate, ratePercentage } from "../../pricing/index.ts";
import { Decimal, ZERO } from "../../../shared/money.ts";

/** What a charge has billed in advance so far in one period, bucket and group. */
export interface AdvanceRunning {
  readonly units: Decimal;
  readonly eventsCount: number;
  /** Percentage charges: the sum of the transactions' amounts so far (negatives as 0), for the free allowance. */
  readonly amountsTotal: Decimal;
}

export const NO_ADVANCE_USAGE: AdvanceRunning = Object.freeze({ units: ZERO, eventsCount: 0, amountsTotal: ZERO });

/** What the store reads of an event for its metric (SQL `metering_value` and the raw property). */
export interface AdvanceEventFacts {
  readonly aggregation: AggregationType;
  /** The metric's numeric value of the event (sum); null when it has none. */
  readonly value: Decimal | null;
  /** Unique count: whether the event's value is new in the period (its add counts). */
  readonly uniqueIsNew: boolean;
  /** Unique count: Lago's `operation_type` "remove". */
  readonly removes: boolean;
}

/**
 * What the event adds: the units (1 for a count, the value for a sum, 1 for a value new to a unique
 * count) and its transaction amount for percentage charges. null when the metric does not count the
 * event at all (a sum without a numeric value), so it costs nothing and changes nothing.
 * A unique-count removal changes nothing in advance: it was paid for and is never refunded here.
 */
export function advanceIncrement(e: AdvanceEventFacts): { units: Decimal; amount: Decimal } | null {
  switch (e.aggregation) {
    case "count_agg":
      return { units: new Decimal(1), amount: new Decimal(1) };
    case "sum_agg":
      return e.value === null ? null : { units: e.value, amount: e.value };
    case "unique_count_agg":
      if (e.removes) return null;
      return { units: e.uniqueIsNew ? new Decimal(1) : ZERO, amount: new Decimal(1) };
    default:
      // max, latest and weighted sums are refused in advance by the catalog.
      return null;
  }
}

export interface AdvanceFee {
  readonly after: AdvanceRunning;
  /** Exact, never negative: usage that lowers the price is not refunded in advance. */
  readonly amount: Decimal;
}

/**
 * The fee of one increment over what the period already billed, and the period's usage after it.
 * `round`: the metric's rounding of units, applied to the period's usage before pricing it (as
 * current usage prices it).
 */
export function advanceFee(
  price: Price,
  before: AdvanceRunning,
  increment: { units: Decimal; amount: Decimal },
  round: (units: Decimal) => Decimal = (u) => u,
): AdvanceFee {
  const after: AdvanceRunning = {
    units: before.units.plus(increment.units),
    eventsCount: before.eventsCount + 1,
    amountsTotal: before.amountsTotal.plus(Decimal.max(increment.amount, ZERO)),
  };
  const amount =
    price.model === "percentage"
      ? ratePercentage(remainingAllowance(price, before), [increment.amount]).amount
      : rate(price, { units: round(after.units) }).amount.minus(rate(price, { units: round(before.units) }).amount);
  return { after, amount: Decimal.max(amount, ZERO) };
}

/**
 * A percentage price as it stands for the next transaction: the free transactions and free amount
 * left after `before`'s transactions. The percentage model rates transactions one by one in order
 * and a transaction's cost depends only on the allowance left, so rating the next one alone against
 * what is left is exactly rate(all with it) − rate(all before it).
 */
export function remainingAllowance(price: PercentagePrice, before: AdvanceRunning): PercentagePrice {
  const freeEvents = price.free_units_per_events;
  const freeAmount = price.free_units_per_total_aggregation;
  if (freeEvents === null && freeAmount === null) return price;
  // The allowance lasts while both limits hold for every transaction so far.
  const eventsLeft = freeEvents === null ? null : freeEvents - before.eventsCount;
  const amountLeft = freeAmount === null ? null : freeAmount.minus(before.amountsTotal);
  const open = (eventsLeft === null || eventsLeft > 0) && (amountLeft === null || amountLeft.gt(0));
  return {
    ...price,
    free_units_per_events: open ? eventsLeft : null,
    free_units_per_total_aggregation: open ? amountLeft : null,
  };
}

/** The charges an arrears invoice bills: advance charges are billed when their events arrive. */
export function arrearsCharges(charges: readonly ChargeUsage[]): ChargeUsage[] {
  return charges.filter((c) => !c.charge.payInAdvance);
}

/** A usage without its advance charges (late-event adjustments of arrears periods). */
export function withoutAdvanceCharges(usage: SubscriptionUsage): SubscriptionUsage {
  if (!usage.charges.some((c) => c.charge.payInAdvance)) return usage;
  return { ...usage, charges: arrearsCharges(usage.charges) };
}
