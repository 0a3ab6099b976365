// Invoices, the billing periods they close and their fees, as stored.
import type { Decimal } from "../../../shared/money.ts";
import type { FeeBucket, FeeItem } from "./fees.ts";
import type { FeeType, InvoiceStatus, InvoiceType, InvoicingReason, PaymentStatus } from "./types.ts";

export interface InvoiceRecord {
  readonly id: number;
  readonly orgId: number;
  readonly lagoId: string;
  readonly customerId: number;
  readonly invoiceType: InvoiceType;
  readonly status: InvoiceStatus;
  readonly paymentStatus: PaymentStatus;
  readonly number: string;
  /** The organization's gapless sequence, once finalized. */
  readonly organizationSequentialId: number | null;
  /** The customer's sequence (Lago's `sequential_id`), once finalized. */
  readonly sequentialId: number | null;
  readonly issuingDate: string;
  readonly paymentDueDate: string;
  readonly netPaymentTerm: number;
  readonly currency: string;
  readonly feesAmountCents: bigint;
  readonly couponsAmountCents: bigint;
  readonly creditNotesAmountCents: bigint;
  readonly prepaidCreditAmountCents: bigint;
  readonly taxesAmountCents: bigint;
  readonly subTotalExcludingTaxesAmountCents: bigint;
  readonly subTotalIncludingTaxesAmountCents: bigint;
  readonly totalAmountCents: bigint;
  /** Drafts: when the billing job finalizes them. */
  readonly graceUntil: Date | null;
  readonly finalizedAt: Date | null;
  readonly voidedAt: Date | null;
  readonly createdAt: Date;
  readonly updatedAt: Date;
}

/** One subscription's billing instant closed by an invoice (Lago's invoice_subscription). */
export interface BillingPeriodRecord {
  readonly invoiceId: number;
  readonly subscriptionId: number;
  readonly subscriptionLagoId: string;
  readonly externalSubscriptionId: string;
  readonly planLagoId: string;
  readonly reason: InvoicingReason;
  readonly billedAt: Date;
  readonly feeFrom: Date | null;
  readonly feeTo: Date | null;
  readonly chargesFrom: Date | null;
  /** The charge period's last instant (Lago's charges_to_datetime), or the termination. */
  readonly chargesTo: Date | null;
  /** What a credit note owes back for the unused days of a fee paid in advance (minor units). */
  readonly unusedAdvanceCreditCents: bigint;
}

export interface FeeRecord {
  readonly id: number;
  readonly orgId: number;
  readonly lagoId: string;
  readonly invoiceId: number;
  readonly invoiceLagoId: string;
  readonly invoiceStatus: InvoiceStatus;
  readonly paymentStatus: PaymentStatus;
  readonly subscriptionId: number | null;
  readonly subscriptionLagoId: string | null;
  readonly externalSubscriptionId: string | null;
  readonly customerLagoId: string;
  readonly externalCustomerId: string;
  readonly feeType: FeeType;
  readonly chargeLagoId: string | null;
  readonly chargeFilterId: number | null;
  readonly from: Date | null;
  readonly to: Date | null;
  readonly usageFrom: Date | null;
  readonly usageTo: Date | null;
  readonly bucket: FeeBucket | null;
  readonly units: Decimal;
  readonly totalAggregatedUnits: Decimal;
  readonly eventsCount: number;
  readonly currency: string;
  readonly preciseAmount: Decimal;
  readonly amountCents: bigint;
  readonly preciseUnitAmount: Decimal;
  readonly unitAmountCents: bigint;
  readonly taxesAmountCents: bigint;
  readonly payInAdvance: boolean;
  readonly invoiceable: boolean;
  readonly item: FeeItem;
  readonly amountDetails: Readonly<Record<string, unknown>>;
  readonly createdAt: Date;
}
