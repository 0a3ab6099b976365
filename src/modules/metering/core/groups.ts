// Pricing group keys (Lago's `pricing_group_keys`, formerly `grouped_by`): a bucket of a charge
// with group keys is priced separately for each distinct combination of the events' values of
// those keys, each group being its own fee. A charge filter uses its own properties' keys, the
// default bucket the charge's (Lago: `(charge_filter || charge).pricing_group_keys`, no fallback).
// The store reads, per event, its values for the union of the keys of all buckets (`groups`: a
// JSON array in that order, '' when no bucket is grouped); each bucket projects its own keys.
import type { Charge } from "../../catalog/index.ts";
import { Bucketer, resolveFilter } from "./filters.ts";

/** A group: key -> the events' value (null when they lack the property, as Lago's `grouped_by`). */
export type GroupedBy = Readonly<Record<string, string | null>>;

/** What the store reads of an event (or of a set of them): its filter dims and its group values. */
export interface GroupedRow {
  readonly dims: string;
  readonly groups: string;
}

/** A bucket not priced by group keeps all its rows under this key. */
export const WHOLE = "";

/**
 * Where a charge's rows go: bucket (a filter's index, or `filters.length` for the default bucket),
 * then, in a bucket with group keys, the group (the JSON array of the bucket's values).
 */
export class ChargeSlots {
  /** The union of the buckets' group keys, in first-seen order: what the store reads. */
  readonly groupKeys: readonly string[];
  /** Filters then the default bucket. */
  readonly bucketCount: number;
  private readonly keysOf: readonly (readonly string[] | null)[];
  private readonly positions: readonly (readonly number[] | null)[];
  private readonly bucketer: Bucketer;
  private readonly parsed = new Map<string, readonly (string | null)[]>();

  constructor(charge: Pick<Charge, "filters" | "pricingGroupKeys" | "metric">) {
    this.bucketer = new Bucketer(charge.filters.map((f) => resolveFilter(f.values, charge.metric.filters)));
    this.bucketCount = charge.filters.length + 1;
    const keysOf = [...charge.filters.map((f) => nonEmpty(f.pricingGroupKeys)), nonEmpty(charge.pricingGroupKeys)];
    const union: string[] = [];
    for (const keys of keysOf) for (const k of keys ?? []) if (!union.includes(k)) union.push(k);
    this.keysOf = keysOf;
    this.groupKeys = union;
    this.positions = keysOf.map((keys) => (keys === null ? null : keys.map((k) => union.indexOf(k))));
  }

  /** Whether any bucket is priced by group. */
  get grouped(): boolean {
    return this.groupKeys.length > 0;
  }

  isGrouped(bucket: number): boolean {
    return this.keysOf[bucket] !== null;
  }

  bucketOf(dims: string): number {
    const b = this.bucketer.bucket(dims);
    return b === -1 ? this.bucketCount - 1 : b;
  }

  /** The row's group in `bucket`: WHOLE when the bucket has no group keys. */
  groupOf(bucket: number, groups: string): string {
    const positions = this.positions[bucket];
    if (positions === null || positions === undefined) return WHOLE;
    let values = this.parsed.get(groups);
    if (values === undefined) {
      values = groups === "" ? [] : (JSON.parse(groups) as (string | null)[]);
      this.parsed.set(groups, values);
    }
    return JSON.stringify(positions.map((p) => values[p] ?? null));
  }

  /** The group's values by key; null for WHOLE. */
  groupedBy(bucket: number, group: string): GroupedBy | null {
    const keys = this.keysOf[bucket];
    if (keys === null || keys === undefined || group === WHOLE) return null;
    const values = JSON.parse(group) as (string | null)[];
    return Object.fromEntries(keys.map((k, i) => [k, values[i] ?? null]));
  }

  /** A group of `bucket` with no events: every key null (Lago bills a grouped charge without usage as one empty group). */
  emptyGroup(bucket: number): string {
    const keys = this.keysOf[bucket];
    return keys === null || keys === undefined ? WHOLE : JSON.stringify(keys.map(() => null));
  }

  /** Rows per bucket, then per group. */
  split<T extends GroupedRow>(rows: readonly T[]): Map<string, T[]>[] {
    const out = Array.from({ length: this.bucketCount }, () => new Map<string, T[]>());
    for (const r of rows) {
      const b = this.bucketOf(r.dims);
      const g = this.groupOf(b, r.groups);
      const list = out[b]!.get(g);
      if (list === undefined) out[b]!.set(g, [r]);
      else list.push(r);
    }
    return out;
  }

  /**
   * The groups each bucket has in any of `splits` (sorted, for a stable order), or its one empty
   * group (WHOLE for a bucket not priced by group).
   */
  groupsOf(...splits: readonly Map<string, unknown>[][]): string[][] {
    return Array.from({ length: this.bucketCount }, (_, b) => {
      if (!this.isGrouped(b)) return [WHOLE];
      const seen = new Set<string>();
      for (const s of splits) for (const g of s[b]?.keys() ?? []) seen.add(g);
      return seen.size === 0 ? [this.emptyGroup(b)] : [...seen].sort();
    });
  }
}

const nonEmpty = (keys: readonly string[] | null | undefined): readonly string[] | null =>
  keys === null || keys === undefined || keys.length === 0 ? null : keys;
