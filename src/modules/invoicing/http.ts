import type { FastifyInstance } from "fastify";
import { type FieldErrors, validationFailed } from "../../shared/errors.ts";
import { paginationMeta, positiveIntParam } from "../../shared/pagination.ts";
import { customerJson } from "../customers/index.ts";
import { renderEventRow } from "../ingest/index.ts";
import { subscriptionJson } from "../subscriptions/index.ts";
import { PER_PAGE_DEFAULT, PER_PAGE_MAX, feeJson, invoiceJson, readInvoiceListQuery, type InvoiceListQuery } from "./core/index.ts";
import { renderInvoicePdf } from "./pdf.ts";
import type { InvoiceDetails, InvoicingService } from "./service.ts";

/** Lago's `{ invoice: InvoiceObjectExtended }`. */
export function invoiceDetailsJson(d: InvoiceDetails) {
  return invoiceJson(d.invoice, {
    customer: customerJson(d.customer),
    fees: d.fees,
    billingPeriods: d.billingPeriods,
    subscriptions: d.subscriptions.map((v) => subscriptionJson(v)),
    appliedTaxes: d.appliedTaxes,
    credits: d.credits,
  });
}

function listQuery(raw: unknown, externalCustomerId?: string): InvoiceListQuery {
  const read = readInvoiceListQuery((raw ?? {}) as Record<string, unknown>);
  if (!read.ok) throw validationFailed(read.errors, "invalid query parameters");
  return externalCustomerId === undefined ? read.value : { ...read.value, externalCustomerId };
}

type ByLagoId = { Params: { lago_id: string } };

export function registerInvoiceRoutes(app: FastifyInstance, invoicing: InvoicingService): void {
  const list = async (orgId: number, query: InvoiceListQuery) => {
    const { items, total } = await invoicing.list(orgId, query);
    return {
      invoices: items.map(({ invoice, customer, appliedTaxes }) => invoiceJson(invoice, { customer: customerJson(customer), appliedTaxes })),
      meta: paginationMeta(query.page, query.perPage, total),
    };
  };

  app.get("/api/v1/invoices", async (request) => list(request.orgId, listQuery(request.query)));

  app.get<{ Params: { external_id: string } }>("/api/v1/customers/:external_id/invoices", async (request) =>
    list(request.orgId, listQuery(request.query, request.params.external_id)),
  );

  app.get<ByLagoId>("/api/v1/invoices/:lago_id", async (request) => ({
    invoice: invoiceDetailsJson(await invoicing.get(request.orgId, request.params.lago_id)),
  }));

  // Lago's download answers the invoice with `file_url`; ours points at the PDF rendered on demand
  // (drafts too, watermarked), relative to this server.
  app.post<ByLagoId>("/api/v1/invoices/:lago_id/download", async (request) => {
    const details = await invoicing.get(request.orgId, request.params.lago_id);
    const json = invoiceDetailsJson(details);
    return { invoice: { ...json, file_url: `/api/v1/invoices/${encodeURIComponent(details.invoice.lagoId)}/pdf` } };
  });

  app.get<ByLagoId>("/api/v1/invoices/:lago_id/pdf", async (request, reply) => {
    const doc = await invoicing.document(request.orgId, request.params.lago_id);
    const pdf = await renderInvoicePdf(doc);
    return reply
      .type("application/pdf")
      .header("content-disposition", `inline; filename="invoice-${doc.details.invoice.number.replace(/[^A-Za-z0-9_-]/g, "_")}.pdf"`)
      .send(pdf);
  });

  app.put<ByLagoId>("/api/v1/invoices/:lago_id/finalize", async (request) => ({
    invoice: invoiceDetailsJson(await invoicing.finalize(request.orgId, request.params.lago_id)),
  }));

  app.post<ByLagoId>("/api/v1/invoices/:lago_id/void", async (request) => ({
    invoice: invoiceDetailsJson(await invoicing.void(request.orgId, request.params.lago_id, request.body)),
  }));

  // Lago's client sends PUT; the API reference documents POST. Both refresh.
  const refresh = async (request: { orgId: number; params: { lago_id: string } }) => ({
    invoice: invoiceDetailsJson(await invoicing.refresh(request.orgId, request.params.lago_id)),
  });
  app.put<ByLagoId>("/api/v1/invoices/:lago_id/refresh", refresh);
  app.post<ByLagoId>("/api/v1/invoices/:lago_id/refresh", refresh);

  app.get<ByLagoId>("/api/v1/fees/:lago_id", async (request) => ({ fee: feeJson(await invoicing.getFee(request.orgId, request.params.lago_id)) }));

  // Ours: the events behind a usage fee (same subscription, metric, filter bucket and period).
  app.get<ByLagoId & { Querystring: Record<string, unknown> }>("/api/v1/fees/:lago_id/events", async (request) => {
    const errors: FieldErrors = {};
    const page = positiveIntParam(request.query["page"], "page", 1, 1_000_000, errors);
    const perPage = positiveIntParam(request.query["per_page"], "per_page", PER_PAGE_DEFAULT, PER_PAGE_MAX, errors);
    if (Object.keys(errors).length > 0) throw validationFailed(errors, "invalid query parameters");
    const { fee, events, total } = await invoicing.feeEvents(request.orgId, request.params.lago_id, page, perPage);
    return {
      lago_fee_id: fee.lagoId,
      events: events.map(renderEventRow),
      meta: paginationMeta(page, perPage, total),
    };
  });
}
