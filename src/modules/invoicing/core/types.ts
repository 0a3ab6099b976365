// Invoicing vocabulary: Lago's enums for invoices, fees and the reasons a subscription is billed.
export const INVOICE_STATUSES = ["draft", "finalized", "voided"] as const;
export type InvoiceStatus = (typeof INVOICE_STATUSES)[number];

export const PAYMENT_STATUSES = ["pending", "succeeded", "failed"] as const;
export type PaymentStatus = (typeof PAYMENT_STATUSES)[number];

/** `one_off` (add-ons) is reserved in the schema; only subscription invoices are issued so far. */
export const INVOICE_TYPES = ["subscription", "one_off", "progressive_billing", "credit", "advance_charges"] as const;
export type InvoiceType = (typeof INVOICE_TYPES)[number];

export const FEE_TYPES = ["subscription", "charge", "add_on", "commitment", "credit"] as const;
export type FeeType = (typeof FEE_TYPES)[number];

/** Lago's `invoicing_reason` of a billing period on an invoice. */
export const INVOICING_REASONS = ["subscription_starting", "subscription_periodic", "subscription_terminating"] as const;
export type InvoicingReason = (typeof INVOICING_REASONS)[number];

export const isOneOf =
  <T extends string>(values: readonly T[]) =>
  (v: unknown): v is T =>
    typeof v === "string" && (values as readonly string[]).includes(v);
