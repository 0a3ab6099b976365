// Coupons → taxes → credit notes → prepaid credits on one invoice (computeInvoice), worked by hand.
import { describe, expect, it } from "vitest";
import type { CouponTerms } from "../../../src/modules/coupons/core/apply.ts";
import { computeInvoice, type BillableFee } from "../../../src/modules/invoicing/core/index.ts";
import type { Tax } from "../../../src/modules/taxes/index.ts";
import { d } from "../../../src/shared/money.ts";

const tax = (id: number, code: string, rate: string): Tax => ({
  id,
  orgId: 1,
  lagoId: `00000000-0000-4000-8000-00000000000${id}`,
  code,
  name: code,
  description: null,
  rate: d(rate),
  appliedToOrganization: false,
  createdAt: new Date(0),
});
const vat = tax(1, "vat", "20");
const low = tax(2, "low", "10");

const coupon = (id: number, over: Partial<CouponTerms>): CouponTerms => ({
  appliedCouponId: id,
  couponType: "fixed_amount",
  amountCents: null,
  percentageRate: null,
  frequency: "forever",
  frequencyDurationRemaining: null,
  amountCentsRemaining: null,
  planCodes: [],
  billableMetricCodes: [],
  ...over,
});

const fee = (amountCents: bigint, over: Partial<BillableFee> = {}): BillableFee => ({
  amountCents,
  planCode: "growth",
  metricCode: null,
  taxes: [vat],
  ...over,
});

describe("coupons, then taxes, then credit notes, then prepaid credits", () => {
  it("the worked example: a 10.00 coupon, 20 % VAT, a 5.00 credit note, a wallet of 200.00", () => {
    // Fees: subscription 100.00 + usage 23.45 = 123.45.
    // Coupon 10.00 spread pro rata: 1000 × 10000/12345 = 810.0445… and 1000 × 2345/12345 = 189.9554…
    // Tax bases: 9189.9554… and 2155.0445…; fee taxes (20 %) 1837.99 → 1838 and 431.01 → 431.
    // Invoice VAT: (12345 − 1000) × 20 % = 2269. Sub total excl. 113.45, incl. 136.14.
    // Credit note: 5.00 → 131.14 left; wallet: 131.14 of its 200.00; total due 0.
    const r = computeInvoice({
      fees: [fee(10000n), fee(2345n, { metricCode: "calls" })],
      coupons: [coupon(7, { amountCents: 1000n })],
      creditNotes: [{ id: 3, balanceCents: 500n }],
      wallets: [{ id: 9, balanceCents: 20000n }],
    });
    expect(r.fees.map((f) => f.couponsPreciseCents.toFixed(4))).toEqual(["810.0446", "189.9554"]);
    expect(r.fees.map((f) => f.taxes.amountCents)).toEqual([1838n, 431n]);
    expect(r.appliedTaxes.map((t) => [t.tax.code, t.feesAmountCents, t.amountCents])).toEqual([["vat", 11345n, 2269n]]);
    expect(r.couponCredits).toEqual([{ appliedCouponId: 7, amountCents: 1000n, amountCentsRemaining: null, frequencyDurationRemaining: null, exhausted: false }]);
    expect(r.creditNoteCredits).toEqual([{ id: 3, amountCents: 500n }]);
    expect(r.walletDebits).toEqual([{ id: 9, amountCents: 13114n }]);
    expect(r.totals).toMatchObject({
      feesAmountCents: 12345n,
      couponsAmountCents: 1000n,
      subTotalExcludingTaxesAmountCents: 11345n,
      taxesAmountCents: 2269n,
      subTotalIncludingTaxesAmountCents: 13614n,
      creditNotesAmountCents: 500n,
      prepaidCreditAmountCents: 13114n,
      totalAmountCents: 0n,
    });
  });

  it("a percentage coupon is taken on what the earlier coupons left, and taxes on what both left", () => {
    // 200.00 of fees; first 50.00 fixed → 150.00 left; then 10 % of it = 15.00 → 135.00; 20 % VAT = 27.00.
    const r = computeInvoice({
      fees: [fee(20000n)],
      coupons: [coupon(1, { amountCents: 5000n }), coupon(2, { couponType: "percentage", percentageRate: d(10) })],
    });
    expect(r.couponCredits.map((c) => c.amountCents)).toEqual([5000n, 1500n]);
    expect(r.totals).toMatchObject({ couponsAmountCents: 6500n, subTotalExcludingTaxesAmountCents: 13500n, taxesAmountCents: 2700n, totalAmountCents: 16200n });
  });

  it("a coupon limited to a metric only discounts that metric's fees, and only their taxes change", () => {
    // Subscription 100.00 (VAT 20 %), calls 30.00 (10 %): 50 % on calls only → 15.00 off calls.
    // Taxes: 10000 × 20 % = 2000 and (3000 − 1500) × 10 % = 150.
    const r = computeInvoice({
      fees: [fee(10000n), fee(3000n, { metricCode: "calls", taxes: [low] })],
      coupons: [coupon(1, { couponType: "percentage", percentageRate: d(50), billableMetricCodes: ["calls"] })],
    });
    expect(r.fees.map((f) => f.couponsPreciseCents.toString())).toEqual(["0", "1500"]);
    expect(r.appliedTaxes.map((t) => [t.tax.code, t.amountCents])).toEqual([["vat", 2000n], ["low", 150n]]);
    expect(r.totals.totalAmountCents).toBe(13000n - 1500n + 2150n);
  });

  it("a coupon limited to plans the invoice does not bill takes nothing", () => {
    const r = computeInvoice({ fees: [fee(10000n)], coupons: [coupon(1, { amountCents: 100n, planCodes: ["other"] })] });
    expect(r.couponCredits).toEqual([]);
    expect(r.totals.couponsAmountCents).toBe(0n);
  });

  it("a fixed coupon larger than the invoice is capped at the fees; a once coupon keeps the rest for later", () => {
    const r = computeInvoice({ fees: [fee(3000n)], coupons: [coupon(1, { amountCents: 5000n, frequency: "once", amountCentsRemaining: 5000n })] });
    expect(r.couponCredits).toEqual([{ appliedCouponId: 1, amountCents: 3000n, amountCentsRemaining: 2000n, frequencyDurationRemaining: null, exhausted: false }]);
    expect(r.totals).toMatchObject({ subTotalExcludingTaxesAmountCents: 0n, taxesAmountCents: 0n, totalAmountCents: 0n });
  });

  it.each<[string, Partial<CouponTerms>, Partial<ReturnType<typeof computeInvoice>["couponCredits"][number]>]>([
    ["a once fixed coupon used up", { amountCents: 1000n, frequency: "once", amountCentsRemaining: 400n }, { amountCents: 400n, amountCentsRemaining: 0n, exhausted: true }],
    ["a once percentage coupon ends after one invoice", { couponType: "percentage", percentageRate: d(10), frequency: "once" }, { amountCents: 1000n, exhausted: true }],
    ["a recurring coupon counts its periods down", { amountCents: 100n, frequency: "recurring", frequencyDurationRemaining: 3 }, { frequencyDurationRemaining: 2, exhausted: false }],
    ["a recurring coupon on its last period ends", { amountCents: 100n, frequency: "recurring", frequencyDurationRemaining: 1 }, { frequencyDurationRemaining: 0, exhausted: true }],
    ["a forever coupon never ends", { amountCents: 100n, frequency: "forever" }, { amountCents: 100n, exhausted: false }],
  ])("%s", (_name, terms, expected) => {
    const r = computeInvoice({ fees: [fee(10000n)], coupons: [coupon(1, terms)] });
    expect(r.couponCredits[0]).toMatchObject(expected);
  });

  it("a percentage rounds half-up to the minor unit", () => {
    // 12.5 % of 1.01 = 0.12625 → 0.13.
    const r = computeInvoice({ fees: [fee(101n, { taxes: [] })], coupons: [coupon(1, { couponType: "percentage", percentageRate: d("12.5") })] });
    expect(r.couponCredits[0]!.amountCents).toBe(13n);
  });

  it("credit notes are drawn oldest first, then wallets in order, each capped at what is left", () => {
    // 100.00 + 20 % = 120.00; credit notes 70.00 then 80.00 (only 50.00 of it); nothing left for the wallet.
    const r = computeInvoice({
      fees: [fee(10000n)],
      creditNotes: [
        { id: 1, balanceCents: 7000n },
        { id: 2, balanceCents: 8000n },
      ],
      wallets: [{ id: 5, balanceCents: 1000n }],
    });
    expect(r.creditNoteCredits).toEqual([
      { id: 1, amountCents: 7000n },
      { id: 2, amountCents: 5000n },
    ]);
    expect(r.walletDebits).toEqual([]);
    expect(r.totals.totalAmountCents).toBe(0n);
  });

  it("credit notes and prepaid credits never lower the taxes (they come after them)", () => {
    const r = computeInvoice({ fees: [fee(10000n)], wallets: [{ id: 1, balanceCents: 2500n }, { id: 2, balanceCents: 100000n }] });
    expect(r.totals).toMatchObject({ taxesAmountCents: 2000n, prepaidCreditAmountCents: 12000n, totalAmountCents: 0n });
    expect(r.walletDebits).toEqual([
      { id: 1, amountCents: 2500n },
      { id: 2, amountCents: 9500n },
    ]);
  });
});
