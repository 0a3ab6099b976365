// Credit note refunds executed through the payment provider that collected the invoice. The refund
// row is written in the transaction that creates the credit note (`schedule`, a credit note
// listener); the refund worker asks the provider after the commit, never inside a transaction, and
// records the answer with the credit note's refund_status (and Lago's refund failure webhook) in
// one transaction. Same discipline as charges (worker.ts): a claim by lease, a timeout per attempt,
// the dunning schedule for retries, and an idempotency key that changes only once the provider said
// nothing was refunded — a retry after a timeout or a crash never refunds twice.
import crypto from "node:crypto";
import client from "prom-client";
import type { Db, Queryable } from "../../db/db.ts";
import type { Clock } from "../../shared/clock.ts";
import { BackgroundLoop } from "../../shared/background_loop.ts";
import type { EnqueueWebhook } from "../webhooks/index.ts";
import { CHARGE_OUTCOMES, afterAttempt, type ChargeOutcome, type PaymentProvider, type RefundResult } from "./core/index.ts";
import * as store from "./refunds_store.ts";
import { askProvider, claimDuePerOrganization } from "./worker.ts";

export interface RefundsOptions {
  /** PAYMENT_RETRY_SCHEDULE: the waits after the 1st, 2nd, … failed attempt. */
  retryScheduleMs: readonly number[];
  /** PAYMENT_TIMEOUT_MS. */
  timeoutMs: number;
  /** PAYMENT_POLL_MS: how often the background loop looks for due refunds. */
  pollMs: number;
  newId?: () => string;
  onError?: (err: unknown) => void;
  /** Where billing_refund_attempts_total{provider,outcome} is registered (none: not counted). */
  registry?: client.Registry;
  /** Providers whose series exist from the start. */
  providerCodes?: readonly string[];
}

export interface RefundsDeps {
  /** The provider a refund names, if this server has it. */
  readonly provider: (code: string) => PaymentProvider | undefined;
  readonly enqueueWebhook: EnqueueWebhook;
}

/** What `schedule` needs of a credit note. */
export interface RefundableNote {
  readonly id: number;
  readonly orgId: number;
  readonly invoiceId: number;
  readonly refundAmountCents: bigint;
}

/** What one `runDue` did. */
export interface RefundRun {
  attempted: number;
  succeeded: number;
  declined: number;
  transient_failure: number;
  timeout: number;
}

const BATCH = 16;

export const refundKeyOf = (refundLagoId: string, seq: number): string => `${refundLagoId}:refund:${seq}`;

/** Lago's credit_note_payment_provider_refund_error object. */
export function refundErrorJson(r: store.RefundRecord, customer: { lagoId: string; externalId: string }, providerType: string, errorCode: string, message: string) {
  return {
    lago_credit_note_id: r.creditNoteLagoId,
    lago_customer_id: customer.lagoId,
    external_customer_id: customer.externalId,
    provider_customer_id: r.paymentMethod,
    payment_provider: providerType,
    payment_provider_code: r.provider,
    provider_error: { message, error_code: errorCode },
  };
}

export class Refunds {
  private readonly loop: BackgroundLoop<RefundRun>;
  private readonly newId: () => string;
  private readonly attemptsTotal: client.Counter<"provider" | "outcome"> | null;

  constructor(
    private readonly db: Db,
    /** The organization's clock (test clocks): retries follow it. */
    private readonly clock: Clock,
    /** The process's clock: claims expire by it. */
    private readonly wallClock: Clock,
    private readonly deps: RefundsDeps,
    private readonly options: RefundsOptions,
  ) {
    this.newId = options.newId ?? (() => crypto.randomUUID());
    this.loop = new BackgroundLoop(() => this.runOnce(undefined), { pollMs: options.pollMs, onError: options.onError });
    this.attemptsTotal =
      options.registry === undefined
        ? null
        : new client.Counter({
            name: "billing_refund_attempts_total",
            help: "Credit note refund attempts sent to a payment provider, by provider and outcome (succeeded, declined, transient_failure, timeout)",
            labelNames: ["provider", "outcome"],
            registers: [options.registry],
          });
    for (const provider of options.providerCodes ?? []) for (const outcome of CHARGE_OUTCOMES) this.attemptsTotal?.labels({ provider, outcome }).inc(0);
  }

  /**
   * A credit note listener (in the transaction that creates the note): its refund part, when the
   * invoice was collected by a provider, is written as a refund due now. A refund of an invoice
   * paid otherwise (marked paid by hand) stays `pending` for PUT /credit_notes/:id.
   */
  readonly schedule = async (tx: Queryable, note: RefundableNote): Promise<void> => {
    if (note.refundAmountCents <= 0n) return;
    const charge = await store.refundableCharge(tx, note.orgId, note.invoiceId);
    if (charge === null) return;
    const lagoId = this.newId();
    const inserted = await store.insertRefund(tx, {
      orgId: note.orgId,
      lagoId,
      creditNoteId: note.id,
      paymentId: charge.id,
      provider: charge.provider,
      paymentMethod: charge.paymentMethod,
      providerPaymentId: charge.providerPaymentId,
      amountCents: note.refundAmountCents,
      currency: charge.currency,
      idempotencyKey: refundKeyOf(lagoId, 1),
      now: new Date(this.clock.now(note.orgId)),
    });
    if (inserted) this.kick();
  };

  /** The refund of a credit note, if it goes through a provider. */
  of(q: Queryable, orgId: number, creditNoteId: number): Promise<store.RefundRecord | null> {
    return store.refundOfNote(q, orgId, creditNoteId);
  }

  start(): void {
    this.loop.start();
  }

  /** Looks for due refunds shortly (after a credit note: by then its transaction has usually committed). */
  kick(): void {
    this.loop.kick();
  }

  /** Attempts every refund due now (of one organization, or all), once each; runs in this process never overlap. */
  runDue(opts: { orgId?: number } = {}): Promise<RefundRun> {
    return this.loop.serial(() => this.runOnce(opts.orgId));
  }

  stop(): Promise<void> {
    return this.loop.stop();
  }

  private async runOnce(onlyOrg: number | undefined): Promise<RefundRun> {
    const run: RefundRun = { attempted: 0, succeeded: 0, declined: 0, transient_failure: 0, timeout: 0 };
    await claimDuePerOrganization({
      organizations: await store.organizationsWithDueRefunds(this.db),
      onlyOrg,
      clock: this.clock,
      wallClock: this.wallClock,
      signal: this.loop.signal,
      timeoutMs: this.options.timeoutMs,
      batchSize: BATCH,
      claim: (c) => store.claimDueRefunds(this.db, c),
      attempt: (r, leaseId) => this.attempt(r, leaseId, run),
    });
    return run;
  }

  private async attempt(r: store.RefundRecord, leaseId: string, run: RefundRun): Promise<void> {
    try {
      const result = await this.ask(r);
      if (result === "abandoned") {
        await store.releaseRefundClaim(this.db, r.id, leaseId);
        return;
      }
      if (!(await this.record(r, leaseId, result))) return;
      run.attempted++;
      run[result.outcome]++;
      this.attemptsTotal?.labels({ provider: r.provider, outcome: result.outcome satisfies ChargeOutcome }).inc();
    } catch (err) {
      // The database failed us: the claim expires and the refund is attempted again then, same key.
      this.options.onError?.(err);
    }
  }

  /** The provider's answer, a timeout when none came in time, or "abandoned" at shutdown. */
  private async ask(r: store.RefundRecord): Promise<RefundResult | "abandoned"> {
    const provider = this.deps.provider(r.provider);
    if (provider === undefined) {
      return { outcome: "transient_failure", errorCode: "provider_not_configured", message: `this server has no payment provider ${JSON.stringify(r.provider)}` };
    }
    if (provider.refund === undefined) {
      return { outcome: "declined", errorCode: "refunds_not_supported", message: `the payment provider ${JSON.stringify(r.provider)} cannot refund` };
    }
    const refund = provider.refund.bind(provider);
    const request = {
      orgId: r.orgId,
      refundId: r.lagoId,
      creditNoteId: r.creditNoteLagoId,
      providerPaymentId: r.providerPaymentId,
      amountCents: r.amountCents,
      currency: r.currency,
      paymentMethod: r.paymentMethod,
      idempotencyKey: r.idempotencyKey,
    };
    return askProvider((signal) => refund(request, signal), this.loop.signal, this.options.timeoutMs);
  }

  /**
   * Records one answer for a refund claimed with `leaseId`: the refund's next state (retried on the
   * dunning schedule after a transient failure or a timeout), the credit note's refund_status once
   * it is settled, and `credit_note.provider_refund_failure` when it failed for good — one
   * transaction. False when the claim was lost.
   */
  private async record(claimed: store.RefundRecord, leaseId: string, result: RefundResult): Promise<boolean> {
    const orgId = claimed.orgId;
    return this.db.transaction(async (tx) => {
      const r = await store.lockClaimedRefund(tx, orgId, claimed.id, leaseId);
      if (r === null || r.status !== "pending") return false;
      const now = new Date(this.clock.now(orgId));
      const attempts = r.attempts + 1;
      const verdict = afterAttempt(result.outcome, attempts, this.options.retryScheduleMs, now.getTime());
      const rotate = verdict.status !== "succeeded" && verdict.newKey;
      const keySeq = rotate ? r.keySeq + 1 : r.keySeq;
      const errorCode = result.outcome === "succeeded" ? null : result.errorCode;
      const message = result.outcome === "succeeded" ? null : result.message.slice(0, 500);
      await store.updateRefund(tx, orgId, r.id, {
        status: verdict.status === "retrying" ? "pending" : verdict.status,
        attempts,
        idempotencyKey: rotate ? refundKeyOf(r.lagoId, keySeq) : r.idempotencyKey,
        keySeq,
        nextAttemptAt: verdict.status === "retrying" ? new Date(verdict.nextAttemptAt) : null,
        providerRefundId: result.providerRefundId ?? r.providerRefundId,
        lastOutcome: result.outcome,
        lastErrorCode: errorCode,
        lastErrorMessage: message,
        now,
      });
      if (verdict.status === "succeeded") await store.setNoteRefundStatus(tx, orgId, r.creditNoteId, "succeeded", now);
      if (verdict.status === "failed") {
        await store.setNoteRefundStatus(tx, orgId, r.creditNoteId, "failed", now);
        const customer = await store.refundCustomer(tx, orgId, r.customerId);
        const type = this.deps.provider(r.provider)?.type ?? r.provider;
        if (customer !== null) {
          await this.deps.enqueueWebhook(
            tx,
            orgId,
            "credit_note.provider_refund_failure",
            "credit_note_payment_provider_refund_error",
            refundErrorJson(r, customer, type, errorCode ?? "refund_failed", message ?? "the refund failed"),
          );
        }
      }
      return true;
    });
  }
}
