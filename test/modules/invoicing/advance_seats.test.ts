import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { NO_SEATS, type SeatsHeld, billsSeats, carriedIntoNextPeriod, seatChange, seatsCarriedIn } from "../../../src/modules/invoicing/core/advance_recurring.ts";
import { Decimal } from "../../../src/shared/money.ts";

const c = (recurring: boolean, aggregationType: "sum_agg" | "unique_count_agg" | "count_agg", payInAdvance = true) => ({
  prorated: false,
  payInAdvance,
  metric: { recurring, aggregationType },
});

const seats = (held: number, paid: number, eventsCount = 0): SeatsHeld => ({ held: new Decimal(held), paid: new Decimal(paid), eventsCount });
const shown = (s: SeatsHeld) => [s.held.toNumber(), s.paid.toNumber(), s.eventsCount];

describe("which charges bill seats", () => {
  it("recurring unique counts paid in advance bill seats and carry them into the next period", () => {
    expect(billsSeats(c(true, "unique_count_agg"))).toBe(true);
    expect(carriedIntoNextPeriod(c(true, "unique_count_agg"))).toBe(true);
  });

  it.each([
    ["a metered unique count", c(false, "unique_count_agg")],
    ["a recurring unique count in arrears", c(true, "unique_count_agg", false)],
    ["a recurring sum", c(true, "sum_agg")],
    ["a count", c(false, "count_agg")],
  ])("%s does not bill seats", (_name, charge) => expect(billsSeats(charge)).toBe(false));

  it("recurring sums still carry over; metered metrics do not", () => {
    expect(carriedIntoNextPeriod(c(true, "sum_agg"))).toBe(true);
    expect(carriedIntoNextPeriod(c(false, "sum_agg"))).toBe(false);
    expect(carriedIntoNextPeriod(c(false, "unique_count_agg"))).toBe(false);
  });
});

describe("a seat event over the period's seats", () => {
  it.each<[string, SeatsHeld, -1 | 0 | 1, number[], number]>([
    ["the first seat of a period is paid", NO_SEATS, 1, [1, 1, 1], 1],
    ["a seat above the most held so far is paid", seats(2, 2, 2), 1, [3, 3, 3], 1],
    ["a removal lowers the count, refunds nothing and keeps what was paid", seats(2, 2, 2), -1, [1, 2, 3], 0],
    ["a seat added back under the most held is paid already", seats(1, 2, 3), 1, [2, 2, 4], 0],
    ["an add of a held value or a remove of one not held changes nothing", seats(2, 3, 4), 0, [2, 3, 5], 0],
    ["the count never goes below zero", NO_SEATS, -1, [0, 0, 1], 0],
  ])("%s", (_name, before, change, after, newlyPaid) => {
    const r = seatChange(before, change);
    expect(shown(r.after)).toEqual(after);
    expect(r.newlyPaid.toNumber()).toBe(newlyPaid);
  });

  it("a period starts from the seats held when the one before ended, already paid", () => {
    expect(shown(seatsCarriedIn(new Decimal(3)))).toEqual([3, 3, 0]);
    expect(seatsCarriedIn(null)).toBe(NO_SEATS);
    expect(seatsCarriedIn(new Decimal(0))).toBe(NO_SEATS);
  });

  it("over any sequence of adds and removes, the seats paid add up to the most held at once, one at a time", () => {
    fc.assert(
      fc.property(fc.nat(5), fc.array(fc.constantFrom<-1 | 0 | 1>(-1, 0, 1), { maxLength: 60 }), (carried, changes) => {
        let s = seatsCarriedIn(new Decimal(carried));
        let paid = 0;
        let held = carried;
        let most = carried;
        for (const change of changes) {
          const r = seatChange(s, change);
          expect([0, 1]).toContain(r.newlyPaid.toNumber());
          held = Math.max(0, held + change);
          most = Math.max(most, held);
          paid += r.newlyPaid.toNumber();
          s = r.after;
        }
        expect(s.held.toNumber()).toBe(held);
        expect(s.paid.toNumber()).toBe(most);
        expect(paid).toBe(most - carried);
      }),
    );
  });
});
