import type { BillingInstant, BillingTerms } from "../../../src/modules/invoicing/index.ts";

/** A monthly calendar plan in arrears in UTC, started at `startedAt`, unless told otherwise. */
export function terms(startedAt: string, over: Partial<Omit<BillingTerms, "startedAt" | "terminatedAt" | "trialEndsAt" | "subscriptionAt">> & {
  terminatedAt?: string;
  trialEndsAt?: string;
  subscriptionAt?: string;
} = {}): BillingTerms {
  const { terminatedAt, trialEndsAt, subscriptionAt, ...rest } = over;
  return {
    subscriptionAt: new Date(subscriptionAt ?? startedAt),
    startedAt: new Date(startedAt),
    terminatedAt: terminatedAt === undefined ? null : new Date(terminatedAt),
    endedBy: "termination",
    billingTime: "calendar",
    timezone: "UTC",
    interval: "monthly",
    payInAdvance: false,
    billChargesMonthly: false,
    trialEndsAt: trialEndsAt === undefined ? null : new Date(trialEndsAt),
    ...rest,
  };
}

const day = (d: Date) => d.toISOString().slice(0, 10);
/** Midnight prints as its day, a period's last instant as its day, anything else in full. */
const fmt = (d: Date) => (/T(00:00:00\.000|23:59:59\.999)Z$/.test(d.toISOString()) ? day(d) : d.toISOString());

/**
 * An instant as a line: "2024-04-01 periodic fee:arrears 2024-03-10..2024-03-31 charges:2024-03-10..2024-04-01".
 * Fee spans print their first and last day (or the termination); charge spans their [from, to).
 */
export function line(i: BillingInstant): string {
  const parts = [fmt(i.at), i.reason.replace("subscription_", "")];
  if (i.fee !== null) parts.push(`fee:${i.fee.timing} ${fmt(i.fee.from)}..${fmt(i.fee.to)}`);
  if (i.charges !== null) parts.push(`charges:${fmt(i.charges.from)}..${fmt(i.charges.to)}`);
  if (i.unused !== null) parts.push(`unused:${i.unused.period.fromDate}..${i.unused.period.toDate}`);
  return parts.join(" ");
}
