// Invoicing: the billing job that closes due billing periods (calendar/anniversary, all intervals,
// bill_charges_monthly, advance and arrears, trials, terminations, upgrades) into invoices with
// fees, exactly once per subscription and instant; Lago's /invoices and /fees, and fee → events.
export {
  InvoicingService,
  termsOf,
  type BillingRunSummary,
  type InvoiceDetails,
  type InvoiceListener,
  type InvoicingDeps,
  type InvoicingOptions,
} from "./service.ts";
export { BillingScheduler, type BillingSchedulerOptions } from "./scheduler.ts";
export { markOverdueInvoices, type OverdueDeps, type OverdueRun } from "./overdue.ts";
export { AdvanceBilling, registerAdvanceFeeRoutes, registerAdvanceQueueGauge, type AdvanceBillingDeps, type AdvanceRun } from "./advance.ts";
export type { InvoiceAdjustments, InvoiceRef, UnusedAdvanceFee } from "./adjustments.ts";
export { invoiceDetailsJson, registerInvoiceRoutes } from "./http.ts";
export { LATE_PERIODS, recordUsageCutoff, recordUsageCutoffs } from "./late_events.ts";
export { addOnFee, checkOneOffInvoice, createOneOffInvoice, registerOneOffInvoiceRoute, type OneOffDeps } from "./oneoff.ts";
export { previewInvoice, previewJson, registerInvoicePreviewRoute, type PreviewDeps } from "./preview.ts";
export { lifetimeUsage, registerLifetimeUsageRoute, thresholdProgress, type LifetimeDeps } from "./lifetime.ts";
export {
  FEE_TYPES,
  INVOICE_STATUSES,
  INVOICE_TYPES,
  INVOICING_REASONS,
  PAYMENT_STATUSES,
  describeInstant,
  dueInstants,
  feeJson,
  invoiceJson,
  invoiceTotals,
  issuingDateOf,
  computeInvoice,
  type Balance,
  type FeeDraft,
  type InvoiceComputation,
  type BillingInstant,
  type BillingTerms,
  type FeeRecord,
  type FeeType,
  type InvoiceRecord,
  type InvoiceStatus,
  type InvoiceType,
  type InvoicingReason,
  type PaymentStatus,
} from "./core/index.ts";
