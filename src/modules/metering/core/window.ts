// The spans usage is counted over: a subscription's charge period cut at its start and end, and
// how such a span splits into whole UTC hours (served by rollups) and partial edge hours (served by
// raw events). Customer timezones may be offset by :30 or :45, so a period may start mid-hour.
import {
  type BillingPeriod,
  type BillingTime,
  type PlanInterval,
  chargeSchedule,
  dayOf,
  isoDay,
  periodAt,
} from "../../billing/core/index.ts";

export const HOUR_MS = 3_600_000;

/** A half-open span of instants [from, to); `from` null is unbounded (recurring metrics carry all history). */
export interface Span {
  readonly from: Date | null;
  readonly to: Date;
}

export interface HourSplit {
  /** Whole hours [from, to), both on UTC hour boundaries; null when the span holds none. */
  readonly rollups: Span | null;
  /** The partial hours at either end, read from raw events; at most two spans, in time order. */
  readonly raw: readonly Span[];
}

const floorHour = (ms: number) => Math.floor(ms / HOUR_MS) * HOUR_MS;
const ceilHour = (ms: number) => Math.ceil(ms / HOUR_MS) * HOUR_MS;

/**
 * Splits [from, to) so that rollups and raw events together cover every instant of it exactly once:
 * rollup hours are whole hours inside the span, raw spans are what is left at its edges.
 */
export function splitByHours(span: Span): HourSplit {
  const to = span.to.getTime();
  const from = span.from === null ? null : span.from.getTime();
  if (from !== null && from >= to) return { rollups: null, raw: [] };
  const firstHour = from === null ? null : ceilHour(from);
  const lastHour = floorHour(to);
  if (firstHour !== null && firstHour >= lastHour) return { rollups: null, raw: [span] };
  const raw: Span[] = [];
  if (from !== null && from < firstHour!) raw.push({ from: new Date(from), to: new Date(firstHour!) });
  if (lastHour < to) raw.push({ from: new Date(lastHour), to: new Date(to) });
  return { rollups: { from: firstHour === null ? null : new Date(firstHour), to: new Date(lastHour) }, raw };
}

/** What usage needs to know of a subscription (structurally a subset of the subscriptions module's Subscription). */
export interface SubscriptionTimes {
  readonly subscriptionAt: Date;
  readonly startedAt: Date | null;
  readonly terminatedAt: Date | null;
  readonly billingTime: BillingTime;
  /** The customer's applicable timezone. */
  readonly timezone: string;
}

export interface ChargePlan {
  readonly interval: PlanInterval;
  readonly billChargesMonthly: boolean | null;
}

/**
 * One period of usage: the charge period (full, in the customer's calendar) and the part of it the
 * subscription was active in, [from, to). Lago's `charges_from_datetime`/`charges_to_datetime`.
 */
export interface UsageWindow {
  readonly period: BillingPeriod;
  readonly from: Date;
  /** Exclusive: the period's end, or the termination instant. */
  readonly to: Date;
  /** The day the period's invoice is issued ("YYYY-MM-DD"): the day after its last day (arrears). */
  readonly issuingDate: string;
}

/** The charge period containing `at`, cut at the subscription's start and termination; null when it was not active in it. */
export function usageWindowAt(sub: SubscriptionTimes, plan: ChargePlan, at: Date): UsageWindow | null {
  const schedule = chargeSchedule(
    { subscriptionAt: sub.subscriptionAt, timezone: sub.timezone, interval: plan.interval, billingTime: sub.billingTime },
    plan.billChargesMonthly === true,
  );
  const period = periodAt(schedule, at);
  const start = (sub.startedAt ?? sub.subscriptionAt).getTime();
  const from = Math.max(period.start.getTime(), start);
  const to = Math.min(period.end.getTime(), sub.terminatedAt?.getTime() ?? Number.POSITIVE_INFINITY);
  if (from >= to) return null;
  return { period, from: new Date(from), to: new Date(to), issuingDate: isoDay(dayOf(period.end.getTime(), sub.timezone)) };
}

/**
 * The windows before `current`, newest first, as long as the subscription was active: each is the
 * period holding the instant before the previous window starts. At most `limit`.
 */
export function previousWindows(sub: SubscriptionTimes, plan: ChargePlan, current: UsageWindow, limit: number): UsageWindow[] {
  const out: UsageWindow[] = [];
  const start = (sub.startedAt ?? sub.subscriptionAt).getTime();
  let before = current.from.getTime();
  while (out.length < limit && before > start) {
    const w = usageWindowAt(sub, plan, new Date(before - 1));
    if (w === null) break;
    out.push(w);
    before = w.from.getTime();
  }
  return out;
}
