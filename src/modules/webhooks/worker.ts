import { BackgroundLoop, claimRounds, leaseUntil } from "../../shared/background_loop.ts";
import { deadline } from "../../shared/deadline.ts";
import { performance } from "node:perf_hooks";
import type { Db } from "../../db/db.ts";
import type { Clock } from "../../shared/clock.ts";
import { afterAttempt, jitterOf } from "./core/backoff.ts";
import { hmacSignature, jwtSignature } from "./core/signature.ts";
import type { WebhookMetrics } from "./metrics.ts";
import type { WebhookService } from "./service.ts";
import { type PrivateNetworks, post } from "./egress.ts";
import * as store from "./store.ts";

export interface DeliveryWorkerOptions {
  /** WEBHOOK_TIMEOUT_MS: an attempt that has not been answered (body included) by then failed. */
  timeoutMs: number;
  /** WEBHOOK_POLL_MS: how often the background loop looks for due deliveries. */
  pollMs: number;
  /** WEBHOOK_RETRY_BASE_MS: the wait after a first failed attempt (see core/backoff.ts). */
  retryBaseMs: number;
  /** WEBHOOK_JWT_ISSUER: the `iss` claim of `jwt` signatures. */
  jwtIssuer: string;
  /** WEBHOOK_PRIVATE_NETWORKS (see egress.ts); `allow` when not given. */
  privateNetworks?: PrivateNetworks;
  /** Deliveries claimed and sent at once. */
  batchSize?: number;
  onError?: (err: unknown) => void;
}

/** What one `deliverDue` did. */
export interface DeliveryRun {
  attempted: number;
  succeeded: number;
  retrying: number;
  failed: number;
}

const USER_AGENT = "ValueVerse-Webhooks/1.0";
/** How much of a receiver's answer is kept on the delivery record. */
const RESPONSE_KEPT = 2000;

/**
 * Sends the outbox. Each run claims due deliveries (`FOR UPDATE SKIP LOCKED`, so several processes
 * share the work), POSTs each body with Lago's signature headers, and records the attempt: a 2xx
 * is delivered; anything else (status, timeout, refused connection) is retried with backoff until
 * the delivery's attempts run out, then it is `failed`. Whether a delivery is due is judged by the
 * injected clock (tests move a ManualClock and call `deliverDue`); the background loop only
 * decides how often to look. A process that dies mid-attempt leaves a claim that expires, and the
 * delivery is sent again: at least once, deduplicated by receivers on `X-Lago-Unique-Key`.
 */
export class DeliveryWorker {
  private readonly loop: BackgroundLoop<DeliveryRun>;
  private readonly batchSize: number;

  constructor(
    private readonly db: Db,
    private readonly clock: Clock,
    private readonly webhooks: WebhookService,
    private readonly metrics: WebhookMetrics,
    private readonly options: DeliveryWorkerOptions,
  ) {
    this.batchSize = options.batchSize ?? 16;
    this.loop = new BackgroundLoop(() => this.runOnce(), { pollMs: options.pollMs, coalesce: true, onError: options.onError });
  }

  /** Starts the background loop. */
  start(): void {
    this.loop.start();
  }

  /** Looks for due deliveries shortly (after an enqueue: by then the caller has usually committed). */
  kick(): void {
    this.loop.kick();
  }

  /**
   * Attempts every delivery due now, once each, and resolves when their attempts are recorded.
   * Runs in this process never overlap: a call during a run is served by the next one.
   */
  deliverDue(): Promise<DeliveryRun> {
    return this.loop.run();
  }

  /** Stops looking, abandons attempts in flight (their deliveries are due again at once) and waits for the run to end. */
  stop(): Promise<void> {
    return this.loop.stop();
  }

  private async runOnce(): Promise<DeliveryRun> {
    const run: DeliveryRun = { attempted: 0, succeeded: 0, retrying: 0, failed: 0 };
    await claimRounds(
      this.loop.signal,
      this.batchSize,
      (leaseId) => {
        const now = this.clock.now();
        return store.claimDue(this.db, new Date(now), leaseId, leaseUntil(now, this.options.timeoutMs), this.batchSize);
      },
      (d, leaseId) => this.attempt(d, leaseId, run),
    );
    return run;
  }

  private async attempt(d: store.ClaimedDelivery, leaseId: string, run: DeliveryRun): Promise<void> {
    try {
      const keys = await this.webhooks.signingKeys(d.orgId, d.signatureAlgo === "jwt");
      const signature =
        d.signatureAlgo === "jwt" ? jwtSignature(keys.jwtPrivateKey!, d.payload, this.options.jwtIssuer) : hmacSignature(keys.hmacKey, d.payload);
      const startedAt = new Date(this.clock.now());
      const t0 = performance.now();
      const answer = await this.post(d, signature);
      const seconds = (performance.now() - t0) / 1000;
      if (answer === "abandoned") {
        await store.releaseClaim(this.db, d.id, leaseId, new Date(this.clock.now()));
        return;
      }
      const attempt = d.attempts + 1;
      const now = this.clock.now();
      const verdict = afterAttempt(attempt, d.maxAttempts, answer.error === null, now, this.options.retryBaseMs, jitterOf(d.lagoId));
      const recorded = await this.db.transaction((tx) =>
        store.recordAttempt(tx, {
          id: d.id,
          leaseId,
          attempt,
          status: verdict.status,
          nextAttemptAt: verdict.status === "retrying" ? new Date(verdict.nextAttemptAt) : null,
          endpoint: d.webhookUrl,
          httpStatus: answer.httpStatus,
          response: answer.response,
          error: answer.error,
          durationMs: Math.round(seconds * 1000),
          startedAt,
          now: new Date(now),
        }),
      );
      if (!recorded) return;
      run.attempted++;
      run[verdict.status]++;
      this.metrics.attempt(verdict.status, seconds);
    } catch (err) {
      // The database failed us: the claim expires and the delivery is attempted again then.
      this.options.onError?.(err);
    }
  }

  private async post(d: store.ClaimedDelivery, signature: string): Promise<{ httpStatus: number | null; response: string | null; error: string | null } | "abandoned"> {
    const guard = deadline(this.options.timeoutMs, this.loop.signal);
    const signal = guard.signal;
    try {
      const res = await post(
        d.webhookUrl,
        {
          "content-type": "application/json",
          "user-agent": USER_AGENT,
          "x-lago-signature": signature,
          "x-lago-signature-algorithm": d.signatureAlgo,
          "x-lago-unique-key": d.lagoId,
        },
        d.payload,
        // No redirect is followed: the receiver's URL should be the final one.
        { signal, keep: RESPONSE_KEPT, policy: this.options.privateNetworks ?? "allow" },
      );
      const ok = res.status >= 200 && res.status < 300;
      return { httpStatus: res.status, response: res.body, error: ok ? null : `HTTP ${res.status}` };
    } catch (err) {
      if (this.loop.signal.aborted) return "abandoned";
      return { httpStatus: null, response: null, error: describeFailure(err, this.options.timeoutMs) };
    } finally {
      guard.clear();
    }
  }
}

function describeFailure(err: unknown, timeoutMs: number): string {
  const e = err as { name?: string; code?: string; message?: string; cause?: { name?: string; code?: string; message?: string } };
  if (e?.name === "TimeoutError" || e?.cause?.name === "TimeoutError") return `timeout: no answer within ${timeoutMs} ms`;
  if (e?.code === "EBLOCKED") return String(e.message).slice(0, 500);
  if (typeof e?.code === "string" && e.name !== "AbortError") return `connection failed: ${e.code}`;
  const cause = e?.cause?.code ?? e?.cause?.message;
  return (cause ? `connection failed: ${cause}` : (e?.message ?? String(err))).slice(0, 500);
}
