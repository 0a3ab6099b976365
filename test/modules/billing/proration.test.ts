import { describe, expect, it } from "vitest";
import { d, roundToMinor } from "../../../src/shared/money.ts";
import {
  billedDays,
  firstPeriod,
  periodAt,
  proratedFee,
  trialEndsAt,
  unusedCredit,
  unusedDays,
  usedDays,
  usedFee,
} from "../../../src/modules/billing/core/index.ts";
import { iso, schedule } from "./helpers.ts";

/** amount × days / periodDays, the exact share the proration must return. */
const share = (amount: string, days: number, periodDays: number) => d(amount).times(days).div(periodDays);

describe("first-period proration counts calendar days, the start day included", () => {
  it.each([
    // Lago guide, "Assign a plan to a customer" > Calendar billing period.
    ["Lago's example: $50 monthly from August 10th owes 22/31, $35.48", "2022-08-10T09:00:00Z", "monthly", "calendar", "UTC", "50", 22, 31, "35.48"],
    ["a monthly plan from January 15th owes 17/31 of January", "2024-01-15T00:00:00Z", "monthly", "calendar", "UTC", "100", 17, 31, "54.84"],
    // Lago guide, "Plan model" > "Pro-ratas based on subscription date": the guide prints "5€".
    ["Lago's example: 10€ monthly from April 15th owes 16/30, 5.33€ (the guide rounds to 5€)", "2022-04-15T00:00:00Z", "monthly", "calendar", "UTC", "10", 16, 30, "5.33"],
    ["a weekly plan from a Thursday owes Thursday to Sunday, 4/7", "2024-01-18T15:00:00Z", "weekly", "calendar", "UTC", "7", 4, 7, "4.00"],
    ["a quarterly plan from March 1st owes 31/91 of Q1 2024", "2024-03-01T00:00:00Z", "quarterly", "calendar", "UTC", "91", 31, 91, "31.00"],
    ["a yearly plan from July 1st of a leap year owes 184/366", "2024-07-01T00:00:00Z", "yearly", "calendar", "UTC", "1200", 184, 366, "603.28"],
    ["a plan starting on the period's first day owes the full fee", "2024-02-01T23:00:00Z", "monthly", "calendar", "UTC", "29.99", 29, 29, "29.99"],
    ["an anniversary plan's first period is always whole", "2024-01-31T10:00:00Z", "monthly", "anniversary", "UTC", "100", 29, 29, "100.00"],
    ["in Kolkata, 20:00 UTC on January 14th is January 15th: 17/31", "2024-01-14T20:00:00Z", "monthly", "calendar", "Asia/Kolkata", "100", 17, 31, "54.84"],
    ["in UTC the same instant is January 14th: 18/31", "2024-01-14T20:00:00Z", "monthly", "calendar", "UTC", "100", 18, 31, "58.06"],
    ["in New York, 02:00 UTC on February 1st is still January 31st: 1/31", "2024-02-01T02:00:00Z", "monthly", "calendar", "America/New_York", "100", 1, 31, "3.23"],
    ["a March in New York that loses an hour to DST still has 31 days: from the 10th, 22/31", "2024-03-10T05:00:00Z", "monthly", "calendar", "America/New_York", "100", 22, 31, "70.97"],
  ] as const)("%s", (_case, subscriptionAt, interval, billingTime, timezone, amount, days, periodDays, rounded) => {
    const first = firstPeriod(schedule(subscriptionAt, interval, billingTime, timezone));
    expect([billedDays(first, subscriptionAt, first.to), first.days]).toEqual([days, periodDays]);
    const fee = proratedFee(d(amount), first, subscriptionAt, first.to);
    expect(fee.eq(share(amount, days, periodDays))).toBe(true);
    expect(roundToMinor(fee, "USD").toFixed(2)).toBe(rounded);
  });

  it("is not rounded: 17/31 of 100 keeps its 40 significant digits", () => {
    const january = periodAt(schedule("2024-01-15T00:00:00Z", "monthly", "calendar"), "2024-01-15T00:00:00Z");
    expect(proratedFee(d(100), january, "2024-01-15T00:00:00Z", january.to).toString()).toBe("54.83870967741935483870967741935483870968");
  });

  it.each([
    ["a start after the end bills nothing", "2024-01-20T00:00:00Z", "2024-01-10T00:00:00Z", 0],
    ["a span outside the period bills nothing", "2024-02-03T00:00:00Z", "2024-02-10T00:00:00Z", 0],
    ["a span wider than the period bills the period", "2023-11-01T00:00:00Z", "2024-03-01T00:00:00Z", 31],
    ["one instant bills its whole day", "2024-01-10T12:00:00Z", "2024-01-10T12:00:00Z", 1],
    ["the end's day is included", "2024-01-10T12:00:00Z", "2024-01-12T00:00:00Z", 3],
  ] as const)("%s", (_case, from, to, days) => {
    const january = periodAt(schedule("2024-01-01T00:00:00Z", "monthly", "calendar"), "2024-01-01T00:00:00Z");
    expect(billedDays(january, from, to)).toBe(days);
  });

  it("refuses a negative fee", () => {
    const january = periodAt(schedule("2024-01-01T00:00:00Z", "monthly", "calendar"), "2024-01-01T00:00:00Z");
    expect(() => proratedFee(d(-1), january, january.from, january.to)).toThrow(RangeError);
  });
});

describe("trial periods", () => {
  // Lago guide, "Plan model" > trial period: $50 monthly in advance, 5 trial days, subscribed on
  // April 1st: "an invoice for the period April 6th to April 30th ... $50 x 25 days / 30 days = $41.67".
  it("follows Lago's example: 5 trial days from April 1st bill April 6–30, 25/30 of $50 = $41.67", () => {
    const s = schedule("2022-04-01T00:00:00Z", "monthly", "calendar");
    const trialEnd = trialEndsAt(s.subscriptionAt, 5, s.timezone);
    expect(iso(trialEnd)).toBe("2022-04-06T00:00:00.000Z");
    const april = firstPeriod(s);
    expect(billedDays(april, s.subscriptionAt, april.to, { trialEndsAt: trialEnd })).toBe(25);
    const fee = proratedFee(d(50), april, s.subscriptionAt, april.to, { trialEndsAt: trialEnd });
    expect(fee.eq(share("50", 25, 30))).toBe(true);
    expect(roundToMinor(fee, "USD").toFixed(2)).toBe("41.67");
  });

  it.each([
    ["a trial longer than the first period bills nothing for it", 40, "2022-04-10T00:00:00Z", 0, 30],
    ["the rest of a long trial is left out of the next period", 40, "2022-05-10T00:00:00Z", 21, 31],
    ["a zero-day trial changes nothing", 0, "2022-04-10T00:00:00Z", 30, 30],
    ["a trial that ends exactly at a period's start leaves it whole", 30, "2022-05-10T00:00:00Z", 31, 31],
  ] as const)("%s", (_case, trialDays, at, days, periodDays) => {
    const s = schedule("2022-04-01T00:00:00Z", "monthly", "calendar");
    const p = periodAt(s, at);
    const trial = { trialEndsAt: trialEndsAt(s.subscriptionAt, trialDays, s.timezone) };
    expect([billedDays(p, s.subscriptionAt, p.to, trial), p.days]).toEqual([days, periodDays]);
  });

  it("counts trial days in the customer's timezone", () => {
    // 20:00 UTC on January 14th is 01:30 on January 15th in Kolkata: 3 trial days end at midnight on the 18th there.
    expect(iso(trialEndsAt("2024-01-14T20:00:00Z", 3, "Asia/Kolkata"))).toBe("2024-01-17T18:30:00.000Z");
  });

  it.each([[-1], [1.5], [Number.NaN]])("refuses %s trial days", (days) => {
    expect(() => trialEndsAt("2024-01-01T00:00:00Z", days, "UTC")).toThrow(RangeError);
  });
});

describe("termination mid-period", () => {
  const january = periodAt(schedule("2023-12-01T00:00:00Z", "monthly", "calendar"), "2024-01-01T00:00:00Z");

  it.each([
    // Lago credits an advance-paid fee for "the unused days" (guide, "Terminate a subscription"),
    // from the day after termination (CreditNotes::CreateFromTermination).
    ["a termination on January 15th uses 15 days and credits 16", "2024-01-15T10:00:00Z", 15, 16, "48.39", "51.61"],
    ["a termination on the first day uses that day", "2024-01-01T00:00:00Z", 1, 30, "3.23", "96.77"],
    ["a termination on the last day credits nothing", "2024-01-31T23:00:00Z", 31, 0, "100.00", "0.00"],
    ["a termination after the period credits nothing", "2024-02-03T00:00:00Z", 31, 0, "100.00", "0.00"],
  ] as const)("%s", (_case, terminatedAt, used, unused, usedAmount, credit) => {
    expect([usedDays(january, january.from, terminatedAt, "termination"), unusedDays(january, terminatedAt, "termination")]).toEqual([used, unused]);
    const arrears = usedFee(d(100), january, january.from, terminatedAt, "termination");
    const advance = unusedCredit(d(100), january, terminatedAt, "termination");
    expect(arrears.eq(share("100", used, 31))).toBe(true);
    expect(advance.eq(share("100", unused, 31))).toBe(true);
    expect([roundToMinor(arrears, "EUR").toFixed(2), roundToMinor(advance, "EUR").toFixed(2)]).toEqual([usedAmount, credit]);
  });

  it("a termination at 20:00 UTC in Kolkata is already the next day there", () => {
    const s = schedule("2024-01-01T00:00:00Z", "monthly", "calendar", "Asia/Kolkata");
    const p = firstPeriod(s);
    expect(unusedDays(p, "2024-01-15T20:00:00Z", "termination")).toBe(15);
  });

  it.each([
    ["during the trial, every paid day is credited back", "2024-01-10T00:00:00Z", 11],
    ["after the trial, the days after termination are credited", "2024-01-25T00:00:00Z", 6],
  ] as const)("with a 20-day trial from January 1st, a termination %s", (_case, terminatedAt, unused) => {
    const s = schedule("2024-01-01T00:00:00Z", "monthly", "calendar");
    const trial = { trialEndsAt: trialEndsAt(s.subscriptionAt, 20, s.timezone) };
    const p = firstPeriod(s);
    expect(billedDays(p, s.subscriptionAt, p.to, trial)).toBe(11);
    expect(unusedDays(p, terminatedAt, "termination", trial)).toBe(unused);
    expect(unusedCredit(d(100), p, terminatedAt, "termination", trial).eq(share("100", unused, 31))).toBe(true);
  });
});

describe("upgrade mid-period", () => {
  const january = periodAt(schedule("2024-01-01T00:00:00Z", "monthly", "calendar"), "2024-01-01T00:00:00Z");
  const upgradedAt = "2024-01-15T09:00:00Z";

  // Lago guide, "Upgrades and downgrades" > paid in arrears: Plan A €100/month from January 1st,
  // upgraded to Plan B €200/month on January 15th: "14 days prorated = €45.16 (14/31 × €100)",
  // then Plan B for the 17 days from January 15th to 31st.
  it("follows Lago's example: Plan A bills January 1–14 (€45.16), Plan B January 15–31 (€109.68)", () => {
    expect(usedDays(january, january.from, upgradedAt, "upgrade")).toBe(14);
    const planA = usedFee(d(100), january, january.from, upgradedAt, "upgrade");
    const planB = proratedFee(d(200), january, upgradedAt, january.to);
    expect([planA.eq(share("100", 14, 31)), planB.eq(share("200", 17, 31))]).toEqual([true, true]);
    expect([roundToMinor(planA, "EUR").toFixed(2), roundToMinor(planB, "EUR").toFixed(2)]).toEqual(["45.16", "109.68"]);
  });

  it("credits an advance-paid plan for the upgrade day and after: 17/31 of €100 = €54.84", () => {
    expect(unusedDays(january, upgradedAt, "upgrade")).toBe(17);
    const credit = unusedCredit(d(100), january, upgradedAt, "upgrade");
    expect(credit.eq(share("100", 17, 31))).toBe(true);
    expect(roundToMinor(credit, "EUR").toFixed(2)).toBe("54.84");
  });

  it("an upgrade on the period's first day credits the whole advance fee", () => {
    expect(unusedCredit(d(100), january, january.from, "upgrade").eq(d(100))).toBe(true);
    expect(usedDays(january, january.from, january.from, "upgrade")).toBe(0);
  });

  it("an upgrade on an anniversary plan splits its own period: September 25th in Sep 10 – Oct 9", () => {
    const s = schedule("2022-08-10T12:00:00Z", "monthly", "anniversary");
    const p = periodAt(s, "2022-09-25T08:00:00Z");
    expect([usedDays(p, p.from, "2022-09-25T08:00:00Z", "upgrade"), unusedDays(p, "2022-09-25T08:00:00Z", "upgrade"), p.days]).toEqual([15, 15, 30]);
    expect(unusedCredit(d(60), p, "2022-09-25T08:00:00Z", "upgrade").toString()).toBe("30");
  });
});
