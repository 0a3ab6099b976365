import {
  type Instant,
  civilOf,
  dayNumber,
  dayOf,
  dayStart,
  daysInMonth,
  isTimezone,
  instantMs,
  isoDay,
} from "./zoned.ts";

export const PLAN_INTERVALS = ["weekly", "monthly", "quarterly", "yearly"] as const;
export type PlanInterval = (typeof PLAN_INTERVALS)[number];

export const BILLING_TIMES = ["calendar", "anniversary"] as const;
export type BillingTime = (typeof BILLING_TIMES)[number];

export function isPlanInterval(value: unknown): value is PlanInterval {
  return typeof value === "string" && (PLAN_INTERVALS as readonly string[]).includes(value);
}

export function isBillingTime(value: unknown): value is BillingTime {
  return typeof value === "string" && (BILLING_TIMES as readonly string[]).includes(value);
}

/** What fixes a subscription's billing periods. */
export interface BillingSchedule {
  /** Lago's `subscription_at`; its day in `timezone` anchors anniversary periods. */
  readonly subscriptionAt: Instant;
  /** The customer's IANA timezone: every period starts at midnight there. */
  readonly timezone: string;
  readonly interval: PlanInterval;
  readonly billingTime: BillingTime;
}

/**
 * One billing period: whole days of the customer's calendar. `from`/`to` are Lago's
 * `from_datetime`/`to_datetime` (00:00:00.000 of the first day, 23:59:59.999 of the last);
 * `[start, end)` is the same span half-open, for queries. `end` is the next period's `start`.
 */
export interface BillingPeriod {
  readonly timezone: string;
  /** First day, "YYYY-MM-DD" in the customer's calendar. */
  readonly fromDate: string;
  /** Last day, included. */
  readonly toDate: string;
  /** Calendar days in the period: the proration denominator. Not hours / 24 (DST days are 23 or 25 h). */
  readonly days: number;
  readonly from: Date;
  readonly to: Date;
  readonly start: Date;
  readonly end: Date;
}

// Calendar periods are anniversary periods with a fixed anchor: a Monday for weeks (1970-01-05),
// January 1st for months, quarters (Jan/Apr/Jul/Oct) and years.
const CALENDAR_WEEK_ANCHOR = 4;
const CALENDAR_MONTH_ANCHOR = 0;

const MONTHS_PER: Readonly<Record<Exclude<PlanInterval, "weekly">, number>> = { monthly: 1, quarterly: 3, yearly: 12 };

function anchorDay(schedule: BillingSchedule): number {
  if (schedule.billingTime === "calendar") {
    return schedule.interval === "weekly" ? CALENDAR_WEEK_ANCHOR : CALENDAR_MONTH_ANCHOR;
  }
  return dayOf(instantMs(schedule.subscriptionAt), schedule.timezone);
}

/**
 * The `n`-th period boundary after the anchor's month, every `step` months, on the anchor's day of
 * month clamped to the month's length. Clamping is per month, never carried over: a Jan 31
 * anniversary gives Jan 31, Feb 28 (29), Mar 31, Apr 30..., and a Feb 29 yearly one Feb 28 in
 * common years. Lago's guide shows only the plain case ("August 10th to September 9th"); the
 * clamping is lago-api's `build_date` (Subscriptions::DatesService).
 */
function monthBoundary(anchor: number, step: number, n: number): number {
  const { year, month, day } = civilOf(anchor);
  const index = year * 12 + (month - 1) + n * step;
  const y = Math.floor(index / 12);
  const m = index - y * 12 + 1;
  return dayNumber(y, m, Math.min(day, daysInMonth(y, m)));
}

/** The days `[first, end)` of the period that contains `day`. */
function periodDays(interval: PlanInterval, anchor: number, day: number): readonly [number, number] {
  if (interval === "weekly") {
    const first = day - ((((day - anchor) % 7) + 7) % 7);
    return [first, first + 7];
  }
  const step = MONTHS_PER[interval];
  const a = civilOf(anchor);
  const d = civilOf(day);
  let n = Math.floor((d.year * 12 + d.month - (a.year * 12 + a.month)) / step);
  // The boundary in the day's own month may still be ahead of it (the 10th, seen from the 5th).
  if (monthBoundary(anchor, step, n) > day) n -= 1;
  return [monthBoundary(anchor, step, n), monthBoundary(anchor, step, n + 1)];
}

function period(timezone: string, first: number, end: number): BillingPeriod {
  const start = dayStart(first, timezone);
  const endMs = dayStart(end, timezone);
  return {
    timezone,
    fromDate: isoDay(first),
    toDate: isoDay(end - 1),
    days: end - first,
    from: new Date(start),
    to: new Date(endMs - 1),
    start: new Date(start),
    end: new Date(endMs),
  };
}

function checkSchedule(schedule: BillingSchedule): void {
  if (!isTimezone(schedule.timezone)) throw new RangeError(`unknown timezone ${schedule.timezone}`);
  if (!isPlanInterval(schedule.interval)) throw new RangeError(`unknown plan interval ${String(schedule.interval)}`);
  if (!isBillingTime(schedule.billingTime)) throw new RangeError(`unknown billing time ${String(schedule.billingTime)}`);
}

/** The full billing period containing `at` (not cut at the subscription's start or end). */
export function periodAt(schedule: BillingSchedule, at: Instant): BillingPeriod {
  checkSchedule(schedule);
  const { timezone, interval } = schedule;
  const anchor = anchorDay(schedule);
  const ms = instantMs(at);
  let [first, end] = periodDays(interval, anchor, dayOf(ms, timezone));
  // Periods are half-open spans of instants. Where a zone turned its clock back across midnight
  // (America/Goose_Bay until 2011, at 00:01), an instant can still show a day whose period has
  // ended; clock shifts are shorter than a day, so it is at most one period off.
  if (dayStart(end, timezone) <= ms) [first, end] = periodDays(interval, anchor, end);
  else if (dayStart(first, timezone) > ms) [first, end] = periodDays(interval, anchor, first - 1);
  const found = period(timezone, first, end);
  if (!(found.start.getTime() <= ms && ms < found.end.getTime())) {
    throw new Error(`no ${interval} period of ${timezone} contains ${new Date(ms).toISOString()}`);
  }
  return found;
}

export function nextPeriod(schedule: BillingSchedule, current: BillingPeriod): BillingPeriod {
  return periodAt(schedule, current.end);
}

export function previousPeriod(schedule: BillingSchedule, current: BillingPeriod): BillingPeriod {
  return periodAt(schedule, new Date(current.start.getTime() - 1));
}

/** The period the subscription starts in; its fee is prorated unless it starts on the period's first day. */
export function firstPeriod(schedule: BillingSchedule): BillingPeriod {
  return periodAt(schedule, schedule.subscriptionAt);
}

/**
 * The periods that end in `(after, through]` and in which the subscription was active: what a
 * billing job that last ran at `after` must close when it runs at `through`. Consecutive runs
 * over `(a, b]` then `(b, c]` close each period exactly once.
 */
export function closedPeriods(schedule: BillingSchedule, after: Instant, through: Instant): BillingPeriod[] {
  const throughMs = instantMs(through);
  const fromMs = Math.max(instantMs(after), instantMs(schedule.subscriptionAt));
  const closed: BillingPeriod[] = [];
  for (let p = periodAt(schedule, new Date(fromMs)); p.end.getTime() <= throughMs; p = nextPeriod(schedule, p)) {
    closed.push(p);
  }
  return closed;
}

/**
 * The schedule charges (usage) follow. With `bill_charges_monthly`, a yearly plan's charges are
 * billed every month while its subscription fee stays yearly (Lago guide, "Plan model" > "Plan
 * interval"; changelog "Invoice monthly charges for a plan paid yearly"); we extend it to
 * quarterly plans. Monthly charge periods keep the subscription's calendar or anniversary day,
 * so they tile the plan's period exactly. Weekly and monthly plans ignore the flag.
 */
export function chargeSchedule(schedule: BillingSchedule, billChargesMonthly: boolean): BillingSchedule {
  if (!billChargesMonthly || schedule.interval === "weekly" || schedule.interval === "monthly") return schedule;
  return { ...schedule, interval: "monthly" };
}

/** The monthly charge periods that make up a quarterly or yearly period, in order (a shorter plan's period is its own). */
export function monthlyChargePeriods(schedule: BillingSchedule, planPeriod: BillingPeriod): BillingPeriod[] {
  const monthly = chargeSchedule(schedule, true);
  const endMs = planPeriod.end.getTime();
  const months: BillingPeriod[] = [];
  for (let p = periodAt(monthly, planPeriod.start); p.start.getTime() < endMs; p = nextPeriod(monthly, p)) {
    months.push(p);
  }
  return months;
}

/**
 * The part of a period the subscription was active in, as Lago's invoice boundaries: from the later
 * of the period start and `activeFrom` (the subscription's start) to the earlier of the period's
 * last instant and `activeTo` (its termination, included). Null when they do not overlap.
 */
export function activeWindow(
  current: BillingPeriod,
  activeFrom: Instant,
  activeTo?: Instant,
): { readonly from: Date; readonly to: Date } | null {
  const from = Math.max(current.from.getTime(), instantMs(activeFrom));
  const to = Math.min(current.to.getTime(), activeTo === undefined ? Number.POSITIVE_INFINITY : instantMs(activeTo));
  return from <= to ? { from: new Date(from), to: new Date(to) } : null;
}
