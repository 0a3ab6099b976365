// Which bucket of a charge an event's usage goes to: one of the charge's filters, or the default
// bucket (the charge's own price) when it matches none. Events are described by their `dims`: the
// values of the metric's filter keys, kept only when the metric declares them (the ingest
// module's SQL expression METRIC_DIMS builds them, as canonical JSON text).
import { ALL_FILTER_VALUES, type FilterValues, type MetricFilter } from "../../catalog/index.ts";

export type Dims = Readonly<Record<string, string>>;

const NO_DIMS: Dims = Object.freeze({});

/** METRIC_DIMS output: '' or a JSON object of strings. */
export function parseDims(text: string): Dims {
  if (text === "") return NO_DIMS;
  return JSON.parse(text) as Dims;
}

/** A charge filter with Lago's `__ALL_FILTER_VALUES__` expanded to the values the metric declares for the key. */
export interface ResolvedFilter {
  readonly keys: ReadonlyMap<string, ReadonlySet<string>>;
  /** Values it accepts over all keys: fewer is more specific. */
  readonly width: number;
}

export function resolveFilter(values: FilterValues, metricFilters: readonly MetricFilter[]): ResolvedFilter {
  const declared = new Map(metricFilters.map((f) => [f.key, f.values]));
  const keys = new Map<string, ReadonlySet<string>>();
  let width = 0;
  for (const [key, list] of Object.entries(values)) {
    const accepted = list.length === 1 && list[0] === ALL_FILTER_VALUES ? (declared.get(key) ?? []) : list;
    keys.set(key, new Set(accepted));
    width += accepted.length;
  }
  return { keys, width };
}

/** Lago: an event matches a filter when, for every key of the filter, its value is one of the filter's. */
export function matchesFilter(filter: ResolvedFilter, dims: Dims): boolean {
  for (const [key, accepted] of filter.keys) {
    const value = dims[key];
    if (value === undefined || !accepted.has(value)) return false;
  }
  return true;
}

/**
 * The index of the filter the event's usage counts in, or -1 for the default bucket. An event that
 * matches several filters counts once, in the most specific: the one with the most keys, then the
 * fewest values, then the first in the charge. Lago excludes a filter's "children" (filters with
 * all its keys and overlapping values) from its bucket (ChargeFilters::MatchingAndIgnoredService),
 * which gives the same answer for nested filters and identical ones (the oldest wins); for two
 * filters that only partly overlap on the same keys Lago counts the shared events in both, and we
 * count them once — usage is never double billed.
 */
export function bucketOf(filters: readonly ResolvedFilter[], dims: Dims): number {
  let best = -1;
  for (let i = 0; i < filters.length; i++) {
    const f = filters[i]!;
    if (!matchesFilter(f, dims)) continue;
    if (best === -1) {
      best = i;
      continue;
    }
    const b = filters[best]!;
    if (f.keys.size > b.keys.size || (f.keys.size === b.keys.size && f.width < b.width)) best = i;
  }
  return best;
}

/** Buckets per distinct dims text (rollup rows and raw rows repeat them), resolved once. */
export class Bucketer {
  private readonly cache = new Map<string, number>();
  constructor(private readonly filters: readonly ResolvedFilter[]) {}

  bucket(dimsText: string): number {
    let b = this.cache.get(dimsText);
    if (b === undefined) {
      b = this.filters.length === 0 ? -1 : bucketOf(this.filters, parseDims(dimsText));
      this.cache.set(dimsText, b);
    }
    return b;
  }
}
