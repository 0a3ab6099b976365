// What an invoice's deductions need from the modules that own them (taxes, coupons, credit notes,
// wallets), wired in app.ts. Reads happen in the invoice's transaction; at finalization the
// customer is locked first, so two invoices of one customer never draw on the same balance.
import type { Queryable } from "../../db/db.ts";
import type { CouponTerms } from "../coupons/core/apply.ts";
import type { Tax } from "../taxes/core/tax.ts";
import type { Balance, InvoiceComputation } from "./core/totals.ts";

export interface InvoiceRef {
  readonly orgId: number;
  readonly id: number;
  readonly lagoId: string;
  readonly customerId: number;
  readonly currency: string;
}

/** A termination or upgrade owes back the unused days of a subscription fee paid in advance. */
export interface UnusedAdvanceFee {
  readonly orgId: number;
  readonly customerId: number;
  /** The fee paid in advance, and its invoice. */
  readonly feeId: number;
  readonly invoiceId: number;
  /** Excluding taxes, minor units (at most the fee's amount). */
  readonly amountCents: bigint;
  readonly reason: "order_change" | "order_cancellation";
  readonly now: Date;
}

export interface InvoiceAdjustments {
  /** The organization's taxes by code. */
  taxes(q: Queryable, orgId: number): Promise<ReadonlyMap<string, Tax>>;
  /** The customer's active applied coupons usable in `currency`, oldest first. */
  coupons(q: Queryable, orgId: number, customerId: number, currency: string, now: Date): Promise<CouponTerms[]>;
  /** Credit notes with credit left for the customer in `currency`, oldest first, locked. */
  creditNotes(q: Queryable, orgId: number, customerId: number, currency: string): Promise<Balance[]>;
  /** Active, unexpired wallets of the customer in `currency`, in the order they are drawn on, locked. */
  wallets(q: Queryable, orgId: number, customerId: number, currency: string, now: Date): Promise<Balance[]>;
  /** Records what a finalized invoice took: coupons used, credit notes and wallets drawn on. */
  consume(q: Queryable, invoice: InvoiceRef, result: InvoiceComputation, now: Date): Promise<void>;
  /** Issues the credit note for an unused advance fee (Lago's credit note on termination). */
  creditUnusedAdvanceFee(q: Queryable, unused: UnusedAdvanceFee): Promise<void>;
  /**
   * Late events lowered what an invoiced fee is worth by `amountCents` (excluding taxes): a credit
   * note on the fee's invoice. Answers the note and what it credited, or null when nothing could be.
   * The note's listeners (its `credit_note.created` webhook) run when `announce` is called: once
   * the note is linked to the late events and the invoice's adjustment fees are written.
   */
  creditLateEvents?(
    q: Queryable,
    orgId: number,
    feeId: number,
    amountCents: bigint,
    now: Date,
  ): Promise<{ creditNoteId: number; amountCents: bigint; announce: () => Promise<void> } | null>;
  /** Gives back what a voided invoice used: coupons, credit notes drawn on, prepaid credits (wallets). */
  restoreVoided?(q: Queryable, invoice: InvoiceRef, now: Date): Promise<void>;
  /** POST /invoices/:id/void with `generate_credit_note`: the credit notes of the voided invoice (before it is marked voided). */
  creditVoided?(q: Queryable, invoice: InvoiceRef, amounts: { creditAmountCents: bigint | null; refundAmountCents: bigint | null }, now: Date): Promise<void>;
}
