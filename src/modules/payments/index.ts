// Payments: collection of finalized invoices through a payment provider (the built-in sandbox, its
// outcome chosen by the customer's payment method token), idempotent attempts, dunning retries,
// payment_status and Lago's payment webhooks; /payments, retry_payment, manual payment status.
export { PaymentsService, type AttemptReport, type InvoicePaidListener, type PaidInvoice, type PaymentsDeps, type PaymentsOptions } from "./service.ts";
export { PaymentWorker, type PaymentRun, type PaymentWorkerOptions } from "./worker.ts";
export { SandboxProvider, SANDBOX_CODE } from "./sandbox.ts";
export { createPayments, type Payments } from "./setup.ts";
export { registerPaymentRoutes } from "./http.ts";
export { ManualPayments, manualPaymentJson, readManualPayment, type ManualPaymentRecord } from "./manual.ts";
export { registerPaymentMetrics, type PaymentMetrics } from "./metrics.ts";
export {
  CHARGE_OUTCOMES,
  SANDBOX_TOKENS,
  afterAttempt,
  parseRetrySchedule,
  sandboxBehaviour,
  type ChargeOutcome,
  type ChargeRequest,
  type ChargeResult,
  type PaymentProvider,
  type PaymentRecord,
} from "./core/index.ts";
