import type { Decimal } from "../../../shared/money.ts";
import type { BillingPeriod } from "./periods.ts";
import { type Instant, dayFromIso, dayOf, dayStart, instantMs } from "./zoned.ts";

// Day-count proration as Lago documents it (guide "Assign a plan to a customer" > "Billing cycles"):
// fee × days billed / days in the period, counting whole calendar days of the customer's timezone,
// the first and the last day included: from August 10th, a $50 monthly plan owes 22 × $50 / 31.
// Amounts are exact to 40 significant digits (a share like 22/31 has no finite decimal form) and
// are not rounded here: fees round once, to the currency's minor unit, downstream.

export interface TrialOption {
  /** End of the free trial (`trialEndsAt`): days before the day containing it are not billed. */
  readonly trialEndsAt?: Instant | undefined;
}

/**
 * Why a plan stops mid-period. A termination bills its own day: Lago credits from the next day
 * (CreditNotes::CreateFromTermination). An upgrade hands its day to the new plan, which bills it:
 * Lago's guide (Upgrades and downgrades) bills Plan A for Jan 1–14 and Plan B for Jan 15–31 on a
 * Jan 15 upgrade.
 */
export type PlanEnd = "termination" | "upgrade";

/** The first day the trial no longer covers: `trialDays` whole days after the subscription's own day. */
export function trialEndsAt(subscriptionAt: Instant, trialDays: number, timezone: string): Date {
  // Lago's trial_period is "a number of days"; the guide's example (April 1st, 5 days) bills from April 6th.
  if (!Number.isSafeInteger(trialDays) || trialDays < 0) throw new RangeError(`trial days must be a whole number ≥ 0, got ${trialDays}`);
  return new Date(dayStart(dayOf(instantMs(subscriptionAt), timezone) + trialDays, timezone));
}

/** Days of `period` from the day of `activeFrom` through the day of `activeTo` (both included), trial days left out. */
export function billedDays(period: BillingPeriod, activeFrom: Instant, activeTo: Instant, options: TrialOption = {}): number {
  return paidDays(period, dayIn(period, activeFrom), dayIn(period, activeTo), options);
}

/** The part of a period's fee for the days the subscription was active (and out of trial). */
export function proratedFee(
  amount: Decimal,
  period: BillingPeriod,
  activeFrom: Instant,
  activeTo: Instant,
  options: TrialOption = {},
): Decimal {
  return share(amount, billedDays(period, activeFrom, activeTo, options), period);
}

/** Days a plan ending at `endedAt` was used in the period, from `activeFrom` (its start, or the period's). */
export function usedDays(
  period: BillingPeriod,
  activeFrom: Instant,
  endedAt: Instant,
  end: PlanEnd,
  options: TrialOption = {},
): number {
  return paidDays(period, dayIn(period, activeFrom), lastUsedDay(period, endedAt, end), options);
}

/** The fee in arrears of a plan that ends mid-period (terminated or upgraded away from). */
export function usedFee(
  amount: Decimal,
  period: BillingPeriod,
  activeFrom: Instant,
  endedAt: Instant,
  end: PlanEnd,
  options: TrialOption = {},
): Decimal {
  return share(amount, usedDays(period, activeFrom, endedAt, end, options), period);
}

/** Days of the period after a plan ended that its advance payment covered (trial days were never paid). */
export function unusedDays(period: BillingPeriod, endedAt: Instant, end: PlanEnd, options: TrialOption = {}): number {
  return paidDays(period, lastUsedDay(period, endedAt, end) + 1, Number.POSITIVE_INFINITY, options);
}

/** The unused part of a fee paid in advance, to credit when the plan is terminated or upgraded. */
export function unusedCredit(
  amount: Decimal,
  period: BillingPeriod,
  endedAt: Instant,
  end: PlanEnd,
  options: TrialOption = {},
): Decimal {
  return share(amount, unusedDays(period, endedAt, end, options), period);
}

function dayIn(period: BillingPeriod, at: Instant): number {
  return dayOf(instantMs(at), period.timezone);
}

function lastUsedDay(period: BillingPeriod, endedAt: Instant, end: PlanEnd): number {
  return dayIn(period, endedAt) - (end === "upgrade" ? 1 : 0);
}

/** Days in `[first, last]` ∩ the period ∩ after the trial; never negative. */
function paidDays(period: BillingPeriod, first: number, last: number, { trialEndsAt: trialEnd }: TrialOption): number {
  const from = Math.max(first, dayFromIso(period.fromDate), trialEnd === undefined ? first : dayIn(period, trialEnd));
  const to = Math.min(last, dayFromIso(period.toDate));
  return Math.max(0, to - from + 1);
}

function share(amount: Decimal, days: number, period: BillingPeriod): Decimal {
  // Subscription fees are never negative; a negative one here is a bug upstream, not a credit.
  if (!amount.isFinite() || amount.lt(0)) throw new RangeError(`a fee must be a finite amount ≥ 0, got ${amount.toString()}`);
  // Multiply first: amount × days is exact, so a whole period returns exactly `amount`.
  return amount.times(days).div(period.days);
}
