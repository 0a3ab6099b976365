// Fees: the lines of an invoice. The subscription fee is the plan's amount prorated by days (trial
// days left out); usage fees are the priced buckets of each charge (one per filter, then the
// default bucket; one per group in a bucket with pricing group keys), exactly as current usage
// shows them. Every fee is rounded once, half-up, to its
// currency's minor unit; the exact amount is kept as Lago's `precise_*` fields.
import { type PlanEnd, proratedFee, unusedCredit, usedFee } from "../../billing/core/index.ts";
import { ALL_FILTER_VALUES, type Charge, type FilterValues } from "../../catalog/index.ts";
import type { ChargeUsage } from "../../metering/index.ts";
import { Decimal, ZERO, fromCents, minorScale, roundToMinor } from "../../../shared/money.ts";
import type { BillingInstant, BillingTerms, ChargesSpan, FeeSpan } from "./due.ts";
import type { FeeType } from "./types.ts";

/** What an invoice line shows of what it bills (Lago's FeeObject `item`). */
export interface FeeItem {
  readonly type: FeeType;
  readonly code: string;
  readonly name: string;
  readonly description: string | null;
  readonly invoiceDisplayName: string;
  readonly filterInvoiceDisplayName: string | null;
  readonly filters: FilterValues | null;
  /** The subscription's lago_id (subscription fee) or the billable metric's (charge fee). */
  readonly lagoItemId: string;
  readonly itemType: "Subscription" | "BillableMetric" | "AddOn" | "Commitment" | "WalletTransaction";
  /** Lago's `grouped_by`: the group a charge fee prices (pricing group keys); absent or null otherwise. */
  readonly groupedBy?: Readonly<Record<string, string | null>> | null;
}

/** Which of its charge's buckets a usage fee prices: the events behind it are found again from this. */
export interface FeeBucket {
  readonly metricId: number;
  /** The charge's filters as billed, `__ALL_FILTER_VALUES__` expanded to the metric's values. */
  readonly filters: readonly FilterValues[];
  /** Index into `filters`; -1 for the default bucket (events no filter matches). */
  readonly index: number;
}

/** A fee computed, not yet stored. */
export interface FeeDraft {
  readonly feeType: FeeType;
  readonly charge: { readonly id: number; readonly lagoId: string } | null;
  readonly chargeFilterId: number | null;
  /** Lago's `from_date` / `to_date`: the period billed (to: its last instant). */
  readonly from: Date;
  readonly to: Date;
  /** Usage fees: the events window [from, to). */
  readonly usage: { readonly from: Date; readonly to: Date; readonly bucket: FeeBucket } | null;
  readonly units: Decimal;
  readonly totalAggregatedUnits: Decimal;
  readonly eventsCount: number;
  /** Exact amount, in major units. */
  readonly preciseAmount: Decimal;
  /** `preciseAmount` rounded half-up to the minor unit, in minor units. */
  readonly amountCents: bigint;
  readonly preciseUnitAmount: Decimal;
  readonly unitAmountCents: bigint;
  readonly payInAdvance: boolean;
  readonly invoiceable: boolean;
  readonly item: FeeItem;
  readonly amountDetails: Readonly<Record<string, unknown>>;
  /** A spending minimum's true-up fee: the charge fee it tops up (core/commitments.ts). */
  readonly trueUpOf?: FeeDraft;
  /** Fixed before storing when fees name each other (a true-up and its charge fee); else one is drawn. */
  readonly lagoId?: string;
  readonly trueUpFeeLagoId?: string | null;
  readonly trueUpParentFeeLagoId?: string | null;
  /** Add-on fees (one-off invoices): the fee's taxes (its own codes, else the add-on's) and description. */
  readonly addOn?: { readonly taxCodes: readonly string[]; readonly description: string | null };
  /** A late-events adjustment (core/adjustments_late.ts): the billed period it corrects. */
  readonly lateAdjustment?: LateAdjustmentRef;
}

/** What an adjustment fee corrects: a subscription's billed period, its fee for the bucket (if any), and since when events are late. */
export interface LateAdjustmentRef {
  /** The billing instant of the corrected period (with the fee's subscription, unique). */
  readonly billedAt: Date;
  readonly adjustedFeeId: number | null;
  /** Events stored after this (events.created_at) are the late ones. */
  readonly eventsAfter: Date;
}

/** The amount in minor units, rounded half-up once (the money rule): "1.005" USD is 101. */
export function centsOf(amount: Decimal, currency: string): bigint {
  const cents = roundToMinor(amount, currency).times(minorScale(currency));
  return BigInt(cents.toFixed(0));
}

/** The part of the plan's amount a fee span owes, exact (not rounded). */
export function subscriptionFeeAmount(planAmount: Decimal, span: FeeSpan, terms: Pick<BillingTerms, "endedBy" | "trialEndsAt">): Decimal {
  const trial = terms.trialEndsAt === null ? {} : { trialEndsAt: terms.trialEndsAt };
  if (span.endedAt !== null) return usedFee(planAmount, span.period, span.from, span.endedAt, terms.endedBy, trial);
  return proratedFee(planAmount, span.period, span.from, span.period.to, trial);
}

/**
 * What a plan paid in advance owes back when it ends inside a period it paid for: the unused days'
 * share of the plan amount (Lago's CreditNotes::CreateFromTermination), never more than was paid.
 */
export function unusedAdvanceCredit(
  planAmount: Decimal,
  unused: NonNullable<BillingInstant["unused"]>,
  endedBy: PlanEnd,
  trialEndsAt: Date | null,
  paidCents: bigint,
  currency: string,
): bigint {
  const trial = trialEndsAt === null ? {} : { trialEndsAt };
  const owed = centsOf(unusedCredit(planAmount, unused.period, unused.endedAt, endedBy, trial), currency);
  return owed < paidCents ? owed : paidCents;
}

export interface PlanFacts {
  readonly code: string;
  readonly name: string;
  readonly description: string | null;
  readonly invoiceDisplayName: string | null;
  /** Minor units. */
  readonly amountCents: bigint;
}

/** The subscription fee of a billing instant: units 1, its amount also the unit amount. */
export function subscriptionFee(
  plan: PlanFacts,
  subscriptionLagoId: string,
  span: FeeSpan,
  terms: Pick<BillingTerms, "endedBy" | "trialEndsAt">,
  currency: string,
): FeeDraft {
  const precise = subscriptionFeeAmount(fromCents(plan.amountCents, currency), span, terms);
  const cents = centsOf(precise, currency);
  return {
    feeType: "subscription",
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
    payInAdvance: span.timing === "advance",
    invoiceable: true,
    item: {
      type: "subscription",
      code: plan.code,
      name: plan.name,
      description: plan.description,
      invoiceDisplayName: plan.invoiceDisplayName ?? plan.name,
      filterInvoiceDisplayName: null,
      filters: null,
      lagoItemId: subscriptionLagoId,
      itemType: "Subscription",
    },
    amountDetails: { plan_amount_cents: Number(plan.amountCents) },
  };
}

/** A charge's filters with Lago's wildcard expanded to the values its metric declares. */
export function bucketFilters(charge: Charge): FilterValues[] {
  const declared = new Map(charge.metric.filters.map((f) => [f.key, f.values]));
  return charge.filters.map((f) =>
    Object.fromEntries(
      Object.entries(f.values).map(([key, values]) => [
        key,
        values.length === 1 && values[0] === ALL_FILTER_VALUES ? [...(declared.get(key) ?? [])] : [...values],
      ]),
    ),
  );
}

/**
 * The usage fees of a charge period: one per bucket of each charge. A bucket with no units and no
 * amount is left out, as Lago drops zero charge fees from issued invoices (DropZeroAmountFees); a
 * free tier (units, no amount) or a flat fee (amount, no units) stays.
 */
/** The item of a charge's fee: its metric, the filter and the group the fee prices. */
export function chargeItem(
  charge: Charge,
  filter: { readonly invoiceDisplayName: string | null; readonly values: FilterValues } | null,
  groupedBy: Readonly<Record<string, string | null>> | null | undefined,
): FeeItem {
  return {
    type: "charge",
    code: charge.metric.code,
    name: charge.metric.name,
    description: charge.metric.description,
    invoiceDisplayName: charge.invoiceDisplayName ?? charge.metric.name,
    filterInvoiceDisplayName: filter?.invoiceDisplayName ?? null,
    filters: filter?.values ?? null,
    lagoItemId: charge.metric.lagoId,
    itemType: "BillableMetric",
    groupedBy,
  };
}

export function chargeFees(usage: readonly ChargeUsage[], span: ChargesSpan, currency: string): FeeDraft[] {
  // Lago's charges_to_datetime: the period's last instant, or the termination.
  const to = span.to.getTime() === span.period.end.getTime() ? span.period.to : span.to;
  const out: FeeDraft[] = [];
  for (const c of usage) {
    const charge = c.charge;
    const filters = bucketFilters(charge);
    // A charge with a spending minimum keeps one line (its default bucket) even when nothing was
    // used: its true-up fee tops that line up (core/commitments.ts).
    const keepOne = charge.minAmountCents > 0n && !charge.payInAdvance;
    const kept = out.length;
    c.fees.forEach((f, i) => {
      const precise = f.rated.amount;
      const cents = centsOf(precise, currency);
      const lastChance = keepOne && out.length === kept && i === c.fees.length - 1;
      if (f.units.isZero() && cents === 0n && precise.isZero() && !lastChance) return;
      const unit = f.units.isZero() ? ZERO : precise.div(f.units);
      const index = f.filterIndex;
      out.push({
        feeType: "charge",
        charge: { id: charge.id, lagoId: charge.lagoId },
        chargeFilterId: f.filter?.id ?? null,
        from: span.from,
        to,
        usage: { from: span.from, to: span.to, bucket: { metricId: charge.metric.id, filters, index } },
        units: f.units,
        totalAggregatedUnits: f.totalAggregatedUnits,
        eventsCount: f.eventsCount,
        preciseAmount: precise,
        amountCents: cents,
        preciseUnitAmount: unit,
        unitAmountCents: centsOf(unit, currency),
        // Billed in arrears with the period (charges paid in advance are billed as their events arrive: advance.ts).
        payInAdvance: false,
        invoiceable: charge.invoiceable,
        item: chargeItem(charge, f.filter, f.groupedBy),
        amountDetails: {},
      });
    });
  }
  return out;
}
