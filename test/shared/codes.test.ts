import { describe, expect, it } from "vitest";
import { MAX_CODE, isLookupCode, unstorableText } from "../../src/shared/codes.ts";

describe("isLookupCode: which codes from a URL or body can name a stored object", () => {
  it.each([
    ["a plain code", "startup_plan", true],
    ["a code of the longest stored length", "p".repeat(MAX_CODE), true],
    ["non-ASCII letters", "plán_été", true],
    ["an empty code", "", false],
    ["a code one longer than stored", "p".repeat(MAX_CODE + 1), false],
    ["a NUL byte", "plan\u0000x", false],
    ["a lone high surrogate", "plan\ud800", false],
    ["a lone low surrogate", "\udfffplan", false],
  ])("%s: %s", (_name, code, ok) => expect(isLookupCode(code)).toBe(ok));
});

describe("unstorableText: why a text cannot be stored as sent", () => {
  it.each([
    ["plain text", "Acme GmbH", null],
    ["emoji (a well-formed surrogate pair)", "Acme 🚀", null],
    ["a NUL byte", "Acme\u0000", "contains_nul_character"],
    ["a lone surrogate", "Acme\ud83d", "invalid_unicode"],
  ])("%s", (_name, text, reason) => expect(unstorableText(text)).toBe(reason));
});
