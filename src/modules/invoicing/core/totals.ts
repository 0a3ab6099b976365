// Invoice totals from rounded fees, in Lago's order: coupons off the fees, then taxes, then credit
// notes and prepaid credits. Each deduction is capped at what is left, so a total is never negative
// (a credit larger than the invoice stays available for the next one).

export interface Deductions {
  readonly couponsCents?: bigint;
  readonly taxesCents?: bigint;
  readonly creditNotesCents?: bigint;
  readonly prepaidCreditCents?: bigint;
}

export interface InvoiceTotals {
  readonly feesAmountCents: bigint;
  readonly couponsAmountCents: bigint;
  readonly subTotalExcludingTaxesAmountCents: bigint;
  readonly taxesAmountCents: bigint;
  readonly subTotalIncludingTaxesAmountCents: bigint;
  readonly creditNotesAmountCents: bigint;
  readonly prepaidCreditAmountCents: bigint;
  readonly totalAmountCents: bigint;
}

const capped = (wanted: bigint, left: bigint): bigint => (wanted <= 0n ? 0n : wanted < left ? wanted : left);

/** Totals of an invoice whose fees (minor units, never negative) are `fees`. */
export function invoiceTotals(fees: readonly bigint[], deductions: Deductions = {}): InvoiceTotals {
  let feesAmount = 0n;
  for (const f of fees) {
    if (f < 0n) throw new RangeError(`a fee is never negative, got ${f}`);
    feesAmount += f;
  }
  const coupons = capped(deductions.couponsCents ?? 0n, feesAmount);
  const subTotalExcluding = feesAmount - coupons;
  const taxes = deductions.taxesCents !== undefined && deductions.taxesCents > 0n ? deductions.taxesCents : 0n;
  const subTotalIncluding = subTotalExcluding + taxes;
  const creditNotes = capped(deductions.creditNotesCents ?? 0n, subTotalIncluding);
  const prepaid = capped(deductions.prepaidCreditCents ?? 0n, subTotalIncluding - creditNotes);
  return {
    feesAmountCents: feesAmount,
    couponsAmountCents: coupons,
    subTotalExcludingTaxesAmountCents: subTotalExcluding,
    taxesAmountCents: taxes,
    subTotalIncludingTaxesAmountCents: subTotalIncluding,
    creditNotesAmountCents: creditNotes,
    prepaidCreditAmountCents: prepaid,
    totalAmountCents: subTotalIncluding - creditNotes - prepaid,
  };
}
