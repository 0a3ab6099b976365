import { describe, expect, it } from "vitest";
import { threshold } from "../catalog/helpers.ts";
import { thresholdProgress } from "../../../src/modules/invoicing/lifetime.ts";

// €30 and €10 (given out of order), then every €50.
const STEPS = [threshold("s30", 3000n), threshold("s10", 1000n), threshold("r", 5000n, true)];
const AT = new Date("2026-01-06T00:00:00Z");
const shown = (usage: bigint, reached: [string, number][] = []) =>
  thresholdProgress(STEPS, usage, new Map(reached.map(([id, step]) => [id, { step, at: AT }]))).map(
    (p) => `${p.amountCents}:${p.completionRatio.toString()}:${p.reachedAt === null ? "-" : "reached"}`,
  );

describe("how far a period's usage has come to each usage threshold", () => {
  it.each([
    ["nothing used: every ratio 0, the recurring one at €30 + €50", 0n, [], ["1000:0:-", "3000:0:-", "8000:0:-"]],
    ["€15 with €10 crossed: 1, one half, 15/80", 1500n, [["s10", 0]], ["1000:1:reached", "3000:0.5:-", "8000:0.1875:-"]],
    ["€10: a third of €30 shows four decimals, rounded down", 1000n, [], ["1000:1:-", "3000:0.3333:-", "8000:0.125:-"]],
    ["€90: past the recurring step once, the next level is €130", 9000n, [["s10", 0], ["s30", 0], ["r", 1]], ["1000:1:reached", "3000:1:reached", "13000:0.6923:-"]],
  ] as [string, bigint, [string, number][], string[]][])("%s", (_name, usage, reached, expected) => {
    expect(shown(usage, reached)).toEqual(expected);
  });

  it("a plan with only a recurring threshold counts from zero", () => {
    expect(thresholdProgress([threshold("r", 1000n, true)], 2500n, new Map()).map((p) => p.amountCents)).toEqual([3000n]);
  });
});
