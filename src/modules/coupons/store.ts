// SQL for coupons and applied coupons. Every statement is scoped by org_id.
import type { Queryable } from "../../db/db.ts";
import { Decimal } from "../../shared/money.ts";
import type { CouponFrequency, CouponTerms, CouponType } from "./core/apply.ts";
import type { AppliedCouponDraft, Coupon, CouponDraft, CouponExpiration } from "./core/coupon.ts";

interface CouponRow {
  id: string;
  org_id: number;
  lago_id: string;
  code: string;
  name: string;
  description: string | null;
  coupon_type: CouponType;
  amount_cents: string | null;
  amount_currency: string | null;
  percentage_rate: string | null;
  frequency: CouponFrequency;
  frequency_duration: number | null;
  reusable: boolean;
  expiration: CouponExpiration;
  expiration_at: Date | null;
  plan_codes: string[] | null;
  billable_metric_codes: string[] | null;
  created_at: Date;
  terminated_at: Date | null;
  deleted_at: Date | null;
}

const COUPON_COLUMNS = `c.id, c.org_id, c.lago_id::text AS lago_id, c.code, c.name, c.description, c.coupon_type, c.amount_cents, c.amount_currency,
  c.percentage_rate::text AS percentage_rate, c.frequency, c.frequency_duration, c.reusable, c.expiration, c.expiration_at, c.plan_codes,
  c.billable_metric_codes, c.created_at, c.terminated_at, c.deleted_at`;

const date = (v: Date | null) => (v === null ? null : new Date(v));

const toCoupon = (r: CouponRow): Coupon => ({
  id: Number(r.id),
  orgId: Number(r.org_id),
  lagoId: r.lago_id,
  code: r.code,
  name: r.name,
  description: r.description,
  couponType: r.coupon_type,
  amountCents: r.amount_cents === null ? null : BigInt(r.amount_cents),
  amountCurrency: r.amount_currency,
  percentageRate: r.percentage_rate === null ? null : new Decimal(r.percentage_rate),
  frequency: r.frequency,
  frequencyDuration: r.frequency_duration === null ? null : Number(r.frequency_duration),
  reusable: r.reusable,
  expiration: r.expiration,
  expirationAt: date(r.expiration_at),
  planCodes: r.plan_codes ?? [],
  billableMetricCodes: r.billable_metric_codes ?? [],
  createdAt: new Date(r.created_at),
  terminatedAt: date(r.terminated_at),
  deletedAt: date(r.deleted_at),
});

const couponParams = (d: CouponDraft) => [
  d.code, d.name, d.description, d.couponType, d.amountCents?.toString() ?? null, d.amountCurrency, d.percentageRate?.toString() ?? null,
  d.frequency, d.frequencyDuration, d.reusable, d.expiration, d.expirationAt, [...d.planCodes], [...d.billableMetricCodes],
];

export async function insertCoupon(q: Queryable, orgId: number, lagoId: string, d: CouponDraft, now: Date): Promise<Coupon> {
  const { rows } = await q.query<CouponRow>(
    `INSERT INTO coupons AS c (org_id, lago_id, code, name, description, coupon_type, amount_cents, amount_currency, percentage_rate, frequency,
                          frequency_duration, reusable, expiration, expiration_at, plan_codes, billable_metric_codes, created_at, updated_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7::int8, $8, $9::numeric, $10, $11, $12, $13, $14, $15::text[], $16::text[], $17, $17)
     RETURNING ${COUPON_COLUMNS}`,
    [orgId, lagoId, ...couponParams(d), now],
  );
  return toCoupon(rows[0]!);
}

export async function updateCoupon(q: Queryable, orgId: number, id: number, d: CouponDraft, now: Date): Promise<Coupon> {
  const { rows } = await q.query<CouponRow>(
    `UPDATE coupons AS c SET code = $3, name = $4, description = $5, coupon_type = $6, amount_cents = $7::int8, amount_currency = $8,
            percentage_rate = $9::numeric, frequency = $10, frequency_duration = $11, reusable = $12, expiration = $13, expiration_at = $14,
            plan_codes = $15::text[], billable_metric_codes = $16::text[], updated_at = $17
      WHERE c.org_id = $1 AND c.id = $2 RETURNING ${COUPON_COLUMNS}`,
    [orgId, id, ...couponParams(d), now],
  );
  return toCoupon(rows[0]!);
}

export async function couponByCode(q: Queryable, orgId: number, code: string, forUpdate = false): Promise<Coupon | null> {
  const { rows } = await q.query<CouponRow>(
    `SELECT ${COUPON_COLUMNS} FROM coupons c WHERE c.org_id = $1 AND c.code = $2 AND c.deleted_at IS NULL${forUpdate ? " FOR UPDATE" : ""}`,
    [orgId, code],
  );
  return rows[0] === undefined ? null : toCoupon(rows[0]);
}

export async function listCoupons(q: Queryable, orgId: number, limit: number, offset: number): Promise<{ coupons: Coupon[]; total: number }> {
  const { rows } = await q.query<CouponRow>(
    `SELECT ${COUPON_COLUMNS} FROM coupons c WHERE c.org_id = $1 AND c.deleted_at IS NULL ORDER BY c.created_at DESC, c.id DESC LIMIT $2 OFFSET $3`,
    [orgId, limit, offset],
  );
  const count = await q.query<{ n: string }>("SELECT count(*)::text AS n FROM coupons WHERE org_id = $1 AND deleted_at IS NULL", [orgId]);
  return { coupons: rows.map(toCoupon), total: Number(count.rows[0]?.n ?? 0) };
}

export async function deleteCoupon(q: Queryable, orgId: number, id: number, now: Date): Promise<void> {
  await q.query("UPDATE coupons SET deleted_at = $3, terminated_at = coalesce(terminated_at, $3), updated_at = $3 WHERE org_id = $1 AND id = $2", [orgId, id, now]);
  await q.query(
    "UPDATE applied_coupons SET status = 'terminated', terminated_at = $3, updated_at = $3 WHERE org_id = $1 AND coupon_id = $2 AND status = 'active'",
    [orgId, id, now],
  );
}

/** Codes among `codes` that name no live plan (table `plans`) or metric (`billable_metrics`). */
export async function unknownCodes(q: Queryable, orgId: number, table: "plans" | "billable_metrics", codes: readonly string[]): Promise<string[]> {
  if (codes.length === 0) return [];
  const { rows } = await q.query<{ code: string }>(`SELECT code FROM ${table} WHERE org_id = $1 AND code = ANY($2::text[]) AND deleted_at IS NULL`, [
    orgId,
    [...codes],
  ]);
  const known = new Set(rows.map((r) => r.code));
  return codes.filter((c) => !known.has(c));
}

// ---- applied coupons -------------------------------------------------------------------------------

export interface AppliedCoupon {
  readonly id: number;
  readonly lagoId: string;
  readonly coupon: Coupon;
  readonly customerId: number;
  readonly customerLagoId: string;
  readonly externalCustomerId: string;
  readonly status: "active" | "terminated";
  readonly amountCents: bigint | null;
  readonly amountCurrency: string | null;
  readonly percentageRate: Decimal | null;
  readonly frequency: CouponFrequency;
  readonly frequencyDuration: number | null;
  readonly frequencyDurationRemaining: number | null;
  readonly amountCentsRemaining: bigint | null;
  readonly createdAt: Date;
  readonly terminatedAt: Date | null;
}

type AppliedRow = CouponRow & {
  a_id: string;
  a_lago_id: string;
  customer_id: string;
  customer_lago_id: string;
  external_customer_id: string;
  a_status: "active" | "terminated";
  a_amount_cents: string | null;
  a_amount_currency: string | null;
  a_percentage_rate: string | null;
  a_frequency: CouponFrequency;
  a_frequency_duration: number | null;
  frequency_duration_remaining: number | null;
  amount_cents_remaining: string | null;
  a_created_at: Date;
  a_terminated_at: Date | null;
};

const APPLIED_SELECT = `
SELECT ${COUPON_COLUMNS}, a.id AS a_id, a.lago_id::text AS a_lago_id, a.customer_id, cu.lago_id::text AS customer_lago_id,
       cu.external_id AS external_customer_id, a.status AS a_status, a.amount_cents AS a_amount_cents, a.amount_currency AS a_amount_currency,
       a.percentage_rate::text AS a_percentage_rate, a.frequency AS a_frequency, a.frequency_duration AS a_frequency_duration,
       a.frequency_duration_remaining, a.amount_cents_remaining, a.created_at AS a_created_at, a.terminated_at AS a_terminated_at
  FROM applied_coupons a
  JOIN coupons c ON c.org_id = a.org_id AND c.id = a.coupon_id
  JOIN customers cu ON cu.org_id = a.org_id AND cu.id = a.customer_id`;

const toApplied = (r: AppliedRow): AppliedCoupon => ({
  id: Number(r.a_id),
  lagoId: r.a_lago_id,
  coupon: toCoupon(r),
  customerId: Number(r.customer_id),
  customerLagoId: r.customer_lago_id,
  externalCustomerId: r.external_customer_id,
  status: r.a_status,
  amountCents: r.a_amount_cents === null ? null : BigInt(r.a_amount_cents),
  amountCurrency: r.a_amount_currency,
  percentageRate: r.a_percentage_rate === null ? null : new Decimal(r.a_percentage_rate),
  frequency: r.a_frequency,
  frequencyDuration: r.a_frequency_duration === null ? null : Number(r.a_frequency_duration),
  frequencyDurationRemaining: r.frequency_duration_remaining === null ? null : Number(r.frequency_duration_remaining),
  amountCentsRemaining: r.amount_cents_remaining === null ? null : BigInt(r.amount_cents_remaining),
  createdAt: new Date(r.a_created_at),
  terminatedAt: date(r.a_terminated_at),
});

export async function insertAppliedCoupon(
  q: Queryable,
  orgId: number,
  lagoId: string,
  couponId: number,
  customerId: number,
  d: AppliedCouponDraft,
  now: Date,
): Promise<number> {
  const once = d.frequency === "once" && d.amountCents !== null;
  const { rows } = await q.query<{ id: string }>(
    `INSERT INTO applied_coupons (org_id, lago_id, coupon_id, customer_id, status, amount_cents, amount_currency, percentage_rate, frequency,
                                  frequency_duration, frequency_duration_remaining, amount_cents_remaining, created_at, updated_at)
     VALUES ($1, $2, $3, $4, 'active', $5::int8, $6, $7::numeric, $8, $9, $9, $10::int8, $11, $11) RETURNING id`,
    [orgId, lagoId, couponId, customerId, d.amountCents?.toString() ?? null, d.amountCurrency, d.percentageRate?.toString() ?? null, d.frequency,
     d.frequencyDuration, once ? d.amountCents!.toString() : null, now],
  );
  return Number(rows[0]!.id);
}

export async function appliedById(q: Queryable, orgId: number, id: number): Promise<AppliedCoupon | null> {
  const { rows } = await q.query<AppliedRow>(`${APPLIED_SELECT} WHERE a.org_id = $1 AND a.id = $2`, [orgId, id]);
  return rows[0] === undefined ? null : toApplied(rows[0]);
}

export async function appliedByLagoId(q: Queryable, orgId: number, customerId: number, lagoId: string): Promise<AppliedCoupon | null> {
  const { rows } = await q.query<AppliedRow>(`${APPLIED_SELECT} WHERE a.org_id = $1 AND a.customer_id = $2 AND a.lago_id = $3::uuid`, [orgId, customerId, lagoId]);
  return rows[0] === undefined ? null : toApplied(rows[0]);
}

/** Has the customer ever had the coupon (any status); is it active now? */
export async function customerHistory(q: Queryable, orgId: number, customerId: number, couponId: number): Promise<{ ever: boolean; active: boolean }> {
  const { rows } = await q.query<{ status: string }>("SELECT status FROM applied_coupons WHERE org_id = $1 AND customer_id = $2 AND coupon_id = $3", [
    orgId,
    customerId,
    couponId,
  ]);
  return { ever: rows.length > 0, active: rows.some((r) => r.status === "active") };
}

export interface AppliedFilter {
  readonly externalCustomerId?: string;
  readonly status?: "active" | "terminated";
  readonly couponCodes?: readonly string[];
}

export async function listApplied(q: Queryable, orgId: number, f: AppliedFilter, limit: number, offset: number): Promise<{ items: AppliedCoupon[]; total: number }> {
  const where = ["a.org_id = $1"];
  const params: unknown[] = [orgId];
  const add = (sql: (p: string) => string, v: unknown) => {
    params.push(v);
    where.push(sql(`$${params.length}`));
  };
  if (f.externalCustomerId !== undefined) add((p) => `cu.external_id = ${p} AND cu.deleted_at IS NULL`, f.externalCustomerId);
  if (f.status !== undefined) add((p) => `a.status = ${p}`, f.status);
  if (f.couponCodes !== undefined) add((p) => `c.code = ANY(${p}::text[])`, [...f.couponCodes]);
  const filter = where.join(" AND ");
  const { rows } = await q.query<AppliedRow>(
    `${APPLIED_SELECT} WHERE ${filter} ORDER BY a.created_at DESC, a.id DESC LIMIT $${params.length + 1} OFFSET $${params.length + 2}`,
    [...params, limit, offset],
  );
  const count = await q.query<{ n: string }>(
    `SELECT count(*)::text AS n FROM applied_coupons a JOIN coupons c ON c.org_id = a.org_id AND c.id = a.coupon_id
       JOIN customers cu ON cu.org_id = a.org_id AND cu.id = a.customer_id WHERE ${filter}`,
    params,
  );
  return { items: rows.map(toApplied), total: Number(count.rows[0]?.n ?? 0) };
}

export async function terminateApplied(q: Queryable, orgId: number, id: number, now: Date): Promise<void> {
  await q.query("UPDATE applied_coupons SET status = 'terminated', terminated_at = $3, updated_at = $3 WHERE org_id = $1 AND id = $2 AND status = 'active'", [
    orgId,
    id,
    now,
  ]);
}

/** The customer's active applied coupons usable on an invoice in `currency` at `now`, oldest first. */
export async function couponTerms(q: Queryable, orgId: number, customerId: number, currency: string, now: Date): Promise<CouponTerms[]> {
  const { rows } = await q.query<AppliedRow>(
    `${APPLIED_SELECT} WHERE a.org_id = $1 AND a.customer_id = $2 AND a.status = 'active'
        AND (a.amount_currency IS NULL OR a.amount_currency = $3) AND (c.expiration_at IS NULL OR c.expiration_at > $4)
      ORDER BY a.created_at, a.id`,
    [orgId, customerId, currency, now],
  );
  return rows.map(toApplied).map((a) => ({
    appliedCouponId: a.id,
    couponType: a.coupon.couponType,
    amountCents: a.amountCents,
    percentageRate: a.percentageRate,
    frequency: a.frequency,
    frequencyDurationRemaining: a.frequencyDurationRemaining,
    amountCentsRemaining: a.amountCentsRemaining,
    planCodes: a.coupon.planCodes,
    billableMetricCodes: a.coupon.billableMetricCodes,
  }));
}

/** What an invoice took of an applied coupon: what is left, and the end of it when used up. */
export async function recordUse(
  q: Queryable,
  orgId: number,
  id: number,
  u: { amountCentsRemaining: bigint | null; frequencyDurationRemaining: number | null; exhausted: boolean },
  now: Date,
): Promise<void> {
  await q.query(
    `UPDATE applied_coupons SET amount_cents_remaining = $3::int8, frequency_duration_remaining = $4,
            status = CASE WHEN $5 THEN 'terminated' ELSE status END, terminated_at = CASE WHEN $5 THEN $6 ELSE terminated_at END, updated_at = $6
      WHERE org_id = $1 AND id = $2`,
    [orgId, id, u.amountCentsRemaining?.toString() ?? null, u.frequencyDurationRemaining, u.exhausted, now],
  );
}

export interface AppliedCredit {
  readonly appliedCouponId: number;
  readonly lagoId: string;
  readonly amountCents: bigint;
  readonly currency: string;
  readonly invoiceLagoId: string;
  readonly paymentStatus: "pending" | "succeeded" | "failed";
}

/** The credits applied coupons gave (on invoices that are not drafts), for their listing. */
export async function creditsOfApplied(q: Queryable, orgId: number, ids: readonly number[]): Promise<AppliedCredit[]> {
  if (ids.length === 0) return [];
  const { rows } = await q.query<{ applied_coupon_id: string; lago_id: string; amount_cents: string; amount_currency: string; invoice_lago_id: string; payment_status: "pending" | "succeeded" | "failed" }>(
    `SELECT cr.applied_coupon_id, cr.lago_id::text AS lago_id, cr.amount_cents, cr.amount_currency, i.lago_id::text AS invoice_lago_id, i.payment_status
       FROM credits cr JOIN invoices i ON i.org_id = cr.org_id AND i.id = cr.invoice_id
      WHERE cr.org_id = $1 AND cr.applied_coupon_id = ANY($2::bigint[]) AND i.status = 'finalized' ORDER BY cr.id`,
    [orgId, ids.map(String)],
  );
  return rows.map((r) => ({
    appliedCouponId: Number(r.applied_coupon_id),
    lagoId: r.lago_id,
    amountCents: BigInt(r.amount_cents),
    currency: r.amount_currency,
    invoiceLagoId: r.invoice_lago_id,
    paymentStatus: r.payment_status,
  }));
}

/** The applied coupon, locked, for giving back what a voided invoice used of it. */
export async function appliedForRestore(q: Queryable, orgId: number, id: number): Promise<AppliedCoupon | null> {
  await q.query("SELECT 1 FROM applied_coupons WHERE org_id = $1 AND id = $2 FOR UPDATE", [orgId, id]);
  return appliedById(q, orgId, id);
}

export async function restoreUse(
  q: Queryable,
  orgId: number,
  id: number,
  r: { amountCentsRemaining: bigint | null; frequencyDurationRemaining: number | null; reactivate: boolean },
  now: Date,
): Promise<void> {
  await q.query(
    `UPDATE applied_coupons SET amount_cents_remaining = $3::int8, frequency_duration_remaining = $4,
            status = CASE WHEN $5 THEN 'active' ELSE status END, terminated_at = CASE WHEN $5 THEN NULL ELSE terminated_at END, updated_at = $6
      WHERE org_id = $1 AND id = $2`,
    [orgId, id, r.amountCentsRemaining?.toString() ?? null, r.frequencyDurationRemaining, r.reactivate, now],
  );
}

/** What the invoice's coupons took (its coupon credits), per applied coupon. */
export async function couponCreditsOfInvoice(q: Queryable, orgId: number, invoiceId: number): Promise<{ appliedCouponId: number; amountCents: bigint }[]> {
  const { rows } = await q.query<{ applied_coupon_id: string; amount_cents: string }>(
    `SELECT applied_coupon_id, sum(amount_cents)::text AS amount_cents FROM credits
      WHERE org_id = $1 AND invoice_id = $2 AND applied_coupon_id IS NOT NULL GROUP BY applied_coupon_id ORDER BY applied_coupon_id`,
    [orgId, invoiceId],
  );
  return rows.map((r) => ({ appliedCouponId: Number(r.applied_coupon_id), amountCents: BigInt(r.amount_cents) }));
}
