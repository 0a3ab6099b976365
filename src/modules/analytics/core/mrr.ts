// MRR: subscription fees normalised to a month, per Lago's documented method (GET /analytics/mrr):
//   - monthly plans: the fee counts in full in the month its invoice was issued;
//   - quarterly and yearly plans: the fee is spread evenly over the months of the period it pays
//     for — the coming months for a fee paid in advance, the past ones for a fee paid in arrears;
//     a shortened period (calendar proration, termination) spreads over the months it covers, so
//     "the remaining months" of Lago's wording;
//   - weekly plans: the weekly fees of the invoices issued in a month, divided by the number of
//     those invoices, times 4.33 (the average number of weeks in a month).
// Amounts are integer cents (bigint); a spread gives each month an equal share and the first
// months the remainder cents, so the shares add up to the fee exactly. The weekly average is
// decimal and rounded half-up to the cent once, for the month.
import { Decimal, d } from "../../../shared/money.ts";
import { addMonths, type MonthKey, monthsBetween } from "./months.ts";

export type PlanInterval = "weekly" | "monthly" | "quarterly" | "yearly";

/** Subscription fees sharing a plan interval, currency, issuing month and service period. */
export interface SubscriptionFeeGroup {
  interval: PlanInterval;
  currency: string;
  issuingMonth: MonthKey;
  /** Months of the fee's period (its first and last instant); null when the fee carries none. */
  periodFrom: MonthKey | null;
  periodTo: MonthKey | null;
  payInAdvance: boolean;
  /** Net of coupons, taxes included (Lago: "post-application of taxes and deduction of discounts"). */
  cents: bigint;
  /** Invoices these fees are on (weekly plans divide by it). */
  invoices: number;
}

export interface MonthAmount {
  month: MonthKey;
  currency: string;
  cents: bigint;
}

const SPREAD: Record<Exclude<PlanInterval, "weekly" | "monthly">, number> = { quarterly: 3, yearly: 12 };
export const WEEKS_PER_MONTH = d("4.33");

/** `cents` in `n` equal integer parts, the remainder cents on the first parts. */
export function spreadCents(cents: bigint, n: number): bigint[] {
  if (n < 1) throw new RangeError("spread over at least one month");
  const count = BigInt(n);
  const base = cents / count;
  const rest = cents % count;
  return Array.from({ length: n }, (_, i) => base + (BigInt(i) < rest ? 1n : 0n));
}

/**
 * The months a quarterly or yearly fee is spread over: its period's months when known (at most the
 * interval's length), otherwise the interval's length from the issuing month, forward for a fee paid
 * in advance and backward (ending the month before issuing) for one paid in arrears.
 */
export function spreadMonths(g: Pick<SubscriptionFeeGroup, "interval" | "issuingMonth" | "periodFrom" | "periodTo" | "payInAdvance">): MonthKey[] {
  if (g.interval === "monthly" || g.interval === "weekly") return [g.issuingMonth];
  const length = SPREAD[g.interval];
  if (g.periodFrom !== null && g.periodTo !== null && g.periodFrom <= g.periodTo) {
    const months = monthsBetween(g.periodFrom, g.periodTo);
    return months.length <= length ? months : months.slice(0, length);
  }
  const start = g.payInAdvance ? g.issuingMonth : addMonths(g.issuingMonth, -length);
  return Array.from({ length }, (_, i) => addMonths(start, i));
}

/** Weekly plans: the month's weekly fees over its invoice count, times 4.33, rounded half-up to the cent. */
export function weeklyMrr(cents: bigint, invoices: number): bigint {
  if (invoices <= 0) return 0n;
  const monthly = new Decimal(cents.toString()).div(invoices).times(WEEKS_PER_MONTH);
  return BigInt(monthly.toDecimalPlaces(0, Decimal.ROUND_HALF_UP).toFixed(0));
}

const key = (month: MonthKey, currency: string) => `${month}|${currency}`;

/** MRR per month and currency from the subscription fees (every month any group reaches). */
export function mrrByMonth(groups: readonly SubscriptionFeeGroup[]): MonthAmount[] {
  const totals = new Map<string, MonthAmount>();
  const add = (month: MonthKey, currency: string, cents: bigint) => {
    const k = key(month, currency);
    const row = totals.get(k);
    if (row) row.cents += cents;
    else totals.set(k, { month, currency, cents });
  };
  // Weekly: all the month's weekly fees and invoices first, then one average per month.
  const weekly = new Map<string, { month: MonthKey; currency: string; cents: bigint; invoices: number }>();
  for (const g of groups) {
    if (g.interval === "weekly") {
      const k = key(g.issuingMonth, g.currency);
      const w = weekly.get(k) ?? { month: g.issuingMonth, currency: g.currency, cents: 0n, invoices: 0 };
      w.cents += g.cents;
      w.invoices += g.invoices;
      weekly.set(k, w);
      continue;
    }
    const months = spreadMonths(g);
    const shares = spreadCents(g.cents, months.length);
    months.forEach((m, i) => add(m, g.currency, shares[i]!));
  }
  for (const w of weekly.values()) add(w.month, w.currency, weeklyMrr(w.cents, w.invoices));
  return [...totals.values()];
}
