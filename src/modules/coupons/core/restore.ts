// What voiding an invoice gives back to an applied coupon it used: a fixed `once` coupon gets the
// amount back, a recurring coupon the invoice it counted, and a coupon that this use had ended
// applies again. A `forever` coupon lost nothing. Pure.
import type { CouponFrequency, CouponType } from "./apply.ts";

export interface AppliedCouponState {
  readonly couponType: CouponType;
  readonly frequency: CouponFrequency;
  readonly status: "active" | "terminated";
  readonly amountCents: bigint | null;
  readonly amountCentsRemaining: bigint | null;
  readonly frequencyDurationRemaining: number | null;
  readonly frequencyDuration: number | null;
}

export interface RestoredCoupon {
  readonly amountCentsRemaining: bigint | null;
  readonly frequencyDurationRemaining: number | null;
  /** The use being given back is what ended it: it applies again. */
  readonly reactivate: boolean;
}

/** The applied coupon after giving back `usedCents` that one voided invoice took of it. */
export function restoredCoupon(s: AppliedCouponState, usedCents: bigint): RestoredCoupon {
  let amountCentsRemaining = s.amountCentsRemaining;
  let frequencyDurationRemaining = s.frequencyDurationRemaining;
  let exhausted = false;
  if (s.frequency === "once") {
    if (s.couponType === "fixed_amount") {
      const left = s.amountCentsRemaining ?? 0n;
      exhausted = left <= 0n;
      const back = left + usedCents;
      // Never more than the coupon was worth.
      amountCentsRemaining = s.amountCents !== null && back > s.amountCents ? s.amountCents : back;
    } else exhausted = true;
  } else if (s.frequency === "recurring") {
    const left = s.frequencyDurationRemaining ?? 0;
    exhausted = left <= 0;
    const back = left + 1;
    frequencyDurationRemaining = s.frequencyDuration !== null && back > s.frequencyDuration ? s.frequencyDuration : back;
  }
  return { amountCentsRemaining, frequencyDurationRemaining, reactivate: s.status === "terminated" && exhausted };
}
