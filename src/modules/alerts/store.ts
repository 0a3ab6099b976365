// SQL for alerts and triggered alerts. Every statement is scoped by org_id; deleted alerts are kept
// (their triggered alerts point at them).
import type { Queryable } from "../../db/db.ts";
import { Decimal } from "../../shared/money.ts";
import { type Alert, type AlertThreshold, type AlertType, sortThresholds } from "./core/alert.ts";
import type { CrossedThreshold } from "./core/crossing.ts";

interface AlertRow {
  id: string;
  org_id: number;
  lago_id: string;
  external_subscription_id: string;
  alert_type: AlertType;
  billable_metric_id: string | null;
  code: string;
  name: string | null;
  thresholds: { code: string | null; value: string; recurring: boolean }[];
  previous_value: string;
  previous_period_from: Date | null;
  last_processed_at: Date | null;
  read_at: Date | null;
  created_at: Date;
}

const COLUMNS = `id, org_id, lago_id::text AS lago_id, external_subscription_id, alert_type, billable_metric_id, code, name, thresholds,
  previous_value::text AS previous_value, previous_period_from, last_processed_at, read_at, created_at`;

const date = (d: Date | null) => (d === null ? null : new Date(d));

const toAlert = (r: AlertRow): Alert => ({
  id: Number(r.id),
  orgId: Number(r.org_id),
  lagoId: r.lago_id,
  externalSubscriptionId: r.external_subscription_id,
  alertType: r.alert_type,
  billableMetricId: r.billable_metric_id === null ? null : Number(r.billable_metric_id),
  code: r.code,
  name: r.name,
  thresholds: sortThresholds((typeof r.thresholds === "string" ? JSON.parse(r.thresholds) : r.thresholds).map(thresholdOf)),
  previousValue: new Decimal(r.previous_value),
  previousPeriodFrom: date(r.previous_period_from),
  lastProcessedAt: date(r.last_processed_at),
  readAt: date(r.read_at),
  createdAt: new Date(r.created_at),
});

const thresholdOf = (t: { code: string | null; value: string; recurring: boolean }): AlertThreshold => ({
  code: t.code,
  value: new Decimal(t.value),
  recurring: t.recurring,
});

export const thresholdsJsonb = (list: readonly (AlertThreshold | CrossedThreshold)[]) =>
  JSON.stringify(list.map((t) => ({ code: t.code, value: t.value.toFixed(), recurring: t.recurring })));

export interface AlertWrite {
  readonly alertType: AlertType;
  readonly billableMetricId: number | null;
  readonly code: string;
  readonly name: string | null;
  readonly thresholds: readonly AlertThreshold[];
}

export async function insertAlert(q: Queryable, orgId: number, lagoId: string, externalSubscriptionId: string, a: AlertWrite, now: Date): Promise<Alert> {
  const { rows } = await q.query<AlertRow>(
    `INSERT INTO alerts (org_id, lago_id, external_subscription_id, alert_type, billable_metric_id, code, name, thresholds, created_at, updated_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb, $9, $9) RETURNING ${COLUMNS}`,
    [orgId, lagoId, externalSubscriptionId, a.alertType, a.billableMetricId, a.code, a.name, thresholdsJsonb(a.thresholds), now],
  );
  return toAlert(rows[0]!);
}

/** A new metric starts the watched value over (it is another quantity); other changes keep it. */
export async function updateAlert(q: Queryable, orgId: number, id: number, a: AlertWrite, metricChanged: boolean, now: Date): Promise<Alert> {
  const { rows } = await q.query<AlertRow>(
    `UPDATE alerts SET billable_metric_id = $3, code = $4, name = $5, thresholds = $6::jsonb, updated_at = $7,
            previous_value = CASE WHEN $8::boolean THEN 0 ELSE previous_value END,
            previous_period_from = CASE WHEN $8::boolean THEN NULL ELSE previous_period_from END
      WHERE org_id = $1 AND id = $2 RETURNING ${COLUMNS}`,
    [orgId, id, a.billableMetricId, a.code, a.name, thresholdsJsonb(a.thresholds), now, metricChanged],
  );
  return toAlert(rows[0]!);
}

export async function alertByCode(q: Queryable, orgId: number, externalSubscriptionId: string, code: string, forUpdate = false): Promise<Alert | null> {
  const { rows } = await q.query<AlertRow>(
    `SELECT ${COLUMNS} FROM alerts WHERE org_id = $1 AND external_subscription_id = $2 AND code = $3 AND deleted_at IS NULL${forUpdate ? " FOR UPDATE" : ""}`,
    [orgId, externalSubscriptionId, code],
  );
  return rows[0] === undefined ? null : toAlert(rows[0]);
}

/** The live alert of this type (and metric) on the subscription, if any. */
export async function alertOfKind(q: Queryable, orgId: number, externalSubscriptionId: string, alertType: AlertType, billableMetricId: number | null): Promise<Alert | null> {
  const { rows } = await q.query<AlertRow>(
    `SELECT ${COLUMNS} FROM alerts WHERE org_id = $1 AND external_subscription_id = $2 AND alert_type = $3
        AND coalesce(billable_metric_id, 0) = $4 AND deleted_at IS NULL`,
    [orgId, externalSubscriptionId, alertType, billableMetricId ?? 0],
  );
  return rows[0] === undefined ? null : toAlert(rows[0]);
}

export async function listAlerts(
  q: Queryable,
  orgId: number,
  externalSubscriptionId: string,
  limit: number,
  offset: number,
  forUpdate = false,
): Promise<{ alerts: Alert[]; total: number }> {
  const { rows } = await q.query<AlertRow>(
    `SELECT ${COLUMNS} FROM alerts WHERE org_id = $1 AND external_subscription_id = $2 AND deleted_at IS NULL
      ORDER BY created_at, id LIMIT $3 OFFSET $4${forUpdate ? " FOR UPDATE" : ""}`,
    [orgId, externalSubscriptionId, limit, offset],
  );
  const count = await q.query<{ n: string }>(
    "SELECT count(*)::text AS n FROM alerts WHERE org_id = $1 AND external_subscription_id = $2 AND deleted_at IS NULL",
    [orgId, externalSubscriptionId],
  );
  return { alerts: rows.map(toAlert), total: Number(count.rows[0]?.n ?? 0) };
}

export async function deleteAlerts(q: Queryable, orgId: number, ids: readonly number[], now: Date): Promise<void> {
  if (ids.length === 0) return;
  await q.query("UPDATE alerts SET deleted_at = $3, updated_at = $3 WHERE org_id = $1 AND id = ANY($2::int8[])", [orgId, [...ids], now]);
}

/** A deleted metric takes its alerts with it (Lago). */
export async function deleteAlertsOfMetric(q: Queryable, orgId: number, billableMetricId: number, now: Date): Promise<void> {
  await q.query("UPDATE alerts SET deleted_at = $3, updated_at = $3 WHERE org_id = $1 AND billable_metric_id = $2 AND deleted_at IS NULL", [
    orgId,
    billableMetricId,
    now,
  ]);
}

/** Subscriptions (org, external id) with live alerts; `staleBefore`: only those not evaluated since. */
export async function subscriptionsWithAlerts(
  q: Queryable,
  onlyOrg: number | undefined,
  staleBefore: Date | null,
  limit: number,
): Promise<{ orgId: number; externalSubscriptionId: string }[]> {
  const { rows } = await q.query<{ org_id: number; external_subscription_id: string }>(
    `SELECT org_id, external_subscription_id FROM alerts
      WHERE deleted_at IS NULL AND ($1::int IS NULL OR org_id = $1)
      GROUP BY org_id, external_subscription_id
     HAVING $2::timestamptz IS NULL OR bool_or(read_at IS NULL OR read_at < $2::timestamptz)
      ORDER BY min(read_at) NULLS FIRST, org_id, external_subscription_id
      LIMIT $3`,
    [onlyOrg ?? null, staleBefore, limit],
  );
  return rows.map((r) => ({ orgId: Number(r.org_id), externalSubscriptionId: r.external_subscription_id }));
}

/** Live alerts of one subscription, locked for an evaluation's transaction. */
export async function lockAlertsOf(q: Queryable, orgId: number, externalSubscriptionId: string): Promise<Alert[]> {
  const { rows } = await q.query<AlertRow>(
    `SELECT ${COLUMNS} FROM alerts WHERE org_id = $1 AND external_subscription_id = $2 AND deleted_at IS NULL ORDER BY id FOR UPDATE`,
    [orgId, externalSubscriptionId],
  );
  return rows.map(toAlert);
}

export async function recordEvaluation(
  q: Queryable,
  orgId: number,
  id: number,
  value: Decimal,
  periodFrom: Date | null,
  processedAt: Date,
  readAt: Date,
): Promise<void> {
  await q.query(
    `UPDATE alerts SET previous_value = $3, previous_period_from = $4, last_processed_at = $5, read_at = $6 WHERE org_id = $1 AND id = $2`,
    [orgId, id, value.toFixed(), periodFrom, processedAt, readAt],
  );
}

/** Marks alerts as looked at without a value (no active subscription): the background pass moves on. */
export async function markRead(q: Queryable, orgId: number, externalSubscriptionId: string, readAt: Date): Promise<void> {
  await q.query(
    `UPDATE alerts SET read_at = $3 WHERE org_id = $1 AND external_subscription_id = $2 AND deleted_at IS NULL AND (read_at IS NULL OR read_at < $3)`,
    [orgId, externalSubscriptionId, readAt],
  );
}

export interface TriggeredAlertWrite {
  readonly lagoId: string;
  readonly alertId: number;
  readonly subscriptionId: number;
  readonly currentValue: Decimal;
  readonly previousValue: Decimal;
  readonly crossed: readonly CrossedThreshold[];
  readonly triggeredAt: Date;
}

export async function insertTriggeredAlert(q: Queryable, orgId: number, t: TriggeredAlertWrite): Promise<void> {
  await q.query(
    `INSERT INTO triggered_alerts (org_id, lago_id, alert_id, subscription_id, current_value, previous_value, crossed_thresholds, triggered_at, created_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, $8, $8)`,
    [orgId, t.lagoId, t.alertId, t.subscriptionId, t.currentValue.toFixed(), t.previousValue.toFixed(), thresholdsJsonb(t.crossed), t.triggeredAt],
  );
}

/** The metric's code by internal id (deleted ones included), for rendering. */
export async function metricCodes(q: Queryable, orgId: number, ids: readonly number[]): Promise<Map<number, { code: string; deleted: boolean }>> {
  if (ids.length === 0) return new Map();
  const { rows } = await q.query<{ id: string; code: string; deleted: boolean }>(
    "SELECT id, code, deleted_at IS NOT NULL AS deleted FROM billable_metrics WHERE org_id = $1 AND id = ANY($2::int8[])",
    [orgId, [...ids]],
  );
  return new Map(rows.map((r) => [Number(r.id), { code: r.code, deleted: r.deleted }]));
}

/** The organization's public id (Lago's lago_organization_id). */
export async function organizationPublicId(q: Queryable, orgId: number): Promise<string> {
  const { rows } = await q.query<{ public_id: string }>("SELECT public_id::text AS public_id FROM organizations WHERE id = $1", [orgId]);
  return rows[0]?.public_id ?? "";
}

/**
 * What the subscription's earlier periods were invoiced for usage, minor units: charge fees of
 * every subscription row with this external id, on invoices not voided, whose usage ended by
 * `before` (the current period's start). Progressive billing invoices are left out: the period's
 * own invoice bills the whole period again and credits them.
 */
export async function invoicedUsageCents(q: Queryable, orgId: number, externalSubscriptionId: string, before: Date): Promise<bigint> {
  const { rows } = await q.query<{ cents: string | null }>(
    `SELECT sum(f.amount_cents)::text AS cents
       FROM fees f JOIN invoices i ON i.org_id = f.org_id AND i.id = f.invoice_id
      WHERE f.org_id = $1 AND f.fee_type = 'charge' AND i.status <> 'voided' AND i.invoice_type <> 'progressive_billing'
        AND f.subscription_id IN (SELECT s.id FROM subscriptions s WHERE s.org_id = $1 AND s.external_id = $2)
        AND coalesce(f.usage_to, f.to_datetime) <= $3`,
    [orgId, externalSubscriptionId, before],
  );
  return BigInt(rows[0]?.cents ?? "0");
}

/** The units those same fees billed, by metric (lifetime units alerts). */
export async function invoicedUnits(
  q: Queryable,
  orgId: number,
  externalSubscriptionId: string,
  billableMetricIds: readonly number[],
  before: Date,
): Promise<Map<number, Decimal>> {
  if (billableMetricIds.length === 0) return new Map();
  const { rows } = await q.query<{ billable_metric_id: string; units: string }>(
    `SELECT f.billable_metric_id, sum(f.units)::text AS units
       FROM fees f JOIN invoices i ON i.org_id = f.org_id AND i.id = f.invoice_id
      WHERE f.org_id = $1 AND f.fee_type = 'charge' AND i.status <> 'voided' AND i.invoice_type <> 'progressive_billing'
        AND f.billable_metric_id = ANY($3::int8[])
        AND f.subscription_id IN (SELECT s.id FROM subscriptions s WHERE s.org_id = $1 AND s.external_id = $2)
        AND coalesce(f.usage_to, f.to_datetime) <= $4
      GROUP BY f.billable_metric_id`,
    [orgId, externalSubscriptionId, [...billableMetricIds], before],
  );
  return new Map(rows.map((r) => [Number(r.billable_metric_id), new Decimal(r.units)]));
}
