// Manual payments (Lago's POST /payments, type `manual`): money received outside any provider, for
// part or all of a finalized invoice. Each moves the invoice's total_paid_amount_cents; the one that
// settles it sets payment_status `succeeded` through the payments service (its webhook, the
// invoice-paid hook), and any collection under way stops. A reference is recorded once per invoice:
// the same request again answers the payment already recorded.
import crypto from "node:crypto";
import type { Db, Queryable } from "../../db/db.ts";
import type { Clock } from "../../shared/clock.ts";
import { AppError, type FieldErrors, notFound, validationFailed } from "../../shared/errors.ts";
import { isUuid, type PaymentListQuery, type PaymentRecord } from "./core/index.ts";
import type { PaymentsService } from "./service.ts";
import * as store from "./store.ts";

/** Lago keeps references up to 40 characters. */
export const REFERENCE_MAX = 40;
const MAX_CENTS = BigInt(Number.MAX_SAFE_INTEGER);

export interface ManualPaymentDraft {
  readonly invoiceLagoId: string;
  readonly amountCents: bigint;
  readonly reference: string;
  /** The day (or instant) the money was received; absent: now. */
  readonly paidAt: Date | null;
}

type Read<T> = { ok: true; value: T } | { ok: false; errors: FieldErrors };
const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

/** `{"payment":{"invoice_id","amount_cents","reference","paid_at"}}`, every broken field at once. */
export function readManualPayment(raw: unknown): Read<ManualPaymentDraft> {
  if (!isObject(raw) || !isObject(raw["payment"])) return { ok: false, errors: { payment: ["must_be_an_object"] } };
  const body = raw["payment"];
  const errors: FieldErrors = {};
  const invoiceId = body["invoice_id"];
  if (invoiceId === undefined || invoiceId === null || invoiceId === "") errors["invoice_id"] = ["value_is_mandatory"];
  else if (typeof invoiceId !== "string" || !isUuid(invoiceId)) errors["invoice_id"] = ["invalid_uuid"];

  let amountCents = 0n;
  const amount = body["amount_cents"];
  if (amount === undefined || amount === null || amount === "") errors["amount_cents"] = ["value_is_mandatory"];
  else if (!((typeof amount === "number" && Number.isInteger(amount)) || (typeof amount === "string" && /^-?\d{1,20}$/.test(amount)))) {
    errors["amount_cents"] = ["value_is_invalid"];
  } else {
    amountCents = BigInt(amount);
    if (amountCents <= 0n || amountCents > MAX_CENTS) errors["amount_cents"] = ["value_is_out_of_range"];
  }

  const reference = body["reference"];
  if (reference === undefined || reference === null || reference === "") errors["reference"] = ["value_is_mandatory"];
  else if (typeof reference !== "string" || reference.trim() === "" || reference.includes("\u0000")) errors["reference"] = ["value_is_invalid"];
  else if (reference.length > REFERENCE_MAX) errors["reference"] = ["value_is_too_long"];

  let paidAt: Date | null = null;
  const at = body["paid_at"];
  if (at !== undefined && at !== null && at !== "") {
    const parsed = typeof at === "string" && /^\d{4}-\d{2}-\d{2}(?:[T ][\d:.]+(?:Z|[+-]\d{2}:?\d{2})?)?$/.test(at) ? new Date(at.length === 10 ? `${at}T00:00:00Z` : at) : null;
    // A day that does not exist (2024-02-30) is refused, not rolled over.
    if (parsed === null || Number.isNaN(parsed.getTime()) || parsed.toISOString().slice(0, 10) !== (at as string).slice(0, 10)) errors["paid_at"] = ["invalid_date"];
    else paidAt = parsed;
  }
  if (Object.keys(errors).length > 0) return { ok: false, errors };
  return { ok: true, value: { invoiceLagoId: (invoiceId as string).toLowerCase(), amountCents, reference: reference as string, paidAt } };
}

export interface ManualPaymentRecord {
  readonly id: number;
  readonly lagoId: string;
  readonly invoiceLagoId: string;
  readonly invoiceNumber: string;
  readonly customerLagoId: string;
  readonly externalCustomerId: string;
  readonly amountCents: bigint;
  readonly currency: string;
  readonly reference: string;
  readonly paidAt: Date;
  readonly createdAt: Date;
}

const iso = (d: Date) => d.toISOString().replace(/\.\d{3}Z$/, "Z");

/** Lago's PaymentObject for a manual payment (no provider), plus ours: `paid_at`. */
export function manualPaymentJson(m: ManualPaymentRecord) {
  return {
    lago_id: m.lagoId,
    lago_customer_id: m.customerLagoId,
    external_customer_id: m.externalCustomerId,
    invoice_ids: [m.invoiceLagoId],
    invoice_numbers: [m.invoiceNumber],
    lago_payable_id: m.invoiceLagoId,
    payable_type: "Invoice" as const,
    amount_cents: Number(m.amountCents),
    amount_currency: m.currency,
    status: "succeeded",
    payment_status: "succeeded" as const,
    type: "manual" as const,
    reference: m.reference,
    payment_provider_code: null,
    payment_provider_type: null,
    external_payment_id: null,
    provider_payment_id: null,
    provider_customer_id: null,
    payment_method_id: null,
    next_action: {},
    created_at: iso(m.createdAt),
    paid_at: iso(m.paidAt),
  };
}

interface ManualRow {
  id: string;
  lago_id: string;
  invoice_lago_id: string;
  invoice_number: string;
  customer_lago_id: string;
  external_customer_id: string;
  amount_cents: string;
  currency: string;
  reference: string;
  paid_at: Date;
  created_at: Date;
}

const MANUAL_SELECT = `SELECT m.id, m.lago_id::text AS lago_id, i.lago_id::text AS invoice_lago_id, i.number AS invoice_number,
       c.lago_id::text AS customer_lago_id, c.external_id AS external_customer_id, m.amount_cents::text AS amount_cents, m.currency,
       m.reference, m.paid_at, m.created_at
  FROM manual_payments m JOIN invoices i ON i.id = m.invoice_id JOIN customers c ON c.id = m.customer_id`;

const toManual = (r: ManualRow): ManualPaymentRecord => ({
  id: Number(r.id),
  lagoId: r.lago_id,
  invoiceLagoId: r.invoice_lago_id,
  invoiceNumber: r.invoice_number,
  customerLagoId: r.customer_lago_id,
  externalCustomerId: r.external_customer_id,
  amountCents: BigInt(r.amount_cents),
  currency: r.currency,
  reference: r.reference,
  paidAt: new Date(r.paid_at),
  createdAt: new Date(r.created_at),
});

/** One page of an organization's payments, provider and manual, newest first. */
export type PaymentListItem = { kind: "provider"; payment: PaymentRecord } | { kind: "manual"; payment: ManualPaymentRecord };

export class ManualPayments {
  private readonly newId: () => string;

  constructor(
    private readonly db: Db,
    /** The organization's clock (test clocks). */
    private readonly clock: Clock,
    private readonly payments: PaymentsService,
    newId?: () => string,
  ) {
    this.newId = newId ?? (() => crypto.randomUUID());
  }

  /**
   * POST /payments. Refused: an invoice that is not finalized (405 `invalid_status`), an amount over
   * what is due (422 `amount_cents: invalid_amount`), a reference recorded before on the invoice
   * with another amount or date (422 `reference: value_already_exist`). The same reference, amount
   * and date again answer the payment recorded the first time, and change nothing.
   */
  async record(orgId: number, raw: unknown): Promise<ManualPaymentRecord> {
    const read = readManualPayment(raw);
    if (!read.ok) throw validationFailed(read.errors, "the payment is invalid");
    const d = read.value;
    const id = await this.db.transaction(async (tx) => {
      // The invoice's lock orders every payment of the invoice: what is due is read under it.
      const invoice = await store.payableInvoice(tx, orgId, { lagoId: d.invoiceLagoId }, true);
      if (invoice === null) throw notFound("invoice", d.invoiceLagoId);
      const now = new Date(this.clock.now(orgId));
      const earlier = await manualByReference(tx, orgId, invoice.id, d.reference);
      if (earlier !== null) {
        if (earlier.amountCents === d.amountCents && (d.paidAt === null || earlier.paidAt.getTime() === d.paidAt.getTime())) return earlier.id;
        throw validationFailed({ reference: ["value_already_exist"] }, "this reference was recorded for the invoice with another amount or date");
      }
      if (invoice.status !== "finalized") {
        throw new AppError("not_allowed", "invalid_status", "payments are recorded for finalized invoices only");
      }
      const paidSoFar = invoice.paymentStatus === "succeeded" ? invoice.totalAmountCents : await totalPaid(tx, orgId, invoice.id);
      const due = invoice.totalAmountCents - paidSoFar;
      if (d.amountCents > due) {
        throw validationFailed({ amount_cents: ["invalid_amount"] }, `the amount is more than what is due on the invoice (${due > 0n ? due : 0n})`);
      }
      const { rows } = await tx.query<{ id: string }>(
        `INSERT INTO manual_payments (org_id, lago_id, invoice_id, customer_id, amount_cents, currency, reference, paid_at, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id`,
        [orgId, this.newId(), invoice.id, invoice.customerId, d.amountCents.toString(), invoice.currency, d.reference, d.paidAt ?? now, now],
      );
      await tx.query("UPDATE invoices SET total_paid_amount_cents = total_paid_amount_cents + $3, updated_at = $4 WHERE org_id = $1 AND id = $2", [
        orgId,
        invoice.id,
        d.amountCents.toString(),
        now,
      ]);
      await this.payments.recordManualPayment(tx, invoice, paidSoFar + d.amountCents === invoice.totalAmountCents, now);
      return Number(rows[0]!.id);
    });
    return (await manualById(this.db, orgId, id))!;
  }

  async find(orgId: number, lagoId: string): Promise<ManualPaymentRecord | null> {
    if (!isUuid(lagoId)) return null;
    const { rows } = await this.db.query<ManualRow>(`${MANUAL_SELECT} WHERE m.org_id = $1 AND m.lago_id = $2::uuid`, [orgId, lagoId]);
    return rows[0] === undefined ? null : toManual(rows[0]);
  }

  /**
   * GET /payments: provider and manual payments together, newest first, filtered by customer and
   * invoice (the payments service renders the provider's).
   */
  async list(orgId: number, query: PaymentListQuery): Promise<{ items: PaymentListItem[]; total: number }> {
    const params: unknown[] = [orgId];
    const filters: string[] = [];
    if (query.externalCustomerId !== undefined) {
      params.push(query.externalCustomerId);
      filters.push(`c.external_id = $${params.length}`);
    }
    if (query.invoiceId !== undefined) {
      params.push(query.invoiceId);
      filters.push(`i.lago_id = $${params.length}::uuid`);
    }
    const extra = filters.map((f) => ` AND ${f}`).join("");
    const union = `SELECT 'provider' AS kind, p.id, p.lago_id::text AS lago_id, p.created_at
                     FROM payments p JOIN invoices i ON i.id = p.invoice_id JOIN customers c ON c.id = p.customer_id WHERE p.org_id = $1${extra}
                   UNION ALL
                   SELECT 'manual' AS kind, m.id, m.lago_id::text AS lago_id, m.created_at
                     FROM manual_payments m JOIN invoices i ON i.id = m.invoice_id JOIN customers c ON c.id = m.customer_id WHERE m.org_id = $1${extra}`;
    const page = await this.db.query<{ kind: "provider" | "manual"; lago_id: string }>(
      `SELECT kind, lago_id FROM (${union}) x ORDER BY created_at DESC, kind, id DESC LIMIT $${params.length + 1} OFFSET $${params.length + 2}`,
      [...params, query.perPage, (query.page - 1) * query.perPage],
    );
    const count = await this.db.query<{ n: string }>(`SELECT count(*)::text AS n FROM (${union}) x`, params);
    const manualIds = page.rows.filter((r) => r.kind === "manual").map((r) => r.lago_id);
    const manual = new Map<string, ManualPaymentRecord>();
    if (manualIds.length > 0) {
      const { rows } = await this.db.query<ManualRow>(`${MANUAL_SELECT} WHERE m.org_id = $1 AND m.lago_id = ANY($2::uuid[])`, [orgId, manualIds]);
      for (const r of rows) manual.set(r.lago_id, toManual(r));
    }
    const items: PaymentListItem[] = [];
    for (const r of page.rows) {
      if (r.kind === "provider") {
        const p = await store.paymentByLagoId(this.db, orgId, r.lago_id);
        if (p !== null) items.push({ kind: "provider", payment: p });
      } else {
        const m = manual.get(r.lago_id);
        if (m !== undefined) items.push({ kind: "manual", payment: m });
      }
    }
    return { items, total: Number(count.rows[0]?.n ?? 0) };
  }
}

async function manualByReference(q: Queryable, orgId: number, invoiceId: number, reference: string): Promise<ManualPaymentRecord | null> {
  const { rows } = await q.query<ManualRow>(`${MANUAL_SELECT} WHERE m.org_id = $1 AND m.invoice_id = $2 AND m.reference = $3`, [orgId, invoiceId, reference]);
  return rows[0] === undefined ? null : toManual(rows[0]);
}

async function manualById(q: Queryable, orgId: number, id: number): Promise<ManualPaymentRecord | null> {
  const { rows } = await q.query<ManualRow>(`${MANUAL_SELECT} WHERE m.org_id = $1 AND m.id = $2`, [orgId, id]);
  return rows[0] === undefined ? null : toManual(rows[0]);
}

/** What manual payments paid of an invoice (retry_payment refuses to charge a partly paid invoice's total). */
export async function manuallyPaidCents(q: Queryable, orgId: number, invoiceId: number): Promise<bigint> {
  return totalPaid(q, orgId, invoiceId);
}

async function totalPaid(q: Queryable, orgId: number, invoiceId: number): Promise<bigint> {
  const { rows } = await q.query<{ n: string }>("SELECT total_paid_amount_cents::text AS n FROM invoices WHERE org_id = $1 AND id = $2", [orgId, invoiceId]);
  return BigInt(rows[0]?.n ?? "0");
}
