// Late events: a period already invoiced is priced again with every event stored since, and the
// difference from what was billed for it so far (its fee, earlier adjustments, earlier late-event
// credits) is an adjustment fee on the next invoice (more) or a credit on the period's fee (less).
// Pure: the recomputed fees and what was billed come in, adjustments go out.
import { Decimal, ZERO, minorUnits } from "../../../shared/money.ts";
import { type FeeDraft, type LateAdjustmentRef, centsOf } from "./fees.ts";

/** A usage fee's identity within its period: the charge, its bucket (filter) and its group. */
export function bucketKey(chargeId: number, bucketIndex: number, groupedBy: Readonly<Record<string, string | null>> | null | undefined): string {
  const group = groupedBy === null || groupedBy === undefined ? "" : JSON.stringify(Object.entries(groupedBy).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  return `${chargeId}|${bucketIndex}|${group}`;
}

export const keyOfDraft = (f: FeeDraft): string | null =>
  f.charge === null || f.usage === null ? null : bucketKey(f.charge.id, f.usage.bucket.index, f.item.groupedBy);

/** What a period's bucket has been billed so far, net. */
export interface BilledBucket {
  /** The period's own fee for the bucket, if it had one. */
  readonly originalFeeId: number | null;
  readonly units: Decimal;
  readonly eventsCount: number;
  readonly preciseAmount: Decimal;
  readonly amountCents: bigint;
}

export interface LateCredit {
  /** The period's fee the credit note credits. */
  readonly feeId: number;
  readonly amountCents: bigint;
}

export interface LateAdjustments {
  readonly fees: FeeDraft[];
  /** Buckets now worth less than billed (a lower max or latest value, a negative value). */
  readonly credits: LateCredit[];
}

/**
 * The adjustments of one billed period: for each bucket, recomputed − billed. A positive
 * difference is an adjustment fee (units, events and amounts are the differences; the amount is
 * the difference of two amounts each rounded once, so the period's fees plus adjustments always
 * equal the period priced now). A negative one is a zero-amount note on the new invoice (its
 * `amount_details.late_events.credit_due_cents`) and a credit owed on the period's fee (`credits`),
 * issued as a credit note on the period's invoice when the new invoice is finalized.
 */
export function lateAdjustments(
  recomputed: readonly FeeDraft[],
  billed: ReadonlyMap<string, BilledBucket>,
  ref: Omit<LateAdjustmentRef, "adjustedFeeId">,
  currency: string,
): LateAdjustments {
  const fees: FeeDraft[] = [];
  const credits: LateCredit[] = [];
  const seen = new Set<string>();
  for (const f of recomputed) {
    const key = keyOfDraft(f);
    if (key === null) continue;
    seen.add(key);
    const was = billed.get(key);
    const diff = f.amountCents - (was?.amountCents ?? 0n);
    if (diff === 0n) continue;
    if (diff < 0n && was?.originalFeeId != null) credits.push({ feeId: was.originalFeeId, amountCents: -diff });
    const units = f.units.minus(was?.units ?? ZERO);
    // A lower amount is shown as a zero-amount note (fees are never negative); `credit_due_cents` says what it owes back.
    const precise = diff < 0n ? ZERO : f.preciseAmount.minus(was?.preciseAmount ?? ZERO);
    const unit = units.isZero() ? ZERO : precise.div(units);
    fees.push({
      ...f,
      units,
      totalAggregatedUnits: units,
      eventsCount: Math.max(0, f.eventsCount - (was?.eventsCount ?? 0)),
      preciseAmount: precise,
      amountCents: diff < 0n ? 0n : diff,
      preciseUnitAmount: unit,
      unitAmountCents: centsOf(unit, currency),
      amountDetails: {
        late_events: {
          billed_amount_cents: Number(was?.amountCents ?? 0n),
          amount_cents_now: Number(f.amountCents),
          billed_units: (was?.units ?? ZERO).toString(),
          units_now: f.units.toString(),
          credit_due_cents: diff < 0n ? Number(-diff) : 0,
        },
      },
      lateAdjustment: { ...ref, adjustedFeeId: was?.originalFeeId ?? null },
    });
  }
  for (const [key, was] of billed) {
    if (seen.has(key) || was.amountCents <= 0n || was.originalFeeId === null) continue;
    credits.push({ feeId: was.originalFeeId, amountCents: was.amountCents });
  }
  return { fees, credits };
}

/** Sums what was billed for a period, per bucket: its fees and adjustments, less late-event credits. */
export function billedBuckets(
  rows: readonly { key: string; feeId: number; original: boolean; units: Decimal; eventsCount: number; preciseAmount: Decimal; amountCents: bigint }[],
  credits: readonly { feeId: number; amountCents: bigint }[],
  currency: string,
): Map<string, BilledBucket> {
  const out = new Map<string, { originalFeeId: number | null; units: Decimal; eventsCount: number; preciseAmount: Decimal; amountCents: bigint }>();
  const byFee = new Map<number, string>();
  for (const r of rows) {
    const b = out.get(r.key) ?? { originalFeeId: null, units: ZERO, eventsCount: 0, preciseAmount: ZERO, amountCents: 0n };
    if (r.original) b.originalFeeId = r.feeId;
    b.units = b.units.plus(r.units);
    b.eventsCount += r.eventsCount;
    b.preciseAmount = b.preciseAmount.plus(r.preciseAmount);
    b.amountCents += r.amountCents;
    out.set(r.key, b);
    byFee.set(r.feeId, r.key);
  }
  const scale = new Decimal(10).pow(minorUnits(currency));
  for (const c of credits) {
    const key = byFee.get(c.feeId);
    const b = key === undefined ? undefined : out.get(key);
    if (b === undefined) continue;
    b.amountCents -= c.amountCents;
    b.preciseAmount = b.preciseAmount.minus(new Decimal(c.amountCents.toString()).div(scale));
  }
  return out;
}

