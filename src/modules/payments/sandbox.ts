import crypto from "node:crypto";
import type { Db } from "../../db/db.ts";
import type { Clock } from "../../shared/clock.ts";
import { sandboxBehaviour, sandboxNeedsHistory, type ChargeRequest, type ChargeResult, type PaymentProvider } from "./core/index.ts";
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
        return this.replay(await store.insertSandboxCharge(this.db, r.orgId, { ...base, outcome: "declined", errorCode: behaviour.errorCode }), r, false, behaviour.message);
      case "transient":
        return this.replay(
          await store.insertSandboxCharge(this.db, r.orgId, { ...base, outcome: "transient_failure", errorCode: behaviour.errorCode }),
          r,
          false,
          behaviour.message,
        );
      case "charge_then_hang": {
        // The money moves; the answer is lost on the way back.
        await store.insertSandboxCharge(this.db, r.orgId, { ...base, outcome: "succeeded", errorCode: null });
        await new Promise<void>((resolve) => {
          if (signal.aborted) return resolve();
          const timer = setTimeout(resolve, this.hangCapMs);
          timer.unref();
          signal.addEventListener("abort", () => (clearTimeout(timer), resolve()), { once: true });
        });
        return { outcome: "timeout", errorCode: "timeout", message: "the sandbox did not answer" };
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

  /** The ledger for one invoice (tests and support): every request the sandbox answered. */
  ledger(orgId: number, invoiceLagoId: string): Promise<store.SandboxCharge[]> {
    return store.sandboxCharges(this.db, orgId, invoiceLagoId);
  }
}
