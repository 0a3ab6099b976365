// Property: usage from hourly rollups plus raw edge hours equals usage computed from the raw
// events alone, for any events and any window boundaries (not on hours, unbounded, empty...).
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { type Decimal, d } from "../../../src/shared/money.ts";
import {
  HOUR_MS,
  type Partial,
  type RolledUpAggregation,
  type Span,
  combinePartials,
  splitByHours,
} from "../../../src/modules/metering/core/index.ts";

interface Ev {
  tsMs: number;
  /** null: the event's field is absent or not numeric. */
  value: Decimal | null;
  dims: string;
}

const T0 = Date.UTC(2026, 2, 1);
const RANGE_MS = 3 * 24 * HOUR_MS;
const DIMS = ["", '{"region": "eu"}', '{"region": "us"}'];

const eventArb = fc.record({
  tsMs: fc.integer({ min: 0, max: RANGE_MS - 1 }).map((x) => T0 + x),
  value: fc.option(fc.integer({ min: -100_000, max: 100_000 }).map((x) => d(x).div(100)), { freq: 4 }),
  dims: fc.constantFrom(...DIMS),
});

// Boundaries are often on whole hours or half hours (customer midnights), sometimes anywhere.
const instantArb = fc.oneof(
  fc.integer({ min: -2, max: 74 }).map((h) => T0 + h * HOUR_MS),
  fc.integer({ min: -4, max: 148 }).map((h) => T0 + h * (HOUR_MS / 2)),
  fc.integer({ min: -HOUR_MS, max: RANGE_MS + HOUR_MS }).map((x) => T0 + x),
);

const spanArb = fc
  .tuple(fc.option(instantArb, { freq: 5 }), instantArb)
  .map(([a, b]): Span => (a === null ? { from: null, to: new Date(b) } : { from: new Date(Math.min(a, b)), to: new Date(Math.max(a, b)) }));

const aggArb = fc.constantFrom<RolledUpAggregation>("count_agg", "sum_agg", "max_agg");

/** What one event contributes: count counts every event, sum and max only numeric ones (as the ingest statement). */
function partialOf(e: Ev, agg: RolledUpAggregation): Partial | null {
  if (agg === "count_agg") return { dims: e.dims, eventsCount: 1, valueSum: null, valueMax: null };
  return e.value === null ? null : { dims: e.dims, eventsCount: 1, valueSum: e.value, valueMax: e.value };
}

/** The ingest statement's rollups: one row per (hour, dims), merged. */
function rollupsOf(events: readonly Ev[], agg: RolledUpAggregation): { hour: number; part: Partial }[] {
  const rows = new Map<string, { hour: number; parts: Partial[] }>();
  for (const e of events) {
    const p = partialOf(e, agg);
    if (p === null) continue;
    const hour = Math.floor(e.tsMs / HOUR_MS) * HOUR_MS;
    const key = `${hour}|${e.dims}`;
    const row = rows.get(key) ?? { hour, parts: [] };
    row.parts.push(p);
    rows.set(key, row);
  }
  return [...rows.values()].map(({ hour, parts }) => {
    const c = combinePartials("sum_agg", parts);
    const max = combinePartials("max_agg", parts);
    return {
      hour,
      part: { dims: parts[0]!.dims, eventsCount: c.eventsCount, valueSum: agg === "count_agg" ? null : c.units, valueMax: agg === "count_agg" ? null : max.units },
    };
  });
}

const inSpan = (t: number, s: Span) => (s.from === null || t >= s.from.getTime()) && t < s.to.getTime();

function fromRollups(events: readonly Ev[], agg: RolledUpAggregation, span: Span, dims?: string): Partial[] {
  const split = splitByHours(span);
  const parts: Partial[] = [];
  if (split.rollups !== null) {
    for (const r of rollupsOf(events, agg)) if (inSpan(r.hour, split.rollups) && (dims === undefined || r.part.dims === dims)) parts.push(r.part);
  }
  for (const e of events) {
    if (!split.raw.some((s) => inSpan(e.tsMs, s)) || (dims !== undefined && e.dims !== dims)) continue;
    const p = partialOf(e, agg);
    if (p !== null) parts.push(p);
  }
  return parts;
}

function fromRaw(events: readonly Ev[], agg: RolledUpAggregation, span: Span, dims?: string): Partial[] {
  return events
    .filter((e) => inSpan(e.tsMs, span) && (dims === undefined || e.dims === dims))
    .map((e) => partialOf(e, agg))
    .filter((p): p is Partial => p !== null);
}

const same = (a: ReturnType<typeof combinePartials>, b: ReturnType<typeof combinePartials>) =>
  a.units.eq(b.units) && a.eventsCount === b.eventsCount;

describe("rollups plus raw edges equal raw events", () => {
  it("for count, sum and max over any window", () => {
    fc.assert(
      fc.property(fc.array(eventArb, { maxLength: 60 }), spanArb, aggArb, (events, span, agg) => {
        expect(same(combinePartials(agg, fromRollups(events, agg, span)), combinePartials(agg, fromRaw(events, agg, span)))).toBe(true);
      }),
      { numRuns: 400 },
    );
  });

  it("for each filter bucket (dims) separately", () => {
    fc.assert(
      fc.property(fc.array(eventArb, { maxLength: 60 }), spanArb, aggArb, fc.constantFrom(...DIMS), (events, span, agg, dims) => {
        expect(same(combinePartials(agg, fromRollups(events, agg, span, dims)), combinePartials(agg, fromRaw(events, agg, span, dims)))).toBe(true);
      }),
      { numRuns: 300 },
    );
  });

  it("the split covers every instant of the window exactly once, rollup hours whole", () => {
    fc.assert(
      fc.property(spanArb, fc.array(instantArb, { maxLength: 20 }), (span, instants) => {
        const split = splitByHours(span);
        if (split.rollups !== null) {
          expect(split.rollups.to.getTime() % HOUR_MS).toBe(0);
          if (split.rollups.from !== null) expect(split.rollups.from.getTime() % HOUR_MS).toBe(0);
        }
        for (const t of instants) {
          // An instant is in a rollup span when its hour is (rollups hold whole hours).
          const hour = Math.floor(t / HOUR_MS) * HOUR_MS;
          const covered = (split.rollups !== null && inSpan(hour, split.rollups) ? 1 : 0) + split.raw.filter((s) => inSpan(t, s)).length;
          expect(covered).toBe(inSpan(t, span) ? 1 : 0);
        }
      }),
      { numRuns: 400 },
    );
  });
});
