import { Decimal as DecimalBase } from "decimal.js";

// 40 significant digits keep tiny unit prices times billions of units exact; ties round half-up
// (away from zero), the money rule. No exponent notation in toString(), so amounts print as plain strings.
export const Decimal = DecimalBase.clone({
  precision: 40,
  rounding: DecimalBase.ROUND_HALF_UP,
  toExpNeg: -40,
  toExpPos: 40,
});
export type Decimal = DecimalBase;

export const ZERO: Decimal = new Decimal(0);

/** Trusted literals (constants, tests). Untrusted input goes through `parseMoney`. */
export function d(x: string | number | Decimal): Decimal {
  // A JS float would smuggle binary rounding into money; only exact integers are accepted as numbers.
  if (typeof x === "number" && !Number.isSafeInteger(x)) throw new TypeError(`d(${x}): pass a string, not a float`);
  const value = new Decimal(x);
  if (!value.isFinite()) throw new RangeError(`d(${String(x)}) is not a finite amount`);
  return value;
}

const MONEY_PATTERN = /^-?(?:\d+\.?\d*|\.\d+)$/;
// Longer inputs would be silently rounded by the 40-digit arithmetic.
const MAX_DIGITS = 40;

/** A plain decimal string ("12", "-0.5", "1.") or null: no exponents, hex, spaces, NaN or Infinity. */
export function parseMoney(input: unknown): Decimal | null {
  if (typeof input !== "string" || !MONEY_PATTERN.test(input)) return null;
  if (input.replace(/[-.]/g, "").length > MAX_DIGITS) return null;
  return new Decimal(input);
}

export function sum(values: Iterable<Decimal>): Decimal {
  let total = ZERO;
  for (const value of values) total = total.plus(value);
  return total;
}

// ISO 4217 minor units, plus the legacy codes Lago still accepts (HRK, MRO, SLL, STD, VEF, ZWL).
const BY_MINOR_UNITS: ReadonlyArray<readonly [number, string]> = [
  [0, "BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX VND VUV XAF XOF XPF"],
  [3, "BHD IQD JOD KWD LYD OMR TND"],
  [
    2,
    "AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BMD BND BOB BRL BSD BTN BWP BYN BZD " +
      "CAD CDF CHF CNY COP CRC CUP CVE CZK DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP GEL GHS GIP GMD " +
      "GTQ GYD HKD HNL HRK HTG HUF IDR ILS INR IRR JMD KES KGS KHR KPW KYD KZT LAK LBP LKR LRD LSL " +
      "MAD MDL MGA MKD MMK MNT MOP MRO MRU MUR MVR MWK MXN MYR MZN NAD NGN NIO NOK NPR NZD PAB PEN " +
      "PGK PHP PKR PLN QAR RON RSD RUB SAR SBD SCR SDG SEK SGD SHP SLE SLL SOS SRD SSP STD STN SVC " +
      "SYP SZL THB TJS TMT TOP TRY TTD TWD TZS UAH USD UYU UZS VED VEF VES WST XCD XCG YER ZAR ZMW " +
      "ZWG ZWL",
  ],
];
const MINOR_UNITS: ReadonlyMap<string, number> = new Map(
  BY_MINOR_UNITS.flatMap(([units, codes]) => codes.split(" ").map((code) => [code, units] as const)),
);

export const CURRENCIES: readonly string[] = [...MINOR_UNITS.keys()].sort();

export function isCurrency(code: unknown): code is string {
  return typeof code === "string" && MINOR_UNITS.has(code);
}

/** Digits after the decimal point; throws for a code the API edge should already have rejected. */
export function minorUnits(currency: string): number {
  const units = MINOR_UNITS.get(currency);
  if (units === undefined) throw new RangeError(`unknown currency ${currency}`);
  return units;
}

// 10 to the power of each currency's minor units, built once (Decimal values are immutable).
const MINOR_SCALES = new Map<number, Decimal>();

/** 10^minorUnits(currency): major units times this are minor units. */
export function minorScale(currency: string): Decimal {
  const units = minorUnits(currency);
  let scale = MINOR_SCALES.get(units);
  if (scale === undefined) MINOR_SCALES.set(units, (scale = Decimal.pow(10, units)));
  return scale;
}

export function roundToMinor(amount: Decimal, currency: string): Decimal {
  return amount.toDecimalPlaces(minorUnits(currency), Decimal.ROUND_HALF_UP);
}

/** Lago's `amount_cents`: the amount in minor units, rounded half-up, as an integer string. */
export function toCents(amount: Decimal, currency: string): string {
  const cents = roundToMinor(amount, currency).times(minorScale(currency));
  return cents.isZero() ? "0" : cents.toFixed(0);
}

export function fromCents(cents: string | bigint, currency: string): Decimal {
  const text = cents.toString();
  if (!/^-?\d+$/.test(text)) throw new RangeError(`${text} is not an integer amount of minor units`);
  return new Decimal(text).div(minorScale(currency));
}

/** The amount rounded to the currency's minor unit, with all its decimals: "12.30", "1200", "1.050". */
export function formatAmount(amount: Decimal, currency: string): string {
  const rounded = roundToMinor(amount, currency);
  return (rounded.isZero() ? ZERO : rounded).toFixed(minorUnits(currency));
}
