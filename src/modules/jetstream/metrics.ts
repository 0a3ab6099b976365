// Prometheus metrics of decoupled ingestion: publishes (API), consumption and rejections (ingest
// worker), and the lag, which both expose (read from the stream when scraped).
import client from "prom-client";
import type { Lag } from "./nats.ts";
import type { PublisherMetrics } from "./publisher.ts";
import type { RejectionReason } from "./store.ts";

/**
 * `billing_ingest_lag_messages` / `billing_ingest_lag_seconds`: events acknowledged to clients and
 * not yet committed, and the age of the oldest. Read at most every `ttlMs`; when the stream cannot
 * be read the scrape answers without them rather than with a stale number.
 */
export function registerLagGauges(registry: client.Registry, read: () => Promise<Lag>, ttlMs = 1_000): void {
  let cached: { at: number; lag: Lag } | null = null;
  let pending: Promise<Lag> | null = null;
  const get = async (): Promise<Lag | null> => {
    if (cached !== null && performance.now() - cached.at < ttlMs) return cached.lag;
    pending ??= read().finally(() => (pending = null));
    try {
      const lag = await pending;
      cached = { at: performance.now(), lag };
      return lag;
    } catch {
      return null;
    }
  };
  new client.Gauge({
    name: "billing_ingest_lag_messages",
    help: "JetStream messages acknowledged to clients but not yet committed to PostgreSQL (INGEST_MODE=jetstream)",
    registers: [registry],
    // Every process reads the same stream: across workers this is one value, not a sum.
    aggregator: "max",
    async collect() {
      const lag = await get();
      if (lag === null) this.reset();
      else this.set(lag.messages);
    },
  });
  new client.Gauge({
    name: "billing_ingest_lag_seconds",
    help: "Age of the oldest JetStream message not yet committed to PostgreSQL (0 when none)",
    registers: [registry],
    aggregator: "max",
    async collect() {
      const lag = await get();
      if (lag === null) this.reset();
      else this.set(lag.seconds);
    },
  });
}

export function registerPublisherMetrics(registry: client.Registry): PublisherMetrics {
  const published = new client.Counter({
    name: "billing_ingest_published_total",
    help: "Events acknowledged by JetStream and answered 2xx (INGEST_MODE=jetstream)",
    registers: [registry],
  });
  const duplicates = new client.Counter({
    name: "billing_ingest_publish_duplicates_total",
    help: "Events whose message JetStream dropped as a repeat of a message id within its duplicate window (exact retries)",
    registers: [registry],
  });
  const failures = new client.Counter({
    name: "billing_ingest_publish_failures_total",
    help: "Events the stream did not acknowledge within NATS_PUBLISH_TIMEOUT_MS (answered 503)",
    registers: [registry],
  });
  const seconds = new client.Histogram({
    name: "billing_ingest_publish_seconds",
    help: "Time from a request's first publish to JetStream's last acknowledgement",
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [registry],
  });
  return {
    published(n, dup, s) {
      published.inc(n);
      if (dup > 0) duplicates.inc(dup);
      seconds.observe(s);
    },
    publishFailed(n) {
      failures.inc(n);
    },
  };
}

export interface ConsumerMetrics {
  consumed(n: number, redelivered: number): void;
  rejected(reason: RejectionReason, n: number): void;
  undecodable(n: number): void;
}

export function registerConsumerMetrics(registry: client.Registry): ConsumerMetrics {
  const consumed = new client.Counter({
    name: "billing_ingest_consumed_total",
    help: "Events of JetStream messages committed to PostgreSQL and acknowledged by this ingest worker",
    registers: [registry],
  });
  const redelivered = new client.Counter({
    name: "billing_ingest_redelivered_total",
    help: "Events of messages delivered again (a worker died or was too slow before acknowledging): stored once all the same",
    registers: [registry],
  });
  const rejected = new client.Counter({
    name: "billing_ingest_rejected_events_total",
    help: "Acknowledged events the ingest worker refused and recorded (GET /api/v1/rejected_events), by reason",
    labelNames: ["reason"],
    registers: [registry],
  });
  const undecodable = new client.Counter({
    name: "billing_ingest_undecodable_messages_total",
    help: "Stream messages that are not events (terminated, not stored)",
    registers: [registry],
  });
  return {
    consumed(n, r) {
      consumed.inc(n);
      if (r > 0) redelivered.inc(r);
    },
    rejected(reason, n) {
      rejected.inc({ reason }, n);
    },
    undecodable(n) {
      undecodable.inc(n);
    },
  };
}
