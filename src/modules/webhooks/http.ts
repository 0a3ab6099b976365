import type { FastifyInstance } from "fastify";
import { AppError, type FieldErrors, validationFailed } from "../../shared/errors.ts";
import { paginationMeta, positiveIntParam } from "../../shared/pagination.ts";
import { isWebhookType } from "./core/event_types.ts";
import { deliveryJson, endpointJson } from "./core/json.ts";
import { DELIVERY_STATUSES, type DeliveryStatus, type WebhookEndpoint } from "./core/types.ts";
import type { WebhookService } from "./service.ts";
import type { DeliveryListQuery } from "./store.ts";

const PER_PAGE = 100;
const MAX_PER_PAGE = 1000;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

function endpointBody(raw: unknown): unknown {
  const value = (raw as Record<string, unknown> | null)?.["webhook_endpoint"];
  if (raw === null || typeof raw !== "object" || value === undefined || value === null) {
    throw new AppError("bad_request", "missing_parameter", 'the request body must be {"webhook_endpoint": {...}}', {
      webhook_endpoint: ["value_is_mandatory"],
    });
  }
  return value;
}

function pageOf(q: Record<string, unknown>, errors: FieldErrors) {
  return {
    page: positiveIntParam(q["page"], "page", 1, 1_000_000, errors),
    perPage: positiveIntParam(q["per_page"], "per_page", PER_PAGE, MAX_PER_PAGE, errors),
  };
}

function deliveryQuery(raw: unknown): DeliveryListQuery {
  const q = (raw ?? {}) as Record<string, unknown>;
  const errors: FieldErrors = {};
  const query: DeliveryListQuery = pageOf(q, errors);
  const text = (name: string) => {
    const v = q[name];
    if (v === undefined || v === "") return undefined;
    if (typeof v !== "string") errors[name] = ["value_is_invalid"];
    return typeof v === "string" ? v : undefined;
  };
  const status = text("status");
  if (status !== undefined) {
    if ((DELIVERY_STATUSES as readonly string[]).includes(status)) query.status = status as DeliveryStatus;
    else errors["status"] = [`must_be_one_of_${DELIVERY_STATUSES.join("_")}`];
  }
  const webhookType = text("webhook_type");
  if (webhookType !== undefined) {
    if (isWebhookType(webhookType)) query.webhookType = webhookType;
    else errors["webhook_type"] = ["value_is_invalid"];
  }
  const endpointId = text("webhook_endpoint_id");
  if (endpointId !== undefined) {
    if (UUID.test(endpointId)) query.endpointLagoId = endpointId;
    else errors["webhook_endpoint_id"] = ["value_is_invalid"];
  }
  const objectId = text("object_id");
  if (objectId !== undefined) query.objectId = objectId.slice(0, 255);
  if (Object.keys(errors).length > 0) throw validationFailed(errors, "invalid query parameters");
  return query;
}

type ByLagoId = { Params: { lago_id: string } };

export function registerWebhookRoutes(app: FastifyInstance, webhooks: WebhookService): void {
  const render = async (orgId: number, e: WebhookEndpoint) => ({ webhook_endpoint: endpointJson(e, await webhooks.organizationPublicId(orgId)) });

  // Lago's webhook endpoints.
  app.post("/api/v1/webhook_endpoints", async (request) => render(request.orgId, await webhooks.createEndpoint(request.orgId, endpointBody(request.body))));

  app.get("/api/v1/webhook_endpoints", async (request) => {
    const errors: FieldErrors = {};
    const { page, perPage } = pageOf((request.query ?? {}) as Record<string, unknown>, errors);
    if (Object.keys(errors).length > 0) throw validationFailed(errors, "invalid query parameters");
    const { endpoints, total } = await webhooks.listEndpoints(request.orgId, page, perPage);
    const organizationId = await webhooks.organizationPublicId(request.orgId);
    return { webhook_endpoints: endpoints.map((e) => endpointJson(e, organizationId)), meta: paginationMeta(page, perPage, total) };
  });

  app.get<ByLagoId>("/api/v1/webhook_endpoints/:lago_id", async (request) =>
    render(request.orgId, await webhooks.getEndpoint(request.orgId, request.params.lago_id)),
  );

  app.put<ByLagoId>("/api/v1/webhook_endpoints/:lago_id", async (request) =>
    render(request.orgId, await webhooks.updateEndpoint(request.orgId, request.params.lago_id, endpointBody(request.body))),
  );

  app.delete<ByLagoId>("/api/v1/webhook_endpoints/:lago_id", async (request) =>
    render(request.orgId, await webhooks.deleteEndpoint(request.orgId, request.params.lago_id)),
  );

  // Verification keys. Lago's public key routes (for `jwt` endpoints): the base64 of the PEM.
  app.get("/api/v1/webhooks/public_key", async (request, reply) => {
    const keys = await webhooks.signingKeys(request.orgId, true);
    reply.header("content-type", "text/plain; charset=utf-8");
    return Buffer.from(keys.jwtPublicKey!, "utf8").toString("base64");
  });
  app.get("/api/v1/webhooks/json_public_key", async (request) => {
    const keys = await webhooks.signingKeys(request.orgId, true);
    return { webhook: { public_key: Buffer.from(keys.jwtPublicKey!, "utf8").toString("base64") } };
  });
  // Ours: the organization's HMAC key (Lago shows it in its dashboard as the "HMAC signature token").
  app.get("/api/v1/webhooks/hmac_key", async (request) => ({ webhook: { hmac_key: (await webhooks.signingKeys(request.orgId)).hmacKey } }));

  // Ours: delivery records (Lago's webhook logs) and manual retries.
  app.get("/api/v1/webhooks", async (request) => {
    const query = deliveryQuery(request.query);
    const { deliveries, total } = await webhooks.listDeliveries(request.orgId, query);
    return { webhooks: deliveries.map((d) => deliveryJson(d)), meta: paginationMeta(query.page, query.perPage, total) };
  });

  app.get<ByLagoId>("/api/v1/webhooks/:lago_id", async (request) => {
    const { delivery, attempts } = await webhooks.getDelivery(request.orgId, request.params.lago_id);
    return { webhook: deliveryJson(delivery, attempts) };
  });

  app.post<ByLagoId>("/api/v1/webhooks/:lago_id/retry", async (request) => ({
    webhook: deliveryJson(await webhooks.retry(request.orgId, request.params.lago_id)),
  }));
}
