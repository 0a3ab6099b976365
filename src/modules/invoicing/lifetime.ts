// GET /subscriptions/:external_id/lifetime_usage (Lago's lifetime usage object): what a
// subscription's usage has amounted to since it first started, every plan it ran on included —
// invoiced (usage fees of its invoices that are not voided, each unit once: a progressive billing
// invoice bills the period's usage less what earlier ones billed, and the period's invoice credits
// them all) plus the open period's usage in arrears (advance charges are invoiced as they happen).
// The invoiced sum leaves out the open period's progressive billing invoices: that usage is in the
// current amount. Usage thresholds are shown as progressive billing applies them here (per charge
// period, progressive.ts): each fixed threshold with how far the period's usage has come to it and
// when it was crossed, then the recurring one at its next level.
import crypto from "node:crypto";
import type { FastifyInstance } from "fastify";
import type { Queryable } from "../../db/db.ts";
import { Decimal } from "../../shared/money.ts";
import type { UsageThreshold } from "../catalog/index.ts";
import { type SubscriptionUsage, type UsageWindow, usageWindowAt } from "../metering/index.ts";
import type { Subscription, SubscriptionView } from "../subscriptions/index.ts";
import { arrearsCharges } from "./core/advance.ts";
import { highestFixedThreshold } from "./core/index.ts";
import { thresholdsOf } from "./progressive.ts";

export interface LifetimeDeps {
  readonly db: Queryable;
  readonly subscriptions: { get(orgId: number, externalId: string): Promise<SubscriptionView> };
  readonly metering: { usage(orgId: number, sub: Subscription, window: UsageWindow): Promise<SubscriptionUsage> };
  readonly now: (orgId: number) => Date;
}

/** A threshold as the lifetime usage shows it. */
export interface ThresholdProgress {
  readonly amountCents: bigint;
  /** Between 0 and 1. */
  readonly completionRatio: Decimal;
  readonly reachedAt: Date | null;
}

/**
 * The plan's fixed thresholds in amount order, then the recurring one at the next level the
 * period's usage has not reached yet; `reached`: threshold lago_id → the highest step crossed in the
 * period and when. Pure.
 */
export function thresholdProgress(
  thresholds: readonly UsageThreshold[],
  periodUsageCents: bigint,
  reached: ReadonlyMap<string, { step: number; at: Date }>,
): ThresholdProgress[] {
  const ratio = (amount: bigint) => Decimal.min(1, new Decimal(periodUsageCents.toString()).div(amount.toString())).toDecimalPlaces(4, Decimal.ROUND_DOWN);
  const out: ThresholdProgress[] = [...thresholds]
    .filter((t) => !t.recurring)
    .sort((a, b) => (a.amountCents < b.amountCents ? -1 : a.amountCents > b.amountCents ? 1 : 0))
    .map((t) => ({ amountCents: t.amountCents, completionRatio: ratio(t.amountCents), reachedAt: reached.get(t.lagoId)?.at ?? null }));
  const recurring = thresholds.find((t) => t.recurring);
  if (recurring !== undefined && recurring.amountCents > 0n) {
    const base = highestFixedThreshold(thresholds);
    const passed = periodUsageCents > base ? (periodUsageCents - base) / recurring.amountCents : 0n;
    const next = base + recurring.amountCents * (passed + 1n);
    out.push({ amountCents: next, completionRatio: ratio(next), reachedAt: null });
  }
  return out;
}

/** Usage fees invoiced for the subscriptions of an external_id, each unit once (see the file's head). */
async function invoicedUsage(q: Queryable, orgId: number, subscriptionIds: readonly number[], openPeriodStart: Date | null): Promise<bigint> {
  const { rows } = await q.query<{ cents: string | null }>(
    `WITH counted AS (
       SELECT i.id, i.progressive_billing_credit_amount_cents AS credit
         FROM invoices i
        WHERE i.org_id = $1 AND i.status <> 'voided'
          AND EXISTS (SELECT 1 FROM fees f WHERE f.org_id = $1 AND f.invoice_id = i.id AND f.subscription_id = ANY($2::bigint[]) AND f.fee_type = 'charge')
          AND NOT (i.invoice_type = 'progressive_billing' AND i.id IN (
                SELECT a.invoice_id FROM applied_usage_thresholds a
                 WHERE a.org_id = $1 AND a.subscription_id = ANY($2::bigint[]) AND a.period_start = $3))
     )
     SELECT ((SELECT coalesce(sum(f.amount_cents), 0) FROM fees f JOIN counted c ON c.id = f.invoice_id
               WHERE f.org_id = $1 AND f.subscription_id = ANY($2::bigint[]) AND f.fee_type = 'charge')
           - (SELECT coalesce(sum(c.credit), 0) FROM counted c))::text AS cents`,
    [orgId, subscriptionIds.map(String), openPeriodStart],
  );
  return BigInt(rows[0]?.cents ?? "0");
}

/** Threshold lago_id → highest step crossed in the period, and when (applied_usage_thresholds, progressive.ts). */
async function reachedIn(q: Queryable, orgId: number, subscriptionId: number, periodStart: Date): Promise<Map<string, { step: number; at: Date }>> {
  const { rows } = await q.query<{ threshold_lago_id: string; step: number; at: Date }>(
    `SELECT threshold_lago_id::text AS threshold_lago_id, max(step) AS step, max(created_at) AS at FROM applied_usage_thresholds
      WHERE org_id = $1 AND subscription_id = $2 AND period_start = $3 GROUP BY threshold_lago_id`,
    [orgId, subscriptionId, periodStart],
  );
  return new Map(rows.map((r) => [r.threshold_lago_id, { step: Number(r.step), at: new Date(r.at) }]));
}

// Lago renders times with `iso8601`: seconds, UTC, "Z".
const iso = (d: Date) => d.toISOString().replace(/\.\d{3}Z$/, "Z");

/** A stable id for the subscription's lifetime usage (ours is computed, not stored): a name-based UUID. */
function lifetimeUsageId(subscriptionLagoId: string): string {
  const h = crypto.createHash("sha1").update(`lifetime_usage:${subscriptionLagoId}`).digest();
  h[6] = (h[6]! & 0x0f) | 0x50;
  h[8] = (h[8]! & 0x3f) | 0x80;
  const x = h.subarray(0, 16).toString("hex");
  return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20)}`;
}

export async function lifetimeUsage(deps: LifetimeDeps, orgId: number, externalId: string) {
  const view = await deps.subscriptions.get(orgId, externalId);
  const sub = view.subscription;
  const now = deps.now(orgId);
  const window = usageWindowAt(sub, sub.plan, now);
  let currentCents = 0n;
  let periodUsageCents = 0n;
  if (window !== null) {
    const usage = await deps.metering.usage(orgId, sub, window);
    currentCents = arrearsCharges(usage.charges).reduce((a, c) => a + c.amountCents, 0n);
    periodUsageCents = currentCents;
  }
  const { rows } = await deps.db.query<{ id: string }>(
    "SELECT id FROM subscriptions WHERE org_id = $1 AND external_id = $2 AND customer_id = $3",
    [orgId, sub.externalId, sub.customerId],
  );
  const invoicedCents = await invoicedUsage(deps.db, orgId, rows.map((r) => Number(r.id)), window?.period.start ?? null);
  const thresholds = thresholdsOf(sub);
  const progress =
    thresholds.length === 0 || window === null
      ? []
      : thresholdProgress(thresholds, periodUsageCents, await reachedIn(deps.db, orgId, sub.id, window.period.start));
  const from = sub.initialStartedAt ?? sub.startedAt;
  return {
    lago_id: lifetimeUsageId(sub.lagoId),
    lago_subscription_id: sub.lagoId,
    external_subscription_id: sub.externalId,
    // Usage from before this server (Lago's migration field; PUT is not supported yet).
    external_historical_usage_amount_cents: 0,
    invoiced_usage_amount_cents: Number(invoicedCents),
    current_usage_amount_cents: Number(currentCents),
    from_datetime: from === null ? null : iso(from),
    to_datetime: iso(window?.period.to ?? now),
    usage_thresholds: progress.map((p) => ({
      amount_cents: Number(p.amountCents),
      completion_ratio: Number(p.completionRatio.toString()),
      reached_at: p.reachedAt === null ? null : iso(p.reachedAt),
    })),
  };
}

export function registerLifetimeUsageRoute(app: FastifyInstance, deps: LifetimeDeps): void {
  app.get<{ Params: { external_id: string } }>("/api/v1/subscriptions/:external_id/lifetime_usage", async (request) => ({
    lifetime_usage: await lifetimeUsage(deps, request.orgId, request.params.external_id),
  }));
}
