import type { FastifyInstance } from "fastify";
import { paginationMeta } from "../../shared/pagination.ts";
import { bodyOf, pageOf, taxJson } from "../taxes/index.ts";
import type { AddOn } from "./core/add_on.ts";
import type { AddOnService } from "./service.ts";

const iso = (d: Date) => d.toISOString().replace(/\.\d{3}Z$/, "Z");

/** Lago's AddOnObject (with its taxes). */
export async function addOnJson(addOns: AddOnService, a: AddOn) {
  return {
    lago_id: a.lagoId,
    name: a.name,
    invoice_display_name: a.invoiceDisplayName,
    code: a.code,
    amount_cents: Number(a.amountCents),
    amount_currency: a.amountCurrency,
    description: a.description,
    created_at: iso(a.createdAt),
    taxes: (await addOns.taxesOf(a)).map(taxJson),
  };
}

type ByCode = { Params: { code: string } };

export function registerAddOnRoutes(app: FastifyInstance, addOns: AddOnService): void {
  const json = (a: AddOn) => addOnJson(addOns, a);
  app.post("/api/v1/add_ons", async (request) => ({ add_on: await json(await addOns.create(request.orgId, bodyOf(request.body, "add_on"))) }));
  app.get("/api/v1/add_ons", async (request) => {
    const { page, perPage } = pageOf(request.query);
    const { addOns: items, total } = await addOns.list(request.orgId, page, perPage);
    const out = [];
    for (const a of items) out.push(await json(a));
    return { add_ons: out, meta: paginationMeta(page, perPage, total) };
  });
  app.get<ByCode>("/api/v1/add_ons/:code", async (request) => ({ add_on: await json(await addOns.get(request.orgId, request.params.code)) }));
  app.put<ByCode>("/api/v1/add_ons/:code", async (request) => ({
    add_on: await json(await addOns.update(request.orgId, request.params.code, bodyOf(request.body, "add_on"))),
  }));
  app.delete<ByCode>("/api/v1/add_ons/:code", async (request) => ({ add_on: await json(await addOns.delete(request.orgId, request.params.code)) }));
}
