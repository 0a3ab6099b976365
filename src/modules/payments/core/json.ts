// Lago's shapes: PaymentObject (lago-javascript-client) and the `payment_provider_invoice_payment_error`
// object of the `invoice.payment_failure` webhook.
import type { AttemptRecord, PaymentRecord } from "./types.ts";

const iso = (d: Date | null) => (d === null ? null : d.toISOString().replace(/\.\d{3}Z$/, "Z"));
// Minor units are bigint; JSON numbers are exact far beyond any payment.
const cents = (v: bigint) => Number(v);

/** Lago's normalized payment_status of a payment: `processing` while an attempt is in flight. */
export function normalizedStatus(p: PaymentRecord, inFlight: boolean): "succeeded" | "failed" | "pending" | "processing" {
  if (p.status === "succeeded") return "succeeded";
  if (p.status === "failed" || p.status === "canceled") return "failed";
  return inFlight ? "processing" : "pending";
}

export interface PaymentJsonOptions {
  /** Lago's payment_provider_type (the provider's `type`). */
  readonly providerType: string;
  /** An attempt is in flight now (a worker holds the payment). */
  readonly inFlight: boolean;
  /** GET /payments/:id: every attempt. */
  readonly attempts?: readonly AttemptRecord[];
}

export function paymentJson(p: PaymentRecord, o: PaymentJsonOptions) {
  return {
    lago_id: p.lagoId,
    lago_customer_id: p.customerLagoId,
    external_customer_id: p.externalCustomerId,
    invoice_ids: [p.invoiceLagoId],
    invoice_numbers: [p.invoiceNumber],
    lago_payable_id: p.invoiceLagoId,
    payable_type: "Invoice" as const,
    amount_cents: cents(p.amountCents),
    amount_currency: p.currency,
    // The provider-level status; payment_status is Lago's normalized one.
    status: o.inFlight && p.status === "pending" ? "processing" : p.status,
    payment_status: normalizedStatus(p, o.inFlight),
    type: "provider" as const,
    reference: "",
    payment_provider_code: p.provider,
    payment_provider_type: o.providerType,
    external_payment_id: p.providerPaymentId,
    provider_payment_id: p.providerPaymentId,
    provider_customer_id: p.providerCustomerId,
    payment_method_id: null,
    next_action: {},
    created_at: iso(p.createdAt),
    // Ours: dunning state.
    attempts_count: p.attempts,
    next_attempt_at: iso(p.nextAttemptAt),
    succeeded_at: iso(p.succeededAt),
    failed_at: iso(p.failedAt),
    last_error: p.lastErrorCode === null ? null : { code: p.lastErrorCode, message: p.lastErrorMessage, outcome: p.lastOutcome },
    ...(o.attempts !== undefined ? { attempts: o.attempts.map(attemptJson) } : {}),
  };
}

export function attemptJson(a: AttemptRecord) {
  return {
    attempt: a.attempt,
    outcome: a.outcome,
    idempotency_key: a.idempotencyKey,
    payment_method: a.paymentMethod,
    provider_payment_id: a.providerPaymentId,
    error_code: a.errorCode,
    error_message: a.errorMessage,
    replayed: a.replayed,
    duration_ms: a.durationMs,
    started_at: iso(a.startedAt),
  };
}

/** The object of Lago's `invoice.payment_failure` webhook. */
export function invoicePaymentErrorJson(
  p: PaymentRecord,
  o: { providerType: string; errorCode: string; message: string },
) {
  return {
    lago_invoice_id: p.invoiceLagoId,
    lago_customer_id: p.customerLagoId,
    external_customer_id: p.externalCustomerId,
    provider_customer_id: p.providerCustomerId,
    payment_provider: o.providerType,
    payment_provider_code: p.provider,
    provider_error: { message: o.message, error_code: o.errorCode },
  };
}
