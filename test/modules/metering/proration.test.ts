import { describe, expect, it } from "vitest";
import { d } from "../../../src/shared/money.ts";
import {
  type UniqueEvent,
  type UsageWindow,
  dayIndex,
  prorationDays,
  proratedSum,
  proratedUniqueCount,
  usageWindowAt,
} from "../../../src/modules/metering/core/index.ts";
import { at, us } from "./helpers.ts";

// April 2026 has 30 days: a day is worth 1/30 of a unit.
function april(opts: { start?: string; terminated?: string; timezone?: string } = {}): UsageWindow {
  const w = usageWindowAt(
    {
      subscriptionAt: at(opts.start ?? "2026-01-01T00:00:00Z"),
      startedAt: null,
      terminatedAt: opts.terminated === undefined ? null : at(opts.terminated),
      billingTime: "calendar",
      timezone: opts.timezone ?? "UTC",
    },
    { interval: "monthly", billChargesMonthly: null },
    at(opts.terminated === undefined ? "2026-04-15T12:00:00Z" : opts.terminated),
  );
  if (w === null) throw new Error("no window");
  return w;
}

let seq = 0;
const add = (value: string, iso: string): UniqueEvent => ({ value, removes: false, tsUs: us(iso), createdUs: 0, transactionId: `t${++seq}` });
const remove = (value: string, iso: string): UniqueEvent => ({ ...add(value, iso), removes: true });
const sumEvent = (value: string, iso: string) => ({ value: d(value), tsUs: us(iso), createdUs: 0, transactionId: `t${++seq}` });

describe("the days of a window", () => {
  it("a month has its days; an instant before it is -1, its last instant the last day", () => {
    const days = prorationDays(april());
    expect([days.starts.length, days.periodDays]).toEqual([30, 30]);
    expect(dayIndex(days, Date.parse("2026-03-31T23:59:59Z"))).toBe(-1);
    expect(dayIndex(days, Date.parse("2026-04-10T00:00:00Z"))).toBe(9);
    expect(dayIndex(days, Date.parse("2026-04-30T23:59:59.999Z"))).toBe(29);
  });

  it("days are the customer's: in Paris April starts at 22:00 UTC on March 31st", () => {
    const days = prorationDays(april({ timezone: "Europe/Paris" }));
    expect(days.starts.length).toBe(30);
    expect(dayIndex(days, Date.parse("2026-03-31T21:59:59Z"))).toBe(-1);
    expect(dayIndex(days, Date.parse("2026-04-09T22:30:00Z"))).toBe(9); // April 10th, 00:30 in Paris
  });
});

describe("a prorated unique count (seats)", () => {
  it.each<[string, UniqueEvent[], string, string]>([
    ["a seat present all month counts 1", [add("a", "2026-02-10T00:00:00Z")], "1", "1"],
    ["a seat added on day 10 counts 21/30 (its first day included)", [add("a", "2026-04-10T18:00:00Z")], "1", "0.7"],
    ["a seat removed on day 20 counts 20/30 (its last day included)", [add("a", "2026-03-02T00:00:00Z"), remove("a", "2026-04-20T08:00:00Z")], "0", "0.66667"],
    ["a seat added and removed the same day counts 1/30", [add("a", "2026-04-07T01:00:00Z"), remove("a", "2026-04-07T02:00:00Z")], "0", "0.03334"],
    ["removed and added back the same day counts that day once", [add("a", "2026-04-05T00:00:00Z"), remove("a", "2026-04-10T09:00:00Z"), add("a", "2026-04-10T17:00:00Z")], "1", "0.86667"],
    ["a seat added again while present keeps its first day", [add("a", "2026-04-10T00:00:00Z"), add("a", "2026-04-15T00:00:00Z")], "1", "0.7"],
    ["removing an absent seat changes nothing", [remove("a", "2026-04-03T00:00:00Z"), add("a", "2026-04-10T00:00:00Z")], "1", "0.7"],
    ["a seat gone before the month counts nothing", [add("a", "2026-03-01T00:00:00Z"), remove("a", "2026-03-05T00:00:00Z")], "0", "0"],
    [
      "seats add up: all month, from day 10, and days 5 to 20 are 1 + 21/30 + 16/30",
      [add("a", "2026-03-01T00:00:00Z"), add("b", "2026-04-10T00:00:00Z"), add("c", "2026-04-05T00:00:00Z"), remove("c", "2026-04-20T00:00:00Z")],
      "2",
      "2.23334",
    ],
  ])("%s", (_case, events, full, prorated) => {
    const r = proratedUniqueCount(events, prorationDays(april()));
    expect([r.units.toString(), r.proration.units.toString()]).toEqual([full, prorated]);
  });

  it("a subscription started on day 10 counts a carried-over seat from its first day: 21/30", () => {
    const r = proratedUniqueCount([add("a", "2026-03-01T00:00:00Z")], prorationDays(april({ start: "2026-04-10T15:00:00Z" })));
    expect(r.proration.units.toString()).toBe("0.7");
  });

  it("a subscription terminated on day 20 counts a seat to its termination day: 20/30", () => {
    const w = april({ terminated: "2026-04-20T15:00:00Z" });
    expect(proratedUniqueCount([add("a", "2026-03-01T00:00:00Z")], prorationDays(w)).proration.units.toString()).toBe("0.66667");
  });

  it("days are counted in the customer's timezone", () => {
    // 23:30 UTC on April 9th is April 10th in Paris: 21 days.
    const r = proratedUniqueCount([add("a", "2026-04-09T23:30:00Z")], prorationDays(april({ timezone: "Europe/Paris" })));
    expect(r.proration.units.toString()).toBe("0.7");
  });

  it("slices follow the stream: each add with its share, each remove with none", () => {
    const r = proratedUniqueCount([add("a", "2026-04-01T00:00:00Z"), add("b", "2026-04-16T00:00:00Z"), remove("a", "2026-04-10T00:00:00Z")], prorationDays(april()));
    expect(r.proration.slices.map((s) => [s.full.toString(), s.prorated.toDecimalPlaces(5).toString()])).toEqual([
      ["1", "0.33333"], // a: days 1–10
      ["-1", "0"],
      ["1", "0.5"], // b: days 16–30
    ]);
  });
});

describe("a prorated recurring sum", () => {
  it.each<[string, string, ReturnType<typeof sumEvent>[], string, string]>([
    ["what was held when the month opened counts in full", "3", [], "3", "3"],
    ["+1 on day 10 counts 21/30", "0", [sumEvent("1", "2026-04-10T12:00:00Z")], "1", "0.7"],
    ["−1 on day 20 stops after that day: 20/30 of the unit", "1", [sumEvent("-1", "2026-04-20T12:00:00Z")], "0", "0.66667"],
    ["+1 and −1 the same day count one day", "0", [sumEvent("1", "2026-04-07T01:00:00Z"), sumEvent("-1", "2026-04-07T05:00:00Z")], "0", "0.03334"],
    ["2 held, +1 on day 10, −1 on day 20: 2 + 21/30 − 10/30", "2", [sumEvent("1", "2026-04-10T00:00:00Z"), sumEvent("-1", "2026-04-20T00:00:00Z")], "2", "2.36667"],
    ["a sum that falls below zero bills nothing", "0", [sumEvent("-5", "2026-04-02T00:00:00Z")], "-5", "0"],
  ])("%s", (_case, initial, events, full, prorated) => {
    const r = proratedSum(d(initial), events, prorationDays(april()));
    expect([r.units.toString(), r.proration.units.toString()]).toEqual([full, prorated]);
    expect(r.eventsCount).toBe(events.length);
  });

  it("a subscription started on day 10 counts what it found for its 21 days", () => {
    expect(proratedSum(d(2), [], prorationDays(april({ start: "2026-04-10T00:00:00Z" }))).proration.units.toString()).toBe("1.4");
  });
});
