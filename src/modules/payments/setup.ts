import type client from "prom-client";
import type { Db } from "../../db/db.ts";
import type { Clock } from "../../shared/clock.ts";
import type { PaymentConfig } from "../../shared/config.ts";
import type { PaymentProvider } from "./core/index.ts";
import { registerPaymentMetrics } from "./metrics.ts";
import { SandboxProvider } from "./sandbox.ts";
import { PaymentsService, type PaymentsDeps } from "./service.ts";
import * as store from "./store.ts";
import { PaymentWorker } from "./worker.ts";

export interface Payments {
  service: PaymentsService;
  worker: PaymentWorker;
  /** The built-in sandbox provider (null with PAYMENT_SANDBOX=off). */
  sandbox: SandboxProvider | null;
  /** Starts the background worker (unless PAYMENT_WORKER=off); call once the database is open. */
  start(): void;
  /** Stops it; attempts in flight are abandoned and their payments are due again at once (same key). */
  stop(): Promise<void>;
}

/**
 * The payments module wired together. `clock` is the organizations' clock (dunning follows test
 * clocks); `wallClock` the process's (claims on attempts in flight expire by it). `providers`:
 * extra providers beside the sandbox (tests).
 */
export function createPayments(
  db: Db,
  clock: Clock,
  wallClock: Clock,
  config: PaymentConfig,
  deps: PaymentsDeps,
  registry: client.Registry,
  onError: (err: unknown) => void,
  providers: readonly PaymentProvider[] = [],
): Payments {
  const sandbox = config.sandbox ? new SandboxProvider(db, wallClock) : null;
  const all = [...(sandbox === null ? [] : [sandbox]), ...providers];
  const service = new PaymentsService(db, clock, wallClock, deps, { retryScheduleMs: config.retryScheduleMs }, all);
  const metrics = registerPaymentMetrics(
    registry,
    all.map((p) => p.code),
    () => store.pendingCount(db),
  );
  const worker = new PaymentWorker(db, clock, wallClock, service, metrics, { timeoutMs: config.timeoutMs, pollMs: config.pollMs, onError });
  service.onPaymentDue(() => worker.kick());
  return {
    service,
    worker,
    sandbox,
    start() {
      if (config.worker) worker.start();
    },
    stop: () => worker.stop(),
  };
}
