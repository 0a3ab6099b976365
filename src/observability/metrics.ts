// Prometheus metrics with the brief's names. One registry per app instance (tests build several).
import client from "prom-client";
import type { Db } from "../db/db.ts";
import type { WriterMetrics } from "../modules/ingest/writer.ts";

export interface Metrics extends WriterMetrics {
  registry: client.Registry;
  httpRequest(route: string, method: string, status: number, seconds: number): void;
  setQueueDepth(fn: () => number): void;
  /** The exposition text; across all workers when running under node:cluster. */
  aggregate: () => Promise<string>;
}

export function createMetrics(db: Db): Metrics {
  const registry = new client.Registry();
  client.collectDefaultMetrics({ register: registry });

  const httpDuration = new client.Histogram({
    name: "http_request_duration_seconds",
    help: "HTTP request latency by route, method and status",
    labelNames: ["route", "method", "status"],
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.5, 1, 2.5, 5, 10],
    registers: [registry],
  });
  const httpTotal = new client.Counter({
    name: "http_requests_total",
    help: "HTTP requests by route, method and status",
    labelNames: ["route", "method", "status"],
    registers: [registry],
  });
  const httpChildren = new Map<string, { duration: client.Histogram.Internal<string>; total: client.Counter.Internal }>();
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
      // Labelled children are cached: resolving labels on every request costs more than observing.
      const key = route + " " + method + " " + status;
      let child = httpChildren.get(key);
      if (child === undefined) {
        const labels = { route, method, status: String(status) };
        child = { duration: httpDuration.labels(labels), total: httpTotal.labels(labels) };
        httpChildren.set(key, child);
      }
      child.duration.observe(seconds);
      child.total.inc();
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
    aggregate: () => registry.metrics(),
  };
}
