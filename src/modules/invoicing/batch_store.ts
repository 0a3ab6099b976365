// SQL of the billing job's batches (batch.ts): many subscriptions per statement. Every statement
// is scoped by org_id.
import type { Queryable } from "../../db/db.ts";
import type { InvoiceTotals, InvoicingReason, PaymentStatus } from "./core/index.ts";

/**
 * The billing locks of many subscriptions (the per-subscription path takes the same, one at a
 * time), in one statement and in key order, so two batches never wait on each other in a cycle.
 */
export async function lockSubscriptions(tx: Queryable, namespace: number, keys: readonly string[]): Promise<void> {
  await tx.query(
    `SELECT count(pg_advisory_xact_lock($1::int, l.k))::int AS n
       FROM (SELECT DISTINCT hashtext(x) AS k FROM unnest($2::text[]) AS x ORDER BY 1) l`,
    [namespace, keys],
  );
}

/** The latest billed instant of each subscription (absent: none). */
export async function lastBilledAt(q: Queryable, orgId: number, subscriptionIds: readonly number[]): Promise<Map<number, Date>> {
  const { rows } = await q.query<{ id: string; at: Date }>(
    `SELECT subscription_id AS id, max(billed_at) AS at FROM invoice_subscriptions
      WHERE org_id = $1 AND subscription_id = ANY($2::bigint[]) GROUP BY subscription_id`,
    [orgId, subscriptionIds.map(String)],
  );
  return new Map(rows.map((r) => [Number(r.id), new Date(r.at)]));
}

export interface OneByOneQuery {
  readonly subscriptions: readonly { id: number; customerId: number; externalId: string; at: Date }[];
  /** The metric codes of the batch's plans (late events of other codes do not matter). */
  readonly codes: readonly string[];
  /** How many latest invoiced periods the per-subscription path checks for late events. */
  readonly latePeriods: number;
  /** The per-subscription path's margin before an invoice's usage cutoff. */
  readonly marginMs: number;
}

/**
 * The subscriptions whose invoice may need more than plan and usage, so the per-subscription path
 * bills them: the customer has an active applied coupon, a wallet with a balance or a credit note
 * with credit left; the subscription has progressive billing invoices; or one of its latest
 * invoiced periods may have late events (an event of the plan's metrics in the period stored after
 * that invoice's usage cutoff, less the margin). Each test errs on the side of "yes": the
 * per-subscription path decides exactly.
 */
export async function needsOneByOne(q: Queryable, orgId: number, query: OneByOneQuery): Promise<Set<number>> {
  const subs = query.subscriptions;
  if (subs.length === 0) return new Set();
  const { rows } = await q.query<{ id: string }>(
    `SELECT s.id FROM unnest($2::bigint[], $3::bigint[], $4::text[], $5::timestamptz[]) AS s(id, customer_id, external_id, at)
      WHERE EXISTS (SELECT 1 FROM applied_coupons a WHERE a.org_id = $1 AND a.customer_id = s.customer_id AND a.status = 'active')
         OR EXISTS (SELECT 1 FROM wallets w WHERE w.org_id = $1 AND w.customer_id = s.customer_id AND w.status = 'active' AND w.balance_cents > 0)
         OR EXISTS (SELECT 1 FROM credit_notes cn WHERE cn.org_id = $1 AND cn.customer_id = s.customer_id
                       AND cn.credit_status = 'available' AND cn.balance_amount_cents > 0)
         OR EXISTS (SELECT 1 FROM applied_usage_thresholds t WHERE t.org_id = $1 AND t.subscription_id = s.id)
         OR EXISTS (SELECT 1 FROM (SELECT b.charges_from, b.charges_to, c.events_before
                                     FROM invoice_subscriptions b
                                     JOIN invoices i ON i.org_id = b.org_id AND i.id = b.invoice_id AND i.status = 'finalized'
                                     JOIN invoice_usage_cutoffs c ON c.org_id = b.org_id AND c.invoice_id = b.invoice_id
                                    WHERE b.org_id = $1 AND b.subscription_id = s.id AND b.charges_from IS NOT NULL AND b.billed_at < s.at
                                    ORDER BY b.billed_at DESC LIMIT $7) p
                     WHERE EXISTS (SELECT 1 FROM events e
                                    WHERE e.org_id = $1 AND e.code = ANY($6::text[]) AND e.external_subscription_id = s.external_id
                                      AND e.ts >= p.charges_from AND e.ts < p.charges_to + interval '1 millisecond'
                                      AND e.created_at > p.events_before - $8 * interval '1 millisecond'))`,
    [
      orgId,
      subs.map((s) => String(s.id)),
      subs.map((s) => String(s.customerId)),
      subs.map((s) => s.externalId),
      subs.map((s) => s.at.toISOString()),
      query.codes,
      query.latePeriods,
      query.marginMs,
    ],
  );
  return new Set(rows.map((r) => Number(r.id)));
}

/**
 * Takes `count` consecutive values of a gapless sequence at once; answers the first. The row stays
 * locked until the commit (as `nextSequence`'s does).
 */
export async function reserveSequence(tx: Queryable, orgId: number, customerId: number, count: number): Promise<number> {
  const { rows } = await tx.query<{ v: string }>(
    `INSERT INTO invoice_sequences AS s (org_id, customer_id, last_value) VALUES ($1, $2, $3)
     ON CONFLICT (org_id, customer_id) DO UPDATE SET last_value = s.last_value + excluded.last_value
     RETURNING s.last_value AS v`,
    [orgId, customerId, count],
  );
  return Number(rows[0]!.v) - count + 1;
}

/** Each customer's sequence moved on by its number of invoices (in customer order); `next` hands the values out in turn. */
export async function reserveCustomerSequences(
  tx: Queryable,
  orgId: number,
  customerIds: readonly number[],
): Promise<{ next(customerId: number): number }> {
  const counts = new Map<number, number>();
  for (const id of customerIds) counts.set(id, (counts.get(id) ?? 0) + 1);
  const next = new Map<number, number>();
  if (counts.size > 0) {
    const ids = [...counts.keys()].sort((a, b) => a - b);
    const { rows } = await tx.query<{ c: string; v: string }>(
      `INSERT INTO invoice_sequences AS s (org_id, customer_id, last_value)
       SELECT $1, x.c, x.n FROM unnest($2::bigint[], $3::bigint[]) AS x(c, n) ORDER BY x.c
       ON CONFLICT (org_id, customer_id) DO UPDATE SET last_value = s.last_value + excluded.last_value
       RETURNING s.customer_id AS c, s.last_value AS v`,
      [orgId, ids.map(String), ids.map((id) => String(counts.get(id)))],
    );
    for (const r of rows) next.set(Number(r.c), Number(r.v) - counts.get(Number(r.c))! + 1);
  }
  return {
    next(customerId: number): number {
      const v = next.get(customerId);
      if (v === undefined) throw new Error(`no sequence reserved for customer ${customerId}`);
      next.set(customerId, v + 1);
      return v;
    },
  };
}

export interface BatchInvoice {
  readonly lagoId: string;
  readonly customerId: number;
  readonly number: string;
  readonly organizationSequentialId: number | null;
  readonly sequentialId: number | null;
  readonly status: "draft" | "finalized";
  readonly paymentStatus: PaymentStatus;
  readonly issuingDate: string;
  readonly paymentDueDate: string;
  readonly netPaymentTerm: number;
  readonly currency: string;
  readonly totals: InvoiceTotals;
  readonly graceUntil: Date | null;
  readonly finalizedAt: Date | null;
}

/** Subscription invoices, drafts or finalized, with their totals, in one statement; answers their ids by lago_id. */
export async function insertInvoices(tx: Queryable, orgId: number, invoices: readonly BatchInvoice[], now: Date): Promise<Map<string, number>> {
  const rows = invoices.map((i) => ({
    lago_id: i.lagoId,
    customer_id: i.customerId,
    status: i.status,
    payment_status: i.paymentStatus,
    number: i.number,
    organization_sequential_id: i.organizationSequentialId,
    sequential_id: i.sequentialId,
    issuing_date: i.issuingDate,
    payment_due_date: i.paymentDueDate,
    net_payment_term: i.netPaymentTerm,
    currency: i.currency,
    fees_amount_cents: i.totals.feesAmountCents.toString(),
    coupons_amount_cents: i.totals.couponsAmountCents.toString(),
    credit_notes_amount_cents: i.totals.creditNotesAmountCents.toString(),
    prepaid_credit_amount_cents: i.totals.prepaidCreditAmountCents.toString(),
    taxes_amount_cents: i.totals.taxesAmountCents.toString(),
    sub_total_excluding_taxes_amount_cents: i.totals.subTotalExcludingTaxesAmountCents.toString(),
    sub_total_including_taxes_amount_cents: i.totals.subTotalIncludingTaxesAmountCents.toString(),
    total_amount_cents: i.totals.totalAmountCents.toString(),
    progressive_billing_credit_amount_cents: (i.totals.progressiveBillingCreditAmountCents ?? 0n).toString(),
    grace_until: i.graceUntil?.toISOString() ?? null,
    finalized_at: i.finalizedAt?.toISOString() ?? null,
  }));
  const { rows: ids } = await tx.query<{ id: string; lago_id: string }>(
    `INSERT INTO invoices (org_id, lago_id, customer_id, invoice_type, status, payment_status, number, organization_sequential_id, sequential_id,
                           issuing_date, payment_due_date, net_payment_term, currency, fees_amount_cents, coupons_amount_cents,
                           credit_notes_amount_cents, prepaid_credit_amount_cents, taxes_amount_cents, sub_total_excluding_taxes_amount_cents,
                           sub_total_including_taxes_amount_cents, total_amount_cents, progressive_billing_credit_amount_cents, grace_until,
                           finalized_at, created_at, updated_at)
     SELECT $1, r.lago_id, r.customer_id, 'subscription', r.status, r.payment_status, r.number, r.organization_sequential_id, r.sequential_id,
            r.issuing_date, r.payment_due_date, r.net_payment_term, r.currency, r.fees_amount_cents, r.coupons_amount_cents,
            r.credit_notes_amount_cents, r.prepaid_credit_amount_cents, r.taxes_amount_cents, r.sub_total_excluding_taxes_amount_cents,
            r.sub_total_including_taxes_amount_cents, r.total_amount_cents, r.progressive_billing_credit_amount_cents, r.grace_until,
            r.finalized_at, $2, $2
       FROM jsonb_to_recordset($3::jsonb) AS r(
              lago_id uuid, customer_id bigint, status text, payment_status text, number text, organization_sequential_id bigint,
              sequential_id bigint, issuing_date date, payment_due_date date, net_payment_term int, currency text, fees_amount_cents bigint,
              coupons_amount_cents bigint, credit_notes_amount_cents bigint, prepaid_credit_amount_cents bigint, taxes_amount_cents bigint,
              sub_total_excluding_taxes_amount_cents bigint, sub_total_including_taxes_amount_cents bigint, total_amount_cents bigint,
              progressive_billing_credit_amount_cents bigint, grace_until timestamptz, finalized_at timestamptz)
     RETURNING id, lago_id::text AS lago_id`,
    [orgId, now, JSON.stringify(rows)],
  );
  return new Map(ids.map((r) => [r.lago_id, Number(r.id)]));
}

/** Numbers and finalizes drafts written by `insertInvoices` (as `markFinalized` does one). */
export async function finalizeInvoices(
  tx: Queryable,
  orgId: number,
  invoices: readonly { id: number; number: string; organizationSequentialId: number; sequentialId: number }[],
  now: Date,
): Promise<void> {
  await tx.query(
    `UPDATE invoices i SET status = 'finalized', number = x.number, organization_sequential_id = x.o, sequential_id = x.s, grace_until = NULL,
            finalized_at = $2, updated_at = $2
       FROM unnest($3::bigint[], $4::text[], $5::bigint[], $6::bigint[]) AS x(id, number, o, s)
      WHERE i.org_id = $1 AND i.id = x.id AND i.status = 'draft'`,
    [
      orgId,
      now,
      invoices.map((i) => String(i.id)),
      invoices.map((i) => i.number),
      invoices.map((i) => String(i.organizationSequentialId)),
      invoices.map((i) => String(i.sequentialId)),
    ],
  );
}

export interface BatchBillingPeriod {
  readonly invoiceId: number;
  readonly subscriptionId: number;
  readonly reason: InvoicingReason;
  readonly billedAt: Date;
  readonly feeFrom: Date | null;
  readonly feeTo: Date | null;
  readonly chargesFrom: Date | null;
  readonly chargesTo: Date | null;
}

/**
 * Records the billing instants the batch's invoices close (no unused advance credit: batches bill
 * none). A subscription's instant billed meanwhile fails the whole statement (23505).
 */
export async function insertBillingPeriods(tx: Queryable, orgId: number, periods: readonly BatchBillingPeriod[], now: Date): Promise<void> {
  const iso = (d: Date | null) => (d === null ? null : d.toISOString());
  const rows = periods.map((p) => ({
    invoice_id: p.invoiceId,
    subscription_id: p.subscriptionId,
    invoicing_reason: p.reason,
    billed_at: iso(p.billedAt),
    fee_from: iso(p.feeFrom),
    fee_to: iso(p.feeTo),
    charges_from: iso(p.chargesFrom),
    charges_to: iso(p.chargesTo),
  }));
  await tx.query(
    `INSERT INTO invoice_subscriptions (org_id, invoice_id, subscription_id, invoicing_reason, billed_at, fee_from, fee_to,
                                        charges_from, charges_to, unused_advance_credit_cents, created_at)
     SELECT $1, r.invoice_id, r.subscription_id, r.invoicing_reason, r.billed_at, r.fee_from, r.fee_to, r.charges_from, r.charges_to, 0, $2
       FROM jsonb_to_recordset($3::jsonb) AS r(invoice_id bigint, subscription_id bigint, invoicing_reason text, billed_at timestamptz,
            fee_from timestamptz, fee_to timestamptz, charges_from timestamptz, charges_to timestamptz)`,
    [orgId, now, JSON.stringify(rows)],
  );
}
