// The subscription lifecycle as pure rules: the status a new subscription starts in, whether a plan
// change is an upgrade or a downgrade, when a downgrade takes over, and the transitions time makes
// due (a future subscription starting, `ending_at` passing, a scheduled downgrade). Time and the
// customer's timezone are handed in; nothing here reads a clock.
import {
  type BillingPeriod,
  type BillingSchedule,
  type BillingTime,
  type PlanInterval,
  chargeSchedule,
  dayOf,
  dayStart,
  isoDay,
  periodAt,
} from "../../billing/core/index.ts";
import type { SubscriptionState, SubscriptionStatus } from "./types.ts";

/**
 * The instant a subscription created for `subscriptionAt` counts as started: the first instant of
 * its day in the customer's timezone. Lago decides by calendar day, not by instant: a subscription
 * whose `subscription_at` is later today is `active` at once (Subscriptions::CreateService
 * `handle_today_subscription`), and a future one is activated by a job on its day
 * (Subscriptions::ActivateAllPendingService compares dates in the customer's timezone).
 */
export function activationAt(subscriptionAt: Date, timezone: string): Date {
  return new Date(dayStart(dayOf(subscriptionAt.getTime(), timezone), timezone));
}

/** `pending` when `subscriptionAt` falls on a later day than `now` in the customer's timezone, else `active`. */
export function initialStatus(subscriptionAt: Date, now: Date, timezone: string): Extract<SubscriptionStatus, "pending" | "active"> {
  return activationAt(subscriptionAt, timezone).getTime() > now.getTime() ? "pending" : "active";
}

const PERIODS_PER_YEAR: Readonly<Record<PlanInterval, bigint>> = { weekly: 52n, monthly: 12n, quarterly: 4n, yearly: 1n };

/** Lago's `Plan#yearly_amount_cents`: plans of different intervals compared on a yearly basis. */
export function yearlyAmountCents(plan: { readonly interval: PlanInterval; readonly amountCents: bigint }): bigint {
  return plan.amountCents * PERIODS_PER_YEAR[plan.interval];
}

export type PlanChange = "unchanged" | "upgrade" | "downgrade";

export interface PlanChoice {
  readonly planId: number;
  /** Whether the subscription runs on the plan with `plan_overrides`. */
  readonly overridden: boolean;
  /** The effective plan (overrides applied). */
  readonly plan: { readonly interval: PlanInterval; readonly amountCents: bigint };
}

/**
 * Lago's rule (Subscriptions::CreateService `upgrade?` / `downgrade?`): the same plan changes
 * nothing; otherwise a new plan whose yearly amount is at least the current one's is an upgrade
 * (applied now), anything cheaper a downgrade (applied at the end of the current period). A
 * subscription running on overrides runs on its own plan in Lago (a child plan), so asking for the
 * plain plan again is a change too.
 */
export function planChange(current: PlanChoice, requested: PlanChoice): PlanChange {
  if (requested.planId === current.planId && !current.overridden) return "unchanged";
  return yearlyAmountCents(requested.plan) >= yearlyAmountCents(current.plan) ? "upgrade" : "downgrade";
}

/** What fixes a subscription's periods: its `subscription_at` (anniversary anchor), billing time and plan interval. */
export function scheduleOf(
  s: { readonly subscriptionAt: Date; readonly billingTime: BillingTime },
  interval: PlanInterval,
  timezone: string,
): BillingSchedule {
  return { subscriptionAt: s.subscriptionAt, timezone, interval, billingTime: s.billingTime };
}

/**
 * When a downgrade asked for at `now` takes over: the end of the current subscription's billing
 * period (Lago: `next_end_of_period` + 1 day, the first day of the next period).
 */
export function downgradeAt(schedule: BillingSchedule, now: Date): Date {
  return periodAt(schedule, now).end;
}

/** Lago's `downgrade_plan_date`: the day the downgrade takes over, in the customer's calendar. */
export function downgradePlanDate(at: Date, timezone: string): string {
  return isoDay(dayOf(at.getTime(), timezone));
}

type Transition<T extends SubscriptionState> = { readonly at: number; readonly apply: (rows: Map<number, T>) => void };

/**
 * The transitions due by `now` among the subscriptions sharing one external_id (one customer's
 * active and pending ones), applied in time order; returns the subscriptions that changed. A future
 * subscription becomes active on its day (started at its `subscription_at`); an active one whose
 * `ending_at` has passed is terminated then, canceling the downgrade it had scheduled (Lago's
 * TerminateService); a scheduled downgrade terminates the current subscription at `downgradeAt` and
 * starts the pending one at the same instant (TerminateService#terminate_and_start_next).
 * Idempotent: settling the result again at the same `now` changes nothing.
 */
export function settle<T extends SubscriptionState>(rows: readonly T[], now: Date, timezone: string): T[] {
  const current = new Map(rows.map((r) => [r.id, r]));
  const nowMs = now.getTime();
  for (let guard = 0; guard <= rows.length * 3; guard++) {
    const next = earliestDue([...current.values()], nowMs, timezone);
    if (next === null) break;
    next.apply(current);
  }
  return rows.map((r) => current.get(r.id)!).filter((r, i) => r !== rows[i]);
}

function earliestDue<T extends SubscriptionState>(rows: readonly T[], nowMs: number, timezone: string): Transition<T> | null {
  const due: Transition<T>[] = [];
  const byPrevious = new Map(rows.filter((r) => r.status === "pending" && r.previousId !== null).map((r) => [r.previousId!, r]));
  for (const r of rows) {
    if (r.status === "pending" && r.previousId === null) {
      const at = activationAt(r.subscriptionAt, timezone).getTime();
      if (at <= nowMs) due.push({ at, apply: (m) => m.set(r.id, { ...r, status: "active", startedAt: r.subscriptionAt }) });
    }
    if (r.status !== "active") continue;
    const successor = byPrevious.get(r.id);
    if (r.endingAt !== null && r.endingAt.getTime() <= nowMs) {
      const ended = r.endingAt;
      due.push({
        at: ended.getTime(),
        apply: (m) => {
          m.set(r.id, { ...r, status: "terminated", terminatedAt: ended });
          if (successor !== undefined) m.set(successor.id, { ...successor, status: "canceled", canceledAt: ended });
        },
      });
    }
    if (successor !== undefined && successor.downgradeAt !== null && successor.downgradeAt.getTime() <= nowMs) {
      const at = successor.downgradeAt;
      due.push({
        // An `ending_at` at the very instant of the switch wins: the subscription ends, nothing follows it.
        at: at.getTime() + 0.5,
        apply: (m) => {
          m.set(r.id, { ...r, status: "terminated", terminatedAt: at });
          m.set(successor.id, { ...successor, status: "active", startedAt: at });
        },
      });
    }
  }
  if (due.length === 0) return null;
  return due.reduce((a, b) => (b.at < a.at ? b : a));
}

/** Lago's `current_billing_period_started_at` / `_ending_at`, as instants. */
export interface PeriodBounds {
  readonly from: Date;
  readonly to: Date;
}

/**
 * The billing period usage is counted in (Lago's `charges_from_datetime`/`charges_to_datetime`):
 * for an active subscription the period containing now (or its start, when that is later today),
 * cut at its start; for a terminated one its last period, cut at both ends; for a pending one its
 * first period. Charges follow the plan's `bill_charges_monthly`. Canceled ones have none.
 */
export function currentBillingPeriod(
  s: SubscriptionState & { readonly billingTime: BillingTime },
  plan: { readonly interval: PlanInterval; readonly billChargesMonthly: boolean | null },
  timezone: string,
  now: Date,
): PeriodBounds | null {
  const schedule = chargeSchedule(scheduleOf(s, plan.interval, timezone), plan.billChargesMonthly === true);
  const cut = (p: BillingPeriod, start: Date, end?: Date): PeriodBounds => ({
    from: new Date(Math.max(p.from.getTime(), start.getTime())),
    to: new Date(Math.min(p.to.getTime(), end?.getTime() ?? Number.POSITIVE_INFINITY)),
  });
  switch (s.status) {
    case "canceled":
      return null;
    case "pending": {
      const start = s.downgradeAt ?? s.subscriptionAt;
      return cut(periodAt(schedule, start), start);
    }
    case "active": {
      const start = s.startedAt ?? s.subscriptionAt;
      return cut(periodAt(schedule, new Date(Math.max(now.getTime(), start.getTime()))), start);
    }
    case "terminated": {
      const start = s.startedAt ?? s.subscriptionAt;
      const end = s.terminatedAt ?? now;
      // The last period the subscription was active in: the one holding its last instant before termination.
      const last = new Date(Math.max(start.getTime(), end.getTime() - 1));
      return cut(periodAt(schedule, last), start, end);
    }
  }
}

const DAY = 86_400_000;

/**
 * Lago's `trial_ended_at`: set once the trial is over, null while it runs or when the plan has
 * none. The trial counts `trial_period` days (fractions allowed) from the first start of any
 * subscription with this external_id (Lago's `initial_started_at`), so a plan change keeps the
 * trial clock running. A subscription terminated before its trial ended never ended a trial.
 */
export function trialEndedAt(
  s: Pick<SubscriptionState, "status" | "terminatedAt">,
  trialPeriod: number | null,
  initialStartedAt: Date | null,
  now: Date,
): Date | null {
  if (trialPeriod === null || !(trialPeriod > 0) || initialStartedAt === null) return null;
  if (s.status === "pending" || s.status === "canceled") return null;
  const end = initialStartedAt.getTime() + Math.round(trialPeriod * DAY);
  const until = s.status === "terminated" && s.terminatedAt !== null ? Math.min(now.getTime(), s.terminatedAt.getTime()) : now.getTime();
  return end <= until ? new Date(end) : null;
}
