import type { FastifyInstance } from "fastify";
import { type FieldErrors, validationFailed } from "../../shared/errors.ts";
import { paginationMeta } from "../../shared/pagination.ts";
import { bodyOf, pageOf } from "../taxes/index.ts";
import type { Coupon } from "./core/coupon.ts";
import type { AppliedCouponView, CouponService } from "./service.ts";
import type { AppliedFilter } from "./store.ts";

const iso = (d: Date | null) => (d === null ? null : d.toISOString().replace(/\.\d{3}Z$/, "Z"));
const cents = (v: bigint | null) => (v === null ? null : Number(v));

/** Lago's CouponObject. */
export const couponJson = (c: Coupon) => ({
  lago_id: c.lagoId,
  name: c.name,
  code: c.code,
  description: c.description,
  coupon_type: c.couponType,
  amount_cents: cents(c.amountCents),
  amount_currency: c.amountCurrency,
  reusable: c.reusable,
  limited_plans: c.planCodes.length > 0,
  plan_codes: [...c.planCodes],
  limited_billable_metrics: c.billableMetricCodes.length > 0,
  billable_metric_codes: [...c.billableMetricCodes],
  percentage_rate: c.percentageRate?.toString() ?? null,
  frequency: c.frequency,
  frequency_duration: c.frequencyDuration,
  expiration: c.expiration,
  expiration_at: iso(c.expirationAt),
  created_at: iso(c.createdAt),
  terminated_at: iso(c.terminatedAt),
});

/** Lago's AppliedCouponObject (with `credits`, as the list answers it). */
export const appliedCouponJson = ({ applied: a, credits }: AppliedCouponView) => ({
  lago_id: a.lagoId,
  lago_coupon_id: a.coupon.lagoId,
  coupon_code: a.coupon.code,
  coupon_name: a.coupon.name,
  coupon_status: a.coupon.terminatedAt === null ? "active" : "terminated",
  coupon_deleted_at: iso(a.coupon.deletedAt),
  lago_customer_id: a.customerLagoId,
  external_customer_id: a.externalCustomerId,
  status: a.status,
  amount_cents: cents(a.amountCents),
  amount_cents_remaining: cents(a.amountCentsRemaining),
  amount_currency: a.amountCurrency,
  percentage_rate: a.percentageRate?.toString() ?? null,
  frequency: a.frequency,
  frequency_duration: a.frequencyDuration,
  frequency_duration_remaining: a.frequencyDurationRemaining,
  expiration_at: iso(a.coupon.expirationAt),
  created_at: iso(a.createdAt),
  terminated_at: iso(a.terminatedAt),
  credits: credits.map((c) => ({
    lago_id: c.lagoId,
    amount_cents: Number(c.amountCents),
    amount_currency: c.currency,
    before_taxes: true,
    item: { lago_item_id: a.lagoId, type: "coupon", code: a.coupon.code, name: a.coupon.name },
    invoice: { lago_id: c.invoiceLagoId, payment_status: c.paymentStatus },
  })),
});

function appliedFilter(query: unknown, externalCustomerId?: string): AppliedFilter {
  const q = (query ?? {}) as Record<string, unknown>;
  const errors: FieldErrors = {};
  const status = q["status"];
  if (status !== undefined && status !== "active" && status !== "terminated") errors["status"] = ["must_be_one_of_active_terminated"];
  const ext = externalCustomerId ?? q["external_customer_id"];
  if (ext !== undefined && typeof ext !== "string") errors["external_customer_id"] = ["must_be_given_once"];
  const codesRaw = q["coupon_code[]"] ?? q["coupon_code"];
  const codes = codesRaw === undefined ? undefined : (Array.isArray(codesRaw) ? codesRaw : [codesRaw]).map(String);
  if (Object.keys(errors).length > 0) throw validationFailed(errors, "invalid query parameters");
  return {
    ...(typeof ext === "string" && ext !== "" ? { externalCustomerId: ext } : {}),
    ...(status === "active" || status === "terminated" ? { status } : {}),
    ...(codes !== undefined ? { couponCodes: codes } : {}),
  };
}

type ByCode = { Params: { code: string } };

export function registerCouponRoutes(app: FastifyInstance, coupons: CouponService): void {
  app.post("/api/v1/coupons", async (request) => ({ coupon: couponJson(await coupons.create(request.orgId, bodyOf(request.body, "coupon"))) }));
  app.get("/api/v1/coupons", async (request) => {
    const { page, perPage } = pageOf(request.query);
    const { coupons: items, total } = await coupons.list(request.orgId, page, perPage);
    return { coupons: items.map(couponJson), meta: paginationMeta(page, perPage, total) };
  });
  app.get<ByCode>("/api/v1/coupons/:code", async (request) => ({ coupon: couponJson(await coupons.get(request.orgId, request.params.code)) }));
  app.put<ByCode>("/api/v1/coupons/:code", async (request) => ({
    coupon: couponJson(await coupons.update(request.orgId, request.params.code, bodyOf(request.body, "coupon"))),
  }));
  app.delete<ByCode>("/api/v1/coupons/:code", async (request) => ({ coupon: couponJson(await coupons.delete(request.orgId, request.params.code)) }));

  app.post("/api/v1/applied_coupons", async (request) => {
    const { credits: _credits, ...applied } = appliedCouponJson(await coupons.apply(request.orgId, bodyOf(request.body, "applied_coupon")));
    return { applied_coupon: applied };
  });
  const list = async (orgId: number, query: unknown, externalCustomerId?: string) => {
    const { page, perPage } = pageOf(query);
    const { items, total } = await coupons.listApplied(orgId, appliedFilter(query, externalCustomerId), page, perPage);
    return { applied_coupons: items.map(appliedCouponJson), meta: paginationMeta(page, perPage, total) };
  };
  app.get("/api/v1/applied_coupons", async (request) => list(request.orgId, request.query));
  app.get<{ Params: { external_customer_id: string } }>("/api/v1/customers/:external_customer_id/applied_coupons", async (request) =>
    list(request.orgId, request.query, request.params.external_customer_id),
  );
  app.delete<{ Params: { external_customer_id: string; lago_id: string } }>(
    "/api/v1/customers/:external_customer_id/applied_coupons/:lago_id",
    async (request) => {
      const { credits: _credits, ...applied } = appliedCouponJson(
        await coupons.terminateApplied(request.orgId, request.params.external_customer_id, request.params.lago_id),
      );
      return { applied_coupon: applied };
    },
  );
}
