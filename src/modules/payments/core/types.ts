// Payments and their attempts, as stored.
import type { ChargeOutcome } from "./provider.ts";

/**
 * `pending`: being collected (an attempt due or in flight); `succeeded`: paid; `failed`: declined
 * or out of retries (POST /invoices/:id/retry_payment starts again); `canceled`: the invoice was
 * voided or its payment status set by hand while collection was under way.
 */
export type PaymentRecordStatus = "pending" | "succeeded" | "failed" | "canceled";

export interface PaymentRecord {
  readonly id: number;
  readonly orgId: number;
  readonly lagoId: string;
  readonly invoiceId: number;
  readonly invoiceLagoId: string;
  readonly invoiceNumber: string;
  readonly customerId: number;
  readonly customerLagoId: string;
  readonly externalCustomerId: string;
  readonly amountCents: bigint;
  readonly currency: string;
  readonly provider: string;
  readonly providerCustomerId: string;
  readonly status: PaymentRecordStatus;
  readonly attempts: number;
  readonly roundAttempts: number;
  readonly idempotencyKey: string;
  readonly keySeq: number;
  readonly nextAttemptAt: Date | null;
  readonly leaseUntil: Date | null;
  readonly providerPaymentId: string | null;
  readonly lastOutcome: ChargeOutcome | null;
  readonly lastErrorCode: string | null;
  readonly lastErrorMessage: string | null;
  readonly succeededAt: Date | null;
  readonly failedAt: Date | null;
  readonly createdAt: Date;
  readonly updatedAt: Date;
}

export interface AttemptRecord {
  readonly attempt: number;
  readonly idempotencyKey: string;
  readonly paymentMethod: string;
  readonly outcome: ChargeOutcome;
  readonly providerPaymentId: string | null;
  readonly errorCode: string | null;
  readonly errorMessage: string | null;
  readonly replayed: boolean;
  readonly durationMs: number;
  readonly startedAt: Date;
}

/** The idempotency key of a payment's `seq`-th definitive try: stable, unique per payment. */
export const idempotencyKeyOf = (paymentLagoId: string, seq: number): string => `${paymentLagoId}:${seq}`;
