import { describe, expect, it } from "vitest";
import { checkCreditNote, creditNoteAmounts, splitTotal, type CreditableFee } from "../../../src/modules/credit_notes/index.ts";
import { d } from "../../../src/shared/money.ts";

const vat = { code: "vat", name: "VAT", lagoTaxId: null, description: null, rate: d(20) };
const low = { code: "low", name: "Low", lagoTaxId: null, description: null, rate: d("5.5") };
const fee = (amountCents: bigint, over: Partial<CreditableFee> = {}): CreditableFee => ({
  id: 1,
  lagoId: "f",
  amountCents,
  preciseCouponsAmountCents: d(0),
  creditedCents: 0n,
  taxes: [vat],
  ...over,
});

describe("credit note amounts", () => {
  it("an item is credited with its fee's taxes", () => {
    const a = creditNoteAmounts([{ fee: fee(10000n), amountCents: 5000n }]);
    expect([a.subTotalExcludingTaxesAmountCents, a.taxesAmountCents, a.totalAmountCents, a.taxesRate.toString()]).toEqual([5000n, 1000n, 6000n, "20"]);
  });

  it("the fee's share of the invoice's coupons is taken off pro rata before taxes", () => {
    // The fee (100.00) carried 10.00 of coupons; crediting 50.00 of it takes 5.00 of coupons off:
    // 45.00 + 20 % = 54.00.
    const a = creditNoteAmounts([{ fee: fee(10000n, { preciseCouponsAmountCents: d(1000) }), amountCents: 5000n }]);
    expect([a.couponsAdjustmentAmountCents, a.subTotalExcludingTaxesAmountCents, a.taxesAmountCents, a.totalAmountCents]).toEqual([500n, 4500n, 900n, 5400n]);
  });

  it("each tax is rounded once over all items bearing it", () => {
    // Three items of 0.05 at 5.5 %: 0.825 in all → 1 cent (not 3 × 0.275 → 0).
    const f = fee(100n, { taxes: [low] });
    const a = creditNoteAmounts([1, 2, 3].map(() => ({ fee: f, amountCents: 5n })));
    expect(a.appliedTaxes.map((t) => [t.code, t.baseAmountCents, t.amountCents])).toEqual([["low", 15n, 1n]]);
    expect(a.totalAmountCents).toBe(16n);
  });

  it.each<[string, bigint | null, bigint | null, bigint, { credit: bigint; refund: bigint } | string[]]>([
    ["nothing said: all is credited", null, null, 0n, { credit: 6000n, refund: 0n }],
    ["a refund on a paid invoice and the rest credited", 1000n, 5000n, 12000n, { credit: 1000n, refund: 5000n }],
    ["parts that do not add up", 1000n, 1000n, 12000n, ["credit_amount_cents"]],
    ["a refund beyond what was paid", 0n, 6000n, 0n, ["refund_amount_cents"]],
  ])("%s", (_name, credit, refund, refundable, expected) => {
    const r = splitTotal(6000n, credit, refund, refundable);
    expect(r.ok ? { credit: r.credit, refund: r.refund } : Object.keys(r.errors)).toEqual(expected);
  });
});

describe("credit note input", () => {
  it("names every broken field", () => {
    const r = checkCreditNote({ invoice_id: 3, reason: "nope", items: [{ amount_cents: "x" }, { fee_id: "00000000-0000-4000-8000-000000000001", amount_cents: -1 }] });
    expect(r.ok ? null : Object.keys(r.errors).sort()).toEqual(["invoice_id", "items[0].amount_cents", "items[0].fee_id", "items[1].amount_cents", "reason"]);
  });

  it("the estimate needs no reason", () => {
    const r = checkCreditNote({ invoice_id: "00000000-0000-4000-8000-000000000001", items: [{ fee_id: "00000000-0000-4000-8000-000000000002", amount_cents: 5 }] }, true);
    expect(r.ok).toBe(true);
  });
});
