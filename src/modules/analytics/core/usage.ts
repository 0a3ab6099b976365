// GET /analytics/usage: billed usage (units and amounts of usage-based fees) per billable metric,
// in daily, weekly (ISO weeks, Monday to Sunday) or monthly periods, between two dates.
// A fee's usage belongs to the day its usage period starts (UTC); the report is built from fees,
// so it shows usage once it is billed (Lago's usage report is premium and undocumented in detail;
// this is our reading of its shape).
import type { FieldErrors } from "../../../shared/errors.ts";
import { Decimal, isCurrency } from "../../../shared/money.ts";
import type { Read } from "./query.ts";

export const GRANULARITIES = ["daily", "weekly", "monthly"] as const;
export type Granularity = (typeof GRANULARITIES)[number];
export const CUSTOMER_TYPES = ["individual", "company"] as const;

export interface UsageQuery {
  granularity: Granularity;
  /** Both included, "YYYY-MM-DD". */
  fromDate: string;
  toDate: string;
  currency: string | null;
  customerType: string | null;
  externalCustomerId: string | null;
  customerCountry: string | null;
  externalSubscriptionId: string | null;
  metricRecurring: boolean | null;
  planCode: string | null;
  metricCode: string | null;
}

const DATE = /^\d{4}-\d{2}-\d{2}$/;
function isDate(v: string): boolean {
  if (!DATE.test(v)) return false;
  const t = new Date(`${v}T00:00:00Z`);
  return !Number.isNaN(t.getTime()) && t.toISOString().slice(0, 10) === v;
}

/** The first day of the month `months - 1` months before `today`'s. */
function monthsBack(today: string, months: number): string {
  const t = new Date(`${today.slice(0, 7)}-01T00:00:00Z`);
  t.setUTCMonth(t.getUTCMonth() - (months - 1));
  return t.toISOString().slice(0, 10);
}

/** Reads the query; without dates the report covers the last 12 months up to `today`. */
export function readUsageQuery(raw: Record<string, unknown>, today: string): Read<UsageQuery> {
  const errors: FieldErrors = {};
  const text = (name: string, max = 255): string | null => {
    const v = raw[name];
    if (v === undefined || v === "") return null;
    if (typeof v !== "string" || v.length > max) {
      errors[name] = ["value_is_invalid"];
      return null;
    }
    return v;
  };
  const oneOf = <T extends string>(name: string, values: readonly T[]): T | null => {
    const v = text(name);
    if (v === null) return null;
    if (!(values as readonly string[]).includes(v)) {
      errors[name] = ["value_is_invalid"];
      return null;
    }
    return v as T;
  };
  const granularity = oneOf("time_granularity", GRANULARITIES) ?? "monthly";
  const currency = text("currency");
  if (currency !== null && !isCurrency(currency)) errors.currency = ["value_is_invalid"];
  const date = (name: string) => {
    const v = text(name);
    if (v !== null && !isDate(v)) {
      errors[name] = ["invalid_date"];
      return null;
    }
    return v;
  };
  const from = date("from_date");
  const to = date("to_date");
  const toDate = to ?? today;
  const fromDate = from ?? monthsBack(toDate, 12);
  if (from !== null && fromDate > toDate) errors.from_date = ["must_be_before_to_date"];
  const country = text("customer_country");
  if (country !== null && !/^[A-Z]{2}$/.test(country)) errors.customer_country = ["country_code_invalid"];
  const recurring = oneOf("is_billable_metric_recurring", ["true", "false"] as const);
  const value: UsageQuery = {
    granularity,
    fromDate,
    toDate,
    currency,
    customerType: oneOf("customer_type", CUSTOMER_TYPES),
    externalCustomerId: text("external_customer_id"),
    customerCountry: country,
    externalSubscriptionId: text("external_subscription_id"),
    metricRecurring: recurring === null ? null : recurring === "true",
    planCode: text("plan_code"),
    metricCode: text("billable_metric_code"),
  };
  if (Object.keys(errors).length > 0) return { ok: false, errors };
  return { ok: true, value };
}

/** The period ("YYYY-MM-DD" first and last day) a day falls in. */
export function periodOf(day: string, granularity: Granularity): { start: string; end: string } {
  const t = new Date(`${day}T00:00:00Z`);
  const iso = (x: Date) => x.toISOString().slice(0, 10);
  switch (granularity) {
    case "daily":
      return { start: day, end: day };
    case "weekly": {
      const back = (t.getUTCDay() + 6) % 7; // days since Monday
      const start = new Date(t.getTime() - back * 86_400_000);
      return { start: iso(start), end: iso(new Date(start.getTime() + 6 * 86_400_000)) };
    }
    case "monthly": {
      const start = new Date(Date.UTC(t.getUTCFullYear(), t.getUTCMonth(), 1));
      const end = new Date(Date.UTC(t.getUTCFullYear(), t.getUTCMonth() + 1, 0));
      return { start: iso(start), end: iso(end) };
    }
    default: {
      const never: never = granularity;
      throw new Error(`unknown granularity ${String(never)}`);
    }
  }
}

/** Billed usage of one metric on one day, in one currency. */
export interface DailyUsageRow {
  day: string;
  currency: string;
  code: string;
  metricDeleted: boolean;
  units: Decimal;
  cents: bigint;
}

/** Lago's UsageObject rows: per period, currency and metric, oldest period first. */
export function usagesJson(organizationId: string, granularity: Granularity, rows: readonly DailyUsageRow[]) {
  const by = new Map<string, { start: string; end: string; currency: string; code: string; deleted: boolean; units: Decimal; cents: bigint }>();
  for (const r of rows) {
    const p = periodOf(r.day, granularity);
    const k = `${p.start}|${r.currency}|${r.code}`;
    const acc = by.get(k);
    if (acc) {
      acc.units = acc.units.plus(r.units);
      acc.cents += r.cents;
      acc.deleted &&= r.metricDeleted;
    } else by.set(k, { ...p, currency: r.currency, code: r.code, deleted: r.metricDeleted, units: r.units, cents: r.cents });
  }
  return [...by.entries()]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([, u]) => ({
      organization_id: organizationId,
      start_of_period_dt: u.start,
      end_of_period_dt: u.end,
      amount_currency: u.currency,
      amount_cents: Number(u.cents),
      billable_metric_code: u.code,
      units: u.units.toFixed(),
      is_billable_metric_deleted: u.deleted,
    }));
}
