// Webhook delivery metrics, registered on the app's registry.
import client from "prom-client";

/** How an attempt ended: delivered, failed with more attempts to come, or failed for good. */
export type AttemptOutcome = "succeeded" | "retrying" | "failed";

export interface WebhookMetrics {
  attempt(outcome: AttemptOutcome, seconds: number): void;
}

/**
 * webhook_deliveries_total{status} (one per attempt), webhook_delivery_seconds (attempt latency),
 * webhook_outbox_pending (deliveries not yet delivered nor given up, read from the database).
 */
export function registerWebhookMetrics(registry: client.Registry, pending: () => Promise<number>): WebhookMetrics {
  const total = new client.Counter({
    name: "webhook_deliveries_total",
    help: "Webhook delivery attempts by outcome: succeeded, retrying (failed, will be tried again), failed (given up)",
    labelNames: ["status"],
    registers: [registry],
  });
  const seconds = new client.Histogram({
    name: "webhook_delivery_seconds",
    help: "Duration of one webhook delivery attempt (request sent to answer read, or to the failure)",
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [registry],
  });
  new client.Gauge({
    name: "webhook_outbox_pending",
    help: "Webhook deliveries waiting for a first attempt or a retry",
    registers: [registry],
    // Every worker reads the same database: across workers the value is the same, not a sum.
    aggregator: "max",
    async collect() {
      try {
        this.set(await pending());
      } catch {
        // The database is unreachable: the scrape still answers, without this gauge's sample.
      }
    },
  });
  for (const status of ["succeeded", "retrying", "failed"]) total.labels({ status }).inc(0);
  return {
    attempt(outcome, s) {
      total.labels({ status: outcome }).inc();
      seconds.observe(s);
    },
  };
}
