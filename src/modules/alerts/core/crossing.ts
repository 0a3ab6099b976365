// When an alert triggers (Lago's guide "Usage alerts"): each evaluation reads the watched value and
// compares it with the value the previous one read; the thresholds passed on the way up, previous
// excluded and current included, are crossed, and one alert.triggered lists them all. A recurring
// threshold is crossed at every multiple of its value past the highest fixed threshold (fixed at
// 500 and 1000, recurring 200: 500, 1000, 1200, 1400, ...). A value that went down crosses nothing,
// and the next rise from there crosses again. Pure.
import { Decimal, ZERO } from "../../../shared/money.ts";
import type { ChargeUsage } from "../../metering/index.ts";
import { type AlertThreshold, type AlertType, isPeriodAlert } from "./alert.ts";

export interface CrossedThreshold {
  readonly code: string | null;
  /** The level crossed: a fixed threshold's value, or one multiple of a recurring one. */
  readonly value: Decimal;
  readonly recurring: boolean;
}

/** A crossing of a huge number of recurring levels at once lists only the highest this many. */
export const MAX_RECURRING_LEVELS = 1000;

export function crossedThresholds(thresholds: readonly AlertThreshold[], previous: Decimal, current: Decimal): CrossedThreshold[] {
  if (!current.greaterThan(previous)) return [];
  const out: CrossedThreshold[] = [];
  let base = ZERO;
  for (const t of thresholds) {
    if (t.recurring) continue;
    if (t.value.greaterThan(base)) base = t.value;
    if (t.value.greaterThan(previous) && !t.value.greaterThan(current)) out.push({ code: t.code, value: t.value, recurring: false });
  }
  out.sort((a, b) => a.value.comparedTo(b.value));
  const recurring = thresholds.find((t) => t.recurring);
  if (recurring !== undefined && recurring.value.greaterThan(0) && current.greaterThan(base)) {
    // Multiples k of the step with previous < base + k·step <= current.
    const step = recurring.value;
    const last = current.minus(base).dividedToIntegerBy(step);
    let first = previous.greaterThan(base) ? previous.minus(base).dividedToIntegerBy(step).plus(1) : new Decimal(1);
    if (last.minus(first).greaterThanOrEqualTo(MAX_RECURRING_LEVELS)) first = last.minus(MAX_RECURRING_LEVELS - 1);
    for (let k = first; k.lessThanOrEqualTo(last); k = k.plus(1)) out.push({ code: recurring.code, value: base.plus(step.times(k)), recurring: true });
  }
  return out;
}

/**
 * The value a previous evaluation read, as the baseline of one at `periodFrom`: a current-usage
 * alert starts from 0 in a new usage period, whatever the last one reached.
 */
export function baselineOf(alertType: AlertType, previous: Decimal, previousPeriodFrom: Date | null, periodFrom: Date): Decimal {
  if (!isPeriodAlert(alertType)) return previous;
  return previousPeriodFrom !== null && previousPeriodFrom.getTime() === periodFrom.getTime() ? previous : ZERO;
}

/** What one evaluation of a subscription knows: its current usage, and what it was invoiced for usage before this period. */
export interface UsageReading {
  /** Usage amount of the current period so far, minor units, before taxes. */
  readonly amountCents: bigint;
  readonly charges: readonly ChargeUsage[];
  /** Usage fees of the subscription's earlier periods on invoices not voided (read for lifetime amount alerts; 0 otherwise). */
  readonly invoicedUsageCents: bigint;
  /** Units those fees billed, by metric id (read for the metrics of lifetime units alerts). */
  readonly invoicedUnits: ReadonlyMap<number, Decimal>;
}

/** The value an alert watches, from one reading. */
export function watchedValue(alertType: AlertType, billableMetricId: number | null, reading: UsageReading): Decimal {
  const ofMetric = () => reading.charges.filter((c) => c.charge.metric.id === billableMetricId);
  switch (alertType) {
    case "current_usage_amount":
      return new Decimal(reading.amountCents.toString());
    case "lifetime_usage_amount":
      return new Decimal((reading.amountCents + reading.invoicedUsageCents).toString());
    case "billable_metric_current_usage_amount":
      return new Decimal(ofMetric().reduce((s, c) => s + c.amountCents, 0n).toString());
    case "billable_metric_current_usage_units":
      return ofMetric().reduce((s, c) => s.plus(c.units), ZERO);
    case "billable_metric_lifetime_usage_units":
      return ofMetric().reduce((s, c) => s.plus(c.units), reading.invoicedUnits.get(billableMetricId ?? 0) ?? ZERO);
    default:
      return assertNever(alertType);
  }
}

function assertNever(x: never): never {
  throw new Error(`unexpected alert type ${String(x)}`);
}
