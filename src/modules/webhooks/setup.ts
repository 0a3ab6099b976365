import type client from "prom-client";
import type { Db } from "../../db/db.ts";
import type { Clock } from "../../shared/clock.ts";
import type { WebhookConfig } from "../../shared/config.ts";
import { registerWebhookMetrics } from "./metrics.ts";
import { WebhookService } from "./service.ts";
import * as store from "./store.ts";
import { DeliveryWorker } from "./worker.ts";

export interface Webhooks {
  service: WebhookService;
  worker: DeliveryWorker;
  /** Starts the background delivery loop (unless WEBHOOK_WORKER=off); call once the database is open. */
  start(): void;
  /** Stops it; attempts in flight are abandoned and their deliveries are due again at once. */
  stop(): Promise<void>;
}

/**
 * The webhooks module wired together: the service other modules enqueue through, the delivery
 * worker (woken by every enqueue), and its metrics on `registry`. `clock` is the server's clock,
 * not an organization's test clock: a frozen clock would never let a retry fall due.
 */
export function createWebhooks(db: Db, clock: Clock, config: WebhookConfig, registry: client.Registry, onError: (err: unknown) => void): Webhooks {
  const service = new WebhookService(db, clock, { maxAttempts: config.maxAttempts, privateNetworks: config.privateNetworks });
  const metrics = registerWebhookMetrics(registry, () => store.pendingCount(db));
  const worker = new DeliveryWorker(db, clock, service, metrics, {
    timeoutMs: config.timeoutMs,
    pollMs: config.pollMs,
    retryBaseMs: config.retryBaseMs,
    jwtIssuer: config.jwtIssuer,
    privateNetworks: config.privateNetworks,
    onError,
  });
  service.onEnqueue(() => worker.kick());
  return {
    service,
    worker,
    start() {
      if (config.worker) worker.start();
    },
    stop: () => worker.stop(),
  };
}
