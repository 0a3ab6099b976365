import { describe, expect, it } from "vitest";
import {
  type BillingSchedule,
  activeWindow,
  chargeSchedule,
  closedPeriods,
  firstPeriod,
  isTimezone,
  monthlyChargePeriods,
  nextPeriod,
  periodAt,
  previousPeriod,
} from "../../../src/modules/billing/core/index.ts";
import { iso, schedule, span } from "./helpers.ts";

/** The first `count` periods of a subscription, in order. */
function periods(s: BillingSchedule, count: number): string[] {
  const out = [firstPeriod(s)];
  while (out.length < count) out.push(nextPeriod(s, out[out.length - 1] ?? firstPeriod(s)));
  return out.map(span);
}

describe("calendar periods", () => {
  it.each([
    ["a weekly period runs Monday to Sunday", "weekly", "2024-01-17T12:00:00Z", "2024-01-15..2024-01-21 (7)"],
    ["Sunday's last millisecond is still in the week", "weekly", "2024-01-21T23:59:59.999Z", "2024-01-15..2024-01-21 (7)"],
    ["Monday midnight opens the next week", "weekly", "2024-01-22T00:00:00Z", "2024-01-22..2024-01-28 (7)"],
    ["a week may straddle two years", "weekly", "2024-12-31T08:00:00Z", "2024-12-30..2025-01-05 (7)"],
    ["a monthly period runs from the 1st", "monthly", "2024-07-14T00:00:00Z", "2024-07-01..2024-07-31 (31)"],
    ["February of a leap year has 29 days", "monthly", "2024-02-15T00:00:00Z", "2024-02-01..2024-02-29 (29)"],
    ["February of a common year has 28 days", "monthly", "2023-02-15T00:00:00Z", "2023-02-01..2023-02-28 (28)"],
    ["the first quarter runs January to March", "quarterly", "2024-02-15T00:00:00Z", "2024-01-01..2024-03-31 (91)"],
    ["the second quarter starts in April", "quarterly", "2024-05-01T00:00:00Z", "2024-04-01..2024-06-30 (91)"],
    ["the third quarter starts in July", "quarterly", "2024-08-31T23:00:00Z", "2024-07-01..2024-09-30 (92)"],
    ["the fourth quarter starts in October", "quarterly", "2024-11-30T00:00:00Z", "2024-10-01..2024-12-31 (92)"],
    ["a yearly period runs from January 1st", "yearly", "2023-07-01T00:00:00Z", "2023-01-01..2023-12-31 (365)"],
    ["a leap year has 366 days", "yearly", "2024-07-01T00:00:00Z", "2024-01-01..2024-12-31 (366)"],
  ] as const)("%s", (_case, interval, at, expected) => {
    expect(span(periodAt(schedule("2022-03-09T10:00:00Z", interval, "calendar"), at))).toBe(expected);
  });

  it("follows Lago's July 14th example: the first invoice covers July 14–31, the next all of August", () => {
    const s = schedule("2024-07-14T00:00:00Z", "monthly", "calendar");
    const first = firstPeriod(s);
    expect(span(first)).toBe("2024-07-01..2024-07-31 (31)");
    const billed = activeWindow(first, s.subscriptionAt);
    expect([billed?.from, billed?.to].map((x) => x && iso(x))).toEqual(["2024-07-14T00:00:00.000Z", "2024-07-31T23:59:59.999Z"]);
    expect(span(nextPeriod(s, first))).toBe("2024-08-01..2024-08-31 (31)");
  });
});

describe("anniversary periods", () => {
  it.each([
    ["a weekly period starts on the subscription's weekday", "weekly", "2024-01-23T23:00:00Z", "2024-01-17..2024-01-23 (7)"],
    ["the next week starts on the same weekday", "weekly", "2024-01-24T00:00:00Z", "2024-01-24..2024-01-30 (7)"],
    ["weeks keep their weekday across months", "weekly", "2024-03-01T00:00:00Z", "2024-02-28..2024-03-05 (7)"],
    ["Lago's example: an August 10th subscription is billed from the 10th to the 9th", "monthly", "2022-08-10T12:00:00Z", "2022-08-10..2022-09-09 (31)"],
    ["a monthly period ends the day before the next anniversary", "monthly", "2022-09-09T23:59:59.999Z", "2022-08-10..2022-09-09 (31)"],
    ["the anniversary day opens the next month", "monthly", "2022-09-10T00:00:00Z", "2022-09-10..2022-10-09 (30)"],
    ["a quarterly period lasts three anniversary months", "quarterly", "2022-08-10T12:00:00Z", "2022-08-10..2022-11-09 (92)"],
    ["quarters keep the anniversary day across years", "quarterly", "2023-01-01T00:00:00Z", "2022-11-10..2023-02-09 (92)"],
    ["a quarter through February is short", "quarterly", "2023-02-10T00:00:00Z", "2023-02-10..2023-05-09 (89)"],
    ["a yearly period ends the day before the anniversary", "yearly", "2022-08-10T12:00:00Z", "2022-08-10..2023-08-09 (365)"],
    ["a yearly period through February 29th has 366 days", "yearly", "2024-01-01T00:00:00Z", "2023-08-10..2024-08-09 (366)"],
  ] as const)("%s", (_case, interval, at, expected) => {
    const subscriptionAt = interval === "weekly" ? "2024-01-17T09:30:00Z" : "2022-08-10T12:00:00Z";
    expect(span(periodAt(schedule(subscriptionAt, interval, "anniversary"), at))).toBe(expected);
  });
});

describe("month-end anniversaries clamp to the month's last day, one month at a time", () => {
  it.each([
    [
      "a January 31st monthly subscription bills Feb 28, then Mar 31 again",
      schedule("2023-01-31T10:00:00Z", "monthly", "anniversary"),
      ["2023-01-31..2023-02-27 (28)", "2023-02-28..2023-03-30 (31)", "2023-03-31..2023-04-29 (30)", "2023-04-30..2023-05-30 (31)", "2023-05-31..2023-06-29 (30)"],
    ],
    [
      "in a leap year the January 31st anniversary falls on Feb 29",
      schedule("2024-01-31T10:00:00Z", "monthly", "anniversary"),
      ["2024-01-31..2024-02-28 (29)", "2024-02-29..2024-03-30 (31)", "2024-03-31..2024-04-29 (30)"],
    ],
    [
      "a January 30th subscription clamps only in February",
      schedule("2023-01-30T10:00:00Z", "monthly", "anniversary"),
      ["2023-01-30..2023-02-27 (29)", "2023-02-28..2023-03-29 (30)", "2023-03-30..2023-04-29 (31)"],
    ],
    [
      "a February 29th monthly subscription returns to the 29th in March",
      schedule("2024-02-29T10:00:00Z", "monthly", "anniversary"),
      ["2024-02-29..2024-03-28 (29)", "2024-03-29..2024-04-28 (31)"],
    ],
    [
      "a February 29th yearly subscription renews on Feb 28 in common years and Feb 29 in leap years",
      schedule("2024-02-29T10:00:00Z", "yearly", "anniversary"),
      [
        "2024-02-29..2025-02-27 (365)",
        "2025-02-28..2026-02-27 (365)",
        "2026-02-28..2027-02-27 (365)",
        "2027-02-28..2028-02-28 (366)",
        "2028-02-29..2029-02-27 (365)",
      ],
    ],
    [
      "a November 30th quarterly subscription renews on Feb 29, then May 30",
      schedule("2023-11-30T10:00:00Z", "quarterly", "anniversary"),
      ["2023-11-30..2024-02-28 (91)", "2024-02-29..2024-05-29 (91)", "2024-05-30..2024-08-29 (92)"],
    ],
  ] as const)("%s", (_case, s, expected) => {
    expect(periods(s, expected.length)).toEqual(expected);
  });

  it("a February 29th monthly subscription renews on Feb 28 in a common year", () => {
    const s = schedule("2024-02-29T10:00:00Z", "monthly", "anniversary");
    expect(span(periodAt(s, "2025-02-15T00:00:00Z"))).toBe("2025-01-29..2025-02-27 (30)");
    expect(span(periodAt(s, "2025-02-28T00:00:00Z"))).toBe("2025-02-28..2025-03-28 (29)");
  });
});

describe("customer timezones", () => {
  it.each([
    [
      "New York (UTC−5): 03:00 UTC on March 1st is still February",
      schedule("2024-03-01T03:00:00Z", "monthly", "calendar", "America/New_York"),
      "2024-02-01..2024-02-29 (29)",
      "2024-02-01T05:00:00.000Z",
      "2024-03-01T04:59:59.999Z",
    ],
    [
      "New York: the anniversary day is the customer's day, not the UTC one",
      schedule("2024-01-31T03:00:00Z", "monthly", "anniversary", "America/New_York"),
      "2024-01-30..2024-02-28 (30)",
      "2024-01-30T05:00:00.000Z",
      "2024-02-29T04:59:59.999Z",
    ],
    [
      "Kolkata (UTC+05:30): 20:00 UTC on January 31st is already February",
      schedule("2024-01-31T20:00:00Z", "monthly", "calendar", "Asia/Kolkata"),
      "2024-02-01..2024-02-29 (29)",
      "2024-01-31T18:30:00.000Z",
      "2024-02-29T18:29:59.999Z",
    ],
    [
      "Kolkata: a weekly period starts at Monday midnight, 18:30 UTC on Sunday",
      schedule("2024-01-21T19:00:00Z", "weekly", "calendar", "Asia/Kolkata"),
      "2024-01-22..2024-01-28 (7)",
      "2024-01-21T18:30:00.000Z",
      "2024-01-28T18:29:59.999Z",
    ],
  ] as const)("%s", (_case, s, expected, from, to) => {
    const p = firstPeriod(s);
    expect([span(p), iso(p.from), iso(p.to)]).toEqual([expected, from, to]);
    expect(p.start.getTime()).toBe(p.from.getTime());
    expect(p.end.getTime()).toBe(p.to.getTime() + 1);
  });

  it.each([
    [
      "March in New York has 31 days but 743 hours (spring forward on the 10th)",
      schedule("2024-03-15T12:00:00Z", "monthly", "calendar", "America/New_York"),
      "2024-03-01..2024-03-31 (31)",
      "2024-03-01T05:00:00.000Z",
      "2024-04-01T04:00:00.000Z",
      743,
    ],
    [
      "October in Paris has 31 days but 745 hours (fall back on the 27th)",
      schedule("2024-10-15T12:00:00Z", "monthly", "calendar", "Europe/Paris"),
      "2024-10-01..2024-10-31 (31)",
      "2024-09-30T22:00:00.000Z",
      "2024-10-31T23:00:00.000Z",
      745,
    ],
    [
      "a New York week with the spring-forward Sunday lasts 167 hours",
      schedule("2024-03-06T12:00:00Z", "weekly", "calendar", "America/New_York"),
      "2024-03-04..2024-03-10 (7)",
      "2024-03-04T05:00:00.000Z",
      "2024-03-11T04:00:00.000Z",
      167,
    ],
  ] as const)("a DST change inside a period: %s", (_case, s, expected, start, end, hours) => {
    const p = firstPeriod(s);
    expect([span(p), iso(p.start), iso(p.end)]).toEqual([expected, start, end]);
    expect((p.end.getTime() - p.start.getTime()) / 3_600_000).toBe(hours);
    expect(iso(nextPeriod(s, p).start)).toBe(end);
  });

  it("a day whose midnight DST skips (Santiago, September 8th 2024) starts at 01:00 local", () => {
    const s = schedule("2024-08-08T12:00:00Z", "monthly", "anniversary", "America/Santiago");
    const p = periodAt(s, "2024-09-08T04:00:00Z");
    expect([span(p), iso(p.start)]).toEqual(["2024-09-08..2024-10-07 (30)", "2024-09-08T04:00:00.000Z"]);
    const before = previousPeriod(s, p);
    expect([span(before), iso(before.to)]).toEqual(["2024-08-08..2024-09-07 (31)", "2024-09-08T03:59:59.999Z"]);
    expect(span(periodAt(s, "2024-09-08T03:59:59.999Z"))).toBe(span(before));
  });

  it("a clock turned back across midnight (Goose Bay, 2010) leaves its repeated hour in the new period", () => {
    const s = schedule("2010-10-07T12:00:00Z", "monthly", "anniversary", "America/Goose_Bay");
    // 03:30 UTC shows 23:30 on November 6th again, half an hour after November 7th began.
    expect(span(periodAt(s, "2010-11-07T03:30:00Z"))).toBe("2010-11-07..2010-12-06 (30)");
    expect(span(periodAt(s, "2010-11-07T02:59:59.999Z"))).toBe("2010-10-07..2010-11-06 (31)");
  });
});

describe("closing periods in the billing job", () => {
  const monthly = schedule("2024-07-14T00:00:00Z", "monthly", "calendar");

  it.each([
    [
      "a run closes every period that ended since the last run",
      "2024-07-20T00:00:00Z",
      "2024-10-01T00:00:00Z",
      ["2024-07-01..2024-07-31 (31)", "2024-08-01..2024-08-31 (31)", "2024-09-01..2024-09-30 (30)"],
    ],
    ["periods before the subscription started are never closed", "2020-01-01T00:00:00Z", "2024-08-15T00:00:00Z", ["2024-07-01..2024-07-31 (31)"]],
    ["a period closes at its end instant, not before", "2024-08-01T00:00:00Z", "2024-08-31T23:59:59.999Z", []],
    ["a run ending exactly at a period's end closes it", "2024-08-01T00:00:00Z", "2024-09-01T00:00:00Z", ["2024-08-01..2024-08-31 (31)"]],
    ["a run starting exactly at a period's end does not close it again", "2024-09-01T00:00:00Z", "2024-09-20T00:00:00Z", []],
    ["a run before the subscription starts closes nothing", "2024-01-01T00:00:00Z", "2024-07-01T00:00:00Z", []],
  ] as const)("%s", (_case, after, through, expected) => {
    expect(closedPeriods(monthly, after, through).map(span)).toEqual(expected);
  });

  it("a Kolkata period closes at 18:30 UTC, the customer's midnight", () => {
    const s = schedule("2024-01-31T20:00:00Z", "monthly", "calendar", "Asia/Kolkata");
    expect(closedPeriods(s, "2024-02-15T00:00:00Z", "2024-02-29T18:29:59.999Z")).toEqual([]);
    expect(closedPeriods(s, "2024-02-15T00:00:00Z", "2024-02-29T18:30:00Z").map(span)).toEqual(["2024-02-01..2024-02-29 (29)"]);
  });

  it("a yearly anniversary plan closes nothing until its anniversary", () => {
    const s = schedule("2023-08-10T12:00:00Z", "yearly", "anniversary");
    expect(closedPeriods(s, "2023-08-10T12:00:00Z", "2024-08-09T23:59:59.999Z")).toEqual([]);
    expect(closedPeriods(s, "2023-08-10T12:00:00Z", "2024-08-10T00:00:00Z").map(span)).toEqual(["2023-08-10..2024-08-09 (366)"]);
  });
});

describe("bill_charges_monthly", () => {
  it.each([
    [
      "a calendar yearly plan bills its charges for each calendar month",
      schedule("2024-01-01T00:00:00Z", "yearly", "calendar"),
      "2024-06-01T00:00:00Z",
      [
        "2024-01-01..2024-01-31 (31)", "2024-02-01..2024-02-29 (29)", "2024-03-01..2024-03-31 (31)",
        "2024-04-01..2024-04-30 (30)", "2024-05-01..2024-05-31 (31)", "2024-06-01..2024-06-30 (30)",
        "2024-07-01..2024-07-31 (31)", "2024-08-01..2024-08-31 (31)", "2024-09-01..2024-09-30 (30)",
        "2024-10-01..2024-10-31 (31)", "2024-11-01..2024-11-30 (30)", "2024-12-01..2024-12-31 (31)",
      ],
    ],
    [
      "an anniversary yearly plan bills its charges on each monthly anniversary",
      schedule("2023-08-10T12:00:00Z", "yearly", "anniversary"),
      "2023-12-25T00:00:00Z",
      [
        "2023-08-10..2023-09-09 (31)", "2023-09-10..2023-10-09 (30)", "2023-10-10..2023-11-09 (31)",
        "2023-11-10..2023-12-09 (30)", "2023-12-10..2024-01-09 (31)", "2024-01-10..2024-02-09 (31)",
        "2024-02-10..2024-03-09 (29)", "2024-03-10..2024-04-09 (31)", "2024-04-10..2024-05-09 (30)",
        "2024-05-10..2024-06-09 (31)", "2024-06-10..2024-07-09 (30)", "2024-07-10..2024-08-09 (31)",
      ],
    ],
    [
      "a January 31st yearly plan's charge months clamp like a monthly plan's",
      schedule("2023-01-31T12:00:00Z", "yearly", "anniversary"),
      "2023-03-01T00:00:00Z",
      [
        "2023-01-31..2023-02-27 (28)", "2023-02-28..2023-03-30 (31)", "2023-03-31..2023-04-29 (30)",
        "2023-04-30..2023-05-30 (31)", "2023-05-31..2023-06-29 (30)", "2023-06-30..2023-07-30 (31)",
        "2023-07-31..2023-08-30 (31)", "2023-08-31..2023-09-29 (30)", "2023-09-30..2023-10-30 (31)",
        "2023-10-31..2023-11-29 (30)", "2023-11-30..2023-12-30 (31)", "2023-12-31..2024-01-30 (31)",
      ],
    ],
    [
      "a calendar quarterly plan bills its charges for each of the quarter's months",
      schedule("2024-01-01T00:00:00Z", "quarterly", "calendar"),
      "2024-02-15T00:00:00Z",
      ["2024-01-01..2024-01-31 (31)", "2024-02-01..2024-02-29 (29)", "2024-03-01..2024-03-31 (31)"],
    ],
  ] as const)("%s", (_case, s, at, expected) => {
    const plan = periodAt(s, at);
    const months = monthlyChargePeriods(s, plan);
    expect(months.map(span)).toEqual(expected);
    expect(months[0]?.start).toEqual(plan.start);
    expect(months[months.length - 1]?.end).toEqual(plan.end);
  });

  it("the billing job closes a yearly plan's charges every month", () => {
    const s = chargeSchedule(schedule("2023-08-10T12:00:00Z", "yearly", "anniversary"), true);
    expect(closedPeriods(s, "2023-08-10T12:00:00Z", "2023-10-10T00:00:00Z").map(span)).toEqual([
      "2023-08-10..2023-09-09 (31)",
      "2023-09-10..2023-10-09 (30)",
    ]);
  });

  it.each([
    ["a yearly plan without the flag", schedule("2024-01-01T00:00:00Z", "yearly", "calendar"), false, "yearly"],
    ["a monthly plan, which the flag does not change", schedule("2024-01-01T00:00:00Z", "monthly", "calendar"), true, "monthly"],
    ["a weekly plan, which the flag does not change", schedule("2024-01-01T00:00:00Z", "weekly", "calendar"), true, "weekly"],
    ["a quarterly plan with the flag", schedule("2024-01-01T00:00:00Z", "quarterly", "anniversary"), true, "monthly"],
  ] as const)("charges follow %s", (_case, s, flag, interval) => {
    expect(chargeSchedule(s, flag).interval).toBe(interval);
  });
});

describe("active window (Lago's invoice boundaries)", () => {
  const p = periodAt(schedule("2024-01-01T00:00:00Z", "monthly", "calendar"), "2024-01-10T00:00:00Z");

  it.each([
    ["a full period is the period itself", "2023-12-01T00:00:00Z", undefined, ["2024-01-01T00:00:00.000Z", "2024-01-31T23:59:59.999Z"]],
    ["a start mid-period moves from_datetime", "2024-01-15T10:00:00Z", undefined, ["2024-01-15T10:00:00.000Z", "2024-01-31T23:59:59.999Z"]],
    ["a termination mid-period moves to_datetime", "2023-12-01T00:00:00Z", "2024-01-20T08:00:00Z", ["2024-01-01T00:00:00.000Z", "2024-01-20T08:00:00.000Z"]],
    ["a subscription that starts after the period has none", "2024-02-01T00:00:00Z", undefined, null],
    ["a subscription that ended before the period has none", "2023-01-01T00:00:00Z", "2023-12-31T23:59:59Z", null],
  ] as const)("%s", (_case, from, to, expected) => {
    const window = activeWindow(p, from, to);
    expect(window === null ? null : [iso(window.from), iso(window.to)]).toEqual(expected);
  });
});

describe("bad input", () => {
  it.each([
    ["an unknown timezone", () => periodAt(schedule("2024-01-01T00:00:00Z", "monthly", "calendar", "Mars/Olympus"), "2024-01-01T00:00:00Z")],
    ["an unknown interval", () => periodAt({ ...schedule("2024-01-01T00:00:00Z", "monthly", "calendar"), interval: "daily" as never }, "2024-01-01T00:00:00Z")],
    ["an unknown billing time", () => periodAt({ ...schedule("2024-01-01T00:00:00Z", "monthly", "calendar"), billingTime: "fiscal" as never }, "2024-01-01T00:00:00Z")],
    ["an instant without an offset (it would be read in the server's timezone)", () => periodAt(schedule("2024-01-01T00:00:00Z", "monthly", "calendar"), "2024-01-01T00:00:00")],
    ["a month that is not one", () => periodAt(schedule("2024-01-01T00:00:00Z", "monthly", "calendar"), "2024-13-01T00:00:00Z")],
    ["February 30th, which Date.parse would roll over to March", () => periodAt(schedule("2024-01-01T00:00:00Z", "monthly", "calendar"), "2024-02-30T00:00:00Z")],
    ["February 29th of a common year", () => periodAt(schedule("2023-01-01T00:00:00Z", "monthly", "calendar"), "2023-02-29T12:00:00Z")],
    ["hour 24", () => periodAt(schedule("2024-01-01T00:00:00Z", "monthly", "calendar"), "2024-01-31T24:00:00Z")],
    ["an invalid Date", () => periodAt(schedule("2024-01-01T00:00:00Z", "monthly", "calendar"), new Date(Number.NaN))],
  ])("%s is refused with a RangeError", (_case, call) => {
    expect(call).toThrow(RangeError);
  });

  it.each([
    ["Asia/Kolkata", true],
    ["America/New_York", true],
    ["UTC", true],
    ["Mars/Olympus", false],
    ["", false],
    [42, false],
  ] as const)("isTimezone(%j) is %s", (timezone, known) => {
    expect(isTimezone(timezone)).toBe(known);
  });
});
