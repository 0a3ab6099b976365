// Invoices, the billing periods they close and their fees, as stored.
import type { Decimal } from "../../../shared/money.ts";
import type { FeeTaxLine } from "../../taxes/core/tax.ts";
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
  /** Usage already billed by the period's progressive billing invoices, credited before coupons (absent: 0). */
  readonly progressiveBillingCreditAmountCents?: bigint;
  /** What manual payments paid so far (absent: 0); a `succeeded` invoice is paid in full regardless. */
  readonly totalPaidAmountCents?: bigint;
  /** Lago's `payment_overdue`: finalized, unpaid and past its due date (set by the overdue pass; absent: false). */
  readonly paymentOverdue?: boolean;
  /** A progressive billing invoice: the thresholds it was issued for, as Lago's AppliedUsageThresholdObject. */
  readonly appliedUsageThresholds?: readonly unknown[];
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
  /** Null for the fee of a non-invoiceable charge paid in advance (Lago: the fee alone, no invoice). */
  readonly invoiceId: number | null;
  readonly invoiceLagoId: string | null;
  readonly invoiceStatus: InvoiceStatus | null;
  /** The invoice's; a fee without an invoice: its own (pending until it is marked paid). */
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
  /** Sum of the rates of the fee's taxes, percent. */
  readonly taxesRate: Decimal;
  readonly taxesPreciseAmountCents: Decimal;
  /** The fee's exact share of the invoice's coupons, minor units. */
  readonly preciseCouponsAmountCents: Decimal;
  readonly appliedTaxes: readonly FeeAppliedTax[];
  readonly payInAdvance: boolean;
  readonly invoiceable: boolean;
  readonly item: FeeItem;
  readonly amountDetails: Readonly<Record<string, unknown>>;
  /** Add-on fees: the line's description (Lago's fee `description`). */
  readonly description: string | null;
  /** A late-events adjustment: the period it corrects (its billing instant), the fee it corrects, since when events are late. */
  readonly lateAdjustment: { readonly adjustsBilledAt: Date; readonly eventsAfter: Date | null; readonly originalFeeLagoId: string | null } | null;
  /** A charge fee topped up by a spending minimum's true-up fee: that fee (Lago's lago_true_up_fee_id). */
  readonly trueUpFeeLagoId?: string | null;
  /** A true-up fee: the charge fee it tops up (Lago's lago_true_up_parent_fee_id). */
  readonly trueUpParentFeeLagoId?: string | null;
  readonly createdAt: Date;
}

/** A tax on a fee as it was billed (stored with the fee; amounts as integer / decimal strings). */
export interface FeeAppliedTax {
  readonly lago_id: string;
  readonly lago_tax_id: string;
  readonly tax_name: string;
  readonly tax_code: string;
  readonly tax_rate: string;
  readonly tax_description: string | null;
  readonly amount_cents: string;
  readonly precise_amount_cents: string;
}

/** A fee's tax line as stored with the fee (`lagoId` is the applied tax's own id). */
export const feeAppliedTax = (l: FeeTaxLine, lagoId: string): FeeAppliedTax => ({
  lago_id: lagoId,
  lago_tax_id: l.tax.lagoId,
  tax_name: l.tax.name,
  tax_code: l.tax.code,
  tax_rate: l.tax.rate.toString(),
  tax_description: l.tax.description,
  amount_cents: l.amountCents.toString(),
  precise_amount_cents: l.preciseAmountCents.toString(),
});

/** A tax on an invoice (Lago's InvoiceAppliedTaxObject). */
export interface AppliedTaxRecord {
  readonly invoiceId: number;
  readonly invoiceLagoId: string;
  readonly lagoId: string;
  readonly taxLagoId: string | null;
  readonly taxCode: string;
  readonly taxName: string;
  readonly taxDescription: string | null;
  readonly taxRate: Decimal;
  readonly amountCents: bigint;
  /** The base it applies to (fees after coupons). */
  readonly feesAmountCents: bigint;
  readonly currency: string;
  readonly createdAt: Date;
}

/** A deduction on an invoice: a coupon (before taxes) or a credit note (after). */
export interface CreditRecord {
  readonly invoiceId: number;
  readonly invoiceLagoId: string;
  readonly paymentStatus: PaymentStatus;
  readonly lagoId: string;
  readonly amountCents: bigint;
  readonly currency: string;
  readonly beforeTaxes: boolean;
  readonly item: { readonly type: "coupon" | "credit_note"; readonly lagoItemId: string; readonly code: string; readonly name: string };
}
