// Voiding an invoice with `generate_credit_note` (Lago's void options): the invoice's fees are
// credited in full over two credit notes — one for `credit_amount` + `refund_amount` (the credit
// part kept for the customer's next invoices, the refund part paid back through the provider), and
// one for the rest, created and voided at once. Pure: the options, the split, and which fee amounts
// make a note of a given total.
import { type Checked, ErrorSink, Fields } from "../../catalog/index.ts";
import { type CreditableFee, creditNoteAmounts } from "./credit_note.ts";

export interface VoidOptions {
  readonly generateCreditNote: boolean;
  readonly creditAmountCents: bigint | null;
  readonly refundAmountCents: bigint | null;
}

/** The body of POST /invoices/:id/void (Lago's InvoiceVoidInput); every field optional. */
export function checkVoidOptions(raw: unknown): Checked<VoidOptions> {
  const sink = new ErrorSink();
  const f = new Fields(raw ?? {}, sink);
  const generate = f.bool("generate_credit_note") ?? false;
  const credit = f.cents("credit_amount");
  const refund = f.cents("refund_amount");
  if (!generate && (credit !== undefined || refund !== undefined)) f.fail("generate_credit_note", "value_is_mandatory");
  return sink.result({ generateCreditNote: generate, creditAmountCents: credit ?? null, refundAmountCents: refund ?? null });
}

/**
 * How the voided invoice's credit note is split. `max`: what may still be credited on the invoice;
 * `refundable`: what was paid and not refunded. Nothing said: what was paid (up to `max`) is
 * credited — an invoice voided unpaid owes the customer nothing back.
 */
export function voidSplit(
  o: Pick<VoidOptions, "creditAmountCents" | "refundAmountCents">,
  max: bigint,
  refundable: bigint,
): { ok: true; credit: bigint; refund: bigint } | { ok: false; errors: Record<string, string[]> } {
  if (o.creditAmountCents === null && o.refundAmountCents === null) {
    const credit = refundable < max ? refundable : max;
    return { ok: true, credit: credit > 0n ? credit : 0n, refund: 0n };
  }
  const credit = o.creditAmountCents ?? 0n;
  const refund = o.refundAmountCents ?? 0n;
  const errors: Record<string, string[]> = {};
  if (refund > refundable) errors["refund_amount"] = ["higher_than_remaining_invoice_amount"];
  if (credit + refund > max) errors["credit_amount"] = ["higher_than_remaining_invoice_amount"];
  return Object.keys(errors).length > 0 ? { ok: false, errors } : { ok: true, credit, refund };
}

export type NoteItem = { readonly fee: CreditableFee; readonly amountCents: bigint };

/** What is left to credit of each fee, in full. */
export function remainingItems(fees: readonly CreditableFee[]): NoteItem[] {
  return fees.filter((f) => f.amountCents > f.creditedCents).map((fee) => ({ fee, amountCents: fee.amountCents - fee.creditedCents }));
}

/**
 * Items (amounts excluding taxes) whose credit note totals `target` (taxes included), taken from the
 * fees pro rata to what is left of them. Rounding may leave the total a cent or two under `target`
 * when no cent more fits exactly; it is never over.
 */
export function itemsForTotal(fees: readonly CreditableFee[], target: bigint): NoteItem[] {
  const all = remainingItems(fees);
  if (target <= 0n || all.length === 0) return [];
  const full = creditNoteAmounts(all).totalAmountCents;
  if (target >= full) return all;
  const amounts = all.map((it) => (it.amountCents * target) / full);
  const totalOf = () => creditNoteAmounts(all.map((it, i) => ({ fee: it.fee, amountCents: amounts[i]! }))).totalAmountCents;
  // Floors lose under a cent per item (and its taxes): add cents back, most room first, while they fit.
  for (let guard = 0; guard < 10_000; guard++) {
    const total = totalOf();
    if (total >= target) break;
    let best = -1;
    for (let i = 0; i < all.length; i++) {
      const room = all[i]!.amountCents - amounts[i]!;
      if (room > 0n && (best < 0 || room > all[best]!.amountCents - amounts[best]!)) best = i;
    }
    if (best < 0) break;
    amounts[best] = amounts[best]! + 1n;
    if (totalOf() > target) {
      amounts[best] = amounts[best]! - 1n;
      break;
    }
  }
  return all.map((it, i) => ({ fee: it.fee, amountCents: amounts[i]! })).filter((it) => it.amountCents > 0n);
}

/** The fees as they stand once `items` are credited. */
export function afterItems(fees: readonly CreditableFee[], items: readonly NoteItem[]): CreditableFee[] {
  const credited = new Map<number, bigint>();
  for (const it of items) credited.set(it.fee.id, (credited.get(it.fee.id) ?? 0n) + it.amountCents);
  return fees.map((f) => ({ ...f, creditedCents: f.creditedCents + (credited.get(f.id) ?? 0n) }));
}
