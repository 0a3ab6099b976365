import type { FastifyInstance } from "fastify";
import { AppError, validationFailed, type FieldErrors } from "../../shared/errors.ts";
import type { EventFilters, IngestService } from "./service.ts";
import { paginationMeta, positiveIntParam } from "../../shared/pagination.ts";

export const SINGLE_BODY_LIMIT = 1 << 20;
export const BATCH_BODY_LIMIT = 64 << 20;

function missing(field: string): AppError {
  return new AppError("bad_request", "missing_parameter", `the request body must be {"${field}": ...}`, {
    [field]: ["value_is_mandatory"],
  });
}

function parseListQuery(q: Record<string, unknown>): EventFilters {
  const errors: FieldErrors = {};
  const int = (name: string, fallback: number, max: number): number => positiveIntParam(q[name], name, fallback, max, errors);
  const date = (name: string): Date | undefined => {
    const v = q[name];
    if (v === undefined || v === "") return undefined;
    const d = typeof v === "string" && /^\d{4}-\d{2}-\d{2}/.test(v) ? new Date(v) : null;
    // PostgreSQL has no year 0 and the ISO form of years past 9999 is not one it reads back.
    if (d === null || Number.isNaN(d.getTime()) || d.getUTCFullYear() < 1 || d.getUTCFullYear() > 9999) {
      errors[name] = ["invalid_date (ISO 8601)"];
      return undefined;
    }
    return d;
  };
  const str = (name: string): string | undefined => {
    const v = q[name];
    if (v === undefined || v === "") return undefined;
    if (typeof v !== "string" || v.length > 255 || v.includes("\u0000")) {
      errors[name] = ["invalid_value"];
      return undefined;
    }
    return v;
  };
  const f: EventFilters = { page: int("page", 1, 1_000_000), perPage: int("per_page", 20, 1000) };
  const sub = str("external_subscription_id");
  const code = str("code");
  const from = date("timestamp_from");
  const to = date("timestamp_to");
  if (sub !== undefined) f.externalSubscriptionId = sub;
  if (code !== undefined) f.code = code;
  if (from !== undefined) f.timestampFrom = from;
  if (to !== undefined) f.timestampTo = to;
  const fromStartedAt = q.timestamp_from_started_at;
  if (fromStartedAt !== undefined && fromStartedAt !== "") {
    if (fromStartedAt !== "true" && fromStartedAt !== "false") errors.timestamp_from_started_at = ["must_be_true_or_false"];
    else if (fromStartedAt === "true") {
      if (sub === undefined) errors.external_subscription_id = ["value_is_mandatory (with timestamp_from_started_at)"];
      f.fromStartedAt = true;
    }
  }
  if (Object.keys(errors).length > 0) throw validationFailed(errors, "invalid query parameters");
  return f;
}

export function registerEventRoutes(app: FastifyInstance, ingest: IngestService, batchMax: number): void {
  app.post("/api/v1/events", { bodyLimit: SINGLE_BODY_LIMIT }, async (request) => {
    const body = request.body as { event?: unknown } | null;
    if (body === null || typeof body !== "object" || body.event === undefined) throw missing("event");
    return { event: await ingest.ingestOne(request.orgId, body.event) };
  });

  app.post("/api/v1/events/batch", { bodyLimit: BATCH_BODY_LIMIT }, async (request, reply) => {
    const body = request.body as { events?: unknown } | null;
    if (body === null || typeof body !== "object" || body.events === undefined) throw missing("events");
    const events = body.events;
    if (!Array.isArray(events)) throw validationFailed({ events: ["must_be_an_array"] });
    if (events.length === 0) throw validationFailed({ events: ["must_not_be_empty"] });
    if (events.length > batchMax) {
      throw new AppError("payload_too_large", "too_many_events", `a batch holds at most ${batchMax} events; this one has ${events.length}`, {
        events: [`too_many_events (max ${batchMax})`],
      });
    }
    const result = await ingest.ingestBatch(request.orgId, events);
    if (result.conflicts === null) return { events: result.events };
    const details: Record<string, FieldErrors> = {};
    result.conflictIndexes.forEach((index, k) => (details[String(index)] = result.conflicts![k]!));
    // Lago's 422 shape, plus the events that were accepted (stored now or exact retries).
    reply.code(422);
    return {
      status: 422,
      error: "Unprocessable Entity",
      code: "validation_errors",
      error_details: details,
      message: `${result.conflictIndexes.length} of ${events.length} events were refused (transaction_id taken by another payload); the others were accepted`,
      events: result.events,
    };
  });

  app.get("/api/v1/events", async (request) => {
    const filters = parseListQuery(request.query as Record<string, unknown>);
    const { events, total } = await ingest.list(request.orgId, filters);
    return { events, meta: paginationMeta(filters.page, filters.perPage, total) };
  });

  app.get<{ Params: { transaction_id: string }; Querystring: { external_subscription_id?: string } }>(
    "/api/v1/events/:transaction_id",
    async (request) => {
      const sub = request.query.external_subscription_id;
      return { event: await ingest.get(request.orgId, request.params.transaction_id, typeof sub === "string" && sub !== "" ? sub : undefined) };
    },
  );
}
