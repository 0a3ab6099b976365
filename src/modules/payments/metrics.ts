// Payment metrics with the brief's names, registered on the app's registry.
import client from "prom-client";
import { CHARGE_OUTCOMES, type ChargeOutcome } from "./core/index.ts";

export interface PaymentMetrics {
  attempt(provider: string, outcome: ChargeOutcome, seconds: number): void;
}

/**
 * billing_payment_attempts_total{provider,outcome} (every attempt, retries included),
 * billing_payment_failures_total{provider,outcome} (attempts that did not succeed: declined,
 * transient_failure, timeout), billing_payment_attempt_seconds, billing_payments_pending (payments
 * being collected, from the database). The alert's failure rate is failures / attempts.
 */
export function registerPaymentMetrics(registry: client.Registry, providers: readonly string[], pending: () => Promise<number>): PaymentMetrics {
  const attempts = new client.Counter({
    name: "billing_payment_attempts_total",
    help: "Payment attempts sent to a payment provider, by provider and outcome (succeeded, declined, transient_failure, timeout)",
    labelNames: ["provider", "outcome"],
    registers: [registry],
  });
  const failures = new client.Counter({
    name: "billing_payment_failures_total",
    help: "Payment attempts that did not succeed, by provider and outcome (declined, transient_failure, timeout)",
    labelNames: ["provider", "outcome"],
    registers: [registry],
  });
  const seconds = new client.Histogram({
    name: "billing_payment_attempt_seconds",
    help: "Duration of one payment attempt (request to the provider until its answer, or the timeout)",
    labelNames: ["provider"],
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
    registers: [registry],
  });
  new client.Gauge({
    name: "billing_payments_pending",
    help: "Payments being collected: waiting for a first attempt or a retry of the dunning schedule",
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
  // Every series exists from the start, so rates and alerts see zeros rather than nothing.
  for (const provider of providers) {
    for (const outcome of CHARGE_OUTCOMES) {
      attempts.labels({ provider, outcome }).inc(0);
      if (outcome !== "succeeded") failures.labels({ provider, outcome }).inc(0);
    }
  }
  return {
    attempt(provider, outcome, s) {
      attempts.labels({ provider, outcome }).inc();
      if (outcome !== "succeeded") failures.labels({ provider, outcome }).inc();
      seconds.labels({ provider }).observe(s);
    },
  };
}
