// Spending minimums and minimum commitments, Lago's two true-ups (guides "Spending minimums" and
// "Commitments"). A charge in arrears with `min_amount_cents` whose period's usage comes to less
// bills a true-up fee for the difference, a separate line tied to the charge's fee. A plan with a
// `minimum_commitment` whose billing period's fees (subscription fee and usage fees, true-ups
// included, before taxes and discounts) come to less bills a `commitment` fee for the difference
// on the invoice that closes the period. Both minimums are prorated by calendar days for a period
// the subscription did not cover whole (a start, a termination or an upgrade inside it). Pure.
import {
  type BillingPeriod,
  billedDays,
  chargeSchedule,
  periodAt,
  usedDays,
} from "../../billing/core/index.ts";
import type { MinimumCommitment } from "../../catalog/index.ts";
import type { ChargeUsage } from "../../metering/index.ts";
import { Decimal, ZERO, fromCents } from "../../../shared/money.ts";
import type { BillingInstant, BillingTerms, ChargesSpan } from "./due.ts";
import { type FeeDraft, centsOf } from "./fees.ts";

/**
 * `amount` prorated to the days of `period` the subscription covered, from `from` through `to`
 * (both days included); an upgrade hands its last day to the next plan. Exact, not rounded.
 */
export function proratedMinimum(amount: Decimal, period: BillingPeriod, from: Date, to: Date, endedBy: "termination" | "upgrade" | null): Decimal {
  const days = endedBy === null ? billedDays(period, from, to) : usedDays(period, from, to, endedBy);
  return amount.times(days).div(period.days);
}

/** The days of a charge span: its start through its last instant, or the termination. */
function chargeSpanMinimum(minCents: bigint, span: ChargesSpan, terms: Pick<BillingTerms, "endedBy">, currency: string): Decimal {
  const min = fromCents(minCents, currency);
  if (span.to.getTime() === span.period.end.getTime()) return proratedMinimum(min, span.period, span.from, span.period.to, null);
  return proratedMinimum(min, span.period, span.from, span.to, terms.endedBy);
}

/**
 * The usage fees of a charge period with a true-up fee after the last fee of each charge in
 * arrears whose spending minimum (prorated to the span) is above what its fees come to. The
 * minimum is compared in minor units, so a charge's lines always add up to its rounded minimum.
 */
export function withTrueUps(
  usage: readonly ChargeUsage[],
  fees: readonly FeeDraft[],
  span: ChargesSpan,
  terms: Pick<BillingTerms, "endedBy">,
  currency: string,
): FeeDraft[] {
  const out: FeeDraft[] = [];
  const byCharge = new Map<number, FeeDraft[]>();
  for (const f of fees) {
    if (f.feeType !== "charge" || f.charge === null) continue;
    const list = byCharge.get(f.charge.id) ?? [];
    list.push(f);
    byCharge.set(f.charge.id, list);
  }
  const trueUps = new Map<FeeDraft, FeeDraft>();
  for (const c of usage) {
    const charge = c.charge;
    const own = byCharge.get(charge.id);
    if (charge.payInAdvance || charge.minAmountCents <= 0n || own === undefined || own.length === 0) continue;
    const minimum = chargeSpanMinimum(charge.minAmountCents, span, terms, currency);
    const minimumCents = centsOf(minimum, currency);
    const usedCents = own.reduce((s, f) => s + f.amountCents, 0n);
    if (usedCents >= minimumCents) continue;
    const used = own.reduce((s, f) => s.plus(f.preciseAmount), ZERO);
    const parent = own[own.length - 1]!;
    const precise = Decimal.max(minimum.minus(used), ZERO);
    const cents = minimumCents - usedCents;
    trueUps.set(parent, {
      ...parent,
      chargeFilterId: null,
      usage: null,
      units: new Decimal(1),
      totalAggregatedUnits: new Decimal(1),
      eventsCount: 0,
      preciseAmount: precise,
      amountCents: cents,
      preciseUnitAmount: precise,
      unitAmountCents: cents,
      item: {
        ...parent.item,
        invoiceDisplayName: `${charge.invoiceDisplayName ?? charge.metric.name} - True-up`,
        filterInvoiceDisplayName: null,
        filters: null,
        groupedBy: null,
      },
      amountDetails: {},
      trueUpOf: parent,
    });
  }
  for (const f of fees) {
    out.push(f);
    const t = trueUps.get(f);
    if (t !== undefined) out.push(t);
  }
  return out;
}

/** The fees a true-up and its charge fee become once ids are drawn: each names the other. */
export function linkTrueUps(fees: readonly FeeDraft[], newId: () => string): FeeDraft[] {
  const ids = new Map<FeeDraft, { own: string; trueUp: string }>();
  for (const f of fees) if (f.trueUpOf !== undefined) ids.set(f.trueUpOf, { own: newId(), trueUp: newId() });
  return fees.map((f) => {
    const asParent = ids.get(f);
    if (asParent !== undefined) return { ...f, lagoId: asParent.own, trueUpFeeLagoId: asParent.trueUp };
    if (f.trueUpOf !== undefined) {
      const p = ids.get(f.trueUpOf)!;
      return { ...f, lagoId: p.trueUp, trueUpParentFeeLagoId: p.own };
    }
    return f;
  });
}

/** The plan period whose commitment an instant settles, and the part of it the subscription covered. */
export interface CommitmentSpan {
  readonly period: BillingPeriod;
  readonly from: Date;
  /** The period's last instant, or the end of the subscription inside it. */
  readonly to: Date;
  /** Set when the subscription ended inside the period. */
  readonly endedBy: "termination" | "upgrade" | null;
}

/**
 * The plan period an instant closes (its end, or the subscription's end inside it), which is when
 * Lago assesses the commitment (in arrears, whatever the plan's fee timing); null for any other instant.
 */
export function commitmentSpanOf(terms: BillingTerms, instant: BillingInstant): CommitmentSpan | null {
  const x = instant.at.getTime();
  const start = terms.startedAt.getTime();
  if (x <= start) return null;
  const plan = chargeSchedule({ subscriptionAt: terms.subscriptionAt, timezone: terms.timezone, interval: terms.interval, billingTime: terms.billingTime }, false);
  const ending = instant.reason === "subscription_terminating";
  if (!ending && periodAt(plan, instant.at).start.getTime() !== x) return null;
  const period = periodAt(plan, new Date(x - 1));
  const from = new Date(Math.max(period.start.getTime(), start));
  const endedInside = ending && x < period.end.getTime();
  return { period, from, to: endedInside ? instant.at : period.to, endedBy: endedInside ? terms.endedBy : null };
}

/** Whether a fee counts toward its period's commitment: subscription and usage fees from inside the period. */
export function countsTowardCommitment(fee: Pick<FeeDraft, "feeType" | "from">, period: BillingPeriod): boolean {
  if (fee.feeType !== "subscription" && fee.feeType !== "charge") return false;
  const t = fee.from.getTime();
  return t >= period.start.getTime() && t < period.end.getTime();
}

/**
 * The commitment fee of a closed plan period: the commitment, prorated to the days covered, less
 * what the period's fees (`billedCents`, minor units) came to; null when they reached it.
 */
export function commitmentFee(
  commitment: MinimumCommitment,
  span: CommitmentSpan,
  billedCents: bigint,
  plan: { readonly code: string },
  currency: string,
): FeeDraft | null {
  const minimum = proratedMinimum(fromCents(commitment.amountCents, currency), span.period, span.from, span.to, span.endedBy);
  const minimumCents = centsOf(minimum, currency);
  if (billedCents >= minimumCents) return null;
  const cents = minimumCents - billedCents;
  const precise = fromCents(cents, currency);
  return {
    feeType: "commitment",
    charge: null,
    chargeFilterId: null,
    from: span.from,
    to: span.to,
    usage: null,
    units: new Decimal(1),
    totalAggregatedUnits: new Decimal(1),
    eventsCount: 0,
    preciseAmount: precise,
    amountCents: cents,
    preciseUnitAmount: precise,
    unitAmountCents: cents,
    payInAdvance: false,
    invoiceable: true,
    item: {
      type: "commitment",
      code: "minimum_commitment",
      name: "Minimum commitment",
      description: null,
      invoiceDisplayName: commitment.invoiceDisplayName ?? "Minimum commitment",
      filterInvoiceDisplayName: null,
      filters: null,
      lagoItemId: commitment.lagoId,
      itemType: "Commitment",
    },
    amountDetails: { plan_code: plan.code, commitment_amount_cents: Number(commitment.amountCents), prorated_commitment_amount_cents: Number(minimumCents) },
  };
}
