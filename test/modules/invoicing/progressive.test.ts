import { describe, expect, it } from "vitest";
import { computeInvoice, crossedThresholds, spreadCredit } from "../../../src/modules/invoicing/core/index.ts";
import { threshold } from "../catalog/helpers.ts";
import type { Tax } from "../../../src/modules/taxes/core/tax.ts";
import { d } from "../../../src/shared/money.ts";

// Lago's guide, "Progressive billing": steps at $5, $50 and $100, then every $50.
const STEPS = [threshold("s1", 500n), threshold("s2", 5000n), threshold("s3", 10000n), threshold("r", 5000n, true)];
const crossed = (usage: bigint, applied: [string, number][] = []) =>
  crossedThresholds(STEPS, usage, new Map(applied)).map((c) => `${c.threshold.lagoId}:${c.step}`);

describe("which usage thresholds a period's usage so far crosses", () => {
  it.each([
    ["$4.99 crosses nothing", 499n, [], []],
    ["$5 reaches the first step", 500n, [], ["s1:0"]],
    ["$60 reaches the first two steps at once (one invoice covers both)", 6000n, [], ["s1:0", "s2:0"]],
    ["$60 after the first step was billed: only the second", 6000n, [["s1", 0]], ["s2:0"]],
    ["$100 with the first two billed: the third", 10000n, [["s1", 0], ["s2", 0]], ["s3:0"]],
    ["$149.99 past every step: the recurring one is not reached yet", 14999n, [["s1", 0], ["s2", 0], ["s3", 0]], []],
    ["$150: the recurring threshold's first step ($100 + $50)", 15000n, [["s1", 0], ["s2", 0], ["s3", 0]], ["r:1"]],
    ["$260 after its first step: its third ($100 + 3 × $50 = $250), as one crossing", 26000n, [["s1", 0], ["s2", 0], ["s3", 0], ["r", 1]], ["r:3"]],
    ["$260 with step 3 already billed: nothing", 26000n, [["s1", 0], ["s2", 0], ["s3", 0], ["r", 3]], []],
  ] as [string, bigint, [string, number][], string[]][])("%s", (_name, usage, applied, expected) => {
    expect(crossed(usage, applied)).toEqual(expected);
  });

  it("a plan with only a recurring threshold counts from zero", () => {
    expect(crossedThresholds([threshold("r", 1000n, true)], 3500n, new Map()).map((c) => c.step)).toEqual([3]);
  });
});

describe("the progressive billing credit comes off the fees before coupons and taxes", () => {
  it.each([
    ["spread in proportion", 300n, [100n, 200n], [100n, 200n]],
    ["in proportion, the odd cent to the first fee with room", 100n, [100n, 200n], [34n, 66n]],
    ["never more than the fees", 1000n, [100n, 200n], [100n, 200n]],
    ["nothing to spread", 0n, [100n], [0n]],
  ])("%s", (_name, credit, amounts, expected) => {
    expect(spreadCredit(credit, amounts)).toEqual(expected);
  });

  it("€90 of usage with €40 billed progressively and 20 % VAT: €50 taxed, €60 due", () => {
    const vat = { id: 1, lagoId: "t", code: "vat", name: "VAT", rate: d("20"), description: null, appliedToOrganization: true, orgId: 1, createdAt: new Date(0) } as Tax;
    const result = computeInvoice({ fees: [{ amountCents: 9000n, planCode: "p", metricCode: "calls", taxes: [vat] }], progressiveCreditCents: 4000n });
    expect(result.totals).toMatchObject({
      feesAmountCents: 9000n,
      progressiveBillingCreditAmountCents: 4000n,
      subTotalExcludingTaxesAmountCents: 5000n,
      taxesAmountCents: 1000n,
      totalAmountCents: 6000n,
    });
  });
});
