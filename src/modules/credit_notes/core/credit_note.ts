// Credit notes as Lago defines them: items crediting part of an invoice's fees (excluding taxes),
// the fees' coupon share taken off pro rata, the fees' taxes on what is left (each tax rounded
// once), and the total split into a credit (kept for the customer's next invoices) and a refund.
// Pure.
import { type Checked, ErrorSink, Fields } from "../../catalog/index.ts";
import { Decimal, ZERO } from "../../../shared/money.ts";

export const CREDIT_NOTE_REASONS = ["duplicated_charge", "product_unsatisfactory", "order_change", "order_cancellation", "fraudulent_charge", "other"] as const;
export type CreditNoteReason = (typeof CREDIT_NOTE_REASONS)[number];

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export interface CreditNoteRequest {
  readonly invoiceLagoId: string;
  readonly reason: CreditNoteReason;
  readonly description: string | null;
  /** Absent: the whole total is credited (no refund). */
  readonly creditAmountCents: bigint | null;
  readonly refundAmountCents: bigint | null;
  readonly items: readonly { readonly feeLagoId: string; readonly amountCents: bigint }[];
}

/** POST /credit_notes (and, with `estimate`, /credit_notes/estimate: no reason nor amounts). */
export function checkCreditNote(raw: unknown, estimate = false): Checked<CreditNoteRequest> {
  const sink = new ErrorSink();
  const f = new Fields(raw, sink);
  const invoice = f.requiredText("invoice_id");
  if (invoice !== undefined && !UUID.test(invoice)) f.fail("invoice_id", "value_is_invalid");
  let reason: CreditNoteReason = "other";
  if (!estimate) {
    const r = f.oneOf("reason", CREDIT_NOTE_REASONS);
    if (r === null || (r === undefined && !f.has("reason"))) f.fail("reason", "value_is_mandatory");
    if (r) reason = r;
  }
  const description = f.optionalText("description") ?? null;
  const credit = estimate ? undefined : f.cents("credit_amount_cents");
  const refund = estimate ? undefined : f.cents("refund_amount_cents");
  const list = f.array("items");
  const items: { feeLagoId: string; amountCents: bigint }[] = [];
  if (list === undefined || list === null || list.length === 0) f.fail("items", "value_is_mandatory");
  else {
    const seen = new Set<string>();
    list.forEach((item, i) => {
      const g = new Fields(item, sink, `items[${i}].`);
      const fee = g.requiredText("fee_id");
      if (fee !== undefined && !UUID.test(fee)) g.fail("fee_id", "value_is_invalid");
      else if (fee !== undefined && seen.has(fee.toLowerCase())) g.fail("fee_id", "value_already_exist");
      const amount = g.cents("amount_cents");
      if (amount === undefined && (g.obj["amount_cents"] === undefined || g.obj["amount_cents"] === null)) g.fail("amount_cents", "value_is_mandatory");
      if (fee !== undefined && amount !== undefined && UUID.test(fee)) {
        seen.add(fee.toLowerCase());
        items.push({ feeLagoId: fee.toLowerCase(), amountCents: amount });
      }
    });
  }
  return sink.result({
    invoiceLagoId: (invoice ?? "").toLowerCase(),
    reason,
    description,
    creditAmountCents: credit ?? null,
    refundAmountCents: refund ?? null,
    items,
  });
}

/** What a credit note needs of a fee it credits. */
export interface CreditableFee {
  readonly id: number;
  readonly lagoId: string;
  readonly amountCents: bigint;
  /** The fee's share of its invoice's coupons, exact, minor units. */
  readonly preciseCouponsAmountCents: Decimal;
  /** Already credited by earlier credit notes. */
  readonly creditedCents: bigint;
  readonly taxes: readonly { readonly code: string; readonly name: string; readonly lagoTaxId: string | null; readonly description: string | null; readonly rate: Decimal }[];
}

export interface CreditNoteTaxLine {
  readonly code: string;
  readonly name: string;
  readonly lagoTaxId: string | null;
  readonly description: string | null;
  readonly rate: Decimal;
  readonly baseAmountCents: bigint;
  readonly amountCents: bigint;
}

export interface CreditNoteAmounts {
  readonly items: readonly { readonly fee: CreditableFee; readonly amountCents: bigint }[];
  readonly couponsAdjustmentAmountCents: bigint;
  readonly preciseCouponsAdjustmentAmountCents: Decimal;
  readonly subTotalExcludingTaxesAmountCents: bigint;
  readonly taxesAmountCents: bigint;
  readonly preciseTaxesAmountCents: Decimal;
  /** Rate of the whole note: taxes over sub total, percent (0 when nothing is taxed). */
  readonly taxesRate: Decimal;
  readonly totalAmountCents: bigint;
  readonly appliedTaxes: readonly CreditNoteTaxLine[];
}

const round = (v: Decimal): bigint => BigInt(v.toDecimalPlaces(0, Decimal.ROUND_HALF_UP).toFixed(0));

/** A credit note's amounts from its items (amounts excluding taxes, before coupons). */
export function creditNoteAmounts(items: readonly { fee: CreditableFee; amountCents: bigint }[]): CreditNoteAmounts {
  let gross = ZERO;
  let coupons = ZERO;
  const bases = new Map<string, { tax: CreditableFee["taxes"][number]; base: Decimal }>();
  for (const { fee, amountCents } of items) {
    const amount = new Decimal(amountCents.toString());
    const share = fee.amountCents > 0n ? amount.times(fee.preciseCouponsAmountCents).div(fee.amountCents.toString()) : ZERO;
    gross = gross.plus(amount);
    coupons = coupons.plus(share);
    const base = amount.minus(share);
    for (const tax of fee.taxes) {
      const entry = bases.get(tax.code);
      if (entry === undefined) bases.set(tax.code, { tax, base });
      else entry.base = entry.base.plus(base);
    }
  }
  let preciseTaxes = ZERO;
  const appliedTaxes = [...bases.values()].map(({ tax, base }) => {
    const amount = base.times(tax.rate).div(100);
    preciseTaxes = preciseTaxes.plus(amount);
    return { code: tax.code, name: tax.name, lagoTaxId: tax.lagoTaxId, description: tax.description, rate: tax.rate, baseAmountCents: round(base), amountCents: round(amount) };
  });
  const subTotal = round(gross.minus(coupons));
  const taxes = appliedTaxes.reduce((s, t) => s + t.amountCents, 0n);
  return {
    items,
    couponsAdjustmentAmountCents: round(coupons),
    preciseCouponsAdjustmentAmountCents: coupons,
    subTotalExcludingTaxesAmountCents: subTotal,
    taxesAmountCents: taxes,
    preciseTaxesAmountCents: preciseTaxes,
    taxesRate: subTotal > 0n ? new Decimal(taxes.toString()).times(100).div(subTotal.toString()).toDecimalPlaces(2) : ZERO,
    totalAmountCents: subTotal + taxes,
    appliedTaxes,
  };
}

/** How a total is split; errors name the field at fault. */
export function splitTotal(
  total: bigint,
  credit: bigint | null,
  refund: bigint | null,
  refundable: bigint,
): { ok: true; credit: bigint; refund: bigint } | { ok: false; errors: Record<string, string[]> } {
  const errors: Record<string, string[]> = {};
  let c = credit;
  let r = refund;
  if (c === null && r === null) c = total;
  c ??= 0n;
  r ??= 0n;
  if (c + r !== total) errors["credit_amount_cents"] = ["does_not_match_item_amounts"];
  if (r > refundable) errors["refund_amount_cents"] = ["higher_than_remaining_invoice_amount"];
  return Object.keys(errors).length > 0 ? { ok: false, errors } : { ok: true, credit: c, refund: r };
}
