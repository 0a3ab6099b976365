// Lago's AlertObject and TriggeredAlertObject (the alert.triggered webhook's `triggered_alert`). Pure.
import type { Decimal } from "../../../shared/money.ts";
import { type Alert, type AlertThreshold, type AlertType, thresholdValueString } from "./alert.ts";
import type { CrossedThreshold } from "./crossing.ts";

const iso = (d: Date) => d.toISOString().replace(/\.\d{3}Z$/, "Z");

/** Values are shown as JSON numbers (Lago: previous_value, current_value); the exact decimals stay stored. */
const num = (d: Decimal) => Number(d.toFixed());

const thresholdJson = (t: AlertThreshold | CrossedThreshold) => ({ code: t.code, recurring: t.recurring, value: thresholdValueString(t.value) });

export interface AlertContext {
  /** The organization's public id. */
  readonly organizationId: string;
  readonly externalCustomerId: string | null;
  /** The metric as GET /billable_metrics/:code shows it (metric types), else null. */
  readonly billableMetric: unknown;
}

export function alertJson(a: Alert, ctx: AlertContext) {
  return {
    lago_id: a.lagoId,
    lago_organization_id: ctx.organizationId,
    external_subscription_id: a.externalSubscriptionId,
    external_customer_id: ctx.externalCustomerId,
    lago_wallet_id: null,
    wallet_code: null,
    billable_metric: ctx.billableMetric,
    alert_type: a.alertType,
    code: a.code,
    name: a.name,
    direction: "increasing" as const,
    previous_value: num(a.previousValue),
    last_processed_at: a.lastProcessedAt === null ? null : iso(a.lastProcessedAt),
    thresholds: a.thresholds.map(thresholdJson),
    created_at: iso(a.createdAt),
  };
}

export interface Triggered {
  readonly lagoId: string;
  readonly organizationId: string;
  readonly alert: { readonly lagoId: string; readonly alertType: AlertType; readonly code: string; readonly name: string | null };
  readonly billableMetricCode: string | null;
  readonly subscription: { readonly lagoId: string; readonly externalId: string; readonly customerExternalId: string };
  readonly currentValue: Decimal;
  readonly previousValue: Decimal;
  readonly crossed: readonly CrossedThreshold[];
  readonly triggeredAt: Date;
}

export function triggeredAlertJson(t: Triggered) {
  return {
    lago_id: t.lagoId,
    lago_organization_id: t.organizationId,
    lago_alert_id: t.alert.lagoId,
    lago_subscription_id: t.subscription.lagoId,
    external_subscription_id: t.subscription.externalId,
    external_customer_id: t.subscription.customerExternalId,
    billable_metric_code: t.billableMetricCode,
    alert_type: t.alert.alertType,
    alert_code: t.alert.code,
    alert_name: t.alert.name,
    current_value: num(t.currentValue),
    previous_value: num(t.previousValue),
    triggered_at: iso(t.triggeredAt),
    crossed_thresholds: t.crossed.map(thresholdJson),
  };
}
