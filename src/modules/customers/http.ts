import type { FastifyInstance } from "fastify";
import { AppError, validationFailed } from "../../shared/errors.ts";
import { customerJson, customerJsonWithTaxes } from "./core/json.ts";
import { parseCustomerListQuery } from "./core/list_query.ts";
import type { Customer } from "./core/customer.ts";
import type { CustomerService } from "./service.ts";
import { paginationMeta } from "../../shared/pagination.ts";

/** A customer's taxes as JSON, in the order of its codes (the taxes module); without it, none are shown. */
export type CustomerTaxesResolver = (orgId: number, codes: readonly string[]) => Promise<unknown[]>;

export function registerCustomerRoutes(app: FastifyInstance, customers: CustomerService, resolveTaxes?: CustomerTaxesResolver): void {
  const render = async (c: Customer) =>
    resolveTaxes !== undefined && c.attributes.tax_codes.length > 0 ? customerJsonWithTaxes(c, await resolveTaxes(c.orgId, c.attributes.tax_codes)) : customerJson(c);
  app.post("/api/v1/customers", async (request) => {
    const body = request.body as { customer?: unknown } | null;
    if (body === null || typeof body !== "object" || body.customer === undefined || body.customer === null) {
      throw new AppError("bad_request", "missing_parameter", 'the request body must be {"customer": {...}}', { customer: ["value_is_mandatory"] });
    }
    // Lago answers 200 for both a creation and an update.
    const { customer } = await customers.upsert(request.orgId, body.customer);
    return { customer: await render(customer) };
  });

  app.get("/api/v1/customers", async (request) => {
    const parsed = parseCustomerListQuery(request.query as Record<string, unknown>);
    if (!parsed.ok) throw validationFailed(parsed.errors, "invalid query parameters");
    const { page, perPage } = parsed.query;
    const { customers: rows, total } = await customers.list(request.orgId, parsed.query);
    return { customers: rows.map(customerJson), meta: paginationMeta(page, perPage, total) };
  });

  app.get<{ Params: { external_id: string } }>("/api/v1/customers/:external_id", async (request) => ({
    customer: await render(await customers.getByExternalId(request.orgId, request.params.external_id)),
  }));

  app.delete<{ Params: { external_id: string } }>("/api/v1/customers/:external_id", async (request) => ({
    customer: customerJson(await customers.delete(request.orgId, request.params.external_id)),
  }));
}
