// Monthly series as /analytics/* answers them: one row per month of the window for each currency
// (the requested one, or every currency with figures in the window; no conversion between them,
// as Lago's dashboards), months with nothing at zero, oldest month first, then by currency.
// Amounts are bigint cents until rendered; Lago renders them as JSON integers.
import { type MonthKey, monthJson } from "./months.ts";
import type { MonthAmount } from "./mrr.ts";

export const PAYMENT_STATUSES = ["pending", "succeeded", "failed"] as const;
export type PaymentStatus = (typeof PAYMENT_STATUSES)[number];

export interface GrossRevenueRow {
  month: MonthKey;
  currency: string;
  cents: bigint;
  invoices: number;
}

export interface CollectionRow {
  month: MonthKey;
  currency: string;
  paymentStatus: PaymentStatus;
  cents: bigint;
  invoices: number;
}

export interface InvoicedUsageRow {
  month: MonthKey;
  currency: string;
  code: string;
  cents: bigint;
}

export interface OverdueRow {
  month: MonthKey;
  currency: string;
  cents: bigint;
  invoiceIds: string[];
}

const cents = (v: bigint) => Number(v);

/** The currencies a series shows: the one asked for, else those with figures in the window. */
export function seriesCurrencies(requested: string | null, rows: readonly { month: MonthKey; currency: string }[], window: readonly MonthKey[]): string[] {
  if (requested !== null) return [requested];
  const inWindow = new Set(window);
  return [...new Set(rows.filter((r) => inWindow.has(r.month)).map((r) => r.currency))].sort();
}

/** Adds rows of the same month and currency together (gross revenue: invoices and fees without one). */
export function mergeGross(rows: readonly GrossRevenueRow[]): GrossRevenueRow[] {
  const by = new Map<string, GrossRevenueRow>();
  for (const r of rows) {
    const k = `${r.month}|${r.currency}`;
    const prev = by.get(k);
    by.set(k, prev ? { ...prev, cents: prev.cents + r.cents, invoices: prev.invoices + r.invoices } : { ...r });
  }
  return [...by.values()];
}

function dense<R extends { month: MonthKey; currency: string }, J>(
  window: readonly MonthKey[],
  currencies: readonly string[],
  rows: readonly R[],
  render: (month: MonthKey, currency: string, row: R | undefined) => J,
): J[] {
  const by = new Map(rows.map((r) => [`${r.month}|${r.currency}`, r]));
  return window.flatMap((month) => currencies.map((currency) => render(month, currency, by.get(`${month}|${currency}`))));
}

export function grossRevenuesJson(window: readonly MonthKey[], requested: string | null, rows: readonly GrossRevenueRow[]) {
  const merged = mergeGross(rows);
  return dense(window, seriesCurrencies(requested, merged, window), merged, (month, currency, r) => ({
    month: monthJson(month),
    amount_cents: cents(r?.cents ?? 0n),
    currency,
    invoices_count: r?.invoices ?? 0,
    // No billing entities here: figures belong to the organization.
    billing_entity_id: null,
  }));
}

export function mrrsJson(window: readonly MonthKey[], requested: string | null, rows: readonly MonthAmount[]) {
  return dense(window, seriesCurrencies(requested, rows, window), rows, (month, currency, r) => ({
    month: monthJson(month),
    amount_cents: cents(r?.cents ?? 0n),
    currency,
  }));
}

export function overdueBalancesJson(window: readonly MonthKey[], requested: string | null, rows: readonly OverdueRow[]) {
  return dense(window, seriesCurrencies(requested, rows, window), rows, (month, currency, r) => ({
    month: monthJson(month),
    amount_cents: cents(r?.cents ?? 0n),
    currency,
    lago_invoice_ids: r?.invoiceIds ?? [],
    billing_entity_id: null,
  }));
}

/** Every payment status of every month, so the three series of the chart line up. */
export function invoiceCollectionsJson(window: readonly MonthKey[], requested: string | null, rows: readonly CollectionRow[]) {
  const by = new Map(rows.map((r) => [`${r.month}|${r.currency}|${r.paymentStatus}`, r]));
  const currencies = seriesCurrencies(requested, rows, window);
  return window.flatMap((month) =>
    currencies.flatMap((currency) =>
      PAYMENT_STATUSES.map((status) => {
        const r = by.get(`${month}|${currency}|${status}`);
        return { month: monthJson(month), payment_status: status, invoices_count: r?.invoices ?? 0, amount_cents: cents(r?.cents ?? 0n), currency };
      }),
    ),
  );
}

/** Invoiced usage lists only the metrics invoiced in a month (one row per month, currency and metric code). */
export function invoicedUsagesJson(window: readonly MonthKey[], rows: readonly InvoicedUsageRow[]) {
  const inWindow = new Set(window);
  return rows
    .filter((r) => inWindow.has(r.month))
    .sort((a, b) => (a.month < b.month ? -1 : a.month > b.month ? 1 : a.currency < b.currency ? -1 : a.currency > b.currency ? 1 : a.code < b.code ? -1 : a.code > b.code ? 1 : 0))
    .map((r) => ({ month: monthJson(r.month), code: r.code, amount_cents: cents(r.cents), currency: r.currency }));
}
