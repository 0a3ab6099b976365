import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { d } from "../../../src/shared/money.ts";
import {
  BILLING_TIMES,
  type BillingSchedule,
  PLAN_INTERVALS,
  type PlanEnd,
  closedPeriods,
  monthlyChargePeriods,
  nextPeriod,
  periodAt,
  previousPeriod,
  proratedFee,
  trialEndsAt,
  unusedCredit,
  unusedDays,
  usedDays,
  usedFee,
} from "../../../src/modules/billing/core/index.ts";

// Zones with negative, positive, half- and quarter-hour offsets, DST in either hemisphere,
// a 30-minute DST shift (Lord Howe), midnight skipped by DST (Santiago, Havana) and the 00:01
// transitions that turned clocks back across midnight (Goose Bay before 2011).
const timezone = fc.constantFrom(
  "UTC",
  "America/New_York",
  "Asia/Kolkata",
  "Europe/Paris",
  "Asia/Kathmandu",
  "Australia/Lord_Howe",
  "Pacific/Chatham",
  "America/Santiago",
  "America/Havana",
  "America/Goose_Bay",
  "Pacific/Kiritimati",
);
const MIN = Date.UTC(1990, 0, 1);
const MAX = Date.UTC(2090, 0, 1);
const instant = fc.integer({ min: MIN, max: MAX }).map((ms) => new Date(ms));
const billingSchedule: fc.Arbitrary<BillingSchedule> = fc.record({
  subscriptionAt: instant,
  timezone,
  interval: fc.constantFrom(...PLAN_INTERVALS),
  billingTime: fc.constantFrom(...BILLING_TIMES),
});
const amount = fc
  .tuple(fc.integer({ min: 0, max: 10_000_000 }), fc.integer({ min: 0, max: 6 }))
  .map(([n, scale]) => d(n).div(d(10).pow(scale)));

const DAYS = { weekly: [7, 7], monthly: [28, 31], quarterly: [89, 92], yearly: [365, 366] } as const;
const ms = (date: Date) => date.getTime();

describe("billing periods", () => {
  it("the period of an instant contains it, and its neighbours meet it with no gap or overlap", () => {
    fc.assert(
      fc.property(billingSchedule, instant, (s, at) => {
        const p = periodAt(s, at);
        expect(ms(p.start) <= ms(at) && ms(at) < ms(p.end)).toBe(true);
        expect([ms(p.from), ms(p.to)]).toEqual([ms(p.start), ms(p.end) - 1]);
        const [min, max] = DAYS[s.interval];
        expect(p.days >= min && p.days <= max).toBe(true);
        expect(ms(nextPeriod(s, p).start)).toBe(ms(p.end));
        expect(ms(previousPeriod(s, p).end)).toBe(ms(p.start));
        expect(periodAt(s, p.start)).toEqual(p);
        expect(periodAt(s, p.to)).toEqual(p);
      }),
    );
  });

  it("the periods a billing job closes tile its window, and split runs close each period once", () => {
    fc.assert(
      fc.property(billingSchedule, instant, fc.integer({ min: 0, max: 800 }), fc.double({ min: 0, max: 1, noNaN: true }), (s, after, days, cut) => {
        const through = new Date(ms(after) + days * 86_400_000);
        const middle = new Date(ms(after) + Math.floor(cut * days * 86_400_000));
        const closed = closedPeriods(s, after, through);
        for (const p of closed) {
          expect(ms(p.end) > ms(after) && ms(p.end) <= ms(through)).toBe(true);
          expect(ms(p.end) > ms(s.subscriptionAt as Date)).toBe(true);
        }
        closed.slice(1).forEach((p, i) => expect(ms(p.start)).toBe(ms(closed[i]?.end ?? p.start)));
        expect([...closedPeriods(s, after, middle), ...closedPeriods(s, middle, through)]).toEqual(closed);
      }),
      { numRuns: 50 },
    );
  });

  it("monthly charge periods tile a quarterly or yearly period", () => {
    const longPlan = billingSchedule.filter((s) => s.interval === "quarterly" || s.interval === "yearly");
    fc.assert(
      fc.property(longPlan, instant, (s, at) => {
        const plan = periodAt(s, at);
        const months = monthlyChargePeriods(s, plan);
        expect(months.length).toBe(s.interval === "yearly" ? 12 : 3);
        expect(ms(months[0]?.start ?? plan.end)).toBe(ms(plan.start));
        expect(ms(months[months.length - 1]?.end ?? plan.start)).toBe(ms(plan.end));
        months.slice(1).forEach((p, i) => expect(ms(p.start)).toBe(ms(months[i]?.end ?? p.start)));
        expect(months.reduce((total, p) => total + p.days, 0)).toBe(plan.days);
      }),
    );
  });
});

describe("proration", () => {
  const trial = fc.option(fc.integer({ min: 0, max: 400 }), { nil: undefined });

  it("a prorated fee is never negative and never exceeds the full fee", () => {
    fc.assert(
      fc.property(billingSchedule, instant, amount, instant, instant, trial, (s, at, fee, from, to, trialDays) => {
        const p = periodAt(s, at);
        const options = { trialEndsAt: trialDays === undefined ? undefined : trialEndsAt(s.subscriptionAt, trialDays, s.timezone) };
        const prorated = proratedFee(fee, p, from, to, options);
        expect(prorated.gte(0) && prorated.lte(fee)).toBe(true);
      }),
    );
  });

  it("proration over a whole period equals the full fee, exactly", () => {
    fc.assert(
      fc.property(billingSchedule, instant, amount, (s, at, fee) => {
        const p = periodAt(s, at);
        expect(proratedFee(fee, p, p.from, p.to).eq(fee)).toBe(true);
        expect(proratedFee(fee, p, new Date(ms(p.from) - 86_400_000 * 40), new Date(ms(p.to) + 86_400_000 * 40)).eq(fee)).toBe(true);
      }),
    );
  });

  it("the used and the unused parts of a period add up to the period, whatever ends the plan", () => {
    const where = fc.double({ min: 0, max: 1, noNaN: true, maxExcluded: true });
    const planEnd = fc.constantFrom<PlanEnd[]>("termination", "upgrade");
    fc.assert(
      fc.property(billingSchedule, instant, amount, where, planEnd, (s, at, fee, fraction, end) => {
        const p = periodAt(s, at);
        const endedAt = new Date(ms(p.start) + Math.floor(fraction * (ms(p.end) - ms(p.start))));
        expect(usedDays(p, p.from, endedAt, end) + unusedDays(p, endedAt, end)).toBe(p.days);
        const total = usedFee(fee, p, p.from, endedAt, end).plus(unusedCredit(fee, p, endedAt, end));
        // Each part is exact to 40 significant digits; together they are the fee to within that.
        expect(total.minus(fee).abs().lte(d("1e-30"))).toBe(true);
      }),
    );
  });
});
