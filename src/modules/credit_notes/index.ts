// Credit notes: Lago's /credit_notes on finalized invoices (items per fee, coupons prorated, taxes,
// credit and refund parts), drawn on by the customer's next invoices after taxes; and the credit
// note a termination or upgrade issues for the unused part of a fee paid in advance.
export { CreditNoteService, type CreditNoteDeps, type CreditNoteListener, type CreditNoteView } from "./service.ts";
export { registerCreditNoteRoutes, creditNoteJson } from "./http.ts";
export { checkCreditNote, creditNoteAmounts, splitTotal, CREDIT_NOTE_REASONS, type CreditableFee, type CreditNoteAmounts } from "./core/credit_note.ts";
