// SQL for credit notes. Every statement is scoped by org_id.
import type { Queryable } from "../../db/db.ts";
import { Decimal } from "../../shared/money.ts";
import type { Balance } from "../invoicing/index.ts";
import type { CreditNoteAmounts, CreditNoteReason, CreditNoteTaxLine, CreditableFee } from "./core/credit_note.ts";

export interface CreditedInvoice {
  readonly id: number;
  readonly lagoId: string;
  readonly number: string;
  readonly status: "draft" | "finalized" | "voided";
  /** `credit`: a wallet's purchase of credits. */
  readonly invoiceType: string;
  readonly paymentStatus: "pending" | "succeeded" | "failed";
  readonly customerId: number;
  readonly currency: string;
  readonly totalAmountCents: bigint;
  /** Refunds already promised by earlier credit notes (not voided). */
  readonly refundedCents: bigint;
  /** Paid so far: its total once its payment status is succeeded, else what payments collected (manual ones included: total_paid_amount_cents). */
  readonly paidCents: bigint;
  /** The totals of its credit notes that were not voided. */
  readonly creditedTotalCents: bigint;
}

/** What a refund may still take of the invoice: paid, less refunds already promised (never negative). */
export const refundableOf = (i: CreditedInvoice): bigint => {
  const left = i.paidCents - i.refundedCents;
  return left < 0n ? 0n : left;
};

export async function invoiceForCredit(q: Queryable, orgId: number, where: { lagoId: string } | { id: number }, forUpdate = false): Promise<CreditedInvoice | null> {
  const byLago = "lagoId" in where;
  const { rows } = await q.query<{ id: string; lago_id: string; number: string; status: CreditedInvoice["status"]; invoice_type: string; payment_status: CreditedInvoice["paymentStatus"]; customer_id: string; currency: string; total_amount_cents: string; refunded: string; paid: string; credited: string }>(
    `SELECT i.id, i.lago_id::text AS lago_id, i.number, i.status, i.invoice_type, i.payment_status, i.customer_id, i.currency, i.total_amount_cents,
            (SELECT coalesce(sum(cn.refund_amount_cents), 0) FROM credit_notes cn WHERE cn.org_id = i.org_id AND cn.invoice_id = i.id)::text AS refunded,
            CASE WHEN i.payment_status = 'succeeded' THEN i.total_amount_cents::text
                 ELSE greatest(i.total_paid_amount_cents,
                               (SELECT coalesce(sum(p.amount_cents), 0) FROM payments p
                                 WHERE p.org_id = i.org_id AND p.invoice_id = i.id AND p.status = 'succeeded'))::text END AS paid,
            (SELECT coalesce(sum(cn.total_amount_cents), 0) FROM credit_notes cn
              WHERE cn.org_id = i.org_id AND cn.invoice_id = i.id AND cn.voided_at IS NULL)::text AS credited
       FROM invoices i WHERE i.org_id = $1 AND ${byLago ? "i.lago_id = $2::uuid" : "i.id = $2"}${forUpdate ? " FOR UPDATE OF i" : ""}`,
    [orgId, byLago ? where.lagoId : where.id],
  );
  const r = rows[0];
  if (r === undefined) return null;
  return {
    id: Number(r.id),
    lagoId: r.lago_id,
    number: r.number,
    status: r.status,
    invoiceType: r.invoice_type,
    paymentStatus: r.payment_status,
    customerId: Number(r.customer_id),
    currency: r.currency,
    totalAmountCents: BigInt(r.total_amount_cents),
    refundedCents: BigInt(r.refunded),
    paidCents: BigInt(r.paid),
    creditedTotalCents: BigInt(r.credited),
  };
}

/** The invoice's fees as credit notes see them, by lago_id. */
export async function creditableFees(q: Queryable, orgId: number, invoiceId: number): Promise<Map<string, CreditableFee>> {
  const { rows } = await q.query<{ id: string; lago_id: string; amount_cents: string; precise_coupons_amount_cents: string; applied_taxes: unknown; credited: string }>(
    `SELECT f.id, f.lago_id::text AS lago_id, f.amount_cents, f.precise_coupons_amount_cents::text AS precise_coupons_amount_cents, f.applied_taxes,
            (SELECT coalesce(sum(it.amount_cents), 0) FROM credit_note_items it WHERE it.org_id = f.org_id AND it.fee_id = f.id)::text AS credited
       FROM fees f WHERE f.org_id = $1 AND f.invoice_id = $2 ORDER BY f.position, f.id`,
    [orgId, invoiceId],
  );
  const out = new Map<string, CreditableFee>();
  for (const r of rows) {
    const taxes = (typeof r.applied_taxes === "string" ? JSON.parse(r.applied_taxes) : r.applied_taxes) as {
      tax_code: string;
      tax_name: string;
      lago_tax_id: string | null;
      tax_description: string | null;
      tax_rate: string;
    }[];
    out.set(r.lago_id, {
      id: Number(r.id),
      lagoId: r.lago_id,
      amountCents: BigInt(r.amount_cents),
      preciseCouponsAmountCents: new Decimal(r.precise_coupons_amount_cents),
      creditedCents: BigInt(r.credited),
      taxes: taxes.map((t) => ({ code: t.tax_code, name: t.tax_name, lagoTaxId: t.lago_tax_id, description: t.tax_description, rate: new Decimal(t.tax_rate) })),
    });
  }
  return out;
}

export interface CreditNoteRecord {
  readonly id: number;
  readonly orgId: number;
  readonly lagoId: string;
  readonly invoiceId: number;
  readonly invoiceLagoId: string;
  readonly invoiceNumber: string;
  readonly customerId: number;
  readonly sequentialId: number;
  readonly number: string;
  readonly issuingDate: string;
  readonly reason: CreditNoteReason;
  readonly description: string | null;
  readonly currency: string;
  readonly creditStatus: "available" | "consumed" | "voided" | null;
  readonly refundStatus: "pending" | "succeeded" | "failed" | null;
  readonly subTotalExcludingTaxesAmountCents: bigint;
  readonly taxesAmountCents: bigint;
  readonly preciseTaxesAmountCents: Decimal;
  readonly taxesRate: Decimal;
  readonly couponsAdjustmentAmountCents: bigint;
  readonly totalAmountCents: bigint;
  readonly creditAmountCents: bigint;
  readonly refundAmountCents: bigint;
  readonly balanceAmountCents: bigint;
  readonly appliedTaxes: readonly StoredCreditNoteTax[];
  readonly automatic: boolean;
  readonly items: readonly { readonly lagoId: string; readonly feeLagoId: string; readonly amountCents: bigint }[];
  /** Issued because late events lowered a billed amount: the invoice that found it and its adjustment fee (traced to the events). */
  readonly lateEvents: { readonly lagoInvoiceId: string; readonly lagoAdjustmentFeeId: string | null; readonly lagoOriginalFeeId: string } | null;
  readonly voidedAt: Date | null;
  readonly createdAt: Date;
  readonly updatedAt: Date;
}

export interface StoredCreditNoteTax {
  readonly lago_id: string;
  readonly lago_tax_id: string | null;
  readonly tax_code: string;
  readonly tax_name: string;
  readonly tax_description: string | null;
  readonly tax_rate: string;
  readonly base_amount_cents: string;
  readonly amount_cents: string;
}

export async function nextSequentialId(q: Queryable, orgId: number, invoiceId: number): Promise<number> {
  const { rows } = await q.query<{ n: number }>("SELECT coalesce(max(sequential_id), 0) + 1 AS n FROM credit_notes WHERE org_id = $1 AND invoice_id = $2", [orgId, invoiceId]);
  return Number(rows[0]!.n);
}

export interface NewCreditNote {
  readonly orgId: number;
  readonly lagoId: string;
  readonly invoice: CreditedInvoice;
  readonly sequentialId: number;
  readonly number: string;
  readonly issuingDate: string;
  readonly reason: CreditNoteReason;
  readonly description: string | null;
  readonly amounts: CreditNoteAmounts;
  readonly creditAmountCents: bigint;
  readonly refundAmountCents: bigint;
  readonly automatic: boolean;
  readonly newId: () => string;
  readonly now: Date;
}

const taxJson = (t: CreditNoteTaxLine, lagoId: string): StoredCreditNoteTax => ({
  lago_id: lagoId,
  lago_tax_id: t.lagoTaxId,
  tax_code: t.code,
  tax_name: t.name,
  tax_description: t.description,
  tax_rate: t.rate.toString(),
  base_amount_cents: t.baseAmountCents.toString(),
  amount_cents: t.amountCents.toString(),
});

export async function insertCreditNote(q: Queryable, n: NewCreditNote): Promise<number> {
  const a = n.amounts;
  const { rows } = await q.query<{ id: string }>(
    `INSERT INTO credit_notes (org_id, lago_id, invoice_id, customer_id, sequential_id, number, issuing_date, reason, description, currency,
                               credit_status, refund_status, sub_total_excluding_taxes_amount_cents, taxes_amount_cents, precise_taxes_amount_cents,
                               taxes_rate, coupons_adjustment_amount_cents, total_amount_cents, credit_amount_cents, refund_amount_cents,
                               balance_amount_cents, applied_taxes, automatic, created_at, updated_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7::date, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $19, $21::jsonb, $22, $23, $23)
     RETURNING id`,
    [
      n.orgId, n.lagoId, n.invoice.id, n.invoice.customerId, n.sequentialId, n.number, n.issuingDate, n.reason, n.description, n.invoice.currency,
      n.creditAmountCents > 0n ? "available" : null, n.refundAmountCents > 0n ? "pending" : null, a.subTotalExcludingTaxesAmountCents.toString(),
      a.taxesAmountCents.toString(), a.preciseTaxesAmountCents.toString(), a.taxesRate.toString(), a.couponsAdjustmentAmountCents.toString(),
      a.totalAmountCents.toString(), n.creditAmountCents.toString(), n.refundAmountCents.toString(),
      JSON.stringify(a.appliedTaxes.map((t) => taxJson(t, n.newId()))), n.automatic, n.now,
    ],
  );
  const id = Number(rows[0]!.id);
  const items = a.items.map((it) => ({ lago_id: n.newId(), fee_id: it.fee.id, amount_cents: it.amountCents.toString() }));
  await q.query(
    `INSERT INTO credit_note_items (org_id, credit_note_id, created_at, lago_id, fee_id, amount_cents)
     SELECT $1, $2, $3, r.lago_id, r.fee_id, r.amount_cents FROM jsonb_to_recordset($4::jsonb) AS r(lago_id uuid, fee_id bigint, amount_cents bigint)`,
    [n.orgId, id, n.now, JSON.stringify(items)],
  );
  return id;
}

interface NoteRow {
  id: string;
  org_id: number;
  lago_id: string;
  invoice_id: string;
  invoice_lago_id: string;
  invoice_number: string;
  customer_id: string;
  sequential_id: number;
  number: string;
  issuing_date: string;
  reason: CreditNoteReason;
  description: string | null;
  currency: string;
  credit_status: CreditNoteRecord["creditStatus"];
  refund_status: CreditNoteRecord["refundStatus"];
  sub_total_excluding_taxes_amount_cents: string;
  taxes_amount_cents: string;
  precise_taxes_amount_cents: string;
  taxes_rate: string;
  coupons_adjustment_amount_cents: string;
  total_amount_cents: string;
  credit_amount_cents: string;
  refund_amount_cents: string;
  balance_amount_cents: string;
  applied_taxes: StoredCreditNoteTax[] | string;
  automatic: boolean;
  items: { lago_id: string; fee_lago_id: string; amount_cents: string | number }[] | string | null;
  late_events: { lago_invoice_id: string; lago_fee_id: string | null; lago_original_fee_id: string } | string | null;
  voided_at: Date | null;
  created_at: Date;
  updated_at: Date;
}

const NOTE_SELECT = `
SELECT cn.id, cn.org_id, cn.lago_id::text AS lago_id, cn.invoice_id, i.lago_id::text AS invoice_lago_id, i.number AS invoice_number, cn.customer_id,
       cn.sequential_id, cn.number, cn.issuing_date::text AS issuing_date, cn.reason, cn.description, cn.currency, cn.credit_status, cn.refund_status,
       cn.sub_total_excluding_taxes_amount_cents, cn.taxes_amount_cents, cn.precise_taxes_amount_cents::text AS precise_taxes_amount_cents,
       cn.taxes_rate::text AS taxes_rate, cn.coupons_adjustment_amount_cents, cn.total_amount_cents, cn.credit_amount_cents, cn.refund_amount_cents,
       cn.balance_amount_cents, cn.applied_taxes, cn.automatic, cn.voided_at, cn.created_at, cn.updated_at,
       (SELECT jsonb_agg(jsonb_build_object('lago_id', it.lago_id, 'fee_lago_id', f.lago_id, 'amount_cents', it.amount_cents) ORDER BY it.id)
          FROM credit_note_items it JOIN fees f ON f.org_id = it.org_id AND f.id = it.fee_id
         WHERE it.org_id = cn.org_id AND it.credit_note_id = cn.id) AS items,
       (SELECT jsonb_build_object('lago_invoice_id', li.lago_id, 'lago_fee_id', afee.lago_id, 'lago_original_fee_id', ofee.lago_id)
          FROM late_event_credits l
          JOIN invoices li ON li.org_id = l.org_id AND li.id = l.invoice_id
          JOIN fees ofee ON ofee.org_id = l.org_id AND ofee.id = l.fee_id
          LEFT JOIN fees afee ON afee.org_id = l.org_id AND afee.invoice_id = l.invoice_id AND afee.adjusted_fee_id = l.fee_id
         WHERE l.org_id = cn.org_id AND l.credit_note_id = cn.id
         ORDER BY afee.id LIMIT 1) AS late_events
  FROM credit_notes cn
  JOIN invoices i ON i.org_id = cn.org_id AND i.id = cn.invoice_id`;

const parse = <T>(v: T | string | null): T | null => (typeof v === "string" ? (JSON.parse(v) as T) : v);

const lateOf = (l: { lago_invoice_id: string; lago_fee_id: string | null; lago_original_fee_id: string } | null): CreditNoteRecord["lateEvents"] =>
  l === null ? null : { lagoInvoiceId: l.lago_invoice_id, lagoAdjustmentFeeId: l.lago_fee_id, lagoOriginalFeeId: l.lago_original_fee_id };

function toNote(r: NoteRow): CreditNoteRecord {
  return {
    id: Number(r.id),
    orgId: Number(r.org_id),
    lagoId: r.lago_id,
    invoiceId: Number(r.invoice_id),
    invoiceLagoId: r.invoice_lago_id,
    invoiceNumber: r.invoice_number,
    customerId: Number(r.customer_id),
    sequentialId: Number(r.sequential_id),
    number: r.number,
    issuingDate: r.issuing_date,
    reason: r.reason,
    description: r.description,
    currency: r.currency,
    creditStatus: r.credit_status,
    refundStatus: r.refund_status,
    subTotalExcludingTaxesAmountCents: BigInt(r.sub_total_excluding_taxes_amount_cents),
    taxesAmountCents: BigInt(r.taxes_amount_cents),
    preciseTaxesAmountCents: new Decimal(r.precise_taxes_amount_cents),
    taxesRate: new Decimal(r.taxes_rate),
    couponsAdjustmentAmountCents: BigInt(r.coupons_adjustment_amount_cents),
    totalAmountCents: BigInt(r.total_amount_cents),
    creditAmountCents: BigInt(r.credit_amount_cents),
    refundAmountCents: BigInt(r.refund_amount_cents),
    balanceAmountCents: BigInt(r.balance_amount_cents),
    appliedTaxes: parse(r.applied_taxes) ?? [],
    automatic: r.automatic,
    items: (parse(r.items) ?? []).map((it) => ({ lagoId: it.lago_id, feeLagoId: it.fee_lago_id, amountCents: BigInt(it.amount_cents) })),
    lateEvents: lateOf(parse(r.late_events)),
    voidedAt: r.voided_at === null ? null : new Date(r.voided_at),
    createdAt: new Date(r.created_at),
    updatedAt: new Date(r.updated_at),
  };
}

export async function noteById(q: Queryable, orgId: number, id: number): Promise<CreditNoteRecord | null> {
  const { rows } = await q.query<NoteRow>(`${NOTE_SELECT} WHERE cn.org_id = $1 AND cn.id = $2`, [orgId, id]);
  return rows[0] === undefined ? null : toNote(rows[0]);
}

export async function noteByLagoId(q: Queryable, orgId: number, lagoId: string, forUpdate = false): Promise<CreditNoteRecord | null> {
  if (forUpdate) await q.query("SELECT 1 FROM credit_notes WHERE org_id = $1 AND lago_id = $2::uuid FOR UPDATE", [orgId, lagoId]);
  const { rows } = await q.query<NoteRow>(`${NOTE_SELECT} WHERE cn.org_id = $1 AND cn.lago_id = $2::uuid`, [orgId, lagoId]);
  return rows[0] === undefined ? null : toNote(rows[0]);
}

export async function listNotes(
  q: Queryable,
  orgId: number,
  f: { externalCustomerId?: string },
  limit: number,
  offset: number,
): Promise<{ notes: CreditNoteRecord[]; total: number }> {
  const where = ["cn.org_id = $1"];
  const params: unknown[] = [orgId];
  if (f.externalCustomerId !== undefined) {
    params.push(f.externalCustomerId);
    where.push(`EXISTS (SELECT 1 FROM customers c WHERE c.org_id = cn.org_id AND c.id = cn.customer_id AND c.external_id = $${params.length})`);
  }
  const filter = where.join(" AND ");
  const { rows } = await q.query<NoteRow>(
    `${NOTE_SELECT} WHERE ${filter} ORDER BY cn.created_at DESC, cn.id DESC LIMIT $${params.length + 1} OFFSET $${params.length + 2}`,
    [...params, limit, offset],
  );
  const count = await q.query<{ n: string }>(`SELECT count(*)::text AS n FROM credit_notes cn WHERE ${filter}`, params);
  return { notes: rows.map(toNote), total: Number(count.rows[0]?.n ?? 0) };
}

export async function voidNote(q: Queryable, orgId: number, id: number, now: Date): Promise<void> {
  await q.query(
    "UPDATE credit_notes SET credit_status = 'voided', balance_amount_cents = 0, voided_at = $3, updated_at = $3 WHERE org_id = $1 AND id = $2",
    [orgId, id, now],
  );
}

export async function setRefundStatus(q: Queryable, orgId: number, id: number, status: string, now: Date): Promise<void> {
  await q.query("UPDATE credit_notes SET refund_status = $3, updated_at = $4 WHERE org_id = $1 AND id = $2", [orgId, id, status, now]);
}

/** Credit notes with credit left for the customer in `currency`, oldest first, locked until the caller commits. */
export async function availableBalances(q: Queryable, orgId: number, customerId: number, currency: string): Promise<Balance[]> {
  const { rows } = await q.query<{ id: string; balance_amount_cents: string }>(
    `SELECT id, balance_amount_cents FROM credit_notes
      WHERE org_id = $1 AND customer_id = $2 AND currency = $3 AND credit_status = 'available' AND balance_amount_cents > 0
      ORDER BY created_at, id FOR UPDATE`,
    [orgId, customerId, currency],
  );
  return rows.map((r) => ({ id: Number(r.id), balanceCents: BigInt(r.balance_amount_cents) }));
}

export async function draw(q: Queryable, orgId: number, id: number, amountCents: bigint, now: Date): Promise<void> {
  await q.query(
    `UPDATE credit_notes SET balance_amount_cents = balance_amount_cents - $3::int8,
            credit_status = CASE WHEN balance_amount_cents - $3::int8 = 0 THEN 'consumed' ELSE credit_status END, updated_at = $4
      WHERE org_id = $1 AND id = $2`,
    [orgId, id, amountCents.toString(), now],
  );
}

/** A fee by internal id with its invoice, for the credit note of an unused advance fee. */
export async function feeLagoIdOf(q: Queryable, orgId: number, feeId: number): Promise<string | null> {
  const { rows } = await q.query<{ lago_id: string }>("SELECT lago_id::text AS lago_id FROM fees WHERE org_id = $1 AND id = $2", [orgId, feeId]);
  return rows[0]?.lago_id ?? null;
}

/**
 * A voided invoice drew `amountCents` on this credit note: the credit comes back (never above its
 * credit part), and a consumed note is available again. A voided note stays voided.
 */
export async function recredit(q: Queryable, orgId: number, id: number, amountCents: bigint, now: Date): Promise<boolean> {
  const { rows } = await q.query(
    `UPDATE credit_notes SET balance_amount_cents = least(credit_amount_cents, balance_amount_cents + $3::int8), credit_status = 'available', updated_at = $4
      WHERE org_id = $1 AND id = $2 AND credit_status IN ('available', 'consumed') RETURNING id`,
    [orgId, id, amountCents.toString(), now],
  );
  return rows.length > 0;
}

/** What the invoice drew on each credit note (its credit note credits). */
export async function creditNoteCreditsOfInvoice(q: Queryable, orgId: number, invoiceId: number): Promise<{ creditNoteId: number; amountCents: bigint }[]> {
  const { rows } = await q.query<{ credit_note_id: string; amount_cents: string }>(
    `SELECT credit_note_id, sum(amount_cents)::text AS amount_cents FROM credits
      WHERE org_id = $1 AND invoice_id = $2 AND credit_note_id IS NOT NULL GROUP BY credit_note_id ORDER BY credit_note_id`,
    [orgId, invoiceId],
  );
  return rows.map((r) => ({ creditNoteId: Number(r.credit_note_id), amountCents: BigInt(r.amount_cents) }));
}

/** The invoice a fee is on. */
export async function invoiceIdOfFee(q: Queryable, orgId: number, feeId: number): Promise<number | null> {
  const { rows } = await q.query<{ invoice_id: string | null }>("SELECT invoice_id FROM fees WHERE org_id = $1 AND id = $2", [orgId, feeId]);
  return rows[0]?.invoice_id == null ? null : Number(rows[0].invoice_id);
}

/** Whether the note's refund is being paid back through a payment provider (payments' credit_note_refunds). */
export async function providerRefundPending(q: Queryable, orgId: number, creditNoteId: number): Promise<boolean> {
  const { rows } = await q.query("SELECT 1 FROM credit_note_refunds WHERE org_id = $1 AND credit_note_id = $2 AND status = 'pending' FOR UPDATE", [orgId, creditNoteId]);
  return rows.length > 0;
}
