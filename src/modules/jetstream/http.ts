import type { FastifyInstance } from "fastify";
import { validationFailed, type FieldErrors } from "../../shared/errors.ts";
import { paginationMeta, positiveIntParam } from "../../shared/pagination.ts";
import type { RejectedEventsService } from "./service.ts";
import { REJECTION_REASONS, type RejectedFilters, type RejectionReason } from "./store.ts";

/** `GET /api/v1/rejected_events`: events acknowledged in jetstream mode and refused by the ingest worker. */
export function registerRejectedEventRoutes(app: FastifyInstance, rejected: RejectedEventsService): void {
  app.get("/api/v1/rejected_events", async (request) => {
    const q = request.query as Record<string, unknown>;
    const errors: FieldErrors = {};
    const page = positiveIntParam(q.page, "page", 1, 1_000_000, errors);
    const perPage = positiveIntParam(q.per_page, "per_page", 20, 1000, errors);
    const text = (name: string): string | undefined => {
      const v = q[name];
      if (v === undefined || v === "") return undefined;
      if (typeof v !== "string" || v.length > 255 || v.includes("\u0000")) {
        errors[name] = ["invalid_value"];
        return undefined;
      }
      return v;
    };
    const sub = text("external_subscription_id");
    const tx = text("transaction_id");
    const reason = text("error_code");
    if (reason !== undefined && !(REJECTION_REASONS as readonly string[]).includes(reason)) {
      errors.error_code = [`must_be_one_of ${REJECTION_REASONS.join(", ")}`];
    }
    if (Object.keys(errors).length > 0) throw validationFailed(errors, "invalid query parameters");
    const filters: RejectedFilters = { limit: perPage, offset: (page - 1) * perPage };
    if (sub !== undefined) filters.externalSubscriptionId = sub;
    if (tx !== undefined) filters.transactionId = tx;
    if (reason !== undefined) filters.reason = reason as RejectionReason;
    const { rejected: events, total } = await rejected.list(request.orgId, filters);
    return { rejected_events: events, meta: paginationMeta(page, perPage, total) };
  });
}
