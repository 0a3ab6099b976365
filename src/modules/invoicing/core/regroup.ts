// The applied taxes of a regroup invoice (Lago's regroup_paid_fees): its fees were billed and paid
// one by one, each with its taxes rounded on its own, so the invoice's taxes are theirs added up —
// per tax, the fees' amounts of that tax, never taxed again. Pure.
import { Decimal, ZERO } from "../../../shared/money.ts";
import { roundCents } from "../../taxes/core/tax.ts";

/** A tax as a fee bore it. */
export interface BilledTax {
  readonly lagoTaxId: string | null;
  readonly code: string;
  readonly name: string;
  readonly description: string | null;
  readonly rate: Decimal;
}

/** A fee as it was billed: its taxable base, its rounded taxes and their exact lines. */
export interface BilledFeeTaxes {
  /** Amount less its coupons, exact minor units. */
  readonly baseCents: Decimal;
  readonly taxesAmountCents: bigint;
  readonly lines: readonly { readonly tax: BilledTax; readonly preciseAmountCents: Decimal }[];
}

export interface RegroupedTaxLine {
  readonly tax: BilledTax;
  /** The bases of the fees bearing it, added up and rounded once (Lago's `fees_amount_cents`). */
  readonly feesAmountCents: bigint;
  readonly amountCents: bigint;
}

/**
 * One fee's tax amounts, in whole minor units adding up to the tax it was billed (its lines are
 * rounded together, not one by one): floors, then the cents left to the largest remainders. The
 * floors never exceed the rounded sum, so nothing is ever taken off.
 */
export function splitFeeTaxes(fee: BilledFeeTaxes): bigint[] {
  const floors = fee.lines.map((l) => BigInt(l.preciseAmountCents.floor().toFixed(0)));
  let left = fee.taxesAmountCents - floors.reduce((a, b) => a + b, 0n);
  const order = fee.lines.map((l, i) => ({ i, rest: l.preciseAmountCents.minus(l.preciseAmountCents.floor()) })).sort((a, b) => b.rest.comparedTo(a.rest) || a.i - b.i);
  for (let k = 0; left > 0n && order.length > 0; k = (k + 1) % order.length) {
    floors[order[k]!.i]! += 1n;
    left -= 1n;
  }
  return floors;
}

/** The invoice's taxes, in order of first appearance; they add up to the fees' taxes. */
export function regroupedTaxLines(fees: readonly BilledFeeTaxes[]): RegroupedTaxLine[] {
  const byCode = new Map<string, { tax: BilledTax; base: Decimal; amount: bigint }>();
  for (const fee of fees) {
    const amounts = splitFeeTaxes(fee);
    fee.lines.forEach((l, i) => {
      const entry = byCode.get(l.tax.code);
      if (entry === undefined) byCode.set(l.tax.code, { tax: l.tax, base: fee.baseCents, amount: amounts[i]! });
      else {
        entry.base = entry.base.plus(fee.baseCents);
        entry.amount += amounts[i]!;
      }
    });
  }
  return [...byCode.values()].map(({ tax, base, amount }) => ({ tax, feesAmountCents: roundCents(base.isNegative() ? ZERO : base), amountCents: amount }));
}
