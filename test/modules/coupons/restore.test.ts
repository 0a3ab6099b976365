import { describe, expect, it } from "vitest";
import { type AppliedCouponState, restoredCoupon } from "../../../src/modules/coupons/index.ts";

const state = (over: Partial<AppliedCouponState>): AppliedCouponState => ({
  couponType: "fixed_amount",
  frequency: "once",
  status: "active",
  amountCents: 1500n,
  amountCentsRemaining: 1500n,
  frequencyDurationRemaining: null,
  frequencyDuration: null,
  ...over,
});

describe("giving back what a voided invoice used of a coupon", () => {
  it.each<[string, Partial<AppliedCouponState>, bigint, { amountCentsRemaining: bigint | null; frequencyDurationRemaining: number | null; reactivate: boolean }]>([
    ["a fixed once coupon used up applies again with the amount back", { status: "terminated", amountCentsRemaining: 0n }, 1500n, { amountCentsRemaining: 1500n, frequencyDurationRemaining: null, reactivate: true }],
    ["a fixed once coupon partly used gets the amount back and stays active", { amountCentsRemaining: 1000n }, 500n, { amountCentsRemaining: 1500n, frequencyDurationRemaining: null, reactivate: false }],
    ["never more than the coupon was worth", { amountCentsRemaining: 1400n }, 500n, { amountCentsRemaining: 1500n, frequencyDurationRemaining: null, reactivate: false }],
    ["a percentage once coupon applies again", { couponType: "percentage", amountCents: null, amountCentsRemaining: null, status: "terminated" }, 300n, { amountCentsRemaining: null, frequencyDurationRemaining: null, reactivate: true }],
    ["a recurring coupon gets the invoice back", { frequency: "recurring", amountCentsRemaining: null, frequencyDuration: 3, frequencyDurationRemaining: 1 }, 500n, { amountCentsRemaining: null, frequencyDurationRemaining: 2, reactivate: false }],
    ["a recurring coupon that this invoice ended applies again", { frequency: "recurring", amountCentsRemaining: null, frequencyDuration: 1, frequencyDurationRemaining: 0, status: "terminated" }, 500n, { amountCentsRemaining: null, frequencyDurationRemaining: 1, reactivate: true }],
    ["a recurring coupon terminated by hand with invoices left stays terminated", { frequency: "recurring", amountCentsRemaining: null, frequencyDuration: 3, frequencyDurationRemaining: 2, status: "terminated" }, 500n, { amountCentsRemaining: null, frequencyDurationRemaining: 3, reactivate: false }],
    ["a forever coupon lost nothing", { frequency: "forever", amountCentsRemaining: null }, 500n, { amountCentsRemaining: null, frequencyDurationRemaining: null, reactivate: false }],
  ])("%s", (_, over, used, expected) => {
    expect(restoredCoupon(state(over), used)).toEqual(expected);
  });
});
