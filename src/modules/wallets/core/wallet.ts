// Wallets (prepaid credits) as Lago defines them: credits bought (paid) or given (granted) at a
// rate of `rate_amount` money per credit, a balance in the currency's minor unit that invoices draw
// on after taxes, and the transactions that move it. Pure: "now" is handed in.
import { type Checked, ErrorSink, Fields } from "../../catalog/index.ts";
import { Decimal, ZERO, isCurrency, minorUnits } from "../../../shared/money.ts";
import type { FeeDraft } from "../../invoicing/index.ts";
import { checkRules, type RuleDraft } from "./rules.ts";

const AMOUNT = /^\d{1,15}(?:\.\d{1,15})?$/;
const MAX_CREDITS = new Decimal("1e15");

/** A decimal string ("10", "2.5"; Lago also takes JSON numbers), at least 0. */
export function readCredits(f: Fields, key: string): Decimal | null | undefined {
  const v = f.obj[key];
  if (v === undefined) return undefined;
  if (v === null || v === "") return null;
  const text = typeof v === "number" && Number.isFinite(v) && v >= 0 ? String(v) : v;
  if (typeof text !== "string" || !AMOUNT.test(text)) {
    f.fail(key, "value_is_invalid");
    return undefined;
  }
  const value = new Decimal(text);
  if (value.gt(MAX_CREDITS)) {
    f.fail(key, "value_is_out_of_range");
    return undefined;
  }
  return value;
}

function readDate(f: Fields, key: string, now: Date): Date | null | undefined {
  const v = f.obj[key];
  if (v === undefined) return undefined;
  if (v === null || v === "") return null;
  const at = typeof v === "string" && /^\d{4}-\d{2}-\d{2}/.test(v) ? new Date(v) : null;
  if (at === null || Number.isNaN(at.getTime()) || at.getTime() <= now.getTime()) {
    f.fail(key, "invalid_date");
    return undefined;
  }
  return at;
}

export interface WalletDraft {
  readonly externalCustomerId: string;
  readonly name: string | null;
  readonly code: string | null;
  readonly priority: number;
  readonly currency: string;
  readonly rateAmount: Decimal;
  readonly paidCredits: Decimal;
  readonly grantedCredits: Decimal;
  readonly expirationAt: Date | null;
  readonly invoiceRequiresSuccessfulPayment: boolean;
  readonly transactionName: string | null;
  /** Recurring top-up rules (Lago's recurring_transaction_rules). */
  readonly rules: readonly RuleDraft[];
}

/** POST /wallets (`externalCustomerId` given: POST /customers/:external_id/wallets). */
export function checkWalletCreate(raw: unknown, now: Date, externalCustomerId?: string): Checked<WalletDraft> {
  const sink = new ErrorSink();
  const f = new Fields(raw, sink);
  const ext = externalCustomerId ?? f.requiredText("external_customer_id") ?? "";
  const name = f.optionalText("name", 255) ?? null;
  const code = f.optionalText("code", 255) ?? null;
  const priority = f.integer("priority", 1, 50) ?? 50;
  const currency = f.obj["currency"];
  if (currency === undefined || currency === null || currency === "") f.fail("currency", "value_is_mandatory");
  else if (!isCurrency(currency)) f.fail("currency", "value_is_invalid");
  let rate = readCredits(f, "rate_amount");
  if (rate === undefined && !f.has("rate_amount")) f.fail("rate_amount", "value_is_mandatory");
  if (rate === null) f.fail("rate_amount", "value_is_mandatory");
  else if (rate !== undefined && rate.lte(0)) {
    f.fail("rate_amount", "value_is_out_of_range");
    rate = undefined;
  }
  const paid = readCredits(f, "paid_credits") ?? ZERO;
  const granted = readCredits(f, "granted_credits") ?? ZERO;
  const expirationAt = readDate(f, "expiration_at", now) ?? null;
  const invoiceRequiresSuccessfulPayment = f.bool("invoice_requires_successful_payment") ?? false;
  const transactionName = f.optionalText("transaction_name", 255) ?? null;
  const rules = f.has("recurring_transaction_rules") ? checkRules(f.obj["recurring_transaction_rules"], sink, now) : [];
  return sink.result({
    rules,
    externalCustomerId: ext,
    name,
    code,
    priority,
    currency: isCurrency(currency) ? currency : "",
    rateAmount: rate ?? new Decimal(1),
    paidCredits: paid,
    grantedCredits: granted,
    expirationAt,
    invoiceRequiresSuccessfulPayment,
    transactionName,
  });
}

export interface WalletPatch {
  readonly name?: string | null;
  readonly code?: string | null;
  readonly priority?: number;
  readonly expirationAt?: Date | null;
  readonly invoiceRequiresSuccessfulPayment?: boolean;
  /** The wallet's rules from now on (absent: unchanged; [] ends them all). */
  readonly rules?: readonly RuleDraft[];
}

export function checkWalletUpdate(raw: unknown, now: Date): Checked<WalletPatch> {
  const sink = new ErrorSink();
  const f = new Fields(raw, sink);
  const patch: { -readonly [K in keyof WalletPatch]: WalletPatch[K] } = {};
  if (f.has("name")) patch.name = f.optionalText("name", 255) ?? null;
  if (f.has("code")) patch.code = f.optionalText("code", 255) ?? null;
  if (f.has("priority")) {
    const p = f.integer("priority", 1, 50);
    if (p !== undefined && p !== null) patch.priority = p;
  }
  if (f.has("expiration_at")) {
    const at = readDate(f, "expiration_at", now);
    if (at !== undefined) patch.expirationAt = at;
  }
  if (f.has("invoice_requires_successful_payment")) {
    const b = f.bool("invoice_requires_successful_payment");
    if (b !== undefined) patch.invoiceRequiresSuccessfulPayment = b;
  }
  if (f.has("recurring_transaction_rules")) patch.rules = checkRules(f.obj["recurring_transaction_rules"], sink, now);
  return sink.result(patch);
}

export interface TopUpDraft {
  readonly walletLagoId: string;
  readonly paidCredits: Decimal;
  readonly grantedCredits: Decimal;
  readonly voidedCredits: Decimal;
  readonly name: string | null;
  readonly invoiceRequiresSuccessfulPayment: boolean | null;
  readonly metadata: readonly { key: string; value: string }[];
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** POST /wallet_transactions. */
export function checkTopUp(raw: unknown): Checked<TopUpDraft> {
  const sink = new ErrorSink();
  const f = new Fields(raw, sink);
  const wallet = f.requiredText("wallet_id");
  if (wallet !== undefined && !UUID.test(wallet)) f.fail("wallet_id", "value_is_invalid");
  const paid = readCredits(f, "paid_credits") ?? ZERO;
  const granted = readCredits(f, "granted_credits") ?? ZERO;
  const voided = readCredits(f, "voided_credits") ?? ZERO;
  const name = f.optionalText("name", 255) ?? null;
  const invoiceRequiresSuccessfulPayment = f.bool("invoice_requires_successful_payment") ?? null;
  const metadata: { key: string; value: string }[] = [];
  const list = f.array("metadata");
  list?.forEach((m, i) => {
    const g = new Fields(m, sink, `metadata[${i}].`);
    const key = g.requiredText("key", 100);
    const value = g.optionalText("value", 255);
    if (key !== undefined) metadata.push({ key, value: value ?? "" });
  });
  return sink.result({
    walletLagoId: (wallet ?? "").toLowerCase(),
    paidCredits: paid,
    grantedCredits: granted,
    voidedCredits: voided,
    name,
    invoiceRequiresSuccessfulPayment,
    metadata,
  });
}

/** What a credit note on a paid purchase of credits does to the wallet they were bought for. */
export type TakeBack = "none" | "take" | "wallet_terminated" | "insufficient_credits";

/**
 * The one rule for a credit note on a purchase of credits (creating it and estimating it): what it
 * credits or refunds of the purchase leaves the wallet, so it needs the wallet active and holding at
 * least that much of the purchase. `none` when the purchase bought no credits that count.
 */
export function takeBack(held: { walletActive: boolean; heldCents: bigint } | null, amountCents: bigint): TakeBack {
  if (held === null || amountCents <= 0n) return "none";
  if (!held.walletActive) return "wallet_terminated";
  return amountCents > held.heldCents ? "insufficient_credits" : "take";
}

/** Credits to minor units at the wallet's rate, rounded half-up once. */
export function creditsToCents(credits: Decimal, rateAmount: Decimal, currency: string): bigint {
  return BigInt(credits.times(rateAmount).times(Decimal.pow(10, minorUnits(currency))).toDecimalPlaces(0, Decimal.ROUND_HALF_UP).toFixed(0));
}

/** Minor units to credits at the wallet's rate (exact as far as 40 digits go). */
export function centsToCredits(cents: bigint, rateAmount: Decimal, currency: string): Decimal {
  return new Decimal(cents.toString()).div(Decimal.pow(10, minorUnits(currency))).div(rateAmount);
}

/** Minor units as a plain amount string ("12.50"). */
export function centsToAmount(cents: bigint, currency: string): string {
  return new Decimal(cents.toString()).div(Decimal.pow(10, minorUnits(currency))).toFixed(minorUnits(currency));
}

/**
 * The one fee of a purchase's credit invoice: the credits bought as units at the wallet's rate
 * (Lago's `credit` fee), traced to the wallet transaction.
 */
export function purchaseFee(
  p: { credits: Decimal; rateAmount: Decimal; currency: string; transactionLagoId: string; walletName: string | null; name: string | null; at: Date },
): FeeDraft {
  const precise = p.credits.times(p.rateAmount);
  const cents = creditsToCents(p.credits, p.rateAmount, p.currency);
  const unitCents = creditsToCents(new Decimal(1), p.rateAmount, p.currency);
  const name = p.name ?? (p.walletName !== null ? `Prepaid credits - ${p.walletName}` : "Prepaid credits");
  return {
    feeType: "credit",
    charge: null,
    chargeFilterId: null,
    from: p.at,
    to: p.at,
    usage: null,
    units: p.credits,
    totalAggregatedUnits: p.credits,
    eventsCount: 0,
    preciseAmount: precise,
    amountCents: cents,
    preciseUnitAmount: p.rateAmount,
    unitAmountCents: unitCents,
    payInAdvance: true,
    invoiceable: true,
    item: {
      type: "credit",
      code: "credit",
      name,
      description: null,
      invoiceDisplayName: name,
      filterInvoiceDisplayName: null,
      filters: null,
      lagoItemId: p.transactionLagoId,
      itemType: "WalletTransaction",
    },
    amountDetails: {},
  };
}
