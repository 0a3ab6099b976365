import crypto from "node:crypto";
import type { Db, Queryable } from "../../db/db.ts";
import { isDataError, sqlState } from "../../db/db.ts";
import type { Clock } from "../../shared/clock.ts";
import { isLookupCode } from "../../shared/codes.ts";
import { type FieldErrors, notFound, validationFailed } from "../../shared/errors.ts";
import type { Customer } from "../customers/index.ts";
import type { CouponCredit, CouponTerms } from "./core/apply.ts";
import { type Coupon, checkAppliedCoupon, checkCoupon, draftOfCoupon } from "./core/coupon.ts";
import { restoredCoupon } from "./core/restore.ts";
import * as store from "./store.ts";

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const TAKEN = "value_already_exist";

export interface CouponDeps {
  readonly customers: {
    findByExternalId(orgId: number, externalId: string, q?: Queryable): Promise<Customer | null>;
    ensureCurrency(tx: Queryable, customer: Customer, currency: string): Promise<Customer>;
  };
}

export interface AppliedCouponView {
  readonly applied: store.AppliedCoupon;
  readonly credits: readonly store.AppliedCredit[];
}

/** Coupons (Lago's /coupons), coupons applied to customers (/applied_coupons), and what invoices take of them. */
export class CouponService {
  constructor(
    private readonly db: Db,
    private readonly clock: Clock,
    private readonly deps: CouponDeps,
    private readonly newId: () => string = () => crypto.randomUUID(),
  ) {}

  private now(orgId: number): Date {
    return new Date(this.clock.now(orgId));
  }

  async create(orgId: number, input: unknown): Promise<Coupon> {
    return this.guard(() =>
      this.db.transaction(async (tx) => {
        const checked = checkCoupon(input, null, this.now(orgId));
        const errors: FieldErrors = checked.ok ? {} : { ...checked.errors };
        if (checked.ok) {
          if ((await store.couponByCode(tx, orgId, checked.value.code)) !== null) errors["code"] = [TAKEN];
          await this.checkLimitations(tx, orgId, checked.value.planCodes, checked.value.billableMetricCodes, errors);
        }
        if (!checked.ok || Object.keys(errors).length > 0) throw validationFailed(errors, "the coupon is invalid");
        return store.insertCoupon(tx, orgId, this.newId(), checked.value, this.now(orgId));
      }),
    );
  }

  async get(orgId: number, code: string): Promise<Coupon> {
    const coupon = isLookupCode(code) ? await store.couponByCode(this.db, orgId, code) : null;
    if (coupon === null) throw notFound("coupon", code);
    return coupon;
  }

  list(orgId: number, page: number, perPage: number): Promise<{ coupons: Coupon[]; total: number }> {
    return store.listCoupons(this.db, orgId, perPage, (page - 1) * perPage);
  }

  /** PUT /coupons/:code. Coupons already applied keep the values they were applied with. */
  async update(orgId: number, code: string, input: unknown): Promise<Coupon> {
    return this.guard(() =>
      this.db.transaction(async (tx) => {
        const current = isLookupCode(code) ? await store.couponByCode(tx, orgId, code, true) : null;
        if (current === null) throw notFound("coupon", code);
        const checked = checkCoupon(input, draftOfCoupon(current), this.now(orgId));
        const errors: FieldErrors = checked.ok ? {} : { ...checked.errors };
        if (checked.ok) {
          if (checked.value.code !== current.code && (await store.couponByCode(tx, orgId, checked.value.code)) !== null) errors["code"] = [TAKEN];
          await this.checkLimitations(tx, orgId, checked.value.planCodes, checked.value.billableMetricCodes, errors);
        }
        if (!checked.ok || Object.keys(errors).length > 0) throw validationFailed(errors, "the coupon is invalid");
        return store.updateCoupon(tx, orgId, current.id, checked.value, this.now(orgId));
      }),
    );
  }

  /** DELETE /coupons/:code: the coupon goes and every customer's active use of it ends (Lago). */
  async delete(orgId: number, code: string): Promise<Coupon> {
    return this.db.transaction(async (tx) => {
      const coupon = isLookupCode(code) ? await store.couponByCode(tx, orgId, code, true) : null;
      if (coupon === null) throw notFound("coupon", code);
      const now = this.now(orgId);
      await store.deleteCoupon(tx, orgId, coupon.id, now);
      return { ...coupon, deletedAt: now, terminatedAt: coupon.terminatedAt ?? now };
    });
  }

  /**
   * POST /applied_coupons: Lago's rules — the customer and coupon exist, the coupon has not
   * expired, is not already active for the customer, is reusable if the customer had it before,
   * and a fixed amount is in the customer's currency (a customer without one takes it).
   */
  async apply(orgId: number, input: unknown): Promise<AppliedCouponView> {
    const req = checkAppliedCoupon(input);
    if (!req.ok) throw validationFailed(req.errors, "the applied coupon is invalid");
    const { externalCustomerId, couponCode } = req.value;
    return this.db.transaction(async (tx) => {
      let customer = await this.deps.customers.findByExternalId(orgId, externalCustomerId, tx);
      if (customer === null) throw notFound("customer", externalCustomerId);
      const coupon = isLookupCode(couponCode) ? await store.couponByCode(tx, orgId, couponCode, true) : null;
      if (coupon === null || coupon.terminatedAt !== null) throw notFound("coupon", couponCode);
      const now = this.now(orgId);
      const resolved = req.value.resolve(coupon);
      if (!resolved.ok) throw validationFailed(resolved.errors, "the applied coupon is invalid");
      const errors: FieldErrors = {};
      if (coupon.expirationAt !== null && coupon.expirationAt.getTime() <= now.getTime()) errors["coupon_code"] = ["coupon_is_expired"];
      // Serializes applications of one coupon to one customer (the coupon row is locked above).
      const history = await store.customerHistory(tx, orgId, customer.id, coupon.id);
      if (history.active) errors["coupon_code"] = ["coupon_already_applied"];
      else if (history.ever && !coupon.reusable) errors["coupon_code"] = ["coupon_is_not_reusable"];
      if (Object.keys(errors).length > 0) throw validationFailed(errors, "the coupon cannot be applied");
      const draft = resolved.value;
      if (draft.amountCurrency !== null) customer = await this.deps.customers.ensureCurrency(tx, customer, draft.amountCurrency);
      const id = await store.insertAppliedCoupon(tx, orgId, this.newId(), coupon.id, customer.id, draft, now);
      return { applied: (await store.appliedById(tx, orgId, id))!, credits: [] };
    });
  }

  async listApplied(orgId: number, filter: store.AppliedFilter, page: number, perPage: number): Promise<{ items: AppliedCouponView[]; total: number }> {
    const { items, total } = await store.listApplied(this.db, orgId, filter, perPage, (page - 1) * perPage);
    const credits = await store.creditsOfApplied(this.db, orgId, items.map((a) => a.id));
    return { items: items.map((applied) => ({ applied, credits: credits.filter((c) => c.appliedCouponId === applied.id) })), total };
  }

  /** DELETE /customers/:external_customer_id/applied_coupons/:lago_id: the coupon stops applying. */
  async terminateApplied(orgId: number, externalCustomerId: string, lagoId: string): Promise<AppliedCouponView> {
    return this.db.transaction(async (tx) => {
      const customer = await this.deps.customers.findByExternalId(orgId, externalCustomerId, tx);
      if (customer === null) throw notFound("customer", externalCustomerId);
      const applied = UUID.test(lagoId) ? await store.appliedByLagoId(tx, orgId, customer.id, lagoId) : null;
      if (applied === null) throw notFound("applied_coupon", lagoId);
      await store.terminateApplied(tx, orgId, applied.id, this.now(orgId));
      return { applied: (await store.appliedById(tx, orgId, applied.id))!, credits: [] };
    });
  }

  /** For invoices: the customer's applied coupons usable now, oldest first. */
  terms(q: Queryable, orgId: number, customerId: number, currency: string, now: Date): Promise<CouponTerms[]> {
    return store.couponTerms(q, orgId, customerId, currency, now);
  }

  /** For finalized invoices: what each coupon has left. */
  async recordUse(q: Queryable, orgId: number, credits: readonly CouponCredit[], now: Date): Promise<void> {
    for (const c of credits) await store.recordUse(q, orgId, c.appliedCouponId, c, now);
  }

  /**
   * For a voided invoice (in its transaction): each applied coupon gets back what the invoice took
   * of it (core/restore.ts). Answers how many coupons were given something back.
   */
  async restoreFromVoided(q: Queryable, orgId: number, invoiceId: number, now: Date): Promise<number> {
    let restored = 0;
    for (const used of await store.couponCreditsOfInvoice(q, orgId, invoiceId)) {
      const applied = await store.appliedForRestore(q, orgId, used.appliedCouponId);
      if (applied === null) continue;
      const next = restoredCoupon(
        {
          couponType: applied.coupon.couponType,
          frequency: applied.frequency,
          status: applied.status,
          amountCents: applied.amountCents,
          amountCentsRemaining: applied.amountCentsRemaining,
          frequencyDurationRemaining: applied.frequencyDurationRemaining,
          frequencyDuration: applied.frequencyDuration,
        },
        used.amountCents,
      );
      await store.restoreUse(q, orgId, applied.id, next, now);
      restored += 1;
    }
    return restored;
  }

  private async checkLimitations(tx: Queryable, orgId: number, plans: readonly string[], metrics: readonly string[], errors: FieldErrors): Promise<void> {
    if ((await store.unknownCodes(tx, orgId, "plans", plans)).length > 0) errors["applies_to.plan_codes"] = ["plans_not_found"];
    if ((await store.unknownCodes(tx, orgId, "billable_metrics", metrics)).length > 0) errors["applies_to.billable_metric_codes"] = ["billable_metrics_not_found"];
  }

  private async guard<T>(work: () => Promise<T>): Promise<T> {
    try {
      return await work();
    } catch (err) {
      if (sqlState(err) === "23505") throw validationFailed({ code: [TAKEN] }, "the coupon is invalid");
      if (isDataError(err)) throw validationFailed({ coupon: ["value_is_invalid"] }, "the coupon is invalid");
      throw err;
    }
  }
}
