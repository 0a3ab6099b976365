// A log-bucketed latency histogram: 2% relative precision from 1 µs to ~2 h, constant memory,
// O(1) record, mergeable. Percentiles answer the bucket's upper edge (never above the real max).
const BASE = 1.02;
const LN_BASE = Math.log(BASE);
const BUCKETS = 1200;

export class Histogram {
  readonly counts = new Uint32Array(BUCKETS);
  count = 0;
  sumMs = 0;
  maxMs = 0;
  minMs = Infinity;

  record(ms: number): void {
    const us = ms * 1000;
    const i = us <= 1 ? 0 : Math.min(BUCKETS - 1, Math.ceil(Math.log(us) / LN_BASE));
    this.counts[i] = (this.counts[i] ?? 0) + 1;
    this.count++;
    this.sumMs += ms;
    if (ms > this.maxMs) this.maxMs = ms;
    if (ms < this.minMs) this.minMs = ms;
  }

  merge(other: Histogram): void {
    for (let i = 0; i < BUCKETS; i++) this.counts[i] = (this.counts[i] ?? 0) + (other.counts[i] ?? 0);
    this.count += other.count;
    this.sumMs += other.sumMs;
    this.maxMs = Math.max(this.maxMs, other.maxMs);
    this.minMs = Math.min(this.minMs, other.minMs);
  }

  /** q in [0, 1]; null when empty. */
  percentile(q: number): number | null {
    if (this.count === 0) return null;
    const rank = Math.max(1, Math.ceil(q * this.count));
    let seen = 0;
    for (let i = 0; i < BUCKETS; i++) {
      seen += this.counts[i] ?? 0;
      if (seen >= rank) return Math.min(this.maxMs, BASE ** i / 1000);
    }
    return this.maxMs;
  }

  summary(): LatencySummary {
    const r = (x: number | null) => (x === null ? null : Math.round(x * 100) / 100);
    return {
      count: this.count,
      mean: r(this.count ? this.sumMs / this.count : null),
      p50: r(this.percentile(0.5)),
      p90: r(this.percentile(0.9)),
      p95: r(this.percentile(0.95)),
      p99: r(this.percentile(0.99)),
      max: r(this.count ? this.maxMs : null),
    };
  }
}

/** Latencies in milliseconds (null: no sample). */
export interface LatencySummary {
  count: number;
  mean: number | null;
  p50: number | null;
  p90: number | null;
  p95: number | null;
  p99: number | null;
  max: number | null;
}
