// Lago's usage shapes (CustomerUsageObject, CustomerChargeUsageObject and its filters breakdown in
// lago-javascript-client), from priced usage.
import type { ChargeUsage, FeeUsage, SubscriptionUsage } from "./usage.ts";

// Lago renders times with `iso8601`: seconds, UTC, "Z".
const iso = (d: Date) => d.toISOString().replace(/\.\d{3}Z$/, "Z");

// Amounts are bigint cents; JSON numbers are exact up to 2^53 - 1, far beyond any usage fee.
const cents = (v: bigint) => Number(v);

function feeJson(f: FeeUsage) {
  return {
    units: f.units.toString(),
    total_aggregated_units: f.totalAggregatedUnits.toString(),
    amount_cents: cents(f.amountCents),
    events_count: f.eventsCount,
    invoice_display_name: f.filter!.invoiceDisplayName,
    values: f.filter!.values,
  };
}

export function chargeUsageJson(c: ChargeUsage, currency: string) {
  const m = c.charge.metric;
  return {
    units: c.units.toString(),
    total_aggregated_units: c.totalAggregatedUnits.toString(),
    events_count: c.eventsCount,
    amount_cents: cents(c.amountCents),
    amount_currency: currency,
    charge: {
      lago_id: c.charge.lagoId,
      charge_model: c.charge.chargeModel,
      invoice_display_name: c.charge.invoiceDisplayName,
    },
    billable_metric: { lago_id: m.lagoId, name: m.name, code: m.code, aggregation_type: m.aggregationType },
    // Lago lists the charge's filters only; the default bucket's fee counts in the charge's totals.
    filters: c.charge.filters.length === 0 ? [] : c.fees.filter((f) => f.filter !== null).map(feeJson),
    grouped_usage: [],
  };
}

export function usageJson(u: SubscriptionUsage) {
  const w = u.window;
  // The last instant of the window, as Lago's charges_to_datetime: 23:59:59 of the period's last day,
  // or the termination.
  const last = w.to.getTime() === w.period.end.getTime() ? w.period.to : w.to;
  return {
    from_datetime: iso(w.from),
    to_datetime: iso(last),
    issuing_date: w.issuingDate,
    lago_invoice_id: null,
    currency: u.currency,
    amount_cents: cents(u.amountCents),
    taxes_amount_cents: cents(u.taxesAmountCents),
    total_amount_cents: cents(u.totalAmountCents),
    charges_usage: u.charges.map((c) => chargeUsageJson(c, u.currency)),
  };
}
