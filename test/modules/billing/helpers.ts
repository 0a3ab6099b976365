import type { BillingPeriod, BillingSchedule, BillingTime, PlanInterval } from "../../../src/modules/billing/core/index.ts";

export function schedule(
  subscriptionAt: string,
  interval: PlanInterval,
  billingTime: BillingTime,
  timezone = "UTC",
): BillingSchedule {
  return { subscriptionAt, interval, billingTime, timezone };
}

/** A period as Lago prints it: "2024-01-01..2024-01-31 (31)". */
export function span(period: BillingPeriod): string {
  return `${period.fromDate}..${period.toDate} (${period.days})`;
}

export const iso = (date: Date): string => date.toISOString();
