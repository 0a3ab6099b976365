import type { FastifyInstance } from "fastify";
import { validationFailed } from "../../shared/errors.ts";
import { paginationMeta } from "../../shared/pagination.ts";
import { metricJson } from "../catalog/index.ts";
import { SUBSCRIPTION_STATUSES, type SubscriptionStatus } from "../subscriptions/index.ts";
import { pageOf } from "../taxes/index.ts";
import { alertJson } from "./core/json.ts";
import type { AlertService, AlertView } from "./service.ts";

type Query = { subscription_status?: unknown; status?: unknown };
type BySubscription = { Params: { external_id: string }; Querystring: Query };
type ByCode = { Params: { external_id: string; code: string }; Querystring: Query };

/** Lago's `subscription_status` query parameter (default: the active subscription). */
function statusOf(query: Query): SubscriptionStatus | undefined {
  const raw = query.subscription_status ?? query.status;
  if (raw === undefined || raw === "") return undefined;
  if (typeof raw === "string" && (SUBSCRIPTION_STATUSES as readonly string[]).includes(raw)) return raw as SubscriptionStatus;
  throw validationFailed({ subscription_status: ["value_is_invalid"] }, "invalid subscription_status");
}

const json = (v: AlertView) =>
  alertJson(v.alert, {
    organizationId: v.organizationId,
    externalCustomerId: v.externalCustomerId,
    billableMetric: v.metric === null ? null : metricJson(v.metric),
  });

export function registerAlertRoutes(app: FastifyInstance, alerts: AlertService): void {
  app.post<BySubscription>("/api/v1/subscriptions/:external_id/alerts", async (request) => {
    const { one, views } = await alerts.create(request.orgId, request.params.external_id, statusOf(request.query), request.body);
    return one ? { alert: json(views[0]!) } : { alerts: views.map(json) };
  });
  app.get<BySubscription>("/api/v1/subscriptions/:external_id/alerts", async (request) => {
    const status = statusOf(request.query);
    const { page, perPage } = pageOf(request.query);
    const { views, total } = await alerts.list(request.orgId, request.params.external_id, status, page, perPage);
    return { alerts: views.map(json), meta: paginationMeta(page, perPage, total) };
  });
  app.delete<BySubscription>("/api/v1/subscriptions/:external_id/alerts", async (request, reply) => {
    await alerts.deleteAll(request.orgId, request.params.external_id, statusOf(request.query));
    return reply.code(200).send();
  });
  app.get<ByCode>("/api/v1/subscriptions/:external_id/alerts/:code", async (request) => ({
    alert: json(await alerts.get(request.orgId, request.params.external_id, statusOf(request.query), request.params.code)),
  }));
  app.put<ByCode>("/api/v1/subscriptions/:external_id/alerts/:code", async (request) => ({
    alert: json(await alerts.update(request.orgId, request.params.external_id, statusOf(request.query), request.params.code, request.body)),
  }));
  app.delete<ByCode>("/api/v1/subscriptions/:external_id/alerts/:code", async (request) => ({
    alert: json(await alerts.delete(request.orgId, request.params.external_id, statusOf(request.query), request.params.code)),
  }));
}
