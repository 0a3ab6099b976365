import type { FastifyInstance } from "fastify";
import client from "prom-client";
import { type FieldErrors, validationFailed } from "../../shared/errors.ts";
import { usageJson } from "./core/index.ts";
import { projectedUsageJson } from "./core/projected.ts";
import type { MeteringService } from "./service.ts";
import { UNMATCHED_REASONS, type UnmatchedReason } from "./store.ts";
import { paginationMeta, positiveIntParam } from "../../shared/pagination.ts";

type Query = Record<string, unknown>;

/** Reads query parameters, collecting every broken one. */
class QueryReader {
  readonly errors: FieldErrors = {};
  constructor(private readonly q: Query) {}

  int(name: string, fallback: number, max: number): number;
  int(name: string, fallback: undefined, max: number): number | undefined;
  int(name: string, fallback: number | undefined, max: number): number | undefined {
    const v = this.q[name];
    if (fallback === undefined && (v === undefined || v === "")) return undefined;
    return positiveIntParam(v, name, fallback ?? 1, max, this.errors);
  }

  text(name: string, required = false): string | undefined {
    const v = this.q[name];
    if (v === undefined || v === "") {
      if (required) this.errors[name] = ["value_is_mandatory"];
      return undefined;
    }
    if (typeof v !== "string" || v.length > 255 || v.includes("\u0000") || !v.isWellFormed()) {
      this.errors[name] = ["invalid_value"];
      return undefined;
    }
    return v;
  }

  done(): void {
    if (Object.keys(this.errors).length > 0) throw validationFailed(this.errors, "invalid query parameters");
  }
}

const meta = paginationMeta;

export function registerMeteringRoutes(app: FastifyInstance, metering: MeteringService): void {
  app.get<{ Params: { external_id: string } }>("/api/v1/customers/:external_id/current_usage", async (request) => {
    const r = new QueryReader(request.query as Query);
    const sub = r.text("external_subscription_id", true);
    r.done();
    const usage = await metering.currentUsage(request.orgId, request.params.external_id, sub!);
    return { customer_usage: usageJson(usage) };
  });

  // Lago's projected usage: current usage with each charge extrapolated to the period's end.
  app.get<{ Params: { external_id: string } }>("/api/v1/customers/:external_id/projected_usage", async (request) => {
    const r = new QueryReader(request.query as Query);
    const sub = r.text("external_subscription_id", true);
    const applyTaxes = r.text("apply_taxes");
    if (applyTaxes !== undefined && applyTaxes !== "true" && applyTaxes !== "false") r.errors["apply_taxes"] = ["value_is_invalid"];
    r.done();
    const projected = await metering.projectedUsage(request.orgId, request.params.external_id, sub!, applyTaxes !== "false");
    return { customer_projected_usage: projectedUsageJson(projected) };
  });

  app.get<{ Params: { external_id: string } }>("/api/v1/customers/:external_id/past_usage", async (request) => {
    const r = new QueryReader(request.query as Query);
    const sub = r.text("external_subscription_id", true);
    const page = r.int("page", 1, 1_000_000);
    const perPage = r.int("per_page", 20, 100);
    const periodsCount = r.int("periods_count", undefined, 1000);
    const code = r.text("billable_metric_code");
    r.done();
    const { items, total } = await metering.pastUsage(request.orgId, request.params.external_id, sub!, {
      page,
      perPage,
      ...(periodsCount !== undefined ? { periodsCount } : {}),
      ...(code !== undefined ? { billableMetricCode: code } : {}),
    });
    return { usage_periods: items.map(usageJson), meta: meta(page, perPage, total) };
  });

  // Ours, beyond Lago: events kept but counted nowhere yet (no live metric has their code, or no
  // subscription has their external_subscription_id). They count as soon as one is created, if
  // they fall in its periods. Answers before GET /events/:transaction_id (static routes win).
  app.get("/api/v1/unmatched_events", async (request) => {
    const r = new QueryReader(request.query as Query);
    const page = r.int("page", 1, 1_000_000);
    const perPage = r.int("per_page", 20, 1000);
    const sub = r.text("external_subscription_id");
    const code = r.text("code");
    const reason = r.text("reason");
    if (reason !== undefined && !(UNMATCHED_REASONS as readonly string[]).includes(reason)) {
      r.errors["reason"] = [`must_be_one_of ${UNMATCHED_REASONS.join(", ")}`];
    }
    r.done();
    const { events, total } = await metering.listUnmatched(request.orgId, {
      limit: perPage,
      offset: (page - 1) * perPage,
      ...(sub !== undefined ? { externalSubscriptionId: sub } : {}),
      ...(code !== undefined ? { code } : {}),
      ...(reason !== undefined ? { reason: reason as UnmatchedReason } : {}),
    });
    return { events, meta: meta(page, perPage, total) };
  });
}

/**
 * `billing_unmatched_events{reason}`: a gauge read from the database when scraped (at most every
 * `ttlMs`; a scrape in between answers the last value). Not a counter bumped at ingest: an
 * unmatched event stops being unmatched when its metric or subscription is created later, which
 * a counter cannot show, and the hot path would need a catalog and subscription lookup per event.
 */
export function registerUnmatchedGauge(registry: client.Registry, metering: Pick<MeteringService, "unmatchedTotals">, ttlMs = 30_000): void {
  let cached: { at: number; totals: Record<UnmatchedReason, number> } | null = null;
  let pending: Promise<Record<UnmatchedReason, number>> | null = null;
  const read = async () => {
    if (cached !== null && Date.now() - cached.at < ttlMs) return cached.totals;
    pending ??= metering.unmatchedTotals().finally(() => (pending = null));
    const totals = await pending;
    cached = { at: Date.now(), totals };
    return totals;
  };
  new client.Gauge({
    name: "billing_unmatched_events",
    help: "Stored events counted by no charge yet: their code names no billable metric (reason billable_metric_not_found), or else their external_subscription_id no subscription",
    labelNames: ["reason"],
    registers: [registry],
    // Every worker reads the same database: across workers the value is the same, not a sum.
    aggregator: "max",
    async collect() {
      try {
        const totals = await read();
        for (const reason of UNMATCHED_REASONS) this.set({ reason }, totals[reason]);
      } catch {
        // The database is unreachable: the scrape still answers, without this gauge's samples.
      }
    },
  });
}
