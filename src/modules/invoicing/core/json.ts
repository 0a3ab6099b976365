// Lago's shapes (InvoiceObject, InvoiceObjectExtended, FeeObject, BillingPeriodObject in
// lago-javascript-client) from stored invoices and fees.
import { Decimal, minorUnits } from "../../../shared/money.ts";
import type { AppliedTaxRecord, BillingPeriodRecord, CreditRecord, FeeRecord, InvoiceRecord } from "./records.ts";

// Lago renders times with `iso8601`: seconds, UTC, "Z".
const iso = (d: Date | null) => (d === null ? null : d.toISOString().replace(/\.\d{3}Z$/, "Z"));
// Amounts are bigint minor units; JSON numbers are exact up to 2^53 - 1, far beyond any invoice.
const cents = (v: bigint) => Number(v);

export function feeJson(f: FeeRecord) {
  const preciseCents = f.preciseAmount.times(Decimal.pow(10, minorUnits(f.currency)));
  return {
    lago_id: f.lagoId,
    lago_charge_id: f.chargeLagoId,
    // Charge filters have no public id here; the filter's values are in `item.filters`.
    lago_charge_filter_id: null,
    lago_fixed_charge_id: null,
    lago_invoice_id: f.invoiceLagoId,
    lago_true_up_fee_id: f.trueUpFeeLagoId ?? null,
    lago_true_up_parent_fee_id: f.trueUpParentFeeLagoId ?? null,
    // A late-events adjustment: the fee of the period it corrects.
    lago_original_fee_id: f.lateAdjustment?.originalFeeLagoId ?? null,
    lago_subscription_id: f.subscriptionLagoId,
    lago_customer_id: f.customerLagoId,
    external_customer_id: f.externalCustomerId,
    external_subscription_id: f.externalSubscriptionId,
    amount_cents: cents(f.amountCents),
    precise_amount: f.preciseAmount.toString(),
    precise_total_amount: f.preciseAmount.toString(),
    amount_currency: f.currency,
    taxes_amount_cents: cents(f.taxesAmountCents),
    taxes_precise_amount: f.taxesPreciseAmountCents.div(Decimal.pow(10, minorUnits(f.currency))).toString(),
    taxes_precise_amount_cents: f.taxesPreciseAmountCents.toString(),
    taxes_rate: Number(f.taxesRate.toString()),
    units: f.units.toString(),
    precise_unit_amount: f.preciseUnitAmount.toString(),
    unit_amount_cents: cents(f.unitAmountCents),
    total_aggregated_units: f.totalAggregatedUnits.toString(),
    total_amount_cents: cents(f.amountCents + f.taxesAmountCents),
    total_amount_currency: f.currency,
    events_count: f.feeType === "charge" ? f.eventsCount : null,
    pay_in_advance: f.payInAdvance,
    invoiceable: f.invoiceable,
    from_date: iso(f.from),
    to_date: iso(f.to),
    payment_status: f.paymentStatus,
    created_at: iso(f.createdAt),
    succeeded_at: null,
    failed_at: null,
    refunded_at: null,
    event_transaction_id: null,
    description: f.description,
    precise_coupons_amount_cents: f.preciseCouponsAmountCents.toString(),
    // Lago: the fee's amount before coupons (the invoice shows coupons as credits).
    sub_total_excluding_taxes_amount_cents: cents(f.amountCents),
    sub_total_excluding_taxes_precise_amount_cents: preciseCents.toString(),
    amount_details: f.amountDetails,
    self_billed: false,
    item: {
      type: f.item.type,
      code: f.item.code,
      name: f.item.name,
      description: f.item.description,
      invoice_display_name: f.item.invoiceDisplayName,
      filter_invoice_display_name: f.item.filterInvoiceDisplayName,
      filters: f.item.filters,
      lago_item_id: f.item.lagoItemId,
      item_type: f.item.itemType,
      grouped_by: f.item.groupedBy ?? {},
    },
    applied_taxes: f.appliedTaxes.map((t) => ({
      lago_id: t.lago_id,
      lago_fee_id: f.lagoId,
      lago_tax_id: t.lago_tax_id,
      tax_name: t.tax_name,
      tax_code: t.tax_code,
      tax_rate: Number(t.tax_rate),
      tax_description: t.tax_description,
      amount_cents: Number(t.amount_cents),
      precise_amount_cents: t.precise_amount_cents,
      amount_currency: f.currency,
      created_at: iso(f.createdAt),
    })),
    pricing_unit_details: null,
    // Ours: a fee correcting an already invoiced period for events stored after it was invoiced.
    late_events_adjustment:
      f.lateAdjustment === null
        ? null
        : { adjusted_billed_at: iso(f.lateAdjustment.adjustsBilledAt), events_stored_after: iso(f.lateAdjustment.eventsAfter) },
    presentation_breakdowns: [] as unknown[],
  };
}

export function billingPeriodJson(p: BillingPeriodRecord) {
  return {
    lago_subscription_id: p.subscriptionLagoId,
    external_subscription_id: p.externalSubscriptionId,
    lago_plan_id: p.planLagoId,
    subscription_from_datetime: iso(p.feeFrom ?? p.chargesFrom),
    subscription_to_datetime: iso(p.feeTo ?? p.chargesTo),
    charges_from_datetime: iso(p.chargesFrom ?? p.feeFrom),
    charges_to_datetime: iso(p.chargesTo ?? p.feeTo),
    invoicing_reason: p.reason,
    // Ours: the instant that made the period due (with the subscription, unique).
    billed_at: iso(p.billedAt),
    // Ours: what a credit note will return for the unused days of a fee paid in advance.
    unused_advance_fee_credit_cents: cents(p.unusedAdvanceCreditCents),
  };
}

export function appliedTaxJson(t: AppliedTaxRecord) {
  return {
    lago_id: t.lagoId,
    lago_invoice_id: t.invoiceLagoId,
    lago_tax_id: t.taxLagoId,
    tax_name: t.taxName,
    tax_code: t.taxCode,
    tax_rate: Number(t.taxRate.toString()),
    tax_description: t.taxDescription,
    amount_cents: cents(t.amountCents),
    amount_currency: t.currency,
    fees_amount_cents: cents(t.feesAmountCents),
    created_at: iso(t.createdAt),
  };
}

export function creditJson(c: CreditRecord) {
  return {
    lago_id: c.lagoId,
    amount_cents: cents(c.amountCents),
    amount_currency: c.currency,
    before_taxes: c.beforeTaxes,
    item: { lago_item_id: c.item.lagoItemId, type: c.item.type, code: c.item.code, name: c.item.name },
    invoice: { lago_id: c.invoiceLagoId, payment_status: c.paymentStatus },
  };
}

export interface InvoiceExtras {
  readonly customer: unknown;
  readonly appliedTaxes?: readonly AppliedTaxRecord[];
  readonly credits?: readonly CreditRecord[];
  readonly fees?: readonly FeeRecord[];
  readonly billingPeriods?: readonly BillingPeriodRecord[];
  readonly subscriptions?: readonly unknown[];
}

export function invoiceJson(inv: InvoiceRecord, extras: InvoiceExtras) {
  // Paid in full once succeeded (a charge, or the status set by hand); else what manual payments paid.
  const paid = inv.paymentStatus === "succeeded" ? inv.totalAmountCents : (inv.totalPaidAmountCents ?? 0n);
  return {
    lago_id: inv.lagoId,
    billing_entity_code: null,
    sequential_id: inv.sequentialId,
    number: inv.number,
    // Ours: the organization-wide sequence behind `number`.
    organization_sequential_id: inv.organizationSequentialId,
    purchase_order_number: null,
    issuing_date: inv.issuingDate,
    payment_dispute_lost_at: null,
    payment_due_date: inv.paymentDueDate,
    // Set by the overdue pass (overdue.ts) once the due date has passed unpaid; cleared by a
    // successful payment or a void.
    payment_overdue: inv.paymentOverdue ?? false,
    net_payment_term: inv.netPaymentTerm,
    invoice_type: inv.invoiceType,
    status: inv.status,
    payment_status: inv.paymentStatus,
    currency: inv.currency,
    fees_amount_cents: cents(inv.feesAmountCents),
    coupons_amount_cents: cents(inv.couponsAmountCents),
    credit_notes_amount_cents: cents(inv.creditNotesAmountCents),
    sub_total_excluding_taxes_amount_cents: cents(inv.subTotalExcludingTaxesAmountCents),
    taxes_amount_cents: cents(inv.taxesAmountCents),
    sub_total_including_taxes_amount_cents: cents(inv.subTotalIncludingTaxesAmountCents),
    prepaid_credit_amount_cents: cents(inv.prepaidCreditAmountCents),
    prepaid_granted_credit_amount_cents: null,
    prepaid_purchased_credit_amount_cents: null,
    progressive_billing_credit_amount_cents: cents(inv.progressiveBillingCreditAmountCents ?? 0n),
    total_amount_cents: cents(inv.totalAmountCents),
    total_paid_amount_cents: cents(paid),
    total_offsetted_credit_note_amount_cents: 0,
    total_due_amount_cents: inv.status === "voided" ? 0 : cents(inv.totalAmountCents - paid),
    version_number: 4,
    self_billed: false,
    file_url: null,
    xml_url: null,
    web_url: null,
    created_at: iso(inv.createdAt),
    updated_at: iso(inv.updatedAt),
    voided_at: iso(inv.voidedAt),
    customer: extras.customer,
    metadata: [] as unknown[],
    applied_taxes: (extras.appliedTaxes ?? []).map(appliedTaxJson),
    applied_invoice_custom_sections: [] as unknown[],
    applied_usage_thresholds: [...(inv.appliedUsageThresholds ?? [])] as unknown[],
    ...(extras.fees !== undefined
      ? {
          billing_periods: (extras.billingPeriods ?? []).map(billingPeriodJson),
          credits: (extras.credits ?? []).map(creditJson),
          fees: extras.fees.map(feeJson),
          subscriptions: extras.subscriptions ?? [],
          error_details: [] as unknown[],
        }
      : {}),
  };
}
