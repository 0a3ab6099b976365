import type { FastifyInstance } from "fastify";
import { validationFailed } from "../../shared/errors.ts";
import { readAnalyticsQuery, type AnalyticsQuery } from "./core/query.ts";
import { readUsageQuery } from "./core/usage.ts";
import type { AnalyticsService } from "./service.ts";

function analyticsQuery(raw: unknown): AnalyticsQuery {
  const read = readAnalyticsQuery((raw ?? {}) as Record<string, unknown>);
  if (!read.ok) throw validationFailed(read.errors, "invalid query parameters");
  return read.value;
}

/** Lago's /analytics routes: monthly series by currency (see core/series.ts and store.ts for the rules). */
export function registerAnalyticsRoutes(app: FastifyInstance, analytics: AnalyticsService): void {
  app.get("/api/v1/analytics/gross_revenue", async (request) => ({
    gross_revenues: await analytics.grossRevenues(request.orgId, analyticsQuery(request.query)),
  }));
  app.get("/api/v1/analytics/invoice_collection", async (request) => ({
    invoice_collections: await analytics.invoiceCollections(request.orgId, analyticsQuery(request.query)),
  }));
  app.get("/api/v1/analytics/invoiced_usage", async (request) => ({
    invoiced_usages: await analytics.invoicedUsages(request.orgId, analyticsQuery(request.query)),
  }));
  app.get("/api/v1/analytics/mrr", async (request) => ({
    mrrs: await analytics.mrrs(request.orgId, analyticsQuery(request.query)),
  }));
  app.get("/api/v1/analytics/overdue_balance", async (request) => ({
    overdue_balances: await analytics.overdueBalances(request.orgId, analyticsQuery(request.query)),
  }));
  app.get("/api/v1/analytics/usage", async (request) => {
    const read = readUsageQuery((request.query ?? {}) as Record<string, unknown>, analytics.today(request.orgId));
    if (!read.ok) throw validationFailed(read.errors, "invalid query parameters");
    return { usages: await analytics.usages(request.orgId, read.value) };
  });
}
