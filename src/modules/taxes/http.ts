import type { FastifyInstance } from "fastify";
import { AppError, type FieldErrors, validationFailed } from "../../shared/errors.ts";
import { paginationMeta, positiveIntParam } from "../../shared/pagination.ts";
import { type Tax, rateNumber } from "./core/tax.ts";
import type { TaxService } from "./service.ts";

const iso = (d: Date) => d.toISOString().replace(/\.\d{3}Z$/, "Z");

/** Lago's TaxObject. */
export const taxJson = (t: Tax) => ({
  lago_id: t.lagoId,
  name: t.name,
  code: t.code,
  description: t.description,
  rate: rateNumber(t.rate),
  applied_to_organization: t.appliedToOrganization,
  created_at: iso(t.createdAt),
});

export function bodyOf(raw: unknown, key: string): unknown {
  const value = (raw as Record<string, unknown> | null)?.[key];
  if (raw === null || typeof raw !== "object" || value === undefined || value === null) {
    throw new AppError("bad_request", "missing_parameter", `the request body must be {"${key}": {...}}`, { [key]: ["value_is_mandatory"] });
  }
  if (typeof value !== "object" || Array.isArray(value)) throw validationFailed({ [key]: ["value_is_invalid"] });
  return value;
}

/** `page` and `per_page` (Lago's default 20, at most 100 here). */
export function pageOf(query: unknown): { page: number; perPage: number } {
  const q = (query ?? {}) as Record<string, unknown>;
  const errors: FieldErrors = {};
  const page = positiveIntParam(q["page"], "page", 1, 1_000_000, errors);
  const perPage = positiveIntParam(q["per_page"], "per_page", 20, 100, errors);
  if (Object.keys(errors).length > 0) throw validationFailed(errors, "invalid query parameters");
  return { page, perPage };
}

type ByCode = { Params: { code: string } };

export function registerTaxRoutes(app: FastifyInstance, taxes: TaxService): void {
  app.post("/api/v1/taxes", async (request) => ({ tax: taxJson(await taxes.create(request.orgId, bodyOf(request.body, "tax"))) }));
  app.get("/api/v1/taxes", async (request) => {
    const { page, perPage } = pageOf(request.query);
    const { taxes: items, total } = await taxes.list(request.orgId, page, perPage);
    return { taxes: items.map(taxJson), meta: paginationMeta(page, perPage, total) };
  });
  app.get<ByCode>("/api/v1/taxes/:code", async (request) => ({ tax: taxJson(await taxes.get(request.orgId, request.params.code)) }));
  app.put<ByCode>("/api/v1/taxes/:code", async (request) => ({
    tax: taxJson(await taxes.update(request.orgId, request.params.code, bodyOf(request.body, "tax"))),
  }));
  app.delete<ByCode>("/api/v1/taxes/:code", async (request) => ({ tax: taxJson(await taxes.delete(request.orgId, request.params.code)) }));
}
