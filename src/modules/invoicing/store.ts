// SQL for invoicing. Every statement is scoped by org_id: an invoice or a fee is only ever found
// through its own organization.
import type { Queryable } from "../../db/db.ts";
import { Decimal } from "../../shared/money.ts";
import type { InvoiceTaxLine } from "../taxes/core/tax.ts";
import type { RegroupedTaxLine } from "./core/regroup.ts";
import { METRIC_DIMS, eventColumns, type EventRow } from "../ingest/index.ts";
import type {
  AppliedTaxRecord,
  BillingPeriodRecord,
  CreditRecord,
  FeeAppliedTax,
  FeeBucket,
  FeeDeductions,
  FeeDraft,
  FeeRecord,
  FeeType,
  InvoiceListQuery,
  InvoiceRecord,
  InvoiceStatus,
  InvoiceType,
  InvoicingReason,
  PaymentStatus,
} from "./core/index.ts";
import { feeAppliedTax } from "./core/index.ts";

const date = (v: Date | string | null): Date | null => (v === null ? null : new Date(v));
const big = (v: string | number | null): bigint => (v === null ? 0n : BigInt(v));

// ---- invoices -----------------------------------------------------------------------------------

interface InvoiceRow {
  id: string;
  org_id: number;
  lago_id: string;
  customer_id: string;
  invoice_type: InvoiceType;
  status: InvoiceStatus;
  payment_status: PaymentStatus;
  number: string;
  organization_sequential_id: string | null;
  sequential_id: string | null;
  issuing_date: string;
  payment_due_date: string;
  net_payment_term: number;
  currency: string;
  fees_amount_cents: string;
  coupons_amount_cents: string;
  credit_notes_amount_cents: string;
  prepaid_credit_amount_cents: string;
  taxes_amount_cents: string;
  sub_total_excluding_taxes_amount_cents: string;
  sub_total_including_taxes_amount_cents: string;
  total_amount_cents: string;
  progressive_billing_credit_amount_cents: string;
  total_paid_amount_cents: string;
  payment_overdue: boolean;
  applied_usage_thresholds: unknown[] | string | null;
  grace_until: Date | null;
  finalized_at: Date | null;
  voided_at: Date | null;
  created_at: Date;
  updated_at: Date;
}

// A progressive billing invoice's thresholds (Lago's AppliedUsageThresholdObject), oldest level first.
const APPLIED_USAGE_THRESHOLDS = `CASE WHEN i.invoice_type = 'progressive_billing' THEN
  (SELECT jsonb_agg(jsonb_build_object(
            'lifetime_usage_amount_cents', a.lifetime_usage_amount_cents,
            'created_at', to_char(a.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
            'usage_threshold', COALESCE(a.usage_threshold, jsonb_build_object(
              'lago_id', a.threshold_lago_id::text, 'threshold_display_name', a.threshold_display_name,
              'amount_cents', a.threshold_amount_cents, 'recurring', a.recurring,
              'created_at', to_char(a.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
              'updated_at', to_char(a.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'))))
          ORDER BY a.threshold_amount_cents, a.id)
     FROM applied_usage_thresholds a WHERE a.org_id = i.org_id AND a.invoice_id = i.id) END AS applied_usage_thresholds`;

// Dates as text: node-postgres would read a `date` as local midnight.
const INVOICE_COLUMNS = `i.id, i.org_id, i.lago_id::text AS lago_id, i.customer_id, i.invoice_type, i.status, i.payment_status, i.number,
  i.organization_sequential_id, i.sequential_id, i.issuing_date::text AS issuing_date, i.payment_due_date::text AS payment_due_date,
  i.net_payment_term, i.currency, i.fees_amount_cents, i.coupons_amount_cents, i.credit_notes_amount_cents, i.prepaid_credit_amount_cents,
  i.taxes_amount_cents, i.sub_total_excluding_taxes_amount_cents, i.sub_total_including_taxes_amount_cents, i.total_amount_cents,
  i.progressive_billing_credit_amount_cents, i.grace_until, i.finalized_at, i.voided_at, i.created_at, i.updated_at,
  i.total_paid_amount_cents, i.payment_overdue, ${APPLIED_USAGE_THRESHOLDS}`;

function toInvoice(r: InvoiceRow): InvoiceRecord {
  return {
    id: Number(r.id),
    orgId: Number(r.org_id),
    lagoId: r.lago_id,
    customerId: Number(r.customer_id),
    invoiceType: r.invoice_type,
    status: r.status,
    paymentStatus: r.payment_status,
    number: r.number,
    organizationSequentialId: r.organization_sequential_id === null ? null : Number(r.organization_sequential_id),
    sequentialId: r.sequential_id === null ? null : Number(r.sequential_id),
    issuingDate: r.issuing_date,
    paymentDueDate: r.payment_due_date,
    netPaymentTerm: Number(r.net_payment_term),
    currency: r.currency,
    feesAmountCents: big(r.fees_amount_cents),
    couponsAmountCents: big(r.coupons_amount_cents),
    creditNotesAmountCents: big(r.credit_notes_amount_cents),
    prepaidCreditAmountCents: big(r.prepaid_credit_amount_cents),
    taxesAmountCents: big(r.taxes_amount_cents),
    subTotalExcludingTaxesAmountCents: big(r.sub_total_excluding_taxes_amount_cents),
    subTotalIncludingTaxesAmountCents: big(r.sub_total_including_taxes_amount_cents),
    totalAmountCents: big(r.total_amount_cents),
    progressiveBillingCreditAmountCents: big(r.progressive_billing_credit_amount_cents),
    totalPaidAmountCents: big(r.total_paid_amount_cents),
    paymentOverdue: r.payment_overdue === true,
    appliedUsageThresholds:
      typeof r.applied_usage_thresholds === "string" ? (JSON.parse(r.applied_usage_thresholds) as unknown[]) : (r.applied_usage_thresholds ?? []),
    graceUntil: date(r.grace_until),
    finalizedAt: date(r.finalized_at),
    voidedAt: date(r.voided_at),
    createdAt: new Date(r.created_at),
    updatedAt: new Date(r.updated_at),
  };
}

export interface NewInvoice {
  readonly orgId: number;
  readonly lagoId: string;
  readonly customerId: number;
  readonly invoiceType: InvoiceType;
  readonly number: string;
  readonly issuingDate: string;
  readonly paymentDueDate: string;
  readonly netPaymentTerm: number;
  readonly currency: string;
  readonly graceUntil: Date | null;
  readonly now: Date;
}

/** A draft with no fees yet; totals are written with the fees (`saveTotals`). */
export async function insertInvoice(tx: Queryable, i: NewInvoice): Promise<number> {
  const { rows } = await tx.query<{ id: string }>(
    `INSERT INTO invoices (org_id, lago_id, customer_id, invoice_type, status, payment_status, number, issuing_date, payment_due_date,
                           net_payment_term, currency, fees_amount_cents, sub_total_excluding_taxes_amount_cents,
                           sub_total_including_taxes_amount_cents, total_amount_cents, grace_until, created_at, updated_at)
     VALUES ($1, $2, $3, $4, 'draft', 'pending', $5, $6::date, $7::date, $8, $9, 0, 0, 0, 0, $10, $11, $11) RETURNING id`,
    [i.orgId, i.lagoId, i.customerId, i.invoiceType, i.number, i.issuingDate, i.paymentDueDate, i.netPaymentTerm, i.currency, i.graceUntil, i.now],
  );
  return Number(rows[0]!.id);
}

export interface Totals {
  readonly feesAmountCents: bigint;
  readonly couponsAmountCents: bigint;
  readonly creditNotesAmountCents: bigint;
  readonly prepaidCreditAmountCents: bigint;
  readonly taxesAmountCents: bigint;
  readonly subTotalExcludingTaxesAmountCents: bigint;
  readonly subTotalIncludingTaxesAmountCents: bigint;
  readonly totalAmountCents: bigint;
  readonly progressiveBillingCreditAmountCents?: bigint;
}

export async function saveTotals(tx: Queryable, orgId: number, invoiceId: number, t: Totals, paymentStatus: PaymentStatus, now: Date): Promise<void> {
  await tx.query(
    `UPDATE invoices SET fees_amount_cents = $3, coupons_amount_cents = $4, credit_notes_amount_cents = $5, prepaid_credit_amount_cents = $6,
            taxes_amount_cents = $7, sub_total_excluding_taxes_amount_cents = $8, sub_total_including_taxes_amount_cents = $9,
            total_amount_cents = $10, payment_status = $11, updated_at = $12, progressive_billing_credit_amount_cents = $13
      WHERE org_id = $1 AND id = $2`,
    [
      orgId,
      invoiceId,
      t.feesAmountCents.toString(),
      t.couponsAmountCents.toString(),
      t.creditNotesAmountCents.toString(),
      t.prepaidCreditAmountCents.toString(),
      t.taxesAmountCents.toString(),
      t.subTotalExcludingTaxesAmountCents.toString(),
      t.subTotalIncludingTaxesAmountCents.toString(),
      t.totalAmountCents.toString(),
      paymentStatus,
      now,
      (t.progressiveBillingCreditAmountCents ?? 0n).toString(),
    ],
  );
}

/** The next value of a gapless sequence; the row lock serializes finalizations of one organization. */
export async function nextSequence(tx: Queryable, orgId: number, customerId: number): Promise<number> {
  const { rows } = await tx.query<{ v: string }>(
    `INSERT INTO invoice_sequences AS s (org_id, customer_id, last_value) VALUES ($1, $2, 1)
     ON CONFLICT (org_id, customer_id) DO UPDATE SET last_value = s.last_value + 1
     RETURNING s.last_value AS v`,
    [orgId, customerId],
  );
  return Number(rows[0]!.v);
}

export async function markFinalized(
  tx: Queryable,
  orgId: number,
  invoiceId: number,
  f: { number: string; organizationSequentialId: number; sequentialId: number; issuingDate: string; paymentDueDate: string; now: Date },
): Promise<void> {
  await tx.query(
    `UPDATE invoices SET status = 'finalized', number = $3, organization_sequential_id = $4, sequential_id = $5,
            issuing_date = $6::date, payment_due_date = $7::date, grace_until = NULL, finalized_at = $8, updated_at = $8
      WHERE org_id = $1 AND id = $2 AND status = 'draft'`,
    [orgId, invoiceId, f.number, f.organizationSequentialId, f.sequentialId, f.issuingDate, f.paymentDueDate, f.now],
  );
}

export async function markVoided(tx: Queryable, orgId: number, invoiceId: number, now: Date): Promise<void> {
  // A voided invoice is not owed: never overdue.
  await tx.query("UPDATE invoices SET status = 'voided', payment_overdue = false, voided_at = $3, updated_at = $3 WHERE org_id = $1 AND id = $2", [
    orgId,
    invoiceId,
    now,
  ]);
}

export async function invoiceByLagoId(q: Queryable, orgId: number, lagoId: string, forUpdate = false): Promise<InvoiceRecord | null> {
  const { rows } = await q.query<InvoiceRow>(
    `SELECT ${INVOICE_COLUMNS} FROM invoices i WHERE i.org_id = $1 AND i.lago_id = $2::uuid${forUpdate ? " FOR UPDATE" : ""}`,
    [orgId, lagoId],
  );
  return rows[0] === undefined ? null : toInvoice(rows[0]);
}

export async function listInvoices(q: Queryable, orgId: number, query: InvoiceListQuery): Promise<{ items: InvoiceRecord[]; total: number }> {
  const where = ["i.org_id = $1"];
  const params: unknown[] = [orgId];
  const add = (sql: (p: string) => string, value: unknown) => {
    params.push(value);
    where.push(sql(`$${params.length}`));
  };
  if (query.externalCustomerId !== undefined) {
    add((p) => `EXISTS (SELECT 1 FROM customers c WHERE c.org_id = i.org_id AND c.id = i.customer_id AND c.external_id = ${p})`, query.externalCustomerId);
  }
  if (query.statuses !== undefined) add((p) => `i.status = ANY(${p}::text[])`, [...query.statuses]);
  if (query.paymentStatuses !== undefined) add((p) => `i.payment_status = ANY(${p}::text[])`, [...query.paymentStatuses]);
  if (query.invoiceType !== undefined) add((p) => `i.invoice_type = ${p}`, query.invoiceType);
  if (query.currency !== undefined) add((p) => `i.currency = ${p}`, query.currency);
  if (query.issuingDateFrom !== undefined) add((p) => `i.issuing_date >= ${p}::date`, query.issuingDateFrom);
  if (query.issuingDateTo !== undefined) add((p) => `i.issuing_date <= ${p}::date`, query.issuingDateTo);
  if (query.paymentOverdue !== undefined) add((p) => `i.payment_overdue = ${p}::boolean`, query.paymentOverdue);
  const filter = where.join(" AND ");
  const page = await q.query<InvoiceRow>(
    `SELECT ${INVOICE_COLUMNS} FROM invoices i WHERE ${filter}
      ORDER BY i.issuing_date DESC, i.created_at DESC, i.id DESC LIMIT $${params.length + 1} OFFSET $${params.length + 2}`,
    [...params, query.perPage, (query.page - 1) * query.perPage],
  );
  const count = await q.query<{ n: string }>(`SELECT count(*)::text AS n FROM invoices i WHERE ${filter}`, params);
  return { items: page.rows.map(toInvoice), total: Number(count.rows[0]?.n ?? 0) };
}

/** Drafts whose grace period has ended by `now`. */
export async function draftsDue(q: Queryable, orgId: number, now: Date): Promise<string[]> {
  const { rows } = await q.query<{ lago_id: string }>(
    "SELECT lago_id::text AS lago_id FROM invoices WHERE org_id = $1 AND status = 'draft' AND grace_until <= $2 ORDER BY grace_until, id",
    [orgId, now],
  );
  return rows.map((r) => r.lago_id);
}

// ---- overdue invoices (overdue.ts) ---------------------------------------------------------------

// An invoice the overdue pass may mark: finalized, its payment not succeeded, not marked yet (the
// predicate of invoices_overdue_candidates_idx).
const overdueCandidate = (a: string) => `${a}.status = 'finalized' AND ${a}.payment_status <> 'succeeded' AND NOT ${a}.payment_overdue`;

/** Organizations with an invoice the overdue pass may mark. */
export async function organizationsWithUnpaidInvoices(q: Queryable): Promise<number[]> {
  const { rows } = await q.query<{ org_id: number }>(`SELECT DISTINCT i.org_id FROM invoices i WHERE ${overdueCandidate("i")} ORDER BY 1`);
  return rows.map((r) => Number(r.org_id));
}

/** The applicable timezones (the customer's, else UTC) of the organization's candidates due before `dueBefore`. */
export async function overdueCandidateTimezones(q: Queryable, orgId: number, dueBefore: string): Promise<string[]> {
  const { rows } = await q.query<{ timezone: string }>(
    `SELECT DISTINCT COALESCE(c.timezone, 'UTC') AS timezone
       FROM invoices i JOIN customers c ON c.org_id = i.org_id AND c.id = i.customer_id
      WHERE i.org_id = $1 AND ${overdueCandidate("i")} AND i.payment_due_date < $2::date`,
    [orgId, dueBefore],
  );
  return rows.map((r) => r.timezone);
}

/**
 * Marks overdue at most `limit` candidates whose due date is before `today` of their customer's
 * timezone, oldest due first, and answers them as marked. Rows another transaction holds (a
 * concurrent pass, a payment) are skipped: the other pass marks them, or the next run does, and
 * a row marked meanwhile no longer matches — so each invoice is marked by exactly one pass.
 */
export async function markOverdue(
  tx: Queryable,
  orgId: number,
  todays: readonly { timezone: string; today: string }[],
  now: Date,
  limit: number,
): Promise<InvoiceRecord[]> {
  const { rows } = await tx.query<InvoiceRow>(
    `UPDATE invoices i SET payment_overdue = true, updated_at = $4
      WHERE i.org_id = $1 AND NOT i.payment_overdue AND i.id IN (
        SELECT d.id
          FROM invoices d JOIN customers c ON c.org_id = d.org_id AND c.id = d.customer_id
          JOIN unnest($2::text[], $3::date[]) AS t(timezone, today) ON t.timezone = COALESCE(c.timezone, 'UTC')
         WHERE d.org_id = $1 AND ${overdueCandidate("d")} AND d.payment_due_date < t.today
         ORDER BY d.payment_due_date, d.id
         LIMIT $5
           FOR UPDATE OF d SKIP LOCKED)
      RETURNING ${INVOICE_COLUMNS}`,
    [orgId, todays.map((t) => t.timezone), todays.map((t) => t.today), now, limit],
  );
  return rows.map(toInvoice);
}

// ---- billing instants -----------------------------------------------------------------------------

export interface NewBillingPeriod {
  readonly orgId: number;
  readonly invoiceId: number;
  readonly subscriptionId: number;
  readonly reason: InvoicingReason;
  readonly billedAt: Date;
  readonly feeFrom: Date | null;
  readonly feeTo: Date | null;
  readonly chargesFrom: Date | null;
  readonly chargesTo: Date | null;
  readonly unusedAdvanceCreditCents: bigint;
  readonly now: Date;
}

/**
 * Records that the invoice closes this billing instant. The unique constraint decides between
 * concurrent runs: the second waits for the first to commit, then fails with 23505 (its whole
 * transaction rolls back) — or, when the first rolled back, goes ahead.
 */
export async function insertBillingPeriod(tx: Queryable, p: NewBillingPeriod): Promise<void> {
  await tx.query(
    `INSERT INTO invoice_subscriptions (org_id, invoice_id, subscription_id, invoicing_reason, billed_at, fee_from, fee_to,
                                        charges_from, charges_to, unused_advance_credit_cents, created_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
    [p.orgId, p.invoiceId, p.subscriptionId, p.reason, p.billedAt, p.feeFrom, p.feeTo, p.chargesFrom, p.chargesTo, p.unusedAdvanceCreditCents.toString(), p.now],
  );
}

export async function isBilled(q: Queryable, orgId: number, subscriptionId: number, at: Date): Promise<boolean> {
  const { rows } = await q.query("SELECT 1 FROM invoice_subscriptions WHERE org_id = $1 AND subscription_id = $2 AND billed_at = $3", [orgId, subscriptionId, at]);
  return rows.length > 0;
}

export async function lastBilledAt(q: Queryable, orgId: number, subscriptionId: number): Promise<Date | null> {
  const { rows } = await q.query<{ at: Date | null }>(
    "SELECT max(billed_at) AS at FROM invoice_subscriptions WHERE org_id = $1 AND subscription_id = $2",
    [orgId, subscriptionId],
  );
  return date(rows[0]?.at ?? null);
}

/**
 * Subscriptions that may have something to bill: every started, active one, and terminated ones
 * whose termination has not been billed yet. Those terminated at their very start bill nothing.
 */
export async function billingCandidates(q: Queryable, orgId: number): Promise<{ id: number; lastBilledAt: Date | null }[]> {
  const { rows } = await q.query<{ id: string; last_billed_at: Date | null }>(
    `SELECT s.id, (SELECT max(b.billed_at) FROM invoice_subscriptions b WHERE b.org_id = s.org_id AND b.subscription_id = s.id) AS last_billed_at
       FROM subscriptions s
      WHERE s.org_id = $1 AND s.started_at IS NOT NULL
        AND (s.status = 'active'
             OR (s.status = 'terminated' AND s.terminated_at > s.started_at
                 AND NOT EXISTS (SELECT 1 FROM invoice_subscriptions b
                                  WHERE b.org_id = s.org_id AND b.subscription_id = s.id AND b.billed_at >= s.terminated_at)))
      ORDER BY s.id`,
    [orgId],
  );
  return rows.map((r) => ({ id: Number(r.id), lastBilledAt: date(r.last_billed_at) }));
}

export async function organizations(q: Queryable): Promise<number[]> {
  const { rows } = await q.query<{ id: number }>("SELECT id FROM organizations ORDER BY id");
  return rows.map((r) => Number(r.id));
}

export async function organizationBilling(q: Queryable, orgId: number): Promise<{ name: string; publicId: string; graceDays: number }> {
  const { rows } = await q.query<{ name: string; public_id: string; invoice_grace_period: number }>(
    "SELECT name, public_id::text AS public_id, invoice_grace_period FROM organizations WHERE id = $1",
    [orgId],
  );
  const r = rows[0];
  if (r === undefined) throw new Error(`organization ${orgId} does not exist`);
  return { name: r.name, publicId: r.public_id, graceDays: Number(r.invoice_grace_period) };
}

interface BillingPeriodRow {
  invoice_id: string;
  subscription_id: string;
  subscription_lago_id: string;
  external_subscription_id: string;
  plan_lago_id: string;
  invoicing_reason: InvoicingReason;
  billed_at: Date;
  fee_from: Date | null;
  fee_to: Date | null;
  charges_from: Date | null;
  charges_to: Date | null;
  unused_advance_credit_cents: string;
}

export async function billingPeriodsOf(q: Queryable, orgId: number, invoiceIds: readonly number[]): Promise<BillingPeriodRecord[]> {
  if (invoiceIds.length === 0) return [];
  const { rows } = await q.query<BillingPeriodRow>(
    `SELECT b.invoice_id, b.subscription_id, s.lago_id::text AS subscription_lago_id, s.external_id AS external_subscription_id,
            p.lago_id::text AS plan_lago_id, b.invoicing_reason, b.billed_at, b.fee_from, b.fee_to, b.charges_from, b.charges_to,
            b.unused_advance_credit_cents
       FROM invoice_subscriptions b
       JOIN subscriptions s ON s.org_id = b.org_id AND s.id = b.subscription_id
       JOIN plans p ON p.org_id = s.org_id AND p.id = s.plan_id
      WHERE b.org_id = $1 AND b.invoice_id = ANY($2::bigint[])
      ORDER BY b.invoice_id, b.id`,
    [orgId, invoiceIds.map(String)],
  );
  return rows.map((r) => ({
    invoiceId: Number(r.invoice_id),
    subscriptionId: Number(r.subscription_id),
    subscriptionLagoId: r.subscription_lago_id,
    externalSubscriptionId: r.external_subscription_id,
    planLagoId: r.plan_lago_id,
    reason: r.invoicing_reason,
    billedAt: new Date(r.billed_at),
    feeFrom: date(r.fee_from),
    feeTo: date(r.fee_to),
    chargesFrom: date(r.charges_from),
    chargesTo: date(r.charges_to),
    unusedAdvanceCreditCents: big(r.unused_advance_credit_cents),
  }));
}

/**
 * The subscription fee an advance-paid plan was billed for the period starting at `periodStart`
 * (on an invoice that was not voided), with the plan amount it was computed from.
 */
export async function paidAdvanceFee(
  q: Queryable,
  orgId: number,
  subscriptionId: number,
  periodStart: Date,
  periodEnd: Date,
): Promise<{ feeId: number; invoiceId: number; amountCents: bigint; planAmountCents: bigint | null } | null> {
  const { rows } = await q.query<{ id: string; invoice_id: string; amount_cents: string; plan_amount_cents: string | null }>(
    `SELECT f.id, f.invoice_id, f.amount_cents, f.amount_details ->> 'plan_amount_cents' AS plan_amount_cents
       FROM fees f JOIN invoices i ON i.org_id = f.org_id AND i.id = f.invoice_id
      WHERE f.org_id = $1 AND f.subscription_id = $2 AND f.fee_type = 'subscription' AND f.pay_in_advance
        AND f.from_datetime >= $3 AND f.from_datetime < $4 AND i.status <> 'voided'
      ORDER BY f.id DESC LIMIT 1`,
    [orgId, subscriptionId, periodStart, periodEnd],
  );
  const r = rows[0];
  if (r === undefined) return null;
  return { feeId: Number(r.id), invoiceId: Number(r.invoice_id), amountCents: big(r.amount_cents), planAmountCents: r.plan_amount_cents === null ? null : BigInt(r.plan_amount_cents) };
}

// ---- fees -------------------------------------------------------------------------------------------

/** Writes an invoice's fees in one statement, in invoice order. */
export async function insertFees(
  tx: Queryable,
  orgId: number,
  invoiceId: number,
  subscriptionId: number | null,
  currency: string,
  fees: readonly { lagoId: string; draft: FeeDraft; deductions?: FeeDeductions; newId?: () => string }[],
  firstPosition: number,
  now: Date,
): Promise<void> {
  await insertFeesMany(tx, orgId, [{ invoiceId, subscriptionId, currency, fees, firstPosition }], now);
}

/** The fees of one invoice (one subscription's group of them), for `insertFeesMany`. */
export interface InvoiceFees {
  /** Null: fees without an invoice (non-invoiceable charges paid in advance). */
  readonly invoiceId: number | null;
  readonly subscriptionId: number | null;
  readonly currency: string;
  readonly fees: readonly { lagoId: string; draft: FeeDraft; deductions?: FeeDeductions; newId?: () => string }[];
  readonly firstPosition: number;
}

/** Writes the fees of several invoices in one statement (the billing job's batches). */
export async function insertFeesMany(tx: Queryable, orgId: number, invoices: readonly InvoiceFees[], now: Date): Promise<void> {
  const rows = invoices.flatMap(({ invoiceId, subscriptionId, currency, fees, firstPosition }) => fees.map(({ lagoId, draft: f, deductions, newId }, i) => ({
    invoice_id: invoiceId,
    subscription_id: subscriptionId,
    currency,
    lago_id: lagoId,
    charge_id: f.charge?.id ?? null,
    charge_lago_id: f.charge?.lagoId ?? null,
    charge_filter_id: f.chargeFilterId,
    billable_metric_id: f.usage?.bucket.metricId ?? null,
    fee_type: f.feeType,
    position: firstPosition + i,
    from_datetime: f.from.toISOString(),
    to_datetime: f.to.toISOString(),
    usage_from: f.usage?.from.toISOString() ?? null,
    usage_to: f.usage?.to.toISOString() ?? null,
    bucket_filters: f.usage?.bucket.filters ?? null,
    bucket_index: f.usage?.bucket.index ?? null,
    units: f.units.toString(),
    total_aggregated_units: f.totalAggregatedUnits.toString(),
    events_count: f.eventsCount,
    precise_amount: f.preciseAmount.toString(),
    amount_cents: f.amountCents.toString(),
    precise_unit_amount: f.preciseUnitAmount.toString(),
    unit_amount_cents: f.unitAmountCents.toString(),
    pay_in_advance: f.payInAdvance,
    invoiceable: f.invoiceable,
    item_code: f.item.code,
    item_name: f.item.name,
    item_description: f.item.description,
    invoice_display_name: f.item.invoiceDisplayName,
    filter_invoice_display_name: f.item.filterInvoiceDisplayName,
    filter_values: f.item.filters,
    lago_item_id: f.item.lagoItemId,
    item_type: f.item.itemType,
    amount_details: f.amountDetails,
    grouped_by: f.item.groupedBy ?? null,
    description: f.addOn?.description ?? null,
    adjusts_billed_at: f.lateAdjustment?.billedAt.toISOString() ?? null,
    adjusted_fee_id: f.lateAdjustment?.adjustedFeeId ?? null,
    late_events_after: f.lateAdjustment?.eventsAfter.toISOString() ?? null,
    true_up_fee_lago_id: f.trueUpFeeLagoId ?? null,
    true_up_parent_fee_lago_id: f.trueUpParentFeeLagoId ?? null,
    taxes_amount_cents: (deductions?.taxes.amountCents ?? 0n).toString(),
    taxes_rate: deductions?.taxes.rate.toString() ?? "0",
    taxes_precise_amount_cents: deductions?.taxes.preciseAmountCents.toString() ?? "0",
    precise_coupons_amount_cents: deductions?.couponsPreciseCents.toString() ?? "0",
    applied_taxes: (deductions?.taxes.lines ?? []).map((l) => feeAppliedTax(l, newId?.() ?? lagoId)),
  })));
  if (rows.length === 0) return;
  await tx.query(
    `INSERT INTO fees (org_id, invoice_id, subscription_id, currency, created_at, updated_at, lago_id, charge_id, charge_lago_id, charge_filter_id,
                       billable_metric_id, fee_type, position, from_datetime, to_datetime, usage_from, usage_to, bucket_filters, bucket_index,
                       units, total_aggregated_units, events_count, precise_amount, amount_cents, precise_unit_amount, unit_amount_cents,
                       pay_in_advance, invoiceable, item_code, item_name, item_description, invoice_display_name, filter_invoice_display_name,
                       filter_values, lago_item_id, item_type, amount_details, taxes_amount_cents, taxes_rate, taxes_precise_amount_cents,
                       precise_coupons_amount_cents, applied_taxes, grouped_by, description, adjusts_billed_at, adjusted_fee_id, late_events_after,
                       true_up_fee_lago_id, true_up_parent_fee_lago_id)
     SELECT $1, r.invoice_id, r.subscription_id, r.currency, $2, $2, r.lago_id, r.charge_id, r.charge_lago_id, r.charge_filter_id, r.billable_metric_id, r.fee_type, r.position,
            r.from_datetime, r.to_datetime, r.usage_from, r.usage_to, r.bucket_filters, r.bucket_index, r.units, r.total_aggregated_units,
            r.events_count, r.precise_amount, r.amount_cents, r.precise_unit_amount, r.unit_amount_cents, r.pay_in_advance, r.invoiceable,
            r.item_code, r.item_name, r.item_description, r.invoice_display_name, r.filter_invoice_display_name, r.filter_values,
            r.lago_item_id, r.item_type, coalesce(r.amount_details, '{}'::jsonb), r.taxes_amount_cents, r.taxes_rate,
            r.taxes_precise_amount_cents, r.precise_coupons_amount_cents, coalesce(r.applied_taxes, '[]'::jsonb), r.grouped_by,
            r.description, r.adjusts_billed_at, r.adjusted_fee_id, r.late_events_after, r.true_up_fee_lago_id, r.true_up_parent_fee_lago_id
       FROM jsonb_to_recordset($3::jsonb) AS r(
              invoice_id bigint, subscription_id bigint, currency text, lago_id uuid, charge_id bigint, charge_lago_id uuid, charge_filter_id bigint, billable_metric_id bigint, fee_type text,
              position int, from_datetime timestamptz, to_datetime timestamptz, usage_from timestamptz, usage_to timestamptz,
              bucket_filters jsonb, bucket_index int, units numeric, total_aggregated_units numeric, events_count bigint,
              precise_amount numeric, amount_cents bigint, precise_unit_amount numeric, unit_amount_cents bigint, pay_in_advance boolean,
              invoiceable boolean, item_code text, item_name text, item_description text, invoice_display_name text,
              filter_invoice_display_name text, filter_values jsonb, lago_item_id uuid, item_type text, amount_details jsonb,
              taxes_amount_cents bigint, taxes_rate numeric, taxes_precise_amount_cents numeric, precise_coupons_amount_cents numeric,
              applied_taxes jsonb, grouped_by jsonb, description text, adjusts_billed_at timestamptz, adjusted_fee_id bigint,
              late_events_after timestamptz, true_up_fee_lago_id uuid, true_up_parent_fee_lago_id uuid)`,
    [orgId, now, JSON.stringify(rows)],
  );
}

export async function deleteFees(tx: Queryable, orgId: number, invoiceId: number): Promise<void> {
  await tx.query("DELETE FROM fees WHERE org_id = $1 AND invoice_id = $2", [orgId, invoiceId]);
}

interface FeeRow {
  id: string;
  org_id: number;
  lago_id: string;
  invoice_id: string | null;
  invoice_lago_id: string | null;
  invoice_status: InvoiceStatus | null;
  payment_status: PaymentStatus;
  subscription_id: string | null;
  subscription_lago_id: string | null;
  external_subscription_id: string | null;
  customer_lago_id: string;
  external_customer_id: string;
  fee_type: FeeType;
  charge_lago_id: string | null;
  charge_filter_id: string | null;
  billable_metric_id: string | null;
  from_datetime: Date | null;
  to_datetime: Date | null;
  usage_from: Date | null;
  usage_to: Date | null;
  bucket_filters: FeeBucket["filters"] | string | null;
  bucket_index: number | null;
  units: string;
  total_aggregated_units: string;
  events_count: string;
  currency: string;
  precise_amount: string;
  amount_cents: string;
  precise_unit_amount: string;
  unit_amount_cents: string;
  taxes_amount_cents: string;
  taxes_rate: string;
  taxes_precise_amount_cents: string;
  precise_coupons_amount_cents: string;
  applied_taxes: FeeAppliedTax[] | string;
  pay_in_advance: boolean;
  invoiceable: boolean;
  item_code: string;
  item_name: string;
  item_description: string | null;
  invoice_display_name: string;
  filter_invoice_display_name: string | null;
  filter_values: Record<string, string[]> | string | null;
  lago_item_id: string;
  item_type: "Subscription" | "BillableMetric" | "AddOn" | "Commitment";
  amount_details: Record<string, unknown> | string;
  grouped_by: Record<string, string | null> | string | null;
  description: string | null;
  adjusts_billed_at: Date | null;
  late_events_after: Date | null;
  original_fee_lago_id: string | null;
  true_up_fee_lago_id: string | null;
  true_up_parent_fee_lago_id: string | null;
  created_at: Date;
}

const json = <T>(v: T | string | null): T | null => (typeof v === "string" ? (JSON.parse(v) as T) : v);

function toFee(r: FeeRow): FeeRecord {
  const filters = json<FeeBucket["filters"]>(r.bucket_filters);
  return {
    id: Number(r.id),
    orgId: Number(r.org_id),
    lagoId: r.lago_id,
    invoiceId: r.invoice_id === null ? null : Number(r.invoice_id),
    invoiceLagoId: r.invoice_lago_id,
    invoiceStatus: r.invoice_status,
    paymentStatus: r.payment_status,
    subscriptionId: r.subscription_id === null ? null : Number(r.subscription_id),
    subscriptionLagoId: r.subscription_lago_id,
    externalSubscriptionId: r.external_subscription_id,
    customerLagoId: r.customer_lago_id,
    externalCustomerId: r.external_customer_id,
    feeType: r.fee_type,
    chargeLagoId: r.charge_lago_id,
    chargeFilterId: r.charge_filter_id === null ? null : Number(r.charge_filter_id),
    from: date(r.from_datetime),
    to: date(r.to_datetime),
    usageFrom: date(r.usage_from),
    usageTo: date(r.usage_to),
    bucket:
      r.billable_metric_id === null || filters === null || r.bucket_index === null
        ? null
        : { metricId: Number(r.billable_metric_id), filters, index: Number(r.bucket_index) },
    units: new Decimal(r.units),
    totalAggregatedUnits: new Decimal(r.total_aggregated_units),
    eventsCount: Number(r.events_count),
    currency: r.currency,
    preciseAmount: new Decimal(r.precise_amount),
    amountCents: big(r.amount_cents),
    preciseUnitAmount: new Decimal(r.precise_unit_amount),
    unitAmountCents: big(r.unit_amount_cents),
    taxesAmountCents: big(r.taxes_amount_cents),
    taxesRate: new Decimal(r.taxes_rate),
    taxesPreciseAmountCents: new Decimal(r.taxes_precise_amount_cents),
    preciseCouponsAmountCents: new Decimal(r.precise_coupons_amount_cents),
    appliedTaxes: json<FeeAppliedTax[]>(r.applied_taxes) ?? [],
    payInAdvance: r.pay_in_advance,
    invoiceable: r.invoiceable,
    item: {
      type: r.fee_type,
      code: r.item_code,
      name: r.item_name,
      description: r.item_description,
      invoiceDisplayName: r.invoice_display_name,
      filterInvoiceDisplayName: r.filter_invoice_display_name,
      filters: json<Record<string, string[]>>(r.filter_values),
      lagoItemId: r.lago_item_id,
      itemType: r.item_type,
      groupedBy: json<Record<string, string | null>>(r.grouped_by),
    },
    amountDetails: json<Record<string, unknown>>(r.amount_details) ?? {},
    description: r.description,
    trueUpFeeLagoId: r.true_up_fee_lago_id,
    trueUpParentFeeLagoId: r.true_up_parent_fee_lago_id,
    lateAdjustment: r.adjusts_billed_at === null ? null : { adjustsBilledAt: new Date(r.adjusts_billed_at), eventsAfter: date(r.late_events_after), originalFeeLagoId: r.original_fee_lago_id },
    createdAt: new Date(r.created_at),
  };
}

const FEE_SELECT = `
SELECT f.id, f.org_id, f.lago_id::text AS lago_id, f.invoice_id, i.lago_id::text AS invoice_lago_id, i.status AS invoice_status,
       coalesce(i.payment_status, f.payment_status, 'pending') AS payment_status, f.subscription_id, s.lago_id::text AS subscription_lago_id, s.external_id AS external_subscription_id,
       c.lago_id::text AS customer_lago_id, c.external_id AS external_customer_id, f.fee_type, f.charge_lago_id::text AS charge_lago_id,
       f.charge_filter_id, f.billable_metric_id, f.from_datetime, f.to_datetime, f.usage_from, f.usage_to, f.bucket_filters, f.bucket_index,
       f.units::text AS units, f.total_aggregated_units::text AS total_aggregated_units, f.events_count, f.currency,
       f.precise_amount::text AS precise_amount, f.amount_cents, f.precise_unit_amount::text AS precise_unit_amount, f.unit_amount_cents,
       f.taxes_amount_cents, f.taxes_rate::text AS taxes_rate, f.taxes_precise_amount_cents::text AS taxes_precise_amount_cents,
       f.precise_coupons_amount_cents::text AS precise_coupons_amount_cents, f.applied_taxes, f.pay_in_advance, f.invoiceable, f.item_code, f.item_name, f.item_description, f.invoice_display_name,
       f.filter_invoice_display_name, f.filter_values, f.lago_item_id::text AS lago_item_id, f.item_type, f.amount_details, f.grouped_by,
       f.description, f.adjusts_billed_at, f.late_events_after,
       f.true_up_fee_lago_id::text AS true_up_fee_lago_id, f.true_up_parent_fee_lago_id::text AS true_up_parent_fee_lago_id,
       (SELECT o.lago_id::text FROM fees o WHERE o.org_id = f.org_id AND o.id = f.adjusted_fee_id) AS original_fee_lago_id, f.created_at
  FROM fees f
  LEFT JOIN invoices i ON i.org_id = f.org_id AND i.id = f.invoice_id
  JOIN customers c ON c.org_id = f.org_id AND c.id = coalesce(i.customer_id, f.customer_id)
  LEFT JOIN subscriptions s ON s.org_id = f.org_id AND s.id = f.subscription_id`;

export async function feesOf(q: Queryable, orgId: number, invoiceIds: readonly number[]): Promise<FeeRecord[]> {
  if (invoiceIds.length === 0) return [];
  const { rows } = await q.query<FeeRow>(`${FEE_SELECT} WHERE f.org_id = $1 AND f.invoice_id = ANY($2::bigint[]) ORDER BY f.invoice_id, f.position, f.id`, [
    orgId,
    invoiceIds.map(String),
  ]);
  return rows.map(toFee);
}

export async function feeByLagoId(q: Queryable, orgId: number, lagoId: string): Promise<FeeRecord | null> {
  const { rows } = await q.query<FeeRow>(`${FEE_SELECT} WHERE f.org_id = $1 AND f.lago_id = $2::uuid`, [orgId, lagoId]);
  return rows[0] === undefined ? null : toFee(rows[0]);
}

// ---- the events behind a usage fee ----------------------------------------------------------------

export interface FeeEventScope {
  readonly orgId: number;
  readonly metricId: number;
  readonly externalSubscriptionId: string;
  readonly from: Date;
  readonly to: Date;
  /** The fee's group (pricing group keys): only events with these property values (null: without the property). */
  readonly groupedBy?: Readonly<Record<string, string | null>> | null;
  /** A late-events adjustment: only events stored after this. */
  readonly createdAfter?: Date | null;
}

// The metric's events of the subscription in the window that its aggregation counts (for sum, max,
// latest and weighted sum: a numeric value; unique count: a value), read with the metric as it is
// now. A recurring metric carries all earlier history.
const FEE_EVENTS = `
  FROM billable_metrics m
  JOIN events e ON e.org_id = m.org_id AND e.code = m.code AND e.external_subscription_id = $3
 WHERE m.org_id = $1 AND m.id = $2
   AND e.ts >= CASE WHEN m.recurring THEN '-infinity'::timestamptz ELSE $4::timestamptz END AND e.ts < $5::timestamptz
   AND (m.aggregation_type = 'count_agg'
        OR (m.aggregation_type = 'unique_count_agg' AND e.properties ->> m.field_name IS NOT NULL)
        OR metering_value(e.properties, m.field_name) IS NOT NULL)`;

const scopeParams = (s: FeeEventScope) => [s.orgId, s.metricId, s.externalSubscriptionId, s.from.toISOString(), s.to.toISOString()];

/** The distinct filter dims (METRIC_DIMS text) among the fee's events. */
export async function feeEventDims(q: Queryable, s: FeeEventScope): Promise<string[]> {
  const { rows } = await q.query<{ dims: string }>(`SELECT DISTINCT ${METRIC_DIMS("e.properties", "m")} AS dims ${FEE_EVENTS}`, scopeParams(s));
  return rows.map((r) => r.dims);
}

/** A page of the fee's events (only those whose dims are in `dims`, when given), oldest first. */
export async function feeEvents(
  q: Queryable,
  s: FeeEventScope,
  dims: readonly string[] | null,
  page: number,
  perPage: number,
): Promise<{ rows: EventRow[]; total: number }> {
  const params: unknown[] = scopeParams(s);
  let where = "";
  if (dims !== null) {
    params.push([...dims]);
    where = ` AND ${METRIC_DIMS("e.properties", "m")} = ANY($${params.length}::text[])`;
  }
  if (s.createdAfter != null) {
    params.push(s.createdAfter.toISOString());
    where += ` AND e.created_at > $${params.length}::timestamptz`;
  }
  for (const [key, value] of Object.entries(s.groupedBy ?? {})) {
    params.push(key, value);
    where += ` AND (e.properties ->> $${params.length - 1}::text) IS NOT DISTINCT FROM $${params.length}::text`;
  }
  const list = await q.query<EventRow>(
    `SELECT ${eventColumns("e")} ${FEE_EVENTS}${where} ORDER BY e.ts, e.transaction_id LIMIT $${params.length + 1} OFFSET $${params.length + 2}`,
    [...params, perPage, (page - 1) * perPage],
  );
  const count = await q.query<{ n: string }>(`SELECT count(*)::text AS n ${FEE_EVENTS}${where}`, params);
  return { rows: list.rows, total: Number(count.rows[0]?.n ?? 0) };
}

// ---- an invoice's taxes and credits -----------------------------------------------------------------

export async function replaceAppliedTaxes(
  tx: Queryable,
  orgId: number,
  invoiceId: number,
  lines: readonly { lagoId: string; line: InvoiceTaxLine }[],
  currency: string,
  now: Date,
): Promise<void> {
  await tx.query("DELETE FROM invoice_applied_taxes WHERE org_id = $1 AND invoice_id = $2", [orgId, invoiceId]);
  await insertAppliedTaxesMany(tx, orgId, [{ invoiceId, currency, lines }], now);
}

/** The applied taxes of several new invoices in one statement (the billing job's batches). */
export async function insertAppliedTaxesMany(
  tx: Queryable,
  orgId: number,
  invoices: readonly { invoiceId: number; currency: string; lines: readonly { lagoId: string; line: InvoiceTaxLine }[] }[],
  now: Date,
): Promise<void> {
  const rows = invoices.flatMap(({ invoiceId, currency, lines }) => lines.map(({ lagoId, line: l }) => ({
    invoice_id: invoiceId,
    currency,
    lago_id: lagoId,
    tax_id: l.tax.id,
    tax_lago_id: l.tax.lagoId,
    tax_code: l.tax.code,
    tax_name: l.tax.name,
    tax_description: l.tax.description,
    tax_rate: l.tax.rate.toString(),
    amount_cents: l.amountCents.toString(),
    fees_amount_cents: l.feesAmountCents.toString(),
  })));
  if (rows.length === 0) return;
  await tx.query(
    `INSERT INTO invoice_applied_taxes (org_id, invoice_id, currency, created_at, lago_id, tax_id, tax_lago_id, tax_code, tax_name,
                                        tax_description, tax_rate, amount_cents, fees_amount_cents)
     SELECT $1, r.invoice_id, r.currency, $2, r.lago_id, r.tax_id, r.tax_lago_id, r.tax_code, r.tax_name, r.tax_description, r.tax_rate, r.amount_cents,
            r.fees_amount_cents
       FROM jsonb_to_recordset($3::jsonb) AS r(invoice_id bigint, currency text, lago_id uuid, tax_id bigint, tax_lago_id uuid, tax_code text,
            tax_name text, tax_description text, tax_rate numeric, amount_cents bigint, fees_amount_cents bigint)`,
    [orgId, now, JSON.stringify(rows)],
  );
}

/**
 * The applied taxes of a regroup invoice (core/regroup.ts): each tax as its fees bore it, linked to
 * the organization's tax of that lago_id while it exists.
 */
export async function insertRegroupedTaxes(
  tx: Queryable,
  orgId: number,
  invoiceId: number,
  currency: string,
  lines: readonly { lagoId: string; line: RegroupedTaxLine }[],
  now: Date,
): Promise<void> {
  if (lines.length === 0) return;
  const rows = lines.map(({ lagoId, line: l }) => ({
    lago_id: lagoId,
    tax_lago_id: l.tax.lagoTaxId,
    tax_code: l.tax.code,
    tax_name: l.tax.name,
    tax_description: l.tax.description,
    tax_rate: l.tax.rate.toString(),
    amount_cents: l.amountCents.toString(),
    fees_amount_cents: l.feesAmountCents.toString(),
  }));
  await tx.query(
    `INSERT INTO invoice_applied_taxes (org_id, invoice_id, currency, created_at, lago_id, tax_id, tax_lago_id, tax_code, tax_name,
                                        tax_description, tax_rate, amount_cents, fees_amount_cents)
     SELECT $1, $2, $3, $4, r.lago_id, (SELECT t.id FROM taxes t WHERE t.org_id = $1 AND t.lago_id = r.tax_lago_id), r.tax_lago_id, r.tax_code,
            r.tax_name, r.tax_description, r.tax_rate, r.amount_cents, r.fees_amount_cents
       FROM jsonb_to_recordset($5::jsonb) AS r(lago_id uuid, tax_lago_id uuid, tax_code text, tax_name text, tax_description text, tax_rate numeric,
            amount_cents bigint, fees_amount_cents bigint)`,
    [orgId, invoiceId, currency, now, JSON.stringify(rows)],
  );
}

export async function appliedTaxesOf(q: Queryable, orgId: number, invoiceIds: readonly number[]): Promise<AppliedTaxRecord[]> {
  if (invoiceIds.length === 0) return [];
  const { rows } = await q.query<{
    invoice_id: string;
    invoice_lago_id: string;
    lago_id: string;
    tax_lago_id: string | null;
    tax_code: string;
    tax_name: string;
    tax_description: string | null;
    tax_rate: string;
    amount_cents: string;
    fees_amount_cents: string;
    currency: string;
    created_at: Date;
  }>(
    `SELECT t.invoice_id, i.lago_id::text AS invoice_lago_id, t.lago_id::text AS lago_id, t.tax_lago_id::text AS tax_lago_id, t.tax_code,
            t.tax_name, t.tax_description, t.tax_rate::text AS tax_rate, t.amount_cents, t.fees_amount_cents, t.currency, t.created_at
       FROM invoice_applied_taxes t JOIN invoices i ON i.org_id = t.org_id AND i.id = t.invoice_id
      WHERE t.org_id = $1 AND t.invoice_id = ANY($2::bigint[]) ORDER BY t.invoice_id, t.id`,
    [orgId, invoiceIds.map(String)],
  );
  return rows.map((r) => ({
    invoiceId: Number(r.invoice_id),
    invoiceLagoId: r.invoice_lago_id,
    lagoId: r.lago_id,
    taxLagoId: r.tax_lago_id,
    taxCode: r.tax_code,
    taxName: r.tax_name,
    taxDescription: r.tax_description,
    taxRate: new Decimal(r.tax_rate),
    amountCents: big(r.amount_cents),
    feesAmountCents: big(r.fees_amount_cents),
    currency: r.currency,
    createdAt: new Date(r.created_at),
  }));
}

export interface NewCredit {
  readonly lagoId: string;
  readonly appliedCouponId: number | null;
  readonly creditNoteId: number | null;
  readonly amountCents: bigint;
  readonly beforeTaxes: boolean;
}

export async function replaceCredits(tx: Queryable, orgId: number, invoiceId: number, credits: readonly NewCredit[], currency: string, now: Date): Promise<void> {
  await tx.query("DELETE FROM credits WHERE org_id = $1 AND invoice_id = $2", [orgId, invoiceId]);
  if (credits.length === 0) return;
  const rows = credits.map((c) => ({
    lago_id: c.lagoId,
    applied_coupon_id: c.appliedCouponId,
    credit_note_id: c.creditNoteId,
    amount_cents: c.amountCents.toString(),
    before_taxes: c.beforeTaxes,
  }));
  await tx.query(
    `INSERT INTO credits (org_id, invoice_id, amount_currency, created_at, lago_id, applied_coupon_id, credit_note_id, amount_cents, before_taxes)
     SELECT $1, $2, $3, $4, r.lago_id, r.applied_coupon_id, r.credit_note_id, r.amount_cents, r.before_taxes
       FROM jsonb_to_recordset($5::jsonb) AS r(lago_id uuid, applied_coupon_id bigint, credit_note_id bigint, amount_cents bigint, before_taxes boolean)`,
    [orgId, invoiceId, currency, now, JSON.stringify(rows)],
  );
}

/** Credits of invoices, with what they came from (a coupon, or a credit note and the invoice it credits). */
export async function creditsOf(q: Queryable, orgId: number, invoiceIds: readonly number[]): Promise<CreditRecord[]> {
  if (invoiceIds.length === 0) return [];
  const { rows } = await q.query<{
    invoice_id: string;
    invoice_lago_id: string;
    payment_status: PaymentStatus;
    lago_id: string;
    amount_cents: string;
    amount_currency: string;
    before_taxes: boolean;
    item_type: "coupon" | "credit_note";
    item_lago_id: string;
    item_code: string;
    item_name: string;
  }>(
    `SELECT cr.invoice_id, i.lago_id::text AS invoice_lago_id, i.payment_status, cr.lago_id::text AS lago_id, cr.amount_cents,
            cr.amount_currency, cr.before_taxes,
            CASE WHEN cr.applied_coupon_id IS NOT NULL THEN 'coupon' ELSE 'credit_note' END AS item_type,
            coalesce(ac.lago_id, cn.lago_id)::text AS item_lago_id,
            coalesce(co.code, cn.number) AS item_code,
            coalesce(co.name, ci.number) AS item_name
       FROM credits cr
       JOIN invoices i ON i.org_id = cr.org_id AND i.id = cr.invoice_id
       LEFT JOIN applied_coupons ac ON ac.org_id = cr.org_id AND ac.id = cr.applied_coupon_id
       LEFT JOIN coupons co ON co.org_id = ac.org_id AND co.id = ac.coupon_id
       LEFT JOIN credit_notes cn ON cn.org_id = cr.org_id AND cn.id = cr.credit_note_id
       LEFT JOIN invoices ci ON ci.org_id = cn.org_id AND ci.id = cn.invoice_id
      WHERE cr.org_id = $1 AND cr.invoice_id = ANY($2::bigint[]) ORDER BY cr.invoice_id, cr.before_taxes DESC, cr.id`,
    [orgId, invoiceIds.map(String)],
  );
  return rows.map((r) => ({
    invoiceId: Number(r.invoice_id),
    invoiceLagoId: r.invoice_lago_id,
    paymentStatus: r.payment_status,
    lagoId: r.lago_id,
    amountCents: big(r.amount_cents),
    currency: r.amount_currency,
    beforeTaxes: r.before_taxes,
    item: { type: r.item_type, lagoItemId: r.item_lago_id, code: r.item_code, name: r.item_name },
  }));
}
