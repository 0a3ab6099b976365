import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { feeTaxes } from "../../../src/modules/taxes/core/tax.ts";
import { type BilledFeeTaxes, regroupedTaxLines, splitFeeTaxes } from "../../../src/modules/invoicing/core/regroup.ts";
import { Decimal } from "../../../src/shared/money.ts";

const tax = (code: string, rate: string) => ({ id: 1, orgId: 1, lagoId: `00000000-0000-0000-0000-00000000000${code.length}`, code, name: code, description: null, rate: new Decimal(rate), appliedToOrganization: false, createdAt: new Date(0) });

/** A fee billed as the invoicing core bills it: its taxes rounded once over its exact lines. */
function billed(amountCents: number, rates: readonly (readonly [string, string])[]): BilledFeeTaxes {
  const taxes = rates.map(([code, rate]) => tax(code, rate));
  const t = feeTaxes(new Decimal(amountCents), taxes);
  return {
    baseCents: new Decimal(amountCents),
    taxesAmountCents: t.amountCents,
    lines: t.lines.map((l) => ({ tax: { lagoTaxId: l.tax.lagoId, code: l.tax.code, name: l.tax.name, description: null, rate: l.tax.rate }, preciseAmountCents: l.preciseAmountCents })),
  };
}

describe("regroup invoice taxes", () => {
  it.each([
    ["one tax: the fee's tax", 155, [["vat", "10"]], [16n]],
    ["two taxes: the cent the floors leave goes to the larger remainder", 155, [["vat", "10"], ["eco", "5.5"]], [15n, 9n]],
    ["two taxes whose roundings agree", 1000, [["vat", "20"], ["eco", "5"]], [200n, 50n]],
    ["a zero rate takes nothing", 999, [["zero", "0"], ["vat", "20"]], [0n, 200n]],
  ] as const)("%s", (_name, amount, rates, expected) => {
    expect(splitFeeTaxes(billed(amount, rates))).toEqual(expected);
  });

  it("per tax: the fees' amounts added up, bases added up; in order of first appearance", () => {
    const lines = regroupedTaxLines([billed(155, [["vat", "10"], ["eco", "5.5"]]), billed(155, [["vat", "10"], ["eco", "5.5"]]), billed(100, [["eco", "5.5"]])]);
    expect(lines.map((l) => [l.tax.code, l.amountCents, l.feesAmountCents])).toEqual([
      ["vat", 30n, 310n],
      ["eco", 24n, 410n],
    ]);
  });

  it("the lines always add up to the fees' taxes", () => {
    const rate = fc.integer({ min: 0, max: 3000 }).map((n) => (n / 100).toString());
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.integer({ min: 0, max: 10_000_000 }), fc.array(rate, { minLength: 0, maxLength: 4 })), { maxLength: 10 }), (fees) => {
        const input = fees.map(([amount, rates]) => billed(amount, rates.map((r, i) => [`t${i}`, r] as [string, string])));
        const lines = regroupedTaxLines(input);
        expect(lines.reduce((a, l) => a + l.amountCents, 0n)).toBe(input.reduce((a, f) => a + f.taxesAmountCents, 0n));
        for (const l of lines) expect(l.amountCents >= 0n).toBe(true);
      }),
      { numRuns: 300 },
    );
  });
});
