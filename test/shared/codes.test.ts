import { describe, expect, it } from "vitest";
import { MAX_CODE, isLookupCode } from "../../src/shared/codes.ts";

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
