// Billable metric input rules (Lago's BillableMetric model and its create/update services).
import { type Checked, ErrorSink, Fields, INVALID, MANDATORY, TAKEN, isRecord } from "./fields.ts";
import {
  AGGREGATION_TYPES,
  type AggregationType,
  type BillableMetric,
  type MetricFilter,
  ROUNDING_FUNCTIONS,
  type RoundingFunction,
} from "./types.ts";

/** What a create or update stores for a metric. */
export interface MetricDraft {
  readonly code: string;
  readonly name: string;
  readonly description: string | null;
  readonly aggregationType: AggregationType;
  readonly fieldName: string | null;
  readonly weightedInterval: "seconds" | null;
  readonly recurring: boolean;
  readonly roundingFunction: RoundingFunction | null;
  readonly roundingPrecision: number | null;
  readonly filters: readonly MetricFilter[];
}

// Lago: recurring metrics carry units over periods, which has no meaning for these aggregations.
const NOT_RECURRING: ReadonlySet<AggregationType> = new Set(["count_agg", "max_agg", "latest_agg"]);

/** Lago: only these aggregations can back a pay-in-advance charge (an event's own increment is billable). */
export const PAYABLE_IN_ADVANCE: ReadonlySet<AggregationType> = new Set(["count_agg", "sum_agg", "unique_count_agg"]);

export const draftOf = (m: BillableMetric): MetricDraft => ({
  code: m.code,
  name: m.name,
  description: m.description,
  aggregationType: m.aggregationType,
  fieldName: m.fieldName,
  weightedInterval: m.weightedInterval,
  recurring: m.recurring,
  roundingFunction: m.roundingFunction,
  roundingPrecision: m.roundingPrecision,
  filters: m.filters,
});

export function checkMetricCreate(raw: unknown): Checked<MetricDraft> {
  return readMetric(raw, null, false);
}

/**
 * An update applies the fields sent onto `current`. As in Lago, once the metric is used by a plan
 * only its name, description and filters change; the other fields sent are ignored, so a client
 * resending the whole object is not refused (BillableMetrics::UpdateService).
 */
export function checkMetricUpdate(raw: unknown, current: MetricDraft, usedByPlans: boolean): Checked<MetricDraft> {
  return readMetric(raw, current, usedByPlans);
}

function readMetric(raw: unknown, base: MetricDraft | null, locked: boolean): Checked<MetricDraft> {
  const sink = new ErrorSink();
  const f = new Fields(raw, sink);
  const take = <T>(key: string, read: () => T | undefined, fallback: T): T => f.take(base !== null, key, read, fallback);

  const name = take("name", () => f.requiredText("name"), base?.name ?? "");
  const description = take("description", () => f.optionalText("description"), base?.description ?? null);
  const filters = take("filters", () => readFilters(f), base?.filters ?? []);

  let code = base?.code ?? "";
  let aggregationType: AggregationType | null = base?.aggregationType ?? null;
  let fieldName = base?.fieldName ?? null;
  let weightedInterval = base?.weightedInterval ?? null;
  let recurring = base?.recurring ?? false;
  let roundingFunction = base?.roundingFunction ?? null;
  let roundingPrecision = base?.roundingPrecision ?? null;
  if (!locked) {
    code = take("code", () => f.requiredText("code"), code);
    if (base === null || f.has("aggregation_type")) {
      const agg = f.oneOf("aggregation_type", AGGREGATION_TYPES);
      if (agg === null || (agg === undefined && !f.has("aggregation_type"))) f.fail("aggregation_type", MANDATORY);
      aggregationType = agg ?? aggregationType;
    }
    fieldName = take("field_name", () => f.optionalText("field_name", 255), fieldName);
    if (f.has("weighted_interval")) weightedInterval = f.oneOf("weighted_interval", ["seconds"] as const) ?? null;
    recurring = take("recurring", () => f.bool("recurring"), recurring);
    roundingFunction = take("rounding_function", () => f.oneOf("rounding_function", ROUNDING_FUNCTIONS), roundingFunction);
    roundingPrecision = take("rounding_precision", () => f.integer("rounding_precision", -15, 15), roundingPrecision);
    // Lago evaluates `expression` per event; we do not, so accepting one would bill the wrong units.
    const expression = f.obj["expression"];
    if (expression !== undefined && expression !== null && expression !== "") f.fail("expression", "expression_not_supported");
  }

  if (aggregationType !== null) {
    if (aggregationType !== "count_agg" && fieldName === null && sink.details["field_name"] === undefined) f.fail("field_name", MANDATORY);
    if (recurring && NOT_RECURRING.has(aggregationType)) f.fail("recurring", "not_compatible_with_aggregation_type");
    // Lago: without `weighted_interval` a weighted sum weighs by seconds; other aggregations have none.
    weightedInterval = aggregationType === "weighted_sum_agg" ? (weightedInterval ?? "seconds") : null;
  }

  return sink.result({
    code,
    name,
    description,
    aggregationType: aggregationType ?? "count_agg",
    fieldName,
    weightedInterval,
    recurring,
    roundingFunction,
    roundingPrecision,
    filters,
  });
}

/** `[{key, values}]`: keys unique, values non-empty strings (duplicates dropped, as Lago does). */
function readFilters(f: Fields): MetricFilter[] | undefined {
  const list = f.array("filters");
  if (list === undefined) return undefined;
  if (list === null) return [];
  const seen = new Set<string>();
  const out: MetricFilter[] = [];
  list.forEach((item, i) => {
    const at = `filters[${i}]`;
    if (!isRecord(item)) return f.fail(at, INVALID);
    const g = new Fields(item, f.sink, `${f.prefix}${at}.`);
    const key = g.requiredText("key");
    const values = g.stringList("values");
    if (values === null || (values === undefined && !g.has("values"))) g.fail("values", MANDATORY);
    if (key === undefined || values === undefined || values === null) return;
    if (seen.has(key)) return g.fail("key", TAKEN);
    seen.add(key);
    out.push({ key, values });
  });
  return out.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
}
