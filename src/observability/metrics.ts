// Prometheus metrics with the brief's names. One registry per app instance (tests build several).
import client from "prom-client";
import type { Db } from "../db/db.ts";
import type { WriterMetrics } from "../modules/ingest/writer.ts";

export interface Metrics extends WriterMetrics {
  registry: client.Registry;
  httpRequest(route: string, method: string, status: number, seconds: number): void;
  setQueueDepth(fn: () => number): void;
  /** Events set aside because a metric rebuild holds their code's lock (EventWriter.waitingOnCodeLock). */
  setCodeLockWaiting(fn: () => number): void;
  /** The exposition text; across all workers when running under node:cluster. */
  aggregate: () => Promise<string>;
}

export function createMetrics(db: Db): Metrics {
  const registry = new client.Registry();
  client.collectDefaultMetrics({ register: registry });

  const http = new HttpMetrics(
    "http_request_duration_seconds",
    "HTTP request latency by route, method and status",
    "http_requests_total",
    "HTTP requests by route, method and status",
    [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.5, 1, 2.5, 5, 10],
  );
  registry.registerMetric(http.histogram as unknown as client.Metric);
  registry.registerMetric(http.counter as unknown as client.Metric);
  const accepted = new client.Counter({
    name: "billing_usage_events_total",
    help: "Usage events accepted and stored (new, not duplicates)",
    registers: [registry],
  });
  const duplicates = new client.Counter({
    name: "billing_usage_events_duplicates_total",
    help: "Exact retries of stored events (accepted, nothing stored)",
    registers: [registry],
  });
  const conflicts = new client.Counter({
    name: "billing_usage_events_conflicts_total",
    help: "Events refused because their identity is taken by another payload",
    registers: [registry],
  });
  const rejected = new client.Counter({
    name: "billing_usage_events_rejected_total",
    help: "Events refused as invalid (validation or database refusal)",
    registers: [registry],
  });
  const batchSize = new client.Histogram({
    name: "billing_ingest_batch_size",
    help: "Events per group-commit batch",
    buckets: [1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000],
    registers: [registry],
  });
  const commitSeconds = new client.Histogram({
    name: "billing_ingest_commit_seconds",
    help: "Latency of one group-commit batch (statement and commit)",
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [registry],
  });
  let queueDepth: () => number = () => 0;
  new client.Gauge({
    name: "billing_ingest_queue_events",
    help: "Events waiting for a group commit",
    registers: [registry],
    collect() {
      this.set(queueDepth());
    },
  });
  let codeLockWaiting: () => number = () => 0;
  new client.Gauge({
    name: "billing_ingest_code_lock_waiting_events",
    help: "Events set aside while a billable metric's rollup rebuild holds their code's lock",
    registers: [registry],
    collect() {
      this.set(codeLockWaiting());
    },
  });
  const poolGauge = (name: string, help: string, pick: (s: ReturnType<Db["poolStats"]>) => number) =>
    new client.Gauge({
      name,
      help,
      registers: [registry],
      collect() {
        this.set(pick(db.poolStats()));
      },
    });
  poolGauge("db_pool_connections", "Open database connections", (s) => s.total);
  poolGauge("db_pool_idle_connections", "Idle database connections", (s) => s.idle);
  poolGauge("db_pool_waiting_requests", "Queries waiting for a database connection", (s) => s.waiting);
  poolGauge("db_pool_max_connections", "Pool size plus overflow", (s) => s.max);

  return {
    registry,
    httpRequest(route, method, status, seconds) {
      http.observe(route, method, status, seconds);
    },
    batch(size, seconds) {
      batchSize.observe(size);
      commitSeconds.observe(seconds);
    },
    outcome(kind, n) {
      if (kind === "created") accepted.inc(n);
      else if (kind === "duplicate") duplicates.inc(n);
      else if (kind === "conflict") conflicts.inc(n);
      else rejected.inc(n);
    },
    setQueueDepth(fn) {
      queueDepth = fn;
    },
    setCodeLockWaiting(fn) {
      codeLockWaiting = fn;
    },
    aggregate: () => registry.metrics(),
  };
}

interface HttpSeries {
  labels: { route: string; method: string; status: string };
  /** Observations per bucket (not cumulative); the last one is above every bound (+Inf). */
  buckets: Float64Array;
  sum: number;
  count: number;
}

/**
 * `http_request_duration_seconds` (histogram) and `http_requests_total` (counter), by route, method
 * and status. Every request observes both, so this is on the hot path: prom-client's labelled
 * observe hashes the label object on every call; here a series is found with three map lookups and
 * observed with a few increments. The exported values are exactly prom-client's (same names, types,
 * labels, label order, bucket bounds and cluster aggregation), built when /metrics is read.
 */
class HttpMetrics {
  private readonly series = new Map<string, Map<string, Map<number, HttpSeries>>>();
  /** Every series in the order of its first observation (prom-client's export order). */
  private ordered: HttpSeries[] = [];
  readonly histogram: { name: string; help: string; type: "histogram"; aggregator: "sum"; get(): Promise<unknown>; reset(): void };
  readonly counter: { name: string; help: string; type: "counter"; aggregator: "sum"; get(): Promise<unknown>; reset(): void };

  constructor(
    histogramName: string,
    histogramHelp: string,
    counterName: string,
    counterHelp: string,
    private readonly bounds: readonly number[],
  ) {
    const all = () => this.ordered;
    const reset = () => {
      this.series.clear();
      this.ordered = [];
    };
    this.histogram = {
      name: histogramName,
      help: histogramHelp,
      type: "histogram",
      aggregator: "sum",
      get: async () => {
        const values: unknown[] = [];
        for (const s of all()) {
          let acc = 0;
          for (let i = 0; i < bounds.length; i++) {
            acc += s.buckets[i]!;
            values.push({ value: acc, metricName: `${histogramName}_bucket`, exemplar: null, labels: { le: bounds[i], ...s.labels } });
          }
          values.push({ value: s.count, metricName: `${histogramName}_bucket`, exemplar: null, labels: { le: "+Inf", ...s.labels } });
          values.push({ value: s.sum, metricName: `${histogramName}_sum`, labels: { ...s.labels } });
          values.push({ value: s.count, metricName: `${histogramName}_count`, labels: { ...s.labels } });
        }
        return { name: histogramName, help: histogramHelp, type: "histogram", values, aggregator: "sum" };
      },
      reset,
    };
    this.counter = {
      name: counterName,
      help: counterHelp,
      type: "counter",
      aggregator: "sum",
      get: async () => ({
        help: counterHelp,
        name: counterName,
        type: "counter",
        values: all().map((s) => ({ value: s.count, labels: { ...s.labels } })),
        aggregator: "sum",
      }),
      reset,
    };
  }

  observe(route: string, method: string, status: number, seconds: number): void {
    let byMethod = this.series.get(route);
    if (byMethod === undefined) this.series.set(route, (byMethod = new Map()));
    let byStatus = byMethod.get(method);
    if (byStatus === undefined) byMethod.set(method, (byStatus = new Map()));
    let s = byStatus.get(status);
    if (s === undefined) {
      s = { labels: { route, method, status: String(status) }, buckets: new Float64Array(this.bounds.length + 1), sum: 0, count: 0 };
      byStatus.set(status, s);
      this.ordered.push(s);
    }
    const bounds = this.bounds;
    let i = 0;
    while (i < bounds.length && seconds > bounds[i]!) i++;
    s.buckets[i]!++;
    s.sum += seconds;
    s.count++;
  }
}
