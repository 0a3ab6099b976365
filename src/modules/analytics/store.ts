// SQL for analytics: aggregates over invoices, fees and credit notes, every statement scoped by the
// organization. Sums are computed by the database on bigint/numeric and read back as text, turned
// into bigint here; no amount ever passes through a JS number.
import type { Queryable } from "../../db/db.ts";
import { Decimal } from "../../shared/money.ts";
import type { MonthKey } from "./core/months.ts";
import type { PlanInterval, SubscriptionFeeGroup } from "./core/mrr.ts";
import type { CollectionRow, GrossRevenueRow, InvoicedUsageRow, OverdueRow, PaymentStatus } from "./core/series.ts";
import type { DailyUsageRow, UsageQuery } from "./core/usage.ts";

export interface Scope {
  orgId: number;
  /** First day of the window's first month, and of the month after its last ("YYYY-MM-DD"). */
  from: string;
  to: string;
  currency: string | null;
  externalCustomerId: string | null;
}

/** Filters on an invoice `i` (and its customer `c`), appended as numbered parameters. */
function invoiceFilters(scope: Scope, params: unknown[], alias = "i"): string {
  let sql = "";
  if (scope.currency !== null) {
    params.push(scope.currency);
    sql += ` AND ${alias}.currency = $${params.length}`;
  }
  if (scope.externalCustomerId !== null) {
    // The live customer with that external id (a deleted customer's id may name a new one).
    params.push(scope.externalCustomerId);
    sql += ` AND ${alias}.customer_id IN (SELECT id FROM customers WHERE org_id = $1 AND external_id = $${params.length} AND deleted_at IS NULL)`;
  }
  return sql;
}

/**
 * Gross revenue: finalized invoices of every type (subscription, usage, one-off, wallet credit
 * purchases, advance charges, progressive billing) by issuing month — what they bill after coupons,
 * taxes, credit notes and prepaid credits (`total_amount_cents`) — less what their credit notes
 * refunded; plus fees paid in advance that are on no invoice (non-invoiceable), by the month they
 * were created. Drafts and voided invoices are not revenue. A credit note's credit part is not
 * deducted here: it lowers the total of the invoice it is later drawn on, and deducting it twice
 * would understate revenue; its refund part leaves the organization's pocket, so it is deducted
 * from the invoice it refunds. Voided credit notes deduct nothing.
 */
export async function grossRevenue(q: Queryable, scope: Scope): Promise<GrossRevenueRow[]> {
  const params: unknown[] = [scope.orgId, scope.from, scope.to];
  const invoiceSql = invoiceFilters(scope, params);
  const feeSql = invoiceFilters(scope, params, "f");
  const { rows } = await q.query<{ month: string; currency: string; cents: string; invoices: number }>(
    `SELECT to_char(i.issuing_date, 'YYYY-MM') AS month, i.currency,
            (SUM(i.total_amount_cents) - COALESCE(SUM(r.refunded), 0))::text AS cents, COUNT(*)::int AS invoices
       FROM invoices i
       LEFT JOIN (SELECT cn.invoice_id, SUM(cn.refund_amount_cents) AS refunded FROM credit_notes cn
                   WHERE cn.org_id = $1 AND cn.voided_at IS NULL AND cn.refund_amount_cents > 0
                   GROUP BY cn.invoice_id) r ON r.invoice_id = i.id
      WHERE i.org_id = $1 AND i.status = 'finalized'
        AND i.issuing_date >= $2::date AND i.issuing_date < $3::date${invoiceSql}
      GROUP BY 1, 2
     UNION ALL
     SELECT to_char(f.created_at AT TIME ZONE 'UTC', 'YYYY-MM') AS month, f.currency,
            SUM(f.amount_cents + f.taxes_amount_cents)::text AS cents, 0 AS invoices
       FROM fees f
      WHERE f.org_id = $1 AND f.invoice_id IS NULL AND f.pay_in_advance
        AND f.created_at >= ($2::date)::timestamp AT TIME ZONE 'UTC' AND f.created_at < ($3::date)::timestamp AT TIME ZONE 'UTC'${feeSql}
      GROUP BY 1, 2`,
    params,
  );
  return rows.map((r) => ({ month: r.month, currency: r.currency, cents: BigInt(r.cents), invoices: Number(r.invoices) }));
}

/** Finalized invoices by issuing month and payment status: how many, and their totals. */
export async function invoiceCollection(q: Queryable, scope: Scope): Promise<CollectionRow[]> {
  const params: unknown[] = [scope.orgId, scope.from, scope.to];
  const filters = invoiceFilters(scope, params);
  const { rows } = await q.query<{ month: string; currency: string; payment_status: PaymentStatus; cents: string; invoices: number }>(
    `SELECT to_char(i.issuing_date, 'YYYY-MM') AS month, i.currency, i.payment_status,
            SUM(i.total_amount_cents)::text AS cents, COUNT(*)::int AS invoices
       FROM invoices i
      WHERE i.org_id = $1 AND i.status = 'finalized'
        AND i.issuing_date >= $2::date AND i.issuing_date < $3::date${filters}
      GROUP BY 1, 2, 3`,
    params,
  );
  return rows.map((r) => ({ month: r.month, currency: r.currency, paymentStatus: r.payment_status, cents: BigInt(r.cents), invoices: Number(r.invoices) }));
}

/**
 * Invoiced usage: usage-based (charge) fees on finalized invoices, by the invoice's issuing month and
 * the billable metric's code, before taxes and coupons (the fee's amount). Only what has been
 * invoiced counts: the current period's usage, not yet on an invoice, does not; nor do
 * non-invoiceable advance fees, which are on no invoice.
 */
export async function invoicedUsage(q: Queryable, scope: Scope): Promise<InvoicedUsageRow[]> {
  const params: unknown[] = [scope.orgId, scope.from, scope.to];
  const filters = invoiceFilters(scope, params);
  const { rows } = await q.query<{ month: string; currency: string; code: string; cents: string }>(
    `SELECT to_char(i.issuing_date, 'YYYY-MM') AS month, i.currency, COALESCE(bm.code, f.item_code) AS code,
            SUM(f.amount_cents)::text AS cents
       FROM fees f
       JOIN invoices i ON i.id = f.invoice_id AND i.org_id = $1
       LEFT JOIN billable_metrics bm ON bm.id = f.billable_metric_id AND bm.org_id = $1
      WHERE f.org_id = $1 AND f.fee_type = 'charge' AND i.status = 'finalized'
        AND i.issuing_date >= $2::date AND i.issuing_date < $3::date${filters}
      GROUP BY 1, 2, 3`,
    params,
  );
  return rows.map((r) => ({ month: r.month, currency: r.currency, code: r.code, cents: BigInt(r.cents) }));
}

/**
 * Overdue balance: finalized invoices whose payment is pending or failed and whose due date is
 * before `today` (the organization's clock), by the month they fell due. The amount is what is
 * still owed (total less what was paid against it). Voided invoices are not owed; drafts are not due.
 */
export async function overdueBalance(q: Queryable, scope: Scope, today: string): Promise<OverdueRow[]> {
  const params: unknown[] = [scope.orgId, scope.from, scope.to, today];
  const filters = invoiceFilters(scope, params);
  const { rows } = await q.query<{ month: string; currency: string; cents: string; ids: string[] }>(
    `SELECT to_char(i.payment_due_date, 'YYYY-MM') AS month, i.currency,
            SUM(i.total_amount_cents - i.total_paid_amount_cents)::text AS cents,
            array_agg(i.lago_id::text ORDER BY i.payment_due_date, i.id) AS ids
       FROM invoices i
      WHERE i.org_id = $1 AND i.status = 'finalized' AND i.payment_status IN ('pending', 'failed')
        AND i.total_amount_cents > i.total_paid_amount_cents
        AND i.payment_due_date < $4::date
        AND i.payment_due_date >= $2::date AND i.payment_due_date < $3::date${filters}
      GROUP BY 1, 2`,
    params,
  );
  return rows.map((r) => ({ month: r.month, currency: r.currency, cents: BigInt(r.cents), invoiceIds: r.ids }));
}

/**
 * Subscription fees on finalized invoices issued from `spreadFrom` (a year before the window, so a
 * yearly fee paid in advance still reaches it) to the window's end, grouped by plan interval,
 * currency, issuing month and period. The amount is per fee net of coupons with taxes, rounded
 * half-up to the cent on the fee, as Lago computes MRR "post taxes and discounts".
 */
export async function subscriptionFees(q: Queryable, scope: Scope, spreadFrom: string): Promise<SubscriptionFeeGroup[]> {
  const params: unknown[] = [scope.orgId, spreadFrom, scope.to];
  const filters = invoiceFilters(scope, params);
  const { rows } = await q.query<{
    interval: PlanInterval;
    currency: string;
    issuing_month: string;
    period_from: string | null;
    period_to: string | null;
    pay_in_advance: boolean;
    cents: string;
    invoices: number;
  }>(
    `SELECT p.interval, i.currency, to_char(i.issuing_date, 'YYYY-MM') AS issuing_month,
            CASE WHEN p.interval IN ('quarterly', 'yearly') THEN to_char(f.from_datetime AT TIME ZONE 'UTC', 'YYYY-MM') END AS period_from,
            CASE WHEN p.interval IN ('quarterly', 'yearly') THEN to_char(f.to_datetime AT TIME ZONE 'UTC', 'YYYY-MM') END AS period_to,
            f.pay_in_advance,
            SUM(round(f.amount_cents - f.precise_coupons_amount_cents + f.taxes_amount_cents))::text AS cents,
            COUNT(DISTINCT i.id)::int AS invoices
       FROM fees f
       JOIN invoices i ON i.id = f.invoice_id AND i.org_id = $1
       JOIN subscriptions s ON s.id = f.subscription_id AND s.org_id = $1
       JOIN plans p ON p.id = s.plan_id AND p.org_id = $1
      WHERE f.org_id = $1 AND f.fee_type = 'subscription' AND i.status = 'finalized'
        AND i.issuing_date >= $2::date AND i.issuing_date < $3::date${filters}
      GROUP BY 1, 2, 3, 4, 5, 6`,
    params,
  );
  return rows.map((r) => ({
    interval: r.interval,
    currency: r.currency,
    issuingMonth: r.issuing_month as MonthKey,
    periodFrom: r.period_from,
    periodTo: r.period_to,
    payInAdvance: r.pay_in_advance,
    cents: BigInt(r.cents),
    invoices: Number(r.invoices),
  }));
}

/**
 * Billed usage per day (the start of the fee's usage period, UTC), currency and metric: charge fees
 * on finalized invoices and fees paid in advance that are on no invoice; drafts and voided invoices
 * are left out. Filters follow Lago's /analytics/usage parameters.
 */
export async function dailyUsage(q: Queryable, orgId: number, u: UsageQuery): Promise<DailyUsageRow[]> {
  const params: unknown[] = [orgId, u.fromDate, u.toDate];
  let filters = "";
  const eq = (column: string, value: unknown) => {
    if (value === null) return;
    params.push(value);
    filters += ` AND ${column} = $${params.length}`;
  };
  eq("f.currency", u.currency);
  eq("c.customer_type", u.customerType);
  eq("c.external_id", u.externalCustomerId);
  eq("c.country", u.customerCountry);
  eq("s.external_id", u.externalSubscriptionId);
  eq("p.code", u.planCode);
  eq("bm.code", u.metricCode);
  eq("bm.recurring", u.metricRecurring);
  const day = "(COALESCE(f.usage_from, f.from_datetime, f.created_at) AT TIME ZONE 'UTC')";
  const { rows } = await q.query<{ day: string; currency: string; code: string; deleted: boolean; units: string; cents: string }>(
    `SELECT to_char(${day}, 'YYYY-MM-DD') AS day, f.currency, COALESCE(bm.code, f.item_code) AS code,
            (bm.deleted_at IS NOT NULL) AS deleted, SUM(f.units)::text AS units, SUM(f.amount_cents)::text AS cents
       FROM fees f
       LEFT JOIN invoices i ON i.id = f.invoice_id AND i.org_id = $1
       JOIN customers c ON c.id = COALESCE(i.customer_id, f.customer_id) AND c.org_id = $1
       LEFT JOIN subscriptions s ON s.id = f.subscription_id AND s.org_id = $1
       LEFT JOIN plans p ON p.id = s.plan_id AND p.org_id = $1
       LEFT JOIN billable_metrics bm ON bm.id = f.billable_metric_id AND bm.org_id = $1
      WHERE f.org_id = $1 AND f.fee_type = 'charge'
        AND (i.status = 'finalized' OR (f.invoice_id IS NULL AND f.pay_in_advance))
        AND ${day} >= $2::date AND ${day} < $3::date + 1${filters}
      GROUP BY 1, 2, 3, 4`,
    params,
  );
  return rows.map((r) => ({ day: r.day, currency: r.currency, code: r.code, metricDeleted: r.deleted, units: new Decimal(r.units), cents: BigInt(r.cents) }));
}

/** The organization's public UUID (usage rows carry it as `organization_id`). */
export async function organizationPublicId(q: Queryable, orgId: number): Promise<string> {
  const { rows } = await q.query<{ public_id: string }>("SELECT public_id::text AS public_id FROM organizations WHERE id = $1", [orgId]);
  return rows[0]?.public_id ?? "";
}
