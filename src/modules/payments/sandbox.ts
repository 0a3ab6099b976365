import crypto from "node:crypto";
import type { Db } from "../../db/db.ts";
import type { Clock } from "../../shared/clock.ts";
import {
  sandboxBehaviour,
  sandboxNeedsHistory,
  sandboxRefundBehaviour,
  sandboxRefundNeedsHistory,
  type ChargeRequest,
  type ChargeResult,
  type PaymentProvider,
  type RefundRequest,
  type RefundResult,
} from "./core/index.ts";
import * as refundStore from "./refunds_store.ts";
import * as store from "./store.ts";

export const SANDBOX_CODE = "sandbox";

export interface SandboxOptions {
  newId?: () => string;
  /** `pm_times_out`: how long the sandbox keeps a request unanswered at most (the caller gives up sooner). */
  hangCapMs?: number;
}

/**
 * The built-in provider: behaves as the customer's payment method token says (core/sandbox.ts)
 * and keeps its own ledger (`sandbox_charges`) keyed by idempotency key, in its own transactions,
 * as an external provider would. A key it has seen is answered from the ledger and charges nothing
 * more; a different amount, currency or payment method under a seen key is refused.
 */
export class SandboxProvider implements PaymentProvider {
  readonly code = SANDBOX_CODE;
  readonly type = "sandbox";
  private readonly newId: () => string;
  private readonly hangCapMs: number;

  constructor(
    private readonly db: Db,
    private readonly clock: Clock,
    options: SandboxOptions = {},
  ) {
    this.newId = options.newId ?? (() => crypto.randomBytes(12).toString("hex"));
    this.hangCapMs = options.hangCapMs ?? 600_000;
  }

  async charge(r: ChargeRequest, signal: AbortSignal): Promise<ChargeResult> {
    const seen = await store.sandboxChargeByKey(this.db, r.orgId, r.idempotencyKey);
    if (seen !== null) return this.replay(seen, r);
    const prior = sandboxNeedsHistory(r.paymentMethod)
      ? (await store.sandboxCharges(this.db, r.orgId, r.invoiceId)).filter((c) => c.outcome === "transient_failure").length
      : 0;
    const behaviour = sandboxBehaviour(r.paymentMethod, prior);
    const base = {
      idempotencyKey: r.idempotencyKey,
      providerPaymentId: `sbx_${this.newId()}`,
      paymentMethod: r.paymentMethod,
      reference: r.invoiceId,
      amountCents: r.amountCents,
      currency: r.currency,
      createdAt: new Date(this.clock.now()),
    };
    switch (behaviour.kind) {
      case "charge":
        return this.replay(await store.insertSandboxCharge(this.db, r.orgId, { ...base, outcome: "succeeded", errorCode: null }), r, false);
      case "decline":
      case "transient": {
        const outcome = behaviour.kind === "decline" ? "declined" : "transient_failure";
        const row = await store.insertSandboxCharge(this.db, r.orgId, { ...base, outcome, errorCode: behaviour.errorCode });
        return this.replay(row, r, false, behaviour.message);
      }
      case "charge_then_hang": {
        // The money moves; the answer is lost on the way back.
        await store.insertSandboxCharge(this.db, r.orgId, { ...base, outcome: "succeeded", errorCode: null });
        return this.hang(signal);
      }
      default: {
        const never: never = behaviour;
        throw new Error(`unknown sandbox behaviour ${JSON.stringify(never)}`);
      }
    }
  }

  /** The ledger's row as an answer (`replayed`: the key was seen before this request). */
  private replay(c: store.SandboxCharge, r: ChargeRequest, replayed = true, message?: string): ChargeResult {
    if (c.amountCents !== r.amountCents || c.currency !== r.currency || c.paymentMethod !== r.paymentMethod) {
      return {
        outcome: "declined",
        errorCode: "idempotency_key_reused",
        message: "this idempotency key was used with another amount, currency or payment method",
        replayed: true,
      };
    }
    if (c.outcome === "succeeded") return { outcome: "succeeded", providerPaymentId: c.providerPaymentId, replayed };
    return {
      outcome: c.outcome,
      providerPaymentId: c.providerPaymentId,
      errorCode: c.errorCode ?? c.outcome,
      message: message ?? (c.outcome === "declined" ? "declined" : "processing error; nothing was charged"),
      replayed,
    };
  }

  /**
   * Refunds as the charge's payment method token says (core/sandbox.ts `sandboxRefundBehaviour`),
   * with its own ledger (`sandbox_refunds`) by idempotency key: a key seen before answers what was
   * done then and refunds nothing more.
   */
  async refund(r: RefundRequest, signal: AbortSignal): Promise<RefundResult> {
    const seen = await refundStore.sandboxRefundByKey(this.db, r.orgId, r.idempotencyKey);
    if (seen !== null) return this.replayRefund(seen, r);
    const prior = sandboxRefundNeedsHistory(r.paymentMethod)
      ? (await refundStore.sandboxRefunds(this.db, r.orgId, r.creditNoteId)).filter((x) => x.outcome === "transient_failure").length
      : 0;
    const behaviour = sandboxRefundBehaviour(r.paymentMethod, prior);
    const base = {
      idempotencyKey: r.idempotencyKey,
      providerRefundId: `sbx_re_${this.newId()}`,
      providerPaymentId: r.providerPaymentId,
      paymentMethod: r.paymentMethod,
      reference: r.creditNoteId,
      amountCents: r.amountCents,
      currency: r.currency,
      createdAt: new Date(this.clock.now()),
    };
    switch (behaviour.kind) {
      case "charge":
        return this.replayRefund(await refundStore.insertSandboxRefund(this.db, r.orgId, { ...base, outcome: "succeeded", errorCode: null }), r, false);
      case "decline":
      case "transient": {
        const outcome = behaviour.kind === "decline" ? "declined" : "transient_failure";
        const row = await refundStore.insertSandboxRefund(this.db, r.orgId, { ...base, outcome, errorCode: behaviour.errorCode });
        return this.replayRefund(row, r, false, behaviour.message);
      }
      case "charge_then_hang": {
        // The money goes back; the answer is lost on the way.
        await refundStore.insertSandboxRefund(this.db, r.orgId, { ...base, outcome: "succeeded", errorCode: null });
        return this.hang(signal);
      }
      default: {
        const never: never = behaviour;
        throw new Error(`unknown sandbox behaviour ${JSON.stringify(never)}`);
      }
    }
  }

  private replayRefund(x: refundStore.SandboxRefund, r: RefundRequest, replayed = true, message?: string): RefundResult {
    if (x.amountCents !== r.amountCents || x.currency !== r.currency || x.providerPaymentId !== r.providerPaymentId) {
      return { outcome: "declined", errorCode: "idempotency_key_reused", message: "this idempotency key was used with another amount, currency or charge", replayed: true };
    }
    if (x.outcome === "succeeded") return { outcome: "succeeded", providerRefundId: x.providerRefundId, replayed };
    return {
      outcome: x.outcome,
      providerRefundId: x.providerRefundId,
      errorCode: x.errorCode ?? x.outcome,
      message: message ?? (x.outcome === "declined" ? "declined" : "processing error; nothing was refunded"),
      replayed,
    };
  }

  /** No answer until the caller gives up (`signal`), or `hangCapMs` at most: a timeout, whatever was done. */
  private async hang(signal: AbortSignal): Promise<{ outcome: "timeout"; errorCode: string; message: string }> {
    await new Promise<void>((resolve) => {
      if (signal.aborted) return resolve();
      const timer = setTimeout(resolve, this.hangCapMs);
      timer.unref();
      signal.addEventListener("abort", () => (clearTimeout(timer), resolve()), { once: true });
    });
    return { outcome: "timeout", errorCode: "timeout", message: "the sandbox did not answer" };
  }

  /** The refund ledger for one credit note (tests and support). */
  refundLedger(orgId: number, creditNoteLagoId: string): Promise<refundStore.SandboxRefund[]> {
    return refundStore.sandboxRefunds(this.db, orgId, creditNoteLagoId);
  }

  /** The ledger for one invoice (tests and support): every request the sandbox answered. */
  ledger(orgId: number, invoiceLagoId: string): Promise<store.SandboxCharge[]> {
    return store.sandboxCharges(this.db, orgId, invoiceLagoId);
  }
}
