// Coupons: Lago's /coupons and /applied_coupons, and the discount rule invoices apply before taxes
// (oldest applied coupon first, spread over the fees it may discount).
export { CouponService, type AppliedCouponView, type CouponDeps } from "./service.ts";
export { registerCouponRoutes, couponJson, appliedCouponJson } from "./http.ts";
export { applyCoupons, couponAmount, type CouponCredit, type CouponFee, type CouponTerms } from "./core/apply.ts";
export { checkCoupon, checkAppliedCoupon, type Coupon, type CouponDraft } from "./core/coupon.ts";
export { restoredCoupon, type AppliedCouponState, type RestoredCoupon } from "./core/restore.ts";
