// How a customer's applied coupons discount an invoice, before taxes (Lago's rule): oldest applied
// coupon first; each takes its value from the fees it may discount (all of them, or those of its
// plans or billable metrics) as they stand after the coupons before it; a fixed amount is capped at
// what those fees still owe, a percentage is of it, rounded half-up to the minor unit. The discount
// is spread over those fees pro rata, exactly (not rounded), so each fee's tax base is its amount
// less its share. Pure.
import { Decimal, ZERO } from "../../../shared/money.ts";

export type CouponType = "fixed_amount" | "percentage";
export type CouponFrequency = "once" | "recurring" | "forever";

/** An applied coupon as it stands before this invoice. */
export interface CouponTerms {
  readonly appliedCouponId: number;
  readonly couponType: CouponType;
  /** Fixed amount per invoice (recurring, forever) or in all (once), minor units. */
  readonly amountCents: bigint | null;
  readonly percentageRate: Decimal | null;
  readonly frequency: CouponFrequency;
  /** Recurring: invoices it still discounts. */
  readonly frequencyDurationRemaining: number | null;
  /** Fixed and once: what is left of it. */
  readonly amountCentsRemaining: bigint | null;
  /** Limitations; both empty: every fee. */
  readonly planCodes: readonly string[];
  readonly billableMetricCodes: readonly string[];
}

/** What a coupon sees of a fee. */
export interface CouponFee {
  readonly amountCents: bigint;
  /** The plan of the subscription the fee bills (null: not a subscription fee). */
  readonly planCode: string | null;
  /** Usage fees: the charge's billable metric. */
  readonly metricCode: string | null;
}

/** One coupon's discount on this invoice and its state after it. */
export interface CouponCredit {
  readonly appliedCouponId: number;
  readonly amountCents: bigint;
  readonly amountCentsRemaining: bigint | null;
  readonly frequencyDurationRemaining: number | null;
  /** Used up by this invoice (Lago terminates the applied coupon). */
  readonly exhausted: boolean;
}

export interface CouponsResult {
  readonly credits: CouponCredit[];
  /** Per fee, in input order: its exact share of the discounts, in minor units. */
  readonly feeCoupons: Decimal[];
}

const roundHalfUp = (v: Decimal): bigint => BigInt(v.toDecimalPlaces(0, Decimal.ROUND_HALF_UP).toFixed(0));

export function appliesTo(c: Pick<CouponTerms, "planCodes" | "billableMetricCodes">, fee: CouponFee): boolean {
  if (c.billableMetricCodes.length > 0) return fee.metricCode !== null && c.billableMetricCodes.includes(fee.metricCode);
  if (c.planCodes.length > 0) return fee.planCode !== null && c.planCodes.includes(fee.planCode);
  return true;
}

/** What the coupon takes from a base (minor units, exact) it may discount. */
export function couponAmount(c: CouponTerms, base: Decimal): bigint {
  if (base.lte(0)) return 0n;
  const cap = roundHalfUp(base);
  if (c.couponType === "percentage") {
    const amount = roundHalfUp(base.times(c.percentageRate ?? ZERO).div(100));
    return amount < cap ? amount : cap;
  }
  const value = c.frequency === "once" ? (c.amountCentsRemaining ?? c.amountCents ?? 0n) : (c.amountCents ?? 0n);
  return value < cap ? value : cap;
}

/** The coupon's state after discounting `amount` from one invoice. */
function after(c: CouponTerms, amount: bigint): CouponCredit {
  let amountCentsRemaining = c.amountCentsRemaining;
  let frequencyDurationRemaining = c.frequencyDurationRemaining;
  let exhausted = false;
  if (c.frequency === "once") {
    if (c.couponType === "fixed_amount") {
      amountCentsRemaining = (c.amountCentsRemaining ?? c.amountCents ?? 0n) - amount;
      exhausted = amountCentsRemaining <= 0n;
    } else exhausted = true;
  } else if (c.frequency === "recurring") {
    frequencyDurationRemaining = Math.max(0, (c.frequencyDurationRemaining ?? 1) - 1);
    exhausted = frequencyDurationRemaining === 0;
  }
  return { appliedCouponId: c.appliedCouponId, amountCents: amount, amountCentsRemaining, frequencyDurationRemaining, exhausted };
}

/** Applies `coupons` (oldest applied first) to the fees of one invoice. */
export function applyCoupons(fees: readonly CouponFee[], coupons: readonly CouponTerms[]): CouponsResult {
  const shares: Decimal[] = fees.map(() => ZERO);
  const credits: CouponCredit[] = [];
  for (const c of coupons) {
    const eligible = fees.map((f, i) => i).filter((i) => appliesTo(c, fees[i]!));
    const left = (i: number) => new Decimal(fees[i]!.amountCents.toString()).minus(shares[i]!);
    const base = eligible.reduce((sum, i) => sum.plus(left(i)), ZERO);
    const amount = couponAmount(c, base);
    if (amount <= 0n) continue;
    const total = new Decimal(amount.toString());
    const lefts = eligible.map(left);
    eligible.forEach((i, k) => {
      shares[i] = shares[i]!.plus(total.times(lefts[k]!).div(base));
    });
    credits.push(after(c, amount));
  }
  return { credits, feeCoupons: shares };
}
