// When a metric's hourly rollups must be rebuilt from raw events.
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
