// When a metric's hourly rollups must be rebuilt from raw events, and which pricing group keys
// they keep.
import type { BillableMetric } from "../../catalog/index.ts";
import { isRolledUp } from "./aggregate.ts";

const hasRollups = (m: BillableMetric | null): m is BillableMetric => m !== null && isRolledUp(m.aggregationType);

/**
 * Rollups hold, per hour, what the metric aggregates of the events of its code: they are stale as
 * soon as the code, the aggregation, the field or the filters (the dims kept) change, and must be
 * built when the metric is created (events may have arrived first) and dropped when it is deleted.
 * Name, description and rounding do not touch them.
 */
export function rollupsAffected(before: BillableMetric | null, after: BillableMetric | null): boolean {
  if (!hasRollups(before) && !hasRollups(after)) return false;
  if (before === null || after === null) return true;
  return (
    before.code !== after.code ||
    before.aggregationType !== after.aggregationType ||
    before.fieldName !== after.fieldName ||
    JSON.stringify(before.filters) !== JSON.stringify(after.filters)
  );
}

/** An event of a sample: its subscription and hour (`cell`) and its values of the candidate group keys, in their order. */
export interface KeySampleRow {
  readonly cell: string;
  readonly values: readonly (string | null)[];
}

/**
 * Above this many rollup rows per event, rollups save readers little and cost every event an
 * upsert of its own row: a group key that takes the rollups there (a user id, a request id) is
 * left to raw events.
 */
export const MAX_ROLLUP_ROWS_PER_EVENT = 0.5;

/**
 * The group keys (a subset of `keys`, same order) a metric's rollups keep, judged on a sample of
 * its events: while the rollups by cell and the kept keys' values would hold more rows than
 * MAX_ROLLUP_ROWS_PER_EVENT per sampled event and more than without any group key, the key with
 * the most distinct values goes (first in `keys` on a tie). Readers fall back to raw events for a
 * charge grouped by a dropped key, so this decides cost only.
 */
export function boundGroupKeys(keys: readonly string[], sample: readonly KeySampleRow[], maxRowsPerEvent = MAX_ROLLUP_ROWS_PER_EVENT): string[] {
  let kept = keys.map((_, i) => i);
  if (sample.length === 0) return [...keys];
  const rowsWith = (positions: readonly number[]) => {
    const seen = new Set<string>();
    for (const r of sample) seen.add(JSON.stringify([r.cell, ...positions.map((p) => r.values[p] ?? null)]));
    return seen.size;
  };
  const floor = Math.max(rowsWith([]), maxRowsPerEvent * sample.length);
  while (kept.length > 0 && rowsWith(kept) > floor) {
    let worst = kept[0]!;
    let worstCount = -1;
    for (const p of kept) {
      const distinct = new Set(sample.map((r) => r.values[p] ?? null)).size;
      if (distinct > worstCount) {
        worst = p;
        worstCount = distinct;
      }
    }
    kept = kept.filter((p) => p !== worst);
  }
  return kept.map((p) => keys[p]!);
}
