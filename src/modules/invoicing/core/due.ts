// Which billing instants of a subscription are due, and what each one bills. A billing instant is
// the moment something closes or opens: the subscription's start (a plan paid in advance bills its
// first period then), the end of a charge period (usage in arrears; the plan fee in arrears when
// the plan's period ends too; the next plan period's fee when paid in advance), the end of a free
// trial (an advance fee the trial held back) and the termination. Each instant is billed by exactly
// one invoice: (subscription, instant) is unique in the database, so the job can run any number
// of times. Pure: the subscription's terms and "now" are handed in.
import {
  type BillingPeriod,
  type BillingSchedule,
  type BillingTime,
  type PlanEnd,
  type PlanInterval,
  chargeSchedule,
  periodAt,
} from "../../billing/core/index.ts";
import type { InvoicingReason } from "./types.ts";

/** What fixes a subscription's billing instants. */
export interface BillingTerms {
  readonly subscriptionAt: Date;
  readonly startedAt: Date;
  readonly terminatedAt: Date | null;
  /** How the plan ended, when `terminatedAt` is set: an upgrade hands its day to the next plan. */
  readonly endedBy: PlanEnd;
  readonly billingTime: BillingTime;
  /** The customer's applicable timezone. */
  readonly timezone: string;
  readonly interval: PlanInterval;
  readonly payInAdvance: boolean;
  readonly billChargesMonthly: boolean;
  /** The instant the free trial ends (counted from the first start of the external_id); null: no trial. */
  readonly trialEndsAt: Date | null;
}

/** The subscription fee an instant bills: one plan period, whole or cut at the start or the end. */
export interface FeeSpan {
  readonly timing: "advance" | "arrears";
  readonly period: BillingPeriod;
  /** Lago's `from_datetime`: the period start, or the subscription's start when later. */
  readonly from: Date;
  /** Lago's `to_datetime`: the period's last instant, or the termination. */
  readonly to: Date;
  /** In arrears, when the plan ended inside the period: the days used are billed up to here. */
  readonly endedAt: Date | null;
}

/** The usage an instant bills in arrears: a charge period cut at the subscription's start and end. */
export interface ChargesSpan {
  readonly period: BillingPeriod;
  readonly from: Date;
  /** Exclusive. */
  readonly to: Date;
}

export interface BillingInstant {
  readonly at: Date;
  readonly reason: InvoicingReason;
  readonly fee: FeeSpan | null;
  readonly charges: ChargesSpan | null;
  /**
   * A plan paid in advance that ends inside a period it has paid for: the unused days are owed
   * back (Lago's credit note on termination). Null otherwise.
   */
  readonly unused: { readonly period: BillingPeriod; readonly endedAt: Date } | null;
}

const planScheduleOf = (t: BillingTerms): BillingSchedule => ({
  subscriptionAt: t.subscriptionAt,
  timezone: t.timezone,
  interval: t.interval,
  billingTime: t.billingTime,
});

const ms = (d: Date) => d.getTime();

/**
 * The instant at which an advance-paid plan bills period `p`: its start (or the subscription's),
 * except that a subscription starting in its trial bills its first period when the trial ends
 * (Lago: no invoice at the start of a trial, the rest of the period billed at its end), and not
 * at all when the trial covers that whole period. Later periods bill at their start, prorated for
 * any trial days they still hold (Lago's full_period_amount).
 */
function advanceInstantOf(t: BillingTerms, p: BillingPeriod): number | null {
  const start = Math.max(ms(p.start), ms(t.startedAt));
  if (start === ms(t.startedAt) && t.trialEndsAt !== null && ms(t.trialEndsAt) > start) {
    return ms(t.trialEndsAt) < ms(p.end) ? ms(t.trialEndsAt) : null;
  }
  return start;
}

/** What the instant `at` bills for the subscription; null when it bills nothing. */
export function describeInstant(t: BillingTerms, at: Date): BillingInstant | null {
  const x = ms(at);
  const start = ms(t.startedAt);
  const end = t.terminatedAt === null ? null : ms(t.terminatedAt);
  if (x < start || (end !== null && x > end)) return null;
  const plan = planScheduleOf(t);
  const charge = chargeSchedule(plan, t.billChargesMonthly);
  const isEnd = end !== null && x === end && end > start;

  let charges: ChargesSpan | null = null;
  if (x > start && (isEnd || ms(periodAt(charge, at).start) === x)) {
    const p = periodAt(charge, new Date(x - 1));
    charges = { period: p, from: new Date(Math.max(ms(p.start), start)), to: at };
  }

  let fee: FeeSpan | null = null;
  let unused: BillingInstant["unused"] = null;
  if (!t.payInAdvance) {
    if (x > start && (isEnd || ms(periodAt(plan, at).start) === x)) {
      const p = periodAt(plan, new Date(x - 1));
      const endedInside = isEnd && x < ms(p.end);
      fee = {
        timing: "arrears",
        period: p,
        from: new Date(Math.max(ms(p.start), start)),
        to: endedInside ? at : p.to,
        endedAt: endedInside ? at : null,
      };
    }
  } else {
    const here = periodAt(plan, at);
    if ((end === null || end > x) && advanceInstantOf(t, here) === x) {
      fee = { timing: "advance", period: here, from: new Date(Math.max(ms(here.start), start)), to: here.to, endedAt: null };
    }
    if (isEnd) {
      const p = periodAt(plan, new Date(x - 1));
      if (x < ms(p.end)) unused = { period: p, endedAt: at };
    }
  }

  if (fee === null && charges === null) return null;
  const reason: InvoicingReason = isEnd ? "subscription_terminating" : x === start ? "subscription_starting" : "subscription_periodic";
  return { at, reason, fee, charges, unused };
}

/**
 * The instants due in `(after, through]` (from the start included when `after` is null), oldest
 * first, at most `limit`: what a billing run that last billed `after` must bill now. Running it
 * over `(a, b]` then `(b, c]` yields each instant once.
 */
export function dueInstants(t: BillingTerms, after: Date | null, through: Date, limit = 500): BillingInstant[] {
  const start = ms(t.startedAt);
  const end = t.terminatedAt === null ? Number.POSITIVE_INFINITY : ms(t.terminatedAt);
  const floor = after === null ? Number.NEGATIVE_INFINITY : ms(after);
  const last = Math.min(ms(through), end);
  if (last < start || last <= floor) return [];

  const candidates = new Set<number>([start]);
  if (t.trialEndsAt !== null) candidates.add(ms(t.trialEndsAt));
  if (end !== Number.POSITIVE_INFINITY) candidates.add(end);
  const charge = chargeSchedule(planScheduleOf(t), t.billChargesMonthly);
  // Charge periods tile the plan's, so their ends include every plan period end.
  let boundary = ms(periodAt(charge, new Date(Math.max(floor, start))).end);
  for (let n = 0; boundary <= last && n <= limit; n++) {
    candidates.add(boundary);
    boundary = ms(periodAt(charge, new Date(boundary)).end);
  }

  const out: BillingInstant[] = [];
  for (const x of [...candidates].sort((a, b) => a - b)) {
    if (x <= floor || x < start || x > last) continue;
    const instant = describeInstant(t, new Date(x));
    if (instant !== null) out.push(instant);
    if (out.length >= limit) break;
  }
  return out;
}
