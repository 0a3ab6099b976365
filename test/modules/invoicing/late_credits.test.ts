import { describe, expect, it } from "vitest";
import type { FeeDraft } from "../../../src/modules/invoicing/core/fees.ts";
import { lateCreditsOf } from "../../../src/modules/invoicing/late_events.ts";

const draft = (over: Partial<FeeDraft>): FeeDraft => ({ amountDetails: {}, ...over }) as FeeDraft;
const ref = (adjustedFeeId: number | null) => ({ billedAt: new Date(0), eventsAfter: new Date(0), adjustedFeeId });

describe("the credits an invoice's late-event notes owe back", () => {
  it("a note with credit due on an earlier fee is a credit on that fee", () => {
    const fees = [
      draft({ amountDetails: { late_events: { credit_due_cents: 200 } }, lateAdjustment: ref(7) }),
      draft({ amountDetails: { late_events: { credit_due_cents: 0 } }, lateAdjustment: ref(8) }),
      draft({ amountDetails: { plan_amount_cents: 1000 } }),
      // A bucket the period never billed has no fee to credit.
      draft({ amountDetails: { late_events: { credit_due_cents: 50 } }, lateAdjustment: ref(null) }),
    ];
    expect(lateCreditsOf(fees)).toEqual([{ feeId: 7, amountCents: 200n }]);
  });
});
