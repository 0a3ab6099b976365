// Prorated recurring charges (Lago's `prorated: true`, guide "Prorated vs Full"): each unit is
// billed for the share of the charge period it was present, counted in whole calendar days of the
// customer's timezone, the day it arrives and the day it leaves both included — a seat added on
// day 10 of a 30-day month counts 21/30, one removed on day 20 counts 20/30, one added and removed
// the same day 1/30. Units carried over from earlier periods count for the days of the window (the
// whole period, or from the subscription's start / to its termination). Pure: no IO, no clock.
import { dayOf, dayStart } from "../../billing/core/index.ts";
import type { ProratedSlice } from "../../pricing/index.ts";
import { Decimal, ZERO } from "../../../shared/money.ts";
import { type Aggregate, type EventOrder, compareOrder } from "./aggregate.ts";
import type { UsageWindow } from "./window.ts";

/** The calendar days a window touches. */
export interface ProrationDays {
  /** First instant (ms) of each day of the window, in order; day i spans [starts[i], starts[i + 1]). */
  readonly starts: readonly number[];
  /** Days in the full charge period: the denominator, whatever part of it the window covers. */
  readonly periodDays: number;
}

export function prorationDays(window: UsageWindow): ProrationDays {
  const tz = window.period.timezone;
  const first = dayOf(window.from.getTime(), tz);
  const last = dayOf(window.to.getTime() - 1, tz);
  const starts: number[] = [];
  for (let day = first; day <= last; day++) starts.push(day === first ? window.from.getTime() : dayStart(day, tz));
  return { starts, periodDays: window.period.days };
}

/** The window's day holding `ms` (0-based); -1 before the window, the last day at or after its end. */
export function dayIndex(days: ProrationDays, ms: number): number {
  const s = days.starts;
  if (s.length === 0 || ms < s[0]!) return -1;
  let low = 0;
  let high = s.length - 1;
  while (low < high) {
    const mid = (low + high + 1) >> 1;
    if (s[mid]! <= ms) low = mid;
    else high = mid - 1;
  }
  return low;
}


export interface Proration {
  /**
   * The prorated units, never negative, rounded up at 5 decimals as lago-api rounds its prorated
   * aggregation (`.ceil(5)`); what standard and volume charges price.
   */
  readonly units: Decimal;
  /**
   * Each change of the units, exact, in stream order: `full` units arrive (> 0) or leave (< 0),
   * `prorated` is its share of the prorated units (negative for a decrease of a sum). Graduated
   * pricing places each change on the tiers of the units it moves.
   */
  readonly slices: readonly ProratedSlice[];
}

/** An aggregate of units present over time: `units` is the full count at the window's end (what usage shows). */
export interface ProratedAggregate extends Aggregate {
  readonly proration: Proration;
}

const PRORATED_DECIMALS = 5;

function proration(slices: readonly ProratedSlice[]): Proration {
  let total = ZERO;
  for (const s of slices) total = total.plus(s.prorated);
  const units = total.isNegative() ? ZERO : total.toDecimalPlaces(PRORATED_DECIMALS, Decimal.ROUND_CEIL);
  return { units, slices };
}

export interface DatedValue extends EventOrder {
  readonly value: Decimal;
}

/**
 * A recurring sum, prorated: what was held when the window opened counts for every day of the
 * window; an increase counts from its own day to the window's last day; a decrease stops counting
 * after its own day (the units were there that day). lago-api prorates a decrease from its own
 * day (one day less): we keep the boundary-day rule of the guide and of its unique count, so that
 * a sum of +1/−1 events and a unique count of add/remove events bill the same seat alike.
 */
export function proratedSum(initial: Decimal, events: readonly DatedValue[], days: ProrationDays): ProratedAggregate {
  const n = days.starts.length;
  const p = new Decimal(days.periodDays);
  const slices: ProratedSlice[] = [];
  if (!initial.isZero()) slices.push({ full: initial, prorated: initial.times(n).div(p) });
  let full = initial;
  for (const e of [...events].sort(compareOrder)) {
    const i = Math.max(0, dayIndex(days, e.tsUs / 1000));
    const daysHeld = e.value.isNegative() ? n - i - 1 : n - i;
    slices.push({ full: e.value, prorated: e.value.times(daysHeld).div(p) });
    full = full.plus(e.value);
  }
  return { units: full, eventsCount: events.length, totalAggregatedUnits: full, proration: proration(slices) };
}

export interface UniqueEvent extends EventOrder {
  readonly value: string;
  /** Lago's `operation_type` "remove"; anything else adds. */
  readonly removes: boolean;
}

/**
 * A recurring unique count, prorated. Each value is present from an add that finds it absent to
 * the next remove (or the window's end); it counts the days of the window it was present on, each
 * day once (removed and added back the same day is still one day). `events` is the value's whole
 * history up to the window's end. The full units are the values present at the end (Lago's
 * unique count: the last event of the value adds it).
 */
export function proratedUniqueCount(events: readonly UniqueEvent[], days: ProrationDays): ProratedAggregate {
  const n = days.starts.length;
  const p = new Decimal(days.periodDays);
  const ordered = [...events].sort(compareOrder);
  // Per value: present since (day index, -1 before the window), and the last day already counted.
  const state = new Map<string, { since: number | null; counted: number }>();
  const slices: ProratedSlice[] = [];
  const count = (s: { counted: number }, from: number, to: number): number => {
    const start = Math.max(from, s.counted + 1, 0);
    const end = Math.min(to, n - 1);
    if (end < start) return 0;
    s.counted = end;
    return end - start + 1;
  };
  // An add's share is only known at its remove (or the end): it is filled in then.
  const pending = new Map<string, number>();
  let present = 0;
  for (const e of ordered) {
    let s = state.get(e.value);
    if (s === undefined) {
      s = { since: null, counted: -1 };
      state.set(e.value, s);
    }
    const day = dayIndex(days, e.tsUs / 1000);
    if (!e.removes && s.since === null) {
      s.since = day;
      present++;
      pending.set(e.value, slices.length);
      slices.push({ full: new Decimal(1), prorated: ZERO });
    } else if (e.removes && s.since !== null) {
      const held = day < 0 ? 0 : count(s, s.since, day);
      const at = pending.get(e.value)!;
      slices[at] = { full: new Decimal(1), prorated: new Decimal(held).div(p) };
      pending.delete(e.value);
      s.since = null;
      present--;
      slices.push({ full: new Decimal(-1), prorated: ZERO });
    }
  }
  for (const [value, at] of pending) {
    const s = state.get(value)!;
    slices[at] = { full: new Decimal(1), prorated: new Decimal(count(s, s.since!, n - 1)).div(p) };
  }
  const units = new Decimal(present);
  return { units, eventsCount: present, totalAggregatedUnits: units, proration: proration(slices) };
}
