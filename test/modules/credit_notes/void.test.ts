import { describe, expect, it } from "vitest";
import type { CreditableFee } from "../../../src/modules/credit_notes/index.ts";
import { creditNoteAmounts } from "../../../src/modules/credit_notes/index.ts";
import { afterItems, checkVoidOptions, itemsForTotal, remainingItems, voidSplit } from "../../../src/modules/credit_notes/core/void.ts";
import { d } from "../../../src/shared/money.ts";

const vat = { code: "vat", name: "VAT", lagoTaxId: null, description: null, rate: d(20) };
const fee = (id: number, amountCents: bigint, over: Partial<CreditableFee> = {}): CreditableFee => ({
  id,
  lagoId: `f${id}`,
  amountCents,
  preciseCouponsAmountCents: d(0),
  creditedCents: 0n,
  taxes: [vat],
  ...over,
});
const totalOf = (items: ReturnType<typeof itemsForTotal>) => creditNoteAmounts(items).totalAmountCents;

describe("void options", () => {
  it("no body voids without a credit note", () => {
    expect(checkVoidOptions(undefined)).toEqual({ ok: true, value: { generateCreditNote: false, creditAmountCents: null, refundAmountCents: null } });
  });

  it("amounts are whole minor units at least 0, each field named", () => {
    const r = checkVoidOptions({ generate_credit_note: "yes", refund_amount: -1, credit_amount: 1.5 });
    expect(r.ok).toBe(false);
    if (!r.ok) expect(Object.keys(r.errors).sort()).toEqual(["credit_amount", "generate_credit_note", "refund_amount"]);
  });

  it("an amount without generate_credit_note asks for it", () => {
    const r = checkVoidOptions({ refund_amount: 100 });
    expect(r.ok ? null : r.errors).toEqual({ generate_credit_note: ["value_is_mandatory"] });
  });

  it.each<[string, bigint | null, bigint | null, bigint, bigint, { credit: bigint; refund: bigint } | string[]]>([
    ["nothing said on a paid invoice: what was paid is credited", null, null, 12000n, 12000n, { credit: 12000n, refund: 0n }],
    ["nothing said on a partly paid invoice: the part paid", null, null, 12000n, 5000n, { credit: 5000n, refund: 0n }],
    ["nothing said on an unpaid invoice: nothing is credited", null, null, 12000n, 0n, { credit: 0n, refund: 0n }],
    ["a refund within what was paid, the rest credited", 1000n, 5000n, 12000n, 12000n, { credit: 1000n, refund: 5000n }],
    ["a refund over what was paid", null, 1n, 12000n, 0n, ["refund_amount"]],
    ["credit and refund over what may be credited", 6001n, 6000n, 12000n, 12000n, ["credit_amount"]],
    ["less than the total: allowed (the rest goes on a voided note)", 100n, null, 12000n, 0n, { credit: 100n, refund: 0n }],
  ])("%s", (_, credit, refund, max, refundable, expected) => {
    const r = voidSplit({ creditAmountCents: credit, refundAmountCents: refund }, max, refundable);
    if (Array.isArray(expected)) expect(r.ok ? [] : Object.keys(r.errors)).toEqual(expected);
    else expect(r).toEqual({ ok: true, ...expected });
  });
});

describe("items for a note of a given total", () => {
  it("the whole total takes every fee's rest exactly", () => {
    const fees = [fee(1, 10000n), fee(2, 615n, { creditedCents: 15n })];
    expect(itemsForTotal(fees, 1_000_000n).map((i) => i.amountCents)).toEqual([10000n, 600n]);
  });

  it("a part is taken pro rata and lands on the target when a cent fits", () => {
    // 100.00 and 50.00 at 20 %: 180.00 in all; 60.00 is a third of each.
    const items = itemsForTotal([fee(1, 10000n), fee(2, 5000n)], 6000n);
    expect(items.map((i) => i.amountCents)).toEqual([3334n, 1666n]);
    expect(totalOf(items)).toBe(6000n);
  });

  it("never goes over the target: 33.33 at 20 % is 33.32 (27.77 + 5.55), not 33.34", () => {
    const items = itemsForTotal([fee(1, 10000n)], 3333n);
    expect(items.map((i) => i.amountCents)).toEqual([2777n]);
    expect(totalOf(items)).toBe(3332n);
  });

  it.each([1n, 7n, 99n, 1234n, 5999n, 10666n])("a target of %s cents is reached or approached from below within 2 cents", (target) => {
    // 33.34 + 6.67 VAT + 66.66 untaxed = 106.67 in all.
    const fees = [fee(1, 3333n), fee(2, 1n), fee(3, 6666n, { taxes: [] })];
    const total = totalOf(itemsForTotal(fees, target));
    expect(total <= target && total >= target - 2n).toBe(true);
  });

  it("what is left after a note is the rest of each fee", () => {
    const fees = [fee(1, 10000n), fee(2, 5000n)];
    const first = itemsForTotal(fees, 6000n);
    const rest = remainingItems(afterItems(fees, first));
    expect(rest.map((i) => i.amountCents)).toEqual([6666n, 3334n]);
    expect(totalOf(first) + totalOf(rest)).toBe(18000n);
  });
});
