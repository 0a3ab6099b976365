// `valueverse verify-rollups`: recomputes the hourly rollups from raw events over a range and
// lists every difference. Each table is compared in one statement (one snapshot), and ingest
// writes events and rollups in one statement, so a difference is never a batch half seen.
import type { Queryable } from "../../db/db.ts";
import { listPartitions } from "./lifecycle.ts";
import { METRIC_DIMS, METRIC_VALUE, ROLLED_UP_AGGREGATIONS } from "./store.ts";

export interface VerifyRange {
  /** Only this organization (internal id). */
  orgId?: number;
  /** Hours from date_trunc('hour', from); default: the oldest partition kept. */
  from?: Date;
  /** Hours before `to`; default: no limit. */
  to?: Date;
}

export interface RollupDifference {
  /** event_counts_hourly: the hourly counts per code (event_rollups_hourly, or the all_count of the code's metric). */
  table: "event_counts_hourly" | "metric_rollups_hourly";
  org_id: number;
  external_subscription_id: string;
  hour: string;
  code?: string;
  metric_id?: number;
  dims?: string;
  /** From raw events (null: no events, yet a rollup row). */
  expected: { events_count: string; value_sum?: string | null; value_max?: string | null } | null;
  /** In the rollup table, summed over slots (null: events, yet no rollup). */
  actual: { events_count: string; value_sum?: string | null; value_max?: string | null } | null;
}

export interface VerifySummary {
  from: string | null;
  to: string | null;
  event_rollup_hours_checked: number;
  metric_rollup_hours_checked: number;
  differences: number;
}

// $1 org (or null), $2 from, $3 to (or null). NULL-safe comparison of every aggregate.
const EVENT_ROLLUPS = `
WITH expected AS (
  SELECT org_id, external_subscription_id AS sub, code, date_trunc('hour', ts) AS hour, count(*)::text AS n
    FROM events
   WHERE ($1::int IS NULL OR org_id = $1) AND ts >= $2::timestamptz AND ($3::timestamptz IS NULL OR ts < $3)
   GROUP BY 1, 2, 3, 4
), actual AS (
  -- event_rollups_hourly plus the counts a metric keeps for its code (migration 0021).
  SELECT org_id, external_subscription_id AS sub, code, hour, sum(events_count)::text AS n
    FROM event_counts_hourly
   WHERE ($1::int IS NULL OR org_id = $1) AND hour >= $2::timestamptz AND ($3::timestamptz IS NULL OR hour < $3)
   GROUP BY 1, 2, 3, 4
)
SELECT coalesce(e.org_id, a.org_id) AS org_id, coalesce(e.sub, a.sub) AS sub, coalesce(e.code, a.code) AS code,
       coalesce(e.hour, a.hour) AS hour, e.n AS expected_n, a.n AS actual_n, (e.n IS DISTINCT FROM a.n) AS differs
  FROM expected e FULL JOIN actual a ON a.org_id = e.org_id AND a.sub = e.sub AND a.code = e.code AND a.hour = e.hour
 ORDER BY 1, 2, 3, 4`;

// As metering's rebuild and the ingest statement: the same value and dims expressions.
const METRIC_ROLLUPS = `
WITH expected AS (
  SELECT e.org_id, m.id AS metric_id, e.external_subscription_id AS sub, ${METRIC_DIMS("e.properties", "m")} AS dims,
         date_trunc('hour', e.ts) AS hour, count(*)::text AS n, sum(v.value)::text AS s, max(v.value)::text AS mx
    FROM billable_metrics m
    JOIN events e ON e.org_id = m.org_id AND e.code = m.code
    CROSS JOIN LATERAL (SELECT ${METRIC_VALUE("e.properties", "m")} AS value) v
   WHERE m.deleted_at IS NULL AND m.aggregation_type IN ${ROLLED_UP_AGGREGATIONS}
     AND (m.aggregation_type = 'count_agg' OR v.value IS NOT NULL)
     AND ($1::int IS NULL OR e.org_id = $1) AND e.ts >= $2::timestamptz AND ($3::timestamptz IS NULL OR e.ts < $3)
   GROUP BY 1, 2, 3, 4, 5
), actual AS (
  SELECT org_id, metric_id, external_subscription_id AS sub, dims, hour,
         sum(events_count)::text AS n, sum(value_sum)::text AS s, max(value_max)::text AS mx
    FROM metric_rollups_hourly
   WHERE ($1::int IS NULL OR org_id = $1) AND hour >= $2::timestamptz AND ($3::timestamptz IS NULL OR hour < $3)
   GROUP BY 1, 2, 3, 4, 5
  -- Rows of events the metric does not count (kept for the code's counts only) are no partial.
  HAVING sum(events_count) > 0
)
SELECT coalesce(e.org_id, a.org_id) AS org_id, coalesce(e.metric_id, a.metric_id)::int8::text AS metric_id,
       coalesce(e.sub, a.sub) AS sub, coalesce(e.dims, a.dims) AS dims, coalesce(e.hour, a.hour) AS hour,
       e.n AS expected_n, e.s AS expected_s, e.mx AS expected_mx, a.n AS actual_n, a.s AS actual_s, a.mx AS actual_mx,
       (e.n IS DISTINCT FROM a.n OR e.s::numeric IS DISTINCT FROM a.s::numeric OR e.mx::numeric IS DISTINCT FROM a.mx::numeric) AS differs
  FROM expected e FULL JOIN actual a
    ON a.org_id = e.org_id AND a.metric_id = e.metric_id AND a.sub = e.sub AND a.dims = e.dims AND a.hour = e.hour
 ORDER BY 1, 2, 3, 4, 5`;

const hourIso = (d: Date | string) => new Date(d).toISOString();

/**
 * Recomputes the hourly counts per code (event_rollups_hourly summed over slots, plus the counts a
 * metric keeps for its code) and metric_rollups_hourly (live count/sum/max metrics) from raw events for the hours of the range and returns every difference. Hours
 * before the oldest partition kept are never checked (their events were dropped by retention,
 * their rollups kept on purpose).
 */
export async function verifyRollups(q: Queryable, range: VerifyRange = {}): Promise<{ differences: RollupDifference[]; summary: VerifySummary }> {
  const parts = await listPartitions(q);
  const oldestKept = parts.length > 0 ? parts[0]!.fromMs : 0;
  const fromHour = range.from ? Math.floor(range.from.getTime() / 3_600_000) * 3_600_000 : 0;
  const from = new Date(Math.max(fromHour, oldestKept));
  const params = [range.orgId ?? null, from.toISOString(), range.to ? range.to.toISOString() : null];
  const differences: RollupDifference[] = [];

  const ev = await q.query<{ org_id: number; sub: string; code: string; hour: Date; expected_n: string | null; actual_n: string | null; differs: boolean }>(
    EVENT_ROLLUPS,
    params,
  );
  for (const r of ev.rows) {
    if (!r.differs) continue;
    differences.push({
      table: "event_counts_hourly",
      org_id: Number(r.org_id),
      external_subscription_id: r.sub,
      code: r.code,
      hour: hourIso(r.hour),
      expected: r.expected_n === null ? null : { events_count: r.expected_n },
      actual: r.actual_n === null ? null : { events_count: r.actual_n },
    });
  }

  const mr = await q.query<{
    org_id: number; metric_id: string; sub: string; dims: string; hour: Date; differs: boolean;
    expected_n: string | null; expected_s: string | null; expected_mx: string | null;
    actual_n: string | null; actual_s: string | null; actual_mx: string | null;
  }>(METRIC_ROLLUPS, params);
  for (const r of mr.rows) {
    if (!r.differs) continue;
    differences.push({
      table: "metric_rollups_hourly",
      org_id: Number(r.org_id),
      metric_id: Number(r.metric_id),
      external_subscription_id: r.sub,
      dims: r.dims,
      hour: hourIso(r.hour),
      expected: r.expected_n === null ? null : { events_count: r.expected_n, value_sum: r.expected_s, value_max: r.expected_mx },
      actual: r.actual_n === null ? null : { events_count: r.actual_n, value_sum: r.actual_s, value_max: r.actual_mx },
    });
  }

  return {
    differences,
    summary: {
      from: from.getTime() === 0 ? null : from.toISOString(),
      to: range.to ? range.to.toISOString() : null,
      event_rollup_hours_checked: ev.rowCount,
      metric_rollup_hours_checked: mr.rowCount,
      differences: differences.length,
    },
  };
}
