import type { FastifyInstance } from "fastify";
import { validationFailed } from "../../shared/errors.ts";
import { paginationMeta } from "../../shared/pagination.ts";
import { invoiceDetailsJson } from "../invoicing/index.ts";
import { readPaymentListQuery, type PaymentListQuery } from "./core/index.ts";
import { manualPaymentJson, type ManualPayments } from "./manual.ts";
import type { PaymentsService } from "./service.ts";

type ByLagoId = { Params: { lago_id: string } };

function listQuery(raw: unknown, externalCustomerId?: string): PaymentListQuery {
  const read = readPaymentListQuery((raw ?? {}) as Record<string, unknown>);
  if (!read.ok) throw validationFailed(read.errors, "invalid query parameters");
  return externalCustomerId === undefined ? read.value : { ...read.value, externalCustomerId };
}

/** `manual`: manual payments (POST /payments); lists then show them beside the provider's. */
export function registerPaymentRoutes(app: FastifyInstance, payments: PaymentsService, manual?: ManualPayments): void {
  const list = async (orgId: number, query: PaymentListQuery) => {
    if (manual === undefined) {
      const { items, total } = await payments.list(orgId, query);
      return { payments: items.map((p) => payments.render(p)), meta: paginationMeta(query.page, query.perPage, total) };
    }
    const { items, total } = await manual.list(orgId, query);
    const rendered = [];
    for (const item of items) {
      if (item.kind === "manual") rendered.push(manualPaymentJson(item.payment));
      else rendered.push(payments.render(item.payment));
    }
    return { payments: rendered, meta: paginationMeta(query.page, query.perPage, total) };
  };

  if (manual !== undefined) {
    // Lago answers 200 with the payment; a reference recorded before answers that payment again.
    app.post("/api/v1/payments", async (request) => ({ payment: manualPaymentJson(await manual.record(request.orgId, request.body)) }));
  }

  app.get("/api/v1/payments", async (request) => list(request.orgId, listQuery(request.query)));

  app.get<{ Params: { external_id: string } }>("/api/v1/customers/:external_id/payments", async (request) =>
    list(request.orgId, listQuery(request.query, request.params.external_id)),
  );

  app.get<ByLagoId>("/api/v1/payments/:lago_id", async (request) => {
    const recorded = manual === undefined ? null : await manual.find(request.orgId, request.params.lago_id);
    if (recorded !== null) return { payment: manualPaymentJson(recorded) };
    const { payment, attempts } = await payments.get(request.orgId, request.params.lago_id);
    return { payment: payments.render(payment, attempts) };
  });

  // Lago answers 200 with no body once the retry is scheduled; ours has been committed by then.
  app.post<ByLagoId>(
    "/api/v1/invoices/:lago_id/retry_payment",
    async (request, reply) => {
      await payments.retryPayment(request.orgId, request.params.lago_id);
      return reply.code(200).send();
    },
  );

  app.put<ByLagoId>("/api/v1/invoices/:lago_id", async (request) => ({
    invoice: invoiceDetailsJson(await payments.updateInvoice(request.orgId, request.params.lago_id, request.body)),
  }));
}
