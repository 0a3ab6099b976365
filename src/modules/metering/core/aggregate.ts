// Aggregations as pure functions over exact decimals, following lago-api's event stores
// (Events::Stores::PostgresStore and the BillableMetrics::Aggregations services). Inputs are what
// the store reads: rollup partials for count/sum/max, per-event rows for the others.
import type { AggregationType, RoundingFunction } from "../../catalog/index.ts";
import { Decimal, ZERO, sum } from "../../../shared/money.ts";

/** The aggregate of one bucket (a charge filter or the default bucket) over one window. */
export interface Aggregate {
  /** What the charge model prices. */
  readonly units: Decimal;
  readonly eventsCount: number;
  /** Lago's `total_aggregated_units`: the units, or for a recurring weighted sum the value held at the window's end. */
  readonly totalAggregatedUnits: Decimal;
}

export const EMPTY: Aggregate = Object.freeze({ units: ZERO, eventsCount: 0, totalAggregatedUnits: ZERO });

/**
 * Counts, sums and maxima of a set of events: an hourly rollup row or the same computed from raw
 * events. `valueSum`/`valueMax` are null for count_agg. Merging partials is associative, so any
 * split of a window into rollup hours and raw edges gives the raw answer.
 */
export interface Partial {
  readonly dims: string;
  readonly eventsCount: number;
  readonly valueSum: Decimal | null;
  readonly valueMax: Decimal | null;
}

export type RolledUpAggregation = Extract<AggregationType, "count_agg" | "sum_agg" | "max_agg">;

export const isRolledUp = (agg: AggregationType): agg is RolledUpAggregation =>
  agg === "count_agg" || agg === "sum_agg" || agg === "max_agg";

/**
 * count: the events; sum: the sum of their values (0 without any); max: the largest value (0
 * without any, as Lago's `event_store.max || 0`). Events without a numeric value are not in the
 * partials of sum and max at all (Lago's numeric_condition), so they do not count as events either.
 */
export function combinePartials(agg: RolledUpAggregation, parts: readonly Partial[]): Aggregate {
  let events = 0;
  let total = ZERO;
  let max: Decimal | null = null;
  for (const p of parts) {
    events += p.eventsCount;
    if (p.valueSum !== null) total = total.plus(p.valueSum);
    if (p.valueMax !== null && (max === null || p.valueMax.gt(max))) max = p.valueMax;
  }
  const units = agg === "count_agg" ? new Decimal(events) : agg === "sum_agg" ? total : (max ?? ZERO);
  return { units, eventsCount: events, totalAggregatedUnits: units };
}

/** Where an event stands in the stream: by timestamp, then ingestion, then transaction id (a total order). */
export interface EventOrder {
  /** Microseconds since the epoch. */
  readonly tsUs: number;
  readonly createdUs: number;
  readonly transactionId: string;
}

export function compareOrder(a: EventOrder, b: EventOrder): number {
  if (a.tsUs !== b.tsUs) return a.tsUs - b.tsUs;
  if (a.createdUs !== b.createdUs) return a.createdUs - b.createdUs;
  return a.transactionId < b.transactionId ? -1 : a.transactionId > b.transactionId ? 1 : 0;
}

/** The last event of one property value among events with the same dims. */
export interface UniqueLast extends EventOrder {
  readonly dims: string;
  readonly value: string;
  /** Lago's `operation_type`: anything but "remove" (absent included) adds. */
  readonly removes: boolean;
}

/**
 * Lago's unique count: per property value, +1 for an add that follows no add and -1 for a remove
 * that follows an add (UniqueCountQuery). The sum telescopes: a value counts 1 when its last event
 * in the window adds it, 0 otherwise. A recurring metric reads all history (Lago drops the
 * window's lower bound), so values added in earlier periods and never removed carry over. Events
 * without the property do not count (Lago would count them as one NULL value; they are a client
 * error its ingestion flags as `missing_aggregation_property`). Lago's events count for unique
 * count is the aggregation itself.
 */
export function uniqueCount(rows: readonly UniqueLast[]): Aggregate {
  const last = new Map<string, UniqueLast>();
  for (const r of rows) {
    const seen = last.get(r.value);
    if (seen === undefined || compareOrder(r, seen) > 0) last.set(r.value, r);
  }
  let count = 0;
  for (const r of last.values()) if (!r.removes) count++;
  const units = new Decimal(count);
  return { units, eventsCount: count, totalAggregatedUnits: units };
}

/** The latest numeric event of one dims, and how many numeric events the dims has. */
export interface LatestOfDims extends EventOrder {
  readonly dims: string;
  readonly value: Decimal;
  readonly eventsCount: number;
}

/** Lago's latest: the value of the last numeric event in the window, 0 when none, and never negative. */
export function latestValue(rows: readonly LatestOfDims[]): Aggregate {
  let found: LatestOfDims | null = null;
  let events = 0;
  for (const r of rows) {
    events += r.eventsCount;
    if (found === null || compareOrder(r, found) > 0) found = r;
  }
  const units = found === null || found.value.isNegative() ? ZERO : found.value;
  return { units, eventsCount: events, totalAggregatedUnits: units };
}

export interface WeightedEvent extends EventOrder {
  readonly value: Decimal;
}

export interface WeightedInput {
  /** The window's events with a numeric value, any order. */
  readonly events: readonly WeightedEvent[];
  /** Value held when the window starts: the sum of all earlier values for a recurring metric, 0 otherwise. */
  readonly initial: Decimal;
  readonly fromUs: number;
  readonly toUs: number;
  /** The full charge period in seconds (Lago: its days × 86,400), whatever part of it the window covers. */
  readonly periodSeconds: number;
  readonly recurring: boolean;
}

/** lago-api rounds the weighted sum up at 20 decimals (`weighted_sum(...).ceil(20)`). */
const WEIGHTED_DECIMALS = 20;

/**
 * Lago's weighted sum (Events::Stores::Postgres::WeightedSumQuery): events are differences; the
 * running total (starting at `initial` at the window's start) is held from each event to the next
 * one (or the window's end), and each holding contributes total × seconds held / seconds in the
 * period. Events at the same instant hold for no time before the last of them, so their order does
 * not change the result.
 */
export function weightedSum(input: WeightedInput): Aggregate {
  const events = [...input.events].sort(compareOrder);
  const periodUs = new Decimal(input.periodSeconds).times(1_000_000);
  let running = input.initial;
  let at = input.fromUs;
  let total = ZERO;
  const hold = (until: number) => {
    if (until > at) total = total.plus(running.times(until - at).div(periodUs));
    at = Math.max(at, until);
  };
  for (const e of events) {
    hold(e.tsUs);
    running = running.plus(e.value);
  }
  hold(input.toUs);
  const variation = sum(events.map((e) => e.value));
  return {
    units: total.toDecimalPlaces(WEIGHTED_DECIMALS, Decimal.ROUND_CEIL),
    eventsCount: events.length,
    totalAggregatedUnits: input.recurring ? input.initial.plus(variation) : variation,
  };
}

/** A billable metric's `rounding_function` at `rounding_precision` decimals (negative: tens, hundreds...), as Lago applies it to units. */
export function applyRounding(units: Decimal, fn: RoundingFunction | null, precision: number | null): Decimal {
  if (fn === null) return units;
  const mode = fn === "ceil" ? Decimal.ROUND_CEIL : fn === "floor" ? Decimal.ROUND_FLOOR : Decimal.ROUND_HALF_UP;
  const scale = Decimal.pow(10, precision ?? 0);
  return units.times(scale).toDecimalPlaces(0, mode).div(scale);
}
