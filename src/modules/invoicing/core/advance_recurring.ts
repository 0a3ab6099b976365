// Charges paid in advance on recurring metrics, the pure part.
// Prorated (Lago's `prorated: true`, guide "Prorated vs Full"; in advance only on standard charges):
// the units an event adds are paid for the days of the charge period they will be there, from the
// event's own day to the period's last day, both included, out of the period's calendar days — a
// seat added on day 10 of a 31-day month pays 22/31 of its price. Days are the customer's calendar
// days (the period's timezone).
// Carried over (recurring sums, and seats: recurring unique counts): the units held when a period
// ends are held when the next one starts; that period bills them in advance on the subscription's
// periodic invoice, and the events of the new period are priced on top of them.
import { dayOf } from "../../billing/core/index.ts";
import type { Charge } from "../../catalog/index.ts";
import type { UsageWindow } from "../../metering/index.ts";
import { type Price, rate } from "../../pricing/index.ts";
import { Decimal, ZERO } from "../../../shared/money.ts";

type ChargeTraits = Pick<Charge, "prorated" | "payInAdvance"> & { metric: Pick<Charge["metric"], "recurring" | "aggregationType"> };

/** Whether the charge's advance fees are prorated (the catalog admits `prorated` in advance only on standard charges of recurring metrics). */
export function proratedInAdvance(charge: ChargeTraits): boolean {
  const agg = charge.metric.aggregationType;
  return charge.prorated && charge.metric.recurring && (agg === "sum_agg" || agg === "unique_count_agg");
}

/**
 * Whether the units a charge paid in advance has billed carry over into the next period as a
 * running sum: a recurring sum (its running total is the metric's value). Recurring unique counts
 * carry their seats instead (billsSeats).
 */
export function carriesOverInAdvance(charge: ChargeTraits): boolean {
  return charge.payInAdvance && charge.metric.recurring && charge.metric.aggregationType === "sum_agg";
}

/**
 * Whether the charge bills seats: paid in advance on a recurring unique count, whose events add a
 * value (`operation_type` "add", the default) or remove it ("remove"). A seat is held from its add
 * to its remove, across periods.
 */
export function billsSeats(charge: ChargeTraits): boolean {
  return charge.payInAdvance && charge.metric.recurring && charge.metric.aggregationType === "unique_count_agg";
}

/** Whether the periodic invoice bills, in advance, the units the charge holds into the next period. */
export function carriedIntoNextPeriod(charge: ChargeTraits): boolean {
  return carriesOverInAdvance(charge) || billsSeats(charge);
}

/** A seat charge's count in one period, bucket and group. */
export interface SeatsHeld {
  /** The seats held now. */
  readonly held: Decimal;
  /** The most seats held at once in the period so far: what its fees (and the carried-over fee) paid for. */
  readonly paid: Decimal;
  readonly eventsCount: number;
}

export const NO_SEATS: SeatsHeld = Object.freeze({ held: ZERO, paid: ZERO, eventsCount: 0 });

/**
 * A period's seats before its first event: those held when the period before it ended, already
 * paid for (the periodic invoice bills them in advance), or none.
 */
export function seatsCarriedIn(heldAtEnd: Decimal | null): SeatsHeld {
  if (heldAtEnd === null || heldAtEnd.lte(0)) return NO_SEATS;
  return { held: heldAtEnd, paid: heldAtEnd, eventsCount: 0 };
}

/**
 * A seat event (Lago's max_aggregation): `change` is +1 for a value added that was not held, -1 for
 * a held value removed, 0 otherwise (an add of a held value, a remove of one not held). The count
 * held moves by it; only going above the most seats held in the period so far costs anything, so a
 * removal is never refunded and a seat removed and added again within the period is paid once.
 * `newlyPaid`: the seats the event pays for (0 or 1).
 */
export function seatChange(before: SeatsHeld, change: -1 | 0 | 1): { after: SeatsHeld; newlyPaid: Decimal } {
  const held = Decimal.max(before.held.plus(change), ZERO);
  const paid = Decimal.max(before.paid, held);
  return { after: { held, paid, eventsCount: before.eventsCount + 1 }, newlyPaid: paid.minus(before.paid) };
}

/**
 * The days from `at`'s day to the window's last day, both included (none after the window, all of
 * it before its first day).
 */
export function daysLeft(window: Pick<UsageWindow, "period" | "from" | "to">, at: Date): number {
  const tz = window.period.timezone;
  const first = Math.max(dayOf(at.getTime(), tz), dayOf(window.from.getTime(), tz));
  const last = dayOf(window.to.getTime() - 1, tz);
  return Math.max(0, last - first + 1);
}

/** The share of the charge period an event at `at` pays for: days left over the period's days, in [0, 1]. */
export function advanceProrationShare(window: Pick<UsageWindow, "period" | "from" | "to">, at: Date): Decimal {
  if (window.period.days <= 0) return ZERO;
  return Decimal.min(new Decimal(daysLeft(window, at)).div(window.period.days), new Decimal(1));
}

/**
 * What the units carried into a period cost in advance: the price of `carried` (after the metric's
 * rounding), prorated over the part of the period the window covers when the charge is prorated.
 * Nothing for no units (a negative running sum holds none).
 */
export function carriedOverAmount(
  price: Price,
  carried: Decimal,
  opts: { prorated: boolean; window: Pick<UsageWindow, "period" | "from" | "to">; round?: (units: Decimal) => Decimal },
): Decimal {
  if (carried.lte(0)) return ZERO;
  const units = opts.round === undefined ? carried : opts.round(carried);
  const amount = Decimal.max(rate(price, { units }).amount, ZERO);
  return opts.prorated ? amount.times(advanceProrationShare(opts.window, opts.window.from)) : amount;
}
