import { BackgroundLoop, claimRounds, leaseUntil } from "../../shared/background_loop.ts";
import { deadline } from "../../shared/deadline.ts";
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

/**
 * Attempts due payments, outside any transaction: claims them (`FOR UPDATE SKIP LOCKED`, a lease
 * by the wall clock), asks the provider with a timeout, and hands the answer to
 * `PaymentsService.recordAttempt`. Whether a payment is due is judged by its organization's clock
 * (test clocks included: `runDue({ orgId })` after a move); the background loop only decides how
 * often to look. A process that dies mid-attempt leaves a claim that expires, and the payment is
 * attempted again with the same idempotency key: the provider answers what it did.
 */
export class PaymentWorker {
  private readonly loop: BackgroundLoop<PaymentRun>;
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
    this.loop = new BackgroundLoop(() => this.runOnce(undefined), { pollMs: options.pollMs, onError: options.onError });
  }

  start(): void {
    this.loop.start();
  }

  /** Looks for due payments shortly (after a finalization: by then the caller has usually committed). */
  kick(): void {
    this.loop.kick();
  }

  /**
   * Attempts every payment due now (of one organization, or all), once each, and resolves when
   * their attempts are recorded. Runs in this process never overlap.
   */
  runDue(opts: { orgId?: number } = {}): Promise<PaymentRun> {
    return this.loop.serial(() => this.runOnce(opts.orgId));
  }

  /** Stops looking, abandons attempts in flight (their payments are due again at once, same key) and waits for the run to end. */
  stop(): Promise<void> {
    return this.loop.stop();
  }

  private async runOnce(onlyOrg: number | undefined): Promise<PaymentRun> {
    const run: PaymentRun = { attempted: 0, succeeded: 0, declined: 0, transient_failure: 0, timeout: 0 };
    await claimDuePerOrganization({
      organizations: await store.organizationsWithDuePayments(this.db),
      onlyOrg,
      clock: this.clock,
      wallClock: this.wallClock,
      signal: this.loop.signal,
      timeoutMs: this.options.timeoutMs,
      batchSize: this.batchSize,
      claim: (c) => store.claimDue(this.db, c),
      attempt: (p, leaseId) => this.attempt(p, leaseId, run),
    });
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
    const request = {
      orgId: p.orgId,
      paymentId: p.lagoId,
      invoiceId: p.invoiceLagoId,
      amountCents: p.amountCents,
      currency: p.currency,
      paymentMethod: p.providerCustomerId,
      idempotencyKey: p.idempotencyKey,
    };
    return askProvider((signal) => provider.charge(request, signal), this.loop.signal, this.options.timeoutMs);
  }
}

/** An attempt that got no answer in time, or failed in flight: the provider may have acted, the outcome is unknown. */
type NoAnswer = { readonly outcome: "timeout"; readonly errorCode: string; readonly message: string };

/**
 * Asks a provider (`call`) within `timeoutMs`: its answer, a timeout when none came in time (its
 * call is then aborted and its answer not read), or "abandoned" when `shutdown` aborted first.
 * Charges and refunds alike.
 */
export async function askProvider<R>(call: (signal: AbortSignal) => Promise<R>, shutdown: AbortSignal, timeoutMs: number): Promise<R | NoAnswer | "abandoned"> {
  const guard = deadline(timeoutMs, shutdown);
  const signal = guard.signal;
  const gaveUp = new Promise<"gave_up">((resolve) => {
    if (signal.aborted) resolve("gave_up");
    else signal.addEventListener("abort", () => resolve("gave_up"), { once: true });
  });
  let answer: R | "gave_up";
  try {
    answer = await Promise.race([call(signal), gaveUp]);
  } catch (err) {
    // The request may have reached the provider: its outcome is unknown, like a timeout's.
    if (shutdown.aborted) return "abandoned";
    const message = (err as Error)?.message ?? String(err);
    return { outcome: "timeout", errorCode: "provider_error", message: message.slice(0, 500) };
  } finally {
    guard.clear();
  }
  if (answer !== "gave_up") return answer;
  if (shutdown.aborted) return "abandoned";
  return { outcome: "timeout", errorCode: "timeout", message: `no answer from the provider within ${timeoutMs} ms` };
}

/**
 * Claims and attempts due rows organization by organization: those whose earliest due time has
 * come by the organization's clock (test clocks included), all or only `onlyOrg`. Rows are due by
 * the organization's clock; claims are leased by the wall clock (`wallClock`), as every process
 * shares it.
 */
export async function claimDuePerOrganization<C>(p: {
  organizations: readonly { orgId: number; earliest: Date }[];
  onlyOrg: number | undefined;
  clock: Clock;
  wallClock: Clock;
  signal: AbortSignal;
  timeoutMs: number;
  batchSize: number;
  claim: (c: store.Claim) => Promise<readonly C[]>;
  attempt: (claimed: C, leaseId: string) => Promise<void>;
}): Promise<void> {
  for (const { orgId, earliest } of p.organizations) {
    if (p.onlyOrg !== undefined && orgId !== p.onlyOrg) continue;
    if (earliest.getTime() > p.clock.now(orgId)) continue;
    await claimRounds(
      p.signal,
      p.batchSize,
      (leaseId) => {
        const wallNow = p.wallClock.now();
        return p.claim({ orgId, orgNow: new Date(p.clock.now(orgId)), wallNow: new Date(wallNow), leaseId, leaseUntil: leaseUntil(wallNow, p.timeoutMs), limit: p.batchSize });
      },
      p.attempt,
    );
  }
}
