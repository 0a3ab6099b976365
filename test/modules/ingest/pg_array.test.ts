import { createRequire } from "node:module";
import { describe, expect, it } from "vitest";
import { intArrayLiteral, textArrayLiteral } from "../../../src/modules/ingest/core/pg_array.ts";

// node-postgres's own serializer (untyped module): the literals must be what it would have sent.
const pgUtils = createRequire(import.meta.url)("pg/lib/utils.js") as { prepareValue(v: unknown): string };
const pgLiteral = (values: unknown[]): string => pgUtils.prepareValue(values);

describe("textArrayLiteral", () => {
  it("is node-postgres's literal for the same values (quotes, backslashes, braces, NULL, empty)", () => {
    const cases: (string | null)[][] = [
      [],
      [""],
      [null],
      ["a", null, "b"],
      ['{"region":"eu-west","tokens":42}'],
      ['back\\slash', 'quote"d', '\\"', "{}", "a,b", " lead", "NULL", "null", "é😀\n\t"],
    ];
    let seed = 3;
    const rnd = (k: number) => (seed = (seed * 1103515245 + 12345) >>> 0) % k;
    const alphabet = ['"', "\\", "{", "}", ",", " ", "a", "é", "😀", "\n", "N"];
    for (let i = 0; i < 300; i++) {
      cases.push(Array.from({ length: rnd(5) }, () => (rnd(6) === 0 ? null : Array.from({ length: rnd(12) }, () => alphabet[rnd(alphabet.length)]).join(""))));
    }
    for (const c of cases) expect(textArrayLiteral(c), JSON.stringify(c)).toBe(pgLiteral(c));
  });
});

describe("intArrayLiteral", () => {
  it("writes the integers in decimal, without exponent, up to 2^53", () => {
    expect(intArrayLiteral([])).toBe("{}");
    expect(intArrayLiteral([1, -2, 0])).toBe("{1,-2,0}");
    expect(intArrayLiteral([Number.MAX_SAFE_INTEGER, 1_773_576_000_123_456])).toBe("{9007199254740991,1773576000123456}");
  });
});
