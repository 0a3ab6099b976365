// The progressive billing pass: run by the billing job (every minute with the scheduler, and on
// every test clock move) after the due periods are billed, never on the ingestion path. For each
// active subscription whose plan has usage thresholds it prices the current charge period's usage
// so far; thresholds newly reached issue one `progressive_billing` invoice, finalized at once (Lago:
// no grace period), and a `subscription.usage_threshold_reached` webhook. The thresholds crossed
// are recorded with the invoice, unique per subscription, period and threshold step: two runs at
// once never issue a second invoice for the same crossing. Latency: a crossing is invoiced by the
// next billing job run (a minute at most with BILLING_SCHEDULER=on).
import type { Queryable } from "../../db/db.ts";
import { usageThresholdJson, type UsageThreshold } from "../catalog/index.ts";
import type { Subscription } from "../subscriptions/index.ts";
import type { BillingPeriod } from "../billing/core/index.ts";
import { chargeSchedule, periodAt } from "../billing/core/index.ts";
import {
  type BillingTerms,
  type ChargesSpan,
  type ThresholdCrossing,
  highestFixedThreshold,
  levelOf,
} from "./core/index.ts";

/** Active subscriptions of the organization on a plan with usage thresholds. */
export async function thresholdCandidates(q: Queryable, orgId: number): Promise<number[]> {
  const { rows } = await q.query<{ id: string }>(
    `SELECT s.id FROM subscriptions s JOIN plans p ON p.org_id = s.org_id AND p.id = s.plan_id
      WHERE s.org_id = $1 AND s.status = 'active' AND jsonb_array_length(p.usage_thresholds) > 0
      ORDER BY s.id`,
    [orgId],
  );
  return rows.map((r) => Number(r.id));
}

/** Threshold lago_id → the highest step crossed in the period (invoices voided since included: their crossing stays spent). */
export async function appliedThresholds(q: Queryable, orgId: number, subscriptionId: number, periodStart: Date): Promise<Map<string, number>> {
  const { rows } = await q.query<{ threshold_lago_id: string; step: number }>(
    `SELECT threshold_lago_id::text AS threshold_lago_id, max(step) AS step FROM applied_usage_thresholds
      WHERE org_id = $1 AND subscription_id = $2 AND period_start = $3 GROUP BY threshold_lago_id`,
    [orgId, subscriptionId, periodStart],
  );
  return new Map(rows.map((r) => [r.threshold_lago_id, Number(r.step)]));
}

/**
 * What the period's progressive billing invoices (not voided) billed for usage, minor units: each
 * bills the usage so far less what the ones before it billed, so this is their fees less their credits.
 */
export async function progressivelyBilled(q: Queryable, orgId: number, subscriptionId: number, periodStart: Date): Promise<bigint> {
  const { rows } = await q.query<{ cents: string | null }>(
    `SELECT sum(i.fees_amount_cents - i.progressive_billing_credit_amount_cents)::text AS cents
       FROM invoices i
      WHERE i.org_id = $1 AND i.status <> 'voided' AND i.invoice_type = 'progressive_billing'
        AND i.id IN (SELECT a.invoice_id FROM applied_usage_thresholds a WHERE a.org_id = $1 AND a.subscription_id = $2 AND a.period_start = $3)`,
    [orgId, subscriptionId, periodStart],
  );
  return BigInt(rows[0]?.cents ?? "0");
}

export async function insertAppliedThresholds(
  tx: Queryable,
  orgId: number,
  subscriptionId: number,
  invoiceId: number,
  periodStart: Date,
  crossings: readonly ThresholdCrossing[],
  thresholds: readonly UsageThreshold[],
  lifetimeUsageCents: bigint,
  now: Date,
): Promise<void> {
  const highest = highestFixedThreshold(thresholds);
  for (const c of crossings) {
    await tx.query(
      `INSERT INTO applied_usage_thresholds (org_id, subscription_id, invoice_id, threshold_lago_id, step, threshold_amount_cents,
                                             threshold_display_name, recurring, period_start, lifetime_usage_amount_cents, created_at,
                                             usage_threshold)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12::jsonb)`,
      [orgId, subscriptionId, invoiceId, c.threshold.lagoId, c.step, levelOf(c, highest).toString(), c.threshold.thresholdDisplayName,
       c.threshold.recurring, periodStart, lifetimeUsageCents.toString(), now, JSON.stringify(usageThresholdJson(c.threshold))],
    );
  }
}

export interface AppliedThresholdRecord {
  readonly thresholdLagoId: string;
  readonly amountCents: bigint;
  readonly thresholdDisplayName: string | null;
  readonly recurring: boolean;
  readonly lifetimeUsageAmountCents: bigint;
  readonly createdAt: Date;
}

/** The thresholds a progressive billing invoice was issued for (Lago's applied_usage_thresholds). */
export async function appliedThresholdsOf(q: Queryable, orgId: number, invoiceId: number): Promise<AppliedThresholdRecord[]> {
  const { rows } = await q.query<{
    threshold_lago_id: string;
    threshold_amount_cents: string;
    threshold_display_name: string | null;
    recurring: boolean;
    lifetime_usage_amount_cents: string;
    created_at: Date;
  }>(
    `SELECT threshold_lago_id::text AS threshold_lago_id, threshold_amount_cents, threshold_display_name, recurring,
            lifetime_usage_amount_cents, created_at
       FROM applied_usage_thresholds WHERE org_id = $1 AND invoice_id = $2 ORDER BY threshold_amount_cents, id`,
    [orgId, invoiceId],
  );
  return rows.map((r) => ({
    thresholdLagoId: r.threshold_lago_id,
    amountCents: BigInt(r.threshold_amount_cents),
    thresholdDisplayName: r.threshold_display_name,
    recurring: r.recurring,
    lifetimeUsageAmountCents: BigInt(r.lifetime_usage_amount_cents),
    createdAt: new Date(r.created_at),
  }));
}

/** The current charge period of a subscription at `now`, cut at its start: the usage thresholds watch. */
export function currentChargeSpan(terms: BillingTerms, now: Date): ChargesSpan | null {
  if (now.getTime() <= terms.startedAt.getTime()) return null;
  const schedule = chargeSchedule(
    { subscriptionAt: terms.subscriptionAt, timezone: terms.timezone, interval: terms.interval, billingTime: terms.billingTime },
    terms.billChargesMonthly,
  );
  const period: BillingPeriod = periodAt(schedule, now);
  const from = new Date(Math.max(period.start.getTime(), terms.startedAt.getTime()));
  if (now.getTime() <= from.getTime()) return null;
  return { period, from, to: now };
}

/** The thresholds a subscription is billed on (its plan's; per-subscription overrides are not read yet). */
export const thresholdsOf = (sub: Subscription): readonly UsageThreshold[] => sub.plan.usageThresholds ?? [];
