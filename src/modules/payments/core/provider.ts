// The payment provider seam: one charge (or refund) request in, one of four outcomes out. A provider must be
// idempotent on `idempotencyKey`: a request with a key it has seen answers what it did then and
// charges nothing more (real providers keep such records; the sandbox keeps sandbox_charges).

/** What one attempt asks of a provider. Amounts are minor units of `currency`. */
export interface ChargeRequest {
  readonly orgId: number;
  /** The payment's lago_id: the provider's reference for the charge. */
  readonly paymentId: string;
  /** The invoice being paid (its lago_id). */
  readonly invoiceId: string;
  readonly amountCents: bigint;
  readonly currency: string;
  /** The customer's payment method at the provider (billing_configuration.provider_customer_id). */
  readonly paymentMethod: string;
  readonly idempotencyKey: string;
}

/**
 * - `succeeded`: the money moved.
 * - `declined`: the payment method refused it; retrying will not help (no automatic retry).
 * - `transient_failure`: the provider could not charge now and says nothing was charged; retried.
 * - `timeout`: no answer in time — the charge may or may not have happened; retried with the
 *   same idempotency key, so the provider answers what it did instead of charging again.
 */
export type ChargeOutcome = "succeeded" | "declined" | "transient_failure" | "timeout";
export const CHARGE_OUTCOMES: readonly ChargeOutcome[] = ["succeeded", "declined", "transient_failure", "timeout"];

export type ChargeResult =
  | { readonly outcome: "succeeded"; readonly providerPaymentId: string; readonly replayed?: boolean }
  | {
      readonly outcome: "declined" | "transient_failure" | "timeout";
      readonly providerPaymentId?: string | null;
      readonly errorCode: string;
      readonly message: string;
      readonly replayed?: boolean;
    };

export interface PaymentProvider {
  /** The connection code customers name in billing_configuration.payment_provider_code. */
  readonly code: string;
  /** Lago's payment_provider_type of its payments (ours: "sandbox" for the built-in one). */
  readonly type: string;
  /**
   * Charges once per idempotency key. `signal` aborts when the caller stops waiting (its timeout,
   * or shutdown): a provider may then stop, and its answer is not read.
   */
  charge(request: ChargeRequest, signal: AbortSignal): Promise<ChargeResult>;
  /**
   * Pays back part or all of a charge it made, once per idempotency key (as `charge`). Optional: a
   * provider without it cannot refund, and credit notes' refunds through it fail (`refunds_not_supported`).
   */
  refund?(request: RefundRequest, signal: AbortSignal): Promise<RefundResult>;
}

/** What one refund attempt asks of a provider. Amounts are minor units of `currency`. */
export interface RefundRequest {
  readonly orgId: number;
  /** The refund's lago_id: the provider's reference for it. */
  readonly refundId: string;
  /** The credit note being refunded (its lago_id). */
  readonly creditNoteId: string;
  /** The charge being paid back (the provider's id of the payment). */
  readonly providerPaymentId: string;
  readonly amountCents: bigint;
  readonly currency: string;
  /** The payment method the charge was made on. */
  readonly paymentMethod: string;
  readonly idempotencyKey: string;
}

/** A refund's outcomes mean what a charge's do (`succeeded`: the money went back). */
export type RefundResult =
  | { readonly outcome: "succeeded"; readonly providerRefundId: string; readonly replayed?: boolean }
  | {
      readonly outcome: "declined" | "transient_failure" | "timeout";
      readonly providerRefundId?: string | null;
      readonly errorCode: string;
      readonly message: string;
      readonly replayed?: boolean;
    };
