import type { FastifyInstance } from "fastify";
import { type FieldErrors, validationFailed } from "../../shared/errors.ts";
import { paginationMeta } from "../../shared/pagination.ts";
import { customerJson } from "../customers/index.ts";
import { feeJson } from "../invoicing/index.ts";
import { bodyOf, pageOf } from "../taxes/index.ts";
import type { CreditNoteService, CreditNoteView } from "./service.ts";

const iso = (d: Date) => d.toISOString().replace(/\.\d{3}Z$/, "Z");
const cents = (v: bigint) => Number(v);

/** Lago's CreditNoteObject (with its items, applied taxes and customer). */
export function creditNoteJson({ note: n, customer, fees }: CreditNoteView) {
  return {
    lago_id: n.lagoId,
    billing_entity_code: null,
    sequential_id: n.sequentialId,
    number: n.number,
    lago_invoice_id: n.invoiceLagoId,
    invoice_number: n.invoiceNumber,
    issuing_date: n.issuingDate,
    credit_status: n.creditStatus,
    refund_status: n.refundStatus,
    reason: n.reason,
    description: n.description,
    currency: n.currency,
    total_amount_cents: cents(n.totalAmountCents),
    precise_total_amount_cents: n.totalAmountCents.toString(),
    taxes_amount_cents: cents(n.taxesAmountCents),
    precise_taxes_amount_cents: n.preciseTaxesAmountCents.toString(),
    taxes_rate: Number(n.taxesRate.toString()),
    sub_total_excluding_taxes_amount_cents: cents(n.subTotalExcludingTaxesAmountCents),
    balance_amount_cents: cents(n.balanceAmountCents),
    credit_amount_cents: cents(n.creditAmountCents),
    refund_amount_cents: cents(n.refundAmountCents),
    offset_amount_cents: 0,
    coupons_adjustment_amount_cents: cents(n.couponsAdjustmentAmountCents),
    created_at: iso(n.createdAt),
    updated_at: iso(n.updatedAt),
    voided_at: n.voidedAt === null ? null : iso(n.voidedAt),
    file_url: null,
    xml_url: null,
    self_billed: false,
    // Ours: issued by a termination or an upgrade for the unused part of a fee paid in advance.
    automatic: n.automatic,
    // Ours: issued because late events lowered a billed amount — the invoice that found it and its
    // adjustment fee (GET /fees/:lago_fee_id/events lists the late events).
    late_events:
      n.lateEvents === null
        ? null
        : { lago_invoice_id: n.lateEvents.lagoInvoiceId, lago_fee_id: n.lateEvents.lagoAdjustmentFeeId, lago_original_fee_id: n.lateEvents.lagoOriginalFeeId },
    items: n.items.map((it) => {
      const fee = fees.get(it.feeLagoId);
      return { lago_id: it.lagoId, amount_cents: cents(it.amountCents), amount_currency: n.currency, fee: fee === undefined ? null : feeJson(fee) };
    }),
    applied_taxes: n.appliedTaxes.map((t) => ({
      lago_id: t.lago_id,
      lago_credit_note_id: n.lagoId,
      lago_tax_id: t.lago_tax_id,
      tax_name: t.tax_name,
      tax_code: t.tax_code,
      tax_rate: Number(t.tax_rate),
      tax_description: t.tax_description,
      base_amount_cents: Number(t.base_amount_cents),
      amount_cents: Number(t.amount_cents),
      amount_currency: n.currency,
      created_at: iso(n.createdAt),
    })),
    customer: customerJson(customer),
    metadata: [] as unknown[],
    error_details: [] as unknown[],
  };
}

function listFilter(query: unknown, externalCustomerId?: string): { externalCustomerId?: string } {
  const q = (query ?? {}) as Record<string, unknown>;
  const ext = externalCustomerId ?? q["external_customer_id"];
  const errors: FieldErrors = {};
  if (ext !== undefined && typeof ext !== "string") errors["external_customer_id"] = ["must_be_given_once"];
  if (Object.keys(errors).length > 0) throw validationFailed(errors, "invalid query parameters");
  return typeof ext === "string" && ext !== "" ? { externalCustomerId: ext } : {};
}

type ById = { Params: { lago_id: string } };

export function registerCreditNoteRoutes(app: FastifyInstance, notes: CreditNoteService): void {
  app.post("/api/v1/credit_notes", async (request) => ({ credit_note: creditNoteJson(await notes.create(request.orgId, bodyOf(request.body, "credit_note"))) }));

  app.post("/api/v1/credit_notes/estimate", async (request) => {
    const { invoice, amounts: a, maxCreditableCents, maxRefundableCents } = await notes.estimate(request.orgId, bodyOf(request.body, "credit_note"));
    return {
      estimated_credit_note: {
        lago_invoice_id: invoice.lagoId,
        invoice_number: invoice.number,
        currency: invoice.currency,
        taxes_amount_cents: cents(a.taxesAmountCents),
        precise_taxes_amount_cents: a.preciseTaxesAmountCents.toString(),
        taxes_rate: Number(a.taxesRate.toString()),
        sub_total_excluding_taxes_amount_cents: cents(a.subTotalExcludingTaxesAmountCents),
        max_creditable_amount_cents: cents(maxCreditableCents),
        max_refundable_amount_cents: cents(maxRefundableCents),
        coupons_adjustment_amount_cents: cents(a.couponsAdjustmentAmountCents),
        precise_coupons_adjustment_amount_cents: a.preciseCouponsAdjustmentAmountCents.toString(),
        items: a.items.map((it) => ({ lago_fee_id: it.fee.lagoId, amount_cents: cents(it.amountCents) })),
        applied_taxes: a.appliedTaxes.map((t) => ({
          lago_tax_id: t.lagoTaxId,
          tax_name: t.name,
          tax_code: t.code,
          tax_rate: Number(t.rate.toString()),
          tax_description: t.description,
          base_amount_cents: cents(t.baseAmountCents),
          amount_cents: cents(t.amountCents),
          amount_currency: invoice.currency,
        })),
      },
    };
  });

  const list = async (orgId: number, query: unknown, externalCustomerId?: string) => {
    const { page, perPage } = pageOf(query);
    const { items, total } = await notes.list(orgId, listFilter(query, externalCustomerId), page, perPage);
    return { credit_notes: items.map(creditNoteJson), meta: paginationMeta(page, perPage, total) };
  };
  app.get("/api/v1/credit_notes", async (request) => list(request.orgId, request.query));
  app.get<{ Params: { external_customer_id: string } }>("/api/v1/customers/:external_customer_id/credit_notes", async (request) =>
    list(request.orgId, request.query, request.params.external_customer_id),
  );
  app.get<ById>("/api/v1/credit_notes/:lago_id", async (request) => ({ credit_note: creditNoteJson(await notes.get(request.orgId, request.params.lago_id)) }));
  app.put<ById>("/api/v1/credit_notes/:lago_id", async (request) => ({
    credit_note: creditNoteJson(await notes.update(request.orgId, request.params.lago_id, bodyOf(request.body, "credit_note"))),
  }));
  app.put<ById>("/api/v1/credit_notes/:lago_id/void", async (request) => ({ credit_note: creditNoteJson(await notes.void(request.orgId, request.params.lago_id)) }));
  // Lago answers the credit note with `file_url` once its PDF exists; there is no credit note PDF here yet.
  app.post<ById>("/api/v1/credit_notes/:lago_id/download", async (request) => ({ credit_note: creditNoteJson(await notes.get(request.orgId, request.params.lago_id)) }));
}
