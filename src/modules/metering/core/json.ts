// Lago's usage shapes (CustomerUsageObject, CustomerChargeUsageObject and its filters breakdown in
// lago-javascript-client), from priced usage.
import type { ChargeUsage, FeeUsage, SubscriptionUsage } from "./usage.ts";

// Lago renders times with `iso8601`: seconds, UTC, "Z".
const iso = (d: Date) => d.toISOString().replace(/\.\d{3}Z$/, "Z");

// Amounts are bigint cents; JSON numbers are exact up to 2^53 - 1, far beyond any usage fee.
const cents = (v: bigint) => Number(v);

/** Sums fees in the order their key first appears. */
function totalsBy<K>(fees: readonly FeeUsage[], key: (f: FeeUsage) => K): { key: K; fees: FeeUsage[] }[] {
  const out = new Map<string, { key: K; fees: FeeUsage[] }>();
  for (const f of fees) {
    const k = key(f);
    const id = JSON.stringify(k);
    const entry = out.get(id);
    if (entry === undefined) out.set(id, { key: k, fees: [f] });
    else entry.fees.push(f);
  }
  return [...out.values()];
}

function totalsJson(fees: readonly FeeUsage[]) {
  let units = fees[0]!.units;
  let total = fees[0]!.totalAggregatedUnits;
  for (const f of fees.slice(1)) {
    units = units.plus(f.units);
    total = total.plus(f.totalAggregatedUnits);
  }
  return {
    units: units.toString(),
    total_aggregated_units: total.toString(),
    amount_cents: cents(fees.reduce((n, f) => n + f.amountCents, 0n)),
    events_count: fees.reduce((n, f) => n + f.eventsCount, 0),
  };
}

// Lago lists the charge's filters only; the default bucket's fees count in the charge's totals.
function filtersJson(c: ChargeUsage, fees: readonly FeeUsage[]) {
  if (c.charge.filters.length === 0) return [];
  return totalsBy(
    fees.filter((f) => f.filter !== null),
    (f) => f.filterIndex,
  ).map(({ fees: list }) => ({
    ...totalsJson(list),
    invoice_display_name: list[0]!.filter!.invoiceDisplayName,
    values: list[0]!.filter!.values,
  }));
}

// Lago's grouped usage: the fees of the charge summed per group (`grouped_by`), across filters,
// each with its own filters breakdown; empty when no fee is priced by group.
function groupedUsageJson(c: ChargeUsage) {
  const grouped = c.fees.filter((f) => f.groupedBy !== null);
  if (grouped.length === 0) return [];
  return totalsBy(grouped, (f) => f.groupedBy!).map(({ key, fees }) => {
    const t = totalsJson(fees);
    return {
      amount_cents: t.amount_cents,
      events_count: t.events_count,
      units: t.units,
      total_aggregated_units: t.total_aggregated_units,
      grouped_by: key,
      filters: filtersJson(c, fees),
    };
  });
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
    filters: filtersJson(c, c.fees),
    grouped_usage: groupedUsageJson(c),
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
