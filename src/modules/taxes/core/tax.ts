// Taxes as Lago defines them: a named percentage applied by code. Which taxes a fee bears (the most
// specific level that has any: charge, then plan, then customer, then the organization's defaults),
// what they amount to on a fee (exact) and on an invoice (one rounded amount per tax, on the sum of
// the fees it applies to, after coupons). Pure.
import { type Checked, ErrorSink, Fields } from "../../catalog/index.ts";
import { Decimal, ZERO } from "../../../shared/money.ts";

export interface Tax {
  readonly id: number;
  readonly orgId: number;
  readonly lagoId: string;
  readonly code: string;
  readonly name: string;
  readonly description: string | null;
  /** Percent, 0 to 100. */
  readonly rate: Decimal;
  readonly appliedToOrganization: boolean;
  readonly createdAt: Date;
}

export interface TaxDraft {
  readonly code: string;
  readonly name: string;
  readonly description: string | null;
  readonly rate: Decimal;
  readonly appliedToOrganization: boolean;
}

const RATE = /^\d{1,3}(?:\.\d{1,10})?$/;

/** Lago takes `rate` as a decimal string ("20.0"); a JSON number is accepted too. */
function readRate(f: Fields): Decimal | undefined {
  const v = f.obj["rate"];
  if (v === undefined || v === null || v === "") {
    f.fail("rate", "value_is_mandatory");
    return undefined;
  }
  const text = typeof v === "number" && Number.isFinite(v) ? String(v) : v;
  if (typeof text !== "string" || !RATE.test(text)) {
    f.fail("rate", "value_is_invalid");
    return undefined;
  }
  const rate = new Decimal(text);
  if (rate.gt(100)) {
    f.fail("rate", "value_is_out_of_range");
    return undefined;
  }
  return rate;
}

/** A create (`current` null) or an update applying the fields sent onto `current`. */
export function checkTax(raw: unknown, current: TaxDraft | null): Checked<TaxDraft> {
  const sink = new ErrorSink();
  const f = new Fields(raw, sink);
  const updating = current !== null;
  const name = f.take(updating, "name", () => f.requiredText("name"), current?.name ?? "");
  const code = f.take(updating, "code", () => f.requiredText("code"), current?.code ?? "");
  const description = f.take(updating, "description", () => f.optionalText("description"), current?.description ?? null);
  const rate = updating && !f.has("rate") ? current.rate : (readRate(f) ?? ZERO);
  const appliedToOrganization = f.take(updating, "applied_to_organization", () => f.bool("applied_to_organization"), current?.appliedToOrganization ?? false);
  return sink.result({ code, name, description, rate, appliedToOrganization });
}

export const draftOfTax = (t: Tax): TaxDraft => ({
  code: t.code,
  name: t.name,
  description: t.description,
  rate: t.rate,
  appliedToOrganization: t.appliedToOrganization,
});

/** The tax codes set at each level for one fee; an empty list means "not set here". */
export interface TaxLevels {
  readonly charge?: readonly string[];
  readonly plan?: readonly string[];
  readonly customer: readonly string[];
}

/**
 * The taxes a fee bears (Lago's hierarchy): the charge's when it has any, else the plan's, else the
 * customer's, else the organization's defaults. Codes naming no tax (deleted meanwhile) are skipped.
 */
export function taxesForFee(levels: TaxLevels, byCode: ReadonlyMap<string, Tax>): Tax[] {
  const resolve = (codes: readonly string[] | undefined) => (codes ?? []).map((c) => byCode.get(c)).filter((t): t is Tax => t !== undefined);
  for (const codes of [levels.charge, levels.plan, levels.customer]) {
    const taxes = resolve(codes);
    if (taxes.length > 0) return taxes;
  }
  return [...byCode.values()].filter((t) => t.appliedToOrganization).sort((a, b) => a.id - b.id);
}

/** A fee's tax: exact, in minor units (the fee's rounded amount less its share of coupons, times the rate). */
export interface FeeTaxLine {
  readonly tax: Tax;
  readonly preciseAmountCents: Decimal;
  readonly amountCents: bigint;
}

export interface FeeTaxes {
  /** Sum of the rates, percent. */
  readonly rate: Decimal;
  readonly preciseAmountCents: Decimal;
  /** `preciseAmountCents` rounded half-up: what the fee shows. */
  readonly amountCents: bigint;
  readonly lines: readonly FeeTaxLine[];
}

export const roundCents = (v: Decimal): bigint => BigInt(v.toDecimalPlaces(0, Decimal.ROUND_HALF_UP).toFixed(0));

/** The taxes of one fee whose taxable base (minor units, exact) is `base`. */
export function feeTaxes(base: Decimal, taxes: readonly Tax[]): FeeTaxes {
  const taxable = base.isNegative() ? ZERO : base;
  let rate = ZERO;
  let precise = ZERO;
  const lines = taxes.map((tax) => {
    const amount = taxable.times(tax.rate).div(100);
    rate = rate.plus(tax.rate);
    precise = precise.plus(amount);
    return { tax, preciseAmountCents: amount, amountCents: roundCents(amount) };
  });
  return { rate, preciseAmountCents: precise, amountCents: roundCents(precise), lines };
}

/** One tax on an invoice: its base (the fees it applies to, after coupons) and its amount. */
export interface InvoiceTaxLine {
  readonly tax: Tax;
  /** Base, rounded (Lago's `fees_amount_cents`). */
  readonly feesAmountCents: bigint;
  readonly amountCents: bigint;
}

/**
 * The invoice's taxes: for each tax, the exact bases of every fee bearing it added up, times its
 * rate, rounded once (so the invoice's tax is not the sum of the fees' rounded taxes). In order of
 * first appearance.
 */
export function invoiceTaxes(fees: readonly { readonly base: Decimal; readonly taxes: readonly Tax[] }[]): InvoiceTaxLine[] {
  const bases = new Map<string, { tax: Tax; base: Decimal }>();
  for (const fee of fees) {
    const base = fee.base.isNegative() ? ZERO : fee.base;
    for (const tax of fee.taxes) {
      const entry = bases.get(tax.code);
      if (entry === undefined) bases.set(tax.code, { tax, base });
      else entry.base = entry.base.plus(base);
    }
  }
  return [...bases.values()].map(({ tax, base }) => ({
    tax,
    feesAmountCents: roundCents(base),
    amountCents: roundCents(base.times(tax.rate).div(100)),
  }));
}

/** The JSON number Lago shows for a rate ("20.0" → 20). */
export const rateNumber = (rate: Decimal): number => Number(rate.toString());

/**
 * The taxes on a subscription's usage (current usage): each charge's amount taxed by its level
 * (charge > plan > customer > organization), each tax rounded once, as the invoice will.
 */
export function usageTaxes(
  charges: readonly { readonly amountCents: bigint; readonly chargeTaxCodes: readonly string[] }[],
  levels: { readonly plan: readonly string[]; readonly customer: readonly string[] },
  byCode: ReadonlyMap<string, Tax>,
): bigint {
  const lines = invoiceTaxes(
    charges.map((c) => ({
      base: new Decimal(c.amountCents.toString()),
      taxes: taxesForFee({ charge: c.chargeTaxCodes, plan: levels.plan, customer: levels.customer }, byCode),
    })),
  );
  return lines.reduce((s, l) => s + l.amountCents, 0n);
}
