import { describe, expect, it } from "vitest";
import { CodecError, decode, encode, Lru } from "../../../src/modules/cache/index.ts";
import { d, Decimal } from "../../../src/shared/money.ts";

describe("the L1 LRU", () => {
  it("evicts the least recently used entry past its bound, and reports it", () => {
    const evicted: string[] = [];
    const lru = new Lru<number>(2, (k) => evicted.push(k));
    lru.set("a", 1, 100);
    lru.set("b", 2, 100);
    expect(lru.get("a", 0)).toEqual({ hit: true, value: 1 }); // a is now the youngest
    lru.set("c", 3, 100);
    expect(evicted).toEqual(["b"]);
    expect(lru.get("b", 0).hit).toBe(false);
    expect(lru.size).toBe(2);
  });

  it("answers an entry past its deadline as an expired miss and drops it", () => {
    const lru = new Lru<number>(10);
    lru.set("a", 1, 100);
    expect(lru.get("a", 99).hit).toBe(true);
    expect(lru.get("a", 100)).toEqual({ hit: false, expired: true });
    expect(lru.size).toBe(0);
  });

  it("replacing a key does not evict another", () => {
    const evicted: string[] = [];
    const lru = new Lru<number>(2, (k) => evicted.push(k));
    lru.set("a", 1, 100);
    lru.set("b", 2, 100);
    lru.set("b", 3, 100);
    expect(evicted).toEqual([]);
    expect(lru.get("b", 0)).toEqual({ hit: true, value: 3 });
  });
});

describe("the cache codec", () => {
  it("brings back money exactly: bigint cents, many-decimal prices, and dates", () => {
    const value = {
      amountCents: 123456789012345678901234567890n,
      unit: d("0.000000000000000000000123456789"),
      big: d("98765432109876543210.123456789"),
      createdAt: new Date("2026-03-15T12:00:00.123Z"),
      nested: [{ min: 0n, tiers: [{ from: d("0"), to: null, flat: d("1.5") }] }],
      nothing: undefined,
    };
    const back = decode<typeof value>(encode(value));
    expect(back.amountCents).toBe(123456789012345678901234567890n);
    expect(Decimal.isDecimal(back.unit)).toBe(true);
    expect(back.unit.toString()).toBe(value.unit.toString());
    expect(back.big.equals(value.big)).toBe(true);
    expect(back.createdAt).toEqual(value.createdAt);
    expect(back.nested[0]!.min).toBe(0n);
    expect(back.nested[0]!.tiers[0]!.flat.toString()).toBe("1.5");
    expect("nothing" in back).toBe(true);
    expect(back.nothing).toBeUndefined();
  });

  it("decimals come back with the money precision (40 digits, half-up)", () => {
    const back = decode<Decimal>(encode(d("1")));
    expect(back.div(3).toString()).toBe(d("1").div(3).toString());
    expect(back.div(3).toString().length).toBeGreaterThan(30);
  });

  it("stored data that looks like a tag stays data", () => {
    const value = { "\u0001": ["b", "12"], props: { "\u0001": ["n", "1"], x: 1 } };
    expect(decode(encode(value))).toEqual(value);
  });

  it("maps, sets and null survive", () => {
    const value = { m: new Map<string, bigint>([["a", 1n]]), s: new Set([1, 2]), n: null };
    expect(decode(encode(value))).toEqual(value);
  });

  it.each([
    ["a class instance", { x: new (class Foo {})() }, /instance of Foo/],
    ["a function", { f: () => 1 }, /function/],
    ["NaN", { n: Number.NaN }, /NaN/],
    ["an invalid date", { t: new Date("nope") }, /invalid Date/],
  ])("refuses %s rather than change it", (_name, value, message) => {
    expect(() => encode(value)).toThrow(CodecError);
    expect(() => encode(value)).toThrow(message);
  });
});
