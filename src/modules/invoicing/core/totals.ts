// Invoice totals from rounded fees, in Lago's order: coupons off the fees, then taxes, then credit
// notes and prepaid credits. Each deduction is capped at what is left, so a total is never negative
// (a credit larger than the invoice stays available for the next one).
import { type CouponCredit, type CouponFee, type CouponTerms, applyCoupons } from "../../coupons/core/apply.ts";
import { type FeeTaxes, type InvoiceTaxLine, type Tax, feeTaxes, invoiceTaxes } from "../../taxes/core/tax.ts";
import { Decimal } from "../../../shared/money.ts";

export interface Deductions {
  /** Usage already billed by progressive billing invoices of the period (core/progressive.ts), before coupons. */
  readonly progressiveCreditCents?: bigint;
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
  /** Lago's progressive_billing_credit_amount_cents (absent: 0). */
  readonly progressiveBillingCreditAmountCents?: bigint;
}

const capped = (wanted: bigint, left: bigint): bigint => (wanted <= 0n ? 0n : wanted < left ? wanted : left);

/** Totals of an invoice whose fees (minor units, never negative) are `fees`. */
export function invoiceTotals(fees: readonly bigint[], deductions: Deductions = {}): InvoiceTotals {
  let feesAmount = 0n;
  for (const f of fees) {
    if (f < 0n) throw new RangeError(`a fee is never negative, got ${f}`);
    feesAmount += f;
  }
  const progressive = capped(deductions.progressiveCreditCents ?? 0n, feesAmount);
  const coupons = capped(deductions.couponsCents ?? 0n, feesAmount - progressive);
  const subTotalExcluding = feesAmount - progressive - coupons;
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
    progressiveBillingCreditAmountCents: progressive,
  };
}

/**
 * `credit` spread over `amounts` in whole minor units, in proportion (the remainder a unit at a time
 * from the first fee with room): what each fee's taxes and coupons no longer see.
 */
export function spreadCredit(credit: bigint, amounts: readonly bigint[]): bigint[] {
  const totalAmount = amounts.reduce((a, b) => a + b, 0n);
  const wanted = capped(credit, totalAmount);
  if (wanted === 0n) return amounts.map(() => 0n);
  const shares = amounts.map((a) => (wanted * a) / totalAmount);
  let left = wanted - shares.reduce((a, b) => a + b, 0n);
  for (let i = 0; i < shares.length && left > 0n; i++) {
    if (shares[i]! < amounts[i]!) {
      shares[i]! += 1n;
      left -= 1n;
    }
  }
  return shares;
}

// ---- the whole computation: coupons → taxes → credit notes → prepaid credits --------------------

/** A fee as the deductions see it: its rounded amount, what coupons may match, the taxes it bears. */
export interface BillableFee extends CouponFee {
  readonly taxes: readonly Tax[];
}

/** Something with a balance an invoice may draw on (a credit note's credit, a wallet). */
export interface Balance {
  readonly id: number;
  readonly balanceCents: bigint;
}

export interface InvoiceInput {
  readonly fees: readonly BillableFee[];
  /** The customer's active applied coupons, oldest first. */
  readonly coupons?: readonly CouponTerms[];
  /** Available credit notes, oldest first (finalization only). */
  readonly creditNotes?: readonly Balance[];
  /** Active wallets in the order they are drawn on (finalization only). */
  readonly wallets?: readonly Balance[];
  /** Usage already billed by the period's progressive billing invoices: credited first, spread over the fees. */
  readonly progressiveCreditCents?: bigint;
}

export interface FeeDeductions {
  /** Exact share of the coupons, minor units. */
  readonly couponsPreciseCents: Decimal;
  readonly taxes: FeeTaxes;
}

export interface InvoiceComputation {
  /** In input order. */
  readonly fees: readonly FeeDeductions[];
  readonly couponCredits: readonly CouponCredit[];
  readonly appliedTaxes: readonly InvoiceTaxLine[];
  readonly creditNoteCredits: readonly { readonly id: number; readonly amountCents: bigint }[];
  readonly walletDebits: readonly { readonly id: number; readonly amountCents: bigint }[];
  readonly totals: InvoiceTotals;
}

/** Draws up to `wanted` from `balances` in order. */
function draw(balances: readonly Balance[], wanted: bigint): { id: number; amountCents: bigint }[] {
  const out: { id: number; amountCents: bigint }[] = [];
  let left = wanted;
  for (const b of balances) {
    if (left <= 0n) break;
    const take = b.balanceCents < left ? b.balanceCents : left;
    if (take <= 0n) continue;
    out.push({ id: b.id, amountCents: take });
    left -= take;
  }
  return out;
}

const total = (xs: readonly { amountCents: bigint }[]) => xs.reduce((s, x) => s + x.amountCents, 0n);

/**
 * An invoice's deductions and totals, in Lago's order: coupons off the fees (spread over them), taxes
 * on what is left of each fee (one rounded amount per tax on the invoice), then credit notes and
 * prepaid credits off the total including taxes, each capped at what is left to pay.
 */
export function computeInvoice(input: InvoiceInput): InvoiceComputation {
  const progressiveShares = spreadCredit(input.progressiveCreditCents ?? 0n, input.fees.map((f) => f.amountCents));
  const progressiveCreditCents = progressiveShares.reduce((a, b) => a + b, 0n);
  const couponable = progressiveCreditCents === 0n ? input.fees : input.fees.map((f, i) => ({ ...f, amountCents: f.amountCents - progressiveShares[i]! }));
  const { credits, feeCoupons } = applyCoupons(couponable, input.coupons ?? []);
  const fees = input.fees.map((f, i) => {
    const couponsPreciseCents = feeCoupons[i]!;
    const base = new Decimal(couponable[i]!.amountCents.toString()).minus(couponsPreciseCents);
    return { couponsPreciseCents, base, taxes: feeTaxes(base, f.taxes) };
  });
  const appliedTaxes = invoiceTaxes(fees.map((f, i) => ({ base: f.base, taxes: input.fees[i]!.taxes })));
  const couponsCents = total(credits);
  const taxesCents = total(appliedTaxes);
  const before = invoiceTotals(
    input.fees.map((f) => f.amountCents),
    { progressiveCreditCents, couponsCents, taxesCents },
  );
  const creditNoteCredits = draw(input.creditNotes ?? [], before.subTotalIncludingTaxesAmountCents);
  const walletDebits = draw(input.wallets ?? [], before.subTotalIncludingTaxesAmountCents - total(creditNoteCredits));
  const totals = invoiceTotals(
    input.fees.map((f) => f.amountCents),
    { progressiveCreditCents, couponsCents, taxesCents, creditNotesCents: total(creditNoteCredits), prepaidCreditCents: total(walletDebits) },
  );
  return {
    fees: fees.map((f) => ({ couponsPreciseCents: f.couponsPreciseCents, taxes: f.taxes })),
    couponCredits: credits,
    appliedTaxes,
    creditNoteCredits,
    walletDebits,
    totals,
  };
}
