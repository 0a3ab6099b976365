// When and under which number an invoice is issued: the issuing day in the customer's calendar, the
// grace period a draft waits through, the payment due date, and the organization's numbering.
import { DAY_MS, dayOf, dayStart, isoDay } from "../../billing/core/index.ts";

/** The customer's calendar day of an instant, "YYYY-MM-DD". */
export function issuingDateOf(at: Date, timezone: string): string {
  return isoDay(dayOf(at.getTime(), timezone));
}

const dayNumberOf = (isoDate: string): number => Math.round(Date.parse(`${isoDate}T00:00:00Z`) / DAY_MS);

export function addDays(isoDate: string, days: number): string {
  return isoDay(dayNumberOf(isoDate) + days);
}

/**
 * When a draft issued on `issuingDate` is finalized by the billing job: the start of the day
 * `graceDays` after it, in the customer's timezone (Lago finalizes drafts once the grace period's
 * days have passed). Null when there is no grace period: the invoice is finalized at once.
 */
export function graceEndsAt(issuingDate: string, graceDays: number, timezone: string): Date | null {
  if (graceDays <= 0) return null;
  return new Date(dayStart(dayNumberOf(issuingDate) + graceDays, timezone));
}

/** Lago's `payment_due_date`: the issuing date plus the customer's net payment term. */
export function paymentDueDate(issuingDate: string, netPaymentTerm: number): string {
  return addDays(issuingDate, Math.max(0, netPaymentTerm));
}

/**
 * Lago's organization `document_number_prefix`: the first three letters of its name, upper case,
 * and the last four characters of its id ("ACM-4F2A"). Characters a number should not carry are
 * left out of the name part.
 */
export function documentNumberPrefix(orgName: string, orgPublicId: string): string {
  const letters = orgName.toUpperCase().replace(/[^A-Z0-9]/g, "").slice(0, 3) || "ORG";
  const tail = orgPublicId.replace(/-/g, "").slice(-4).toUpperCase();
  return `${letters}-${tail}`;
}

/** A finalized invoice's number: the prefix and the organization's gapless sequence ("ACM-4F2A-007"). */
export function invoiceNumber(prefix: string, sequence: number): string {
  return `${prefix}-${String(sequence).padStart(3, "0")}`;
}

/** Drafts carry no sequence yet (Lago: "<prefix>-DRAFT"), so voided drafts never leave gaps. */
export function draftNumber(prefix: string): string {
  return `${prefix}-DRAFT`;
}

/** Lago: an invoice with nothing to pay is paid. */
export const initialPaymentStatus = (totalAmountCents: bigint): "pending" | "succeeded" => (totalAmountCents > 0n ? "pending" : "succeeded");
