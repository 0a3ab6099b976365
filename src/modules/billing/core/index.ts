// Billing core: when a subscription's billing periods start and end (calendar or anniversary, in the
// customer's timezone, with Lago's month-end clamping) and how much of a period's fee a partial
// period owes or gives back (day-count proration, trials, terminations, upgrades). Pure: no IO, no clock.
export {
  BILLING_TIMES,
  PLAN_INTERVALS,
  type BillingPeriod,
  type BillingSchedule,
  type BillingTime,
  type PlanInterval,
  activeWindow,
  chargeSchedule,
  closedPeriods,
  firstPeriod,
  isBillingTime,
  isPlanInterval,
  monthlyChargePeriods,
  nextPeriod,
  periodAt,
  previousPeriod,
} from "./periods.ts";
export {
  type PlanEnd,
  type TrialOption,
  billedDays,
  proratedFee,
  trialEndsAt,
  unusedCredit,
  unusedDays,
  usedDays,
  usedFee,
} from "./proration.ts";
export { DAY_MS, type Instant, dayOf, dayStart, isTimezone, isoDay } from "./zoned.ts";
