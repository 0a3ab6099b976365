import { deadline } from "../../shared/deadline.ts";
import crypto from "node:crypto";
import { performance } from "node:perf_hooks";
import type { Db } from "../../db/db.ts";
import type { Clock } from "../../shared/clock.ts";
import type { ChargeResult, PaymentRecord } from "./core/index.ts";
import type { PaymentMetrics } from "./metrics.ts";
import type { PaymentsService } from "./service.ts";
import * as store from "./store.ts";

export interface PaymentWorkerOptions {
  /** PAYMENT_TIMEOUT_MS: an attempt not answered by then is a timeout (retried with the same key). */
  timeoutMs: number;
  /** PAYMENT_POLL_MS: how often the background loop looks for due payments. */
  pollMs: number;
  /** Payments claimed and attempted at once. */
  batchSize?: number;
  onError?: (err: unknown) => void;
}

/** What one `runDue` did. */
export interface PaymentRun {
  attempted: number;
  succeeded: number;
  declined: number;
  transient_failure: number;
  timeout: number;
}

/** A claim outlives the attempt's timeout by this much before another worker may take the payment. */
const LEASE_MARGIN_MS = 60_000;
/** Claims per organization and run at most, so a run ends. */
const MAX_ROUNDS = 100;

/**
 * Attempts due payments, outside any transaction: claims them (`FOR UPDATE SKIP LOCKED`, a lease
 * by the wall clock), asks the provider with a timeout, and hands the answer to
 * `PaymentsService.recordAttempt`. Whether a payment is due is judged by its organization's clock
 * (test clocks included: `runDue({ orgId })` after a move); the background loop only decides how
 * often to look. A process that dies mid-attempt leaves a claim that expires, and the payment is
 * attempted again with the same idempotency key: the provider answers what it did.
 */
export class PaymentWorker {
  private timer: ReturnType<typeof setInterval> | null = null;
  private kickTimer: ReturnType<typeof setTimeout> | null = null;
  private tail: Promise<unknown> = Promise.resolve();
  private readonly shutdown = new AbortController();
  private readonly batchSize: number;

  constructor(
    private readonly db: Db,
    private readonly clock: Clock,
    private readonly wallClock: Clock,
    private readonly payments: PaymentsService,
    private readonly metrics: PaymentMetrics,
    private readonly options: PaymentWorkerOptions,
  ) {
    this.batchSize = options.batchSize ?? 16;
  }

  start(): void {
    if (this.timer !== null || this.shutdown.signal.aborted) return;
    this.timer = setInterval(() => this.background(), this.options.pollMs);
    this.timer.unref();
    this.kick();
  }

  /** Looks for due payments shortly (after a finalization: by then the caller has usually committed). */
  kick(): void {
    if (this.timer === null || this.kickTimer !== null) return;
    this.kickTimer = setTimeout(() => {
      this.kickTimer = null;
      this.background();
    }, 20);
    this.kickTimer.unref();
  }

  private background(): void {
    this.runDue().catch((err) => this.options.onError?.(err));
  }

  /**
   * Attempts every payment due now (of one organization, or all), once each, and resolves when
   * their attempts are recorded. Runs in this process never overlap.
   */
  runDue(opts: { orgId?: number } = {}): Promise<PaymentRun> {
    const run = this.tail.then(() => this.runOnce(opts.orgId));
    this.tail = run.catch(() => undefined);
    return run;
  }

  /** Stops looking, abandons attempts in flight (their payments are due again at once, same key) and waits for the run to end. */
  async stop(): Promise<void> {
    if (this.timer !== null) clearInterval(this.timer);
    if (this.kickTimer !== null) clearTimeout(this.kickTimer);
    this.timer = this.kickTimer = null;
    this.shutdown.abort();
    await this.tail;
  }

  private async runOnce(onlyOrg: number | undefined): Promise<PaymentRun> {
    const run: PaymentRun = { attempted: 0, succeeded: 0, declined: 0, transient_failure: 0, timeout: 0 };
    for (const { orgId, earliest } of await store.organizationsWithDuePayments(this.db)) {
      if (onlyOrg !== undefined && orgId !== onlyOrg) continue;
      if (earliest.getTime() > this.clock.now(orgId)) continue;
      for (let round = 0; round < MAX_ROUNDS && !this.shutdown.signal.aborted; round++) {
        const wallNow = this.wallClock.now();
        const leaseId = crypto.randomUUID();
        const claimed = await store.claimDue(this.db, {
          orgId,
          orgNow: new Date(this.clock.now(orgId)),
          wallNow: new Date(wallNow),
          leaseId,
          leaseUntil: new Date(wallNow + this.options.timeoutMs + LEASE_MARGIN_MS),
          limit: this.batchSize,
        });
        if (claimed.length === 0) break;
        await Promise.all(claimed.map((p) => this.attempt(p, leaseId, run)));
        if (claimed.length < this.batchSize) break;
      }
    }
    return run;
  }

  private async attempt(p: PaymentRecord, leaseId: string, run: PaymentRun): Promise<void> {
    try {
      const startedAt = new Date(this.clock.now(p.orgId));
      const t0 = performance.now();
      const result = await this.charge(p);
      const seconds = (performance.now() - t0) / 1000;
      if (result === "abandoned") {
        await store.releaseClaim(this.db, p.id, leaseId);
        return;
      }
      const recorded = await this.payments.recordAttempt(p, leaseId, { result, startedAt, durationMs: Math.round(seconds * 1000) });
      if (!recorded) return;
      run.attempted++;
      run[result.outcome]++;
      this.metrics.attempt(p.provider, result.outcome, seconds);
    } catch (err) {
      // The database failed us: the claim expires and the payment is attempted again then, same key.
      this.options.onError?.(err);
    }
  }

  /** The provider's answer, a timeout when none came in time, or "abandoned" at shutdown. */
  private async charge(p: PaymentRecord): Promise<ChargeResult | "abandoned"> {
    const provider = this.payments.provider(p.provider);
    if (provider === undefined) {
      return { outcome: "transient_failure", errorCode: "provider_not_configured", message: `this server has no payment provider ${JSON.stringify(p.provider)}` };
    }
    const guard = deadline(this.options.timeoutMs, this.shutdown.signal);
    const signal = guard.signal;
    const request = {
      orgId: p.orgId,
      paymentId: p.lagoId,
      invoiceId: p.invoiceLagoId,
      amountCents: p.amountCents,
      currency: p.currency,
      paymentMethod: p.providerCustomerId,
      idempotencyKey: p.idempotencyKey,
    };
    const gaveUp = new Promise<"gave_up">((resolve) => {
      if (signal.aborted) resolve("gave_up");
      else signal.addEventListener("abort", () => resolve("gave_up"), { once: true });
    });
    let answer: ChargeResult | "gave_up";
    try {
      answer = await Promise.race([provider.charge(request, signal), gaveUp]);
    } catch (err) {
      // The request may have reached the provider: its outcome is unknown, like a timeout's.
      if (this.shutdown.signal.aborted) return "abandoned";
      const message = (err as Error)?.message ?? String(err);
      return { outcome: "timeout", errorCode: "provider_error", message: message.slice(0, 500) };
    } finally {
      guard.clear();
    }
    if (answer !== "gave_up") return answer;
    if (this.shutdown.signal.aborted) return "abandoned";
    return { outcome: "timeout", errorCode: "timeout", message: `no answer from the provider within ${this.options.timeoutMs} ms` };
  }
}
