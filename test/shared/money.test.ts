import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  CURRENCIES,
  d,
  formatAmount,
  fromCents,
  isCurrency,
  minorUnits,
  parseMoney,
  roundToMinor,
  sum,
  toCents,
} from "../../src/shared/money.ts";

describe("parseMoney", () => {
  it.each([
    ["0", "0"],
    ["12", "12"],
    ["12.50", "12.5"],
    ["-3.2", "-3.2"],
    [".5", "0.5"],
    ["1.", "1"],
    ["0.000000000000000000000000000001", "0.000000000000000000000000000001"],
  ])("accepts the decimal string %j as %s", (input, expected) => {
    expect(parseMoney(input)?.toString()).toBe(expected);
  });

  it.each([
    ["an empty string", ""],
    ["surrounding spaces", " 1"],
    ["exponent notation", "1e3"],
    ["hex", "0x1f"],
    ["NaN", "NaN"],
    ["Infinity", "Infinity"],
    ["a lone minus", "-"],
    ["a lone point", "."],
    ["a decimal comma", "1,5"],
    ["two points", "1.2.3"],
    ["a JSON number", 12],
    ["null", null],
    ["more than 40 digits", "1".repeat(41)],
  ])("rejects %s", (_name, input) => {
    expect(parseMoney(input)).toBeNull();
  });
});

describe("d", () => {
  it("takes integers and strings", () => {
    expect(d(5).plus(d("0.25")).toString()).toBe("5.25");
  });

  it.each([[0.1], [Number.NaN], [Number.POSITIVE_INFINITY]])("refuses the float %s", (x) => {
    expect(() => d(x)).toThrow();
  });

  it("refuses NaN and Infinity strings", () => {
    expect(() => d("NaN")).toThrow(RangeError);
    expect(() => d("-Infinity")).toThrow(RangeError);
  });

  it("keeps a tiny unit price times a huge count exact", () => {
    expect(d("0.000000001").times(d("123456789012345")).toString()).toBe("123456.789012345");
  });
});

describe("currencies", () => {
  it.each([
    ["USD", 2], ["EUR", 2], ["GBP", 2], ["HUF", 2],
    ["JPY", 0], ["KRW", 0], ["VND", 0], ["CLP", 0], ["ISK", 0], ["UGX", 0], ["XAF", 0], ["XOF", 0],
    ["BHD", 3], ["KWD", 3], ["OMR", 3], ["JOD", 3], ["TND", 3], ["LYD", 3], ["IQD", 3],
  ])("%s has %i minor digits", (currency, digits) => {
    expect(minorUnits(currency)).toBe(digits);
  });

  it.each([["XXX"], ["usd"], [""]])("%j is not a currency", (code) => {
    expect(isCurrency(code)).toBe(false);
    expect(() => minorUnits(code)).toThrow(RangeError);
  });

  it("lists every currency once, sorted", () => {
    expect(new Set(CURRENCIES).size).toBe(CURRENCIES.length);
    expect([...CURRENCIES].sort()).toEqual(CURRENCIES);
    expect(CURRENCIES.every(isCurrency)).toBe(true);
  });
});

describe("rounding to the minor unit", () => {
  it.each([
    ["1.005", "USD", "1.01"],
    ["1.004999", "USD", "1"],
    ["-1.005", "USD", "-1.01"],
    ["2.5", "JPY", "3"],
    ["0.0005", "BHD", "0.001"],
    ["10", "EUR", "10"],
  ])("%s %s rounds half-up to %s", (amount, currency, expected) => {
    expect(roundToMinor(d(amount), currency).toString()).toBe(expected);
  });

  it.each([
    ["10.005", "USD", "1001"],
    ["1234.5", "JPY", "1235"],
    ["1.2345", "KWD", "1235"],
    ["-0.001", "USD", "0"],
    ["-2.345", "USD", "-235"],
    ["123456789012345678901234567890.12", "USD", "12345678901234567890123456789012"],
  ])("%s %s is %s minor units", (amount, currency, cents) => {
    expect(toCents(d(amount), currency)).toBe(cents);
  });

  it.each([
    ["1001", "USD", "10.01"],
    ["1235", "JPY", "1235"],
    ["1235", "KWD", "1.235"],
  ])("%s minor units of %s are %s", (cents, currency, amount) => {
    expect(fromCents(cents, currency).toString()).toBe(amount);
    expect(fromCents(BigInt(cents), currency).toString()).toBe(amount);
  });

  it("refuses fractional minor units", () => {
    expect(() => fromCents("10.5", "USD")).toThrow(RangeError);
  });

  it.each([
    ["12.3", "USD", "12.30"],
    ["1200.4", "JPY", "1200"],
    ["1.05", "KWD", "1.050"],
    ["-0.001", "USD", "0.00"],
  ])("%s %s formats as %s", (amount, currency, text) => {
    expect(formatAmount(d(amount), currency)).toBe(text);
  });

  it("sums exactly", () => {
    expect(sum([d("0.1"), d("0.2")]).toString()).toBe("0.3");
    expect(sum([]).toString()).toBe("0");
  });
});

describe("money properties", () => {
  const currency = fc.constantFrom("USD", "JPY", "KWD");
  const amount = fc
    .tuple(fc.bigInt({ min: -(10n ** 15n), max: 10n ** 15n }), fc.integer({ min: 0, max: 8 }))
    .map(([digits, scale]) => d(digits.toString()).div(d(10).pow(scale)));

  it("minor units round-trip exactly", () => {
    fc.assert(
      fc.property(fc.bigInt({ min: -(10n ** 20n), max: 10n ** 20n }), currency, (cents, cur) => {
        expect(toCents(fromCents(cents, cur), cur)).toBe(cents.toString());
      }),
    );
  });

  it("rounding is idempotent and moves an amount by at most half a minor unit", () => {
    fc.assert(
      fc.property(amount, currency, (x, cur) => {
        const rounded = roundToMinor(x, cur);
        expect(roundToMinor(rounded, cur).eq(rounded)).toBe(true);
        expect(rounded.minus(x).abs().lte(d(1).div(d(10).pow(minorUnits(cur))).div(2))).toBe(true);
      }),
    );
  });

  it("parseMoney reads back what toString writes", () => {
    fc.assert(
      fc.property(amount, (x) => {
        expect(parseMoney(x.toString())?.eq(x)).toBe(true);
      }),
    );
  });
});
