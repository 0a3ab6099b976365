import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { describeInstant, dueInstants } from "../../../src/modules/invoicing/index.ts";
import { line, terms } from "./helpers.ts";

const due = (t: ReturnType<typeof terms>, through: string, after: string | null = null) =>
  dueInstants(t, after === null ? null : new Date(after), new Date(through)).map(line);

describe("which billing instants are due", () => {
  it.each([
    [
      "a calendar monthly plan in arrears started March 10th closes March on April 1st, fee and usage from the 10th",
      terms("2024-03-10T09:30:00Z"),
      "2024-04-01T00:00:00Z",
      ["2024-04-01 periodic fee:arrears 2024-03-10T09:30:00.000Z..2024-03-31 charges:2024-03-10T09:30:00.000Z..2024-04-01"],
    ],
    ["nothing is due one millisecond before the period ends", terms("2024-03-10T00:00:00Z"), "2024-03-31T23:59:59.999Z", []],
    [
      "a plan paid in advance bills its first period at the start, then the next period with the closed period's usage",
      terms("2024-03-10T00:00:00Z", { payInAdvance: true }),
      "2024-04-01T00:00:00Z",
      ["2024-03-10 starting fee:advance 2024-03-10..2024-03-31", "2024-04-01 periodic fee:advance 2024-04-01..2024-04-30 charges:2024-03-10..2024-04-01"],
    ],
    [
      "an anniversary plan started January 31st closes on the 29th of a leap February, then March 31st",
      terms("2024-01-31T00:00:00Z", { billingTime: "anniversary" }),
      "2024-03-31T00:00:00Z",
      ["2024-02-29 periodic fee:arrears 2024-01-31..2024-02-28 charges:2024-01-31..2024-02-29", "2024-03-31 periodic fee:arrears 2024-02-29..2024-03-30 charges:2024-02-29..2024-03-31"],
    ],
    [
      "a weekly calendar plan closes every Monday",
      terms("2024-01-03T00:00:00Z", { interval: "weekly" }),
      "2024-01-15T00:00:00Z",
      ["2024-01-08 periodic fee:arrears 2024-01-03..2024-01-07 charges:2024-01-03..2024-01-08", "2024-01-15 periodic fee:arrears 2024-01-08..2024-01-14 charges:2024-01-08..2024-01-15"],
    ],
    [
      "a quarterly calendar plan closes at the start of the next quarter",
      terms("2024-02-15T00:00:00Z", { interval: "quarterly" }),
      "2024-06-30T00:00:00Z",
      ["2024-04-01 periodic fee:arrears 2024-02-15..2024-03-31 charges:2024-02-15..2024-04-01"],
    ],
    [
      "a yearly plan billing charges monthly bills usage every month and the fee once a year",
      terms("2023-11-01T00:00:00Z", { interval: "yearly", billChargesMonthly: true }),
      "2024-02-01T00:00:00Z",
      [
        "2023-12-01 periodic charges:2023-11-01..2023-12-01",
        "2024-01-01 periodic fee:arrears 2023-11-01..2023-12-31 charges:2023-12-01..2024-01-01",
        "2024-02-01 periodic charges:2024-01-01..2024-02-01",
      ],
    ],
    [
      "a yearly plan paid in advance billing charges monthly bills the year at its start and usage monthly",
      terms("2024-01-01T00:00:00Z", { interval: "yearly", billChargesMonthly: true, payInAdvance: true }),
      "2024-02-01T00:00:00Z",
      ["2024-01-01 starting fee:advance 2024-01-01..2024-12-31", "2024-02-01 periodic charges:2024-01-01..2024-02-01"],
    ],
    [
      "a termination mid-period bills the fee and the usage up to the termination",
      terms("2024-01-01T00:00:00Z", { terminatedAt: "2024-01-15T12:00:00Z" }),
      "2024-02-01T00:00:00Z",
      ["2024-01-15T12:00:00.000Z terminating fee:arrears 2024-01-01..2024-01-15T12:00:00.000Z charges:2024-01-01..2024-01-15T12:00:00.000Z"],
    ],
    [
      "a plan paid in advance terminated mid-period bills only usage, and marks the paid period's unused days",
      terms("2024-01-01T00:00:00Z", { payInAdvance: true, terminatedAt: "2024-01-15T12:00:00Z" }),
      "2024-02-01T00:00:00Z",
      ["2024-01-01 starting fee:advance 2024-01-01..2024-01-31", "2024-01-15T12:00:00.000Z terminating charges:2024-01-01..2024-01-15T12:00:00.000Z unused:2024-01-01..2024-01-31"],
    ],
    [
      "a termination at a period's end closes that period once, without opening the next",
      terms("2024-01-01T00:00:00Z", { payInAdvance: true, terminatedAt: "2024-02-01T00:00:00Z" }),
      "2024-03-01T00:00:00Z",
      ["2024-01-01 starting fee:advance 2024-01-01..2024-01-31", "2024-02-01 terminating charges:2024-01-01..2024-02-01"],
    ],
    [
      "a trial in arrears does not move the instants (the fee is prorated, see fees)",
      terms("2024-01-10T00:00:00Z", { trialEndsAt: "2024-01-20T00:00:00Z" }),
      "2024-02-01T00:00:00Z",
      ["2024-02-01 periodic fee:arrears 2024-01-10..2024-01-31 charges:2024-01-10..2024-02-01"],
    ],
    [
      "a plan paid in advance starting in a trial bills the rest of its first period when the trial ends",
      terms("2024-01-10T00:00:00Z", { payInAdvance: true, trialEndsAt: "2024-01-20T00:00:00Z" }),
      "2024-02-01T00:00:00Z",
      ["2024-01-20 periodic fee:advance 2024-01-10..2024-01-31", "2024-02-01 periodic fee:advance 2024-02-01..2024-02-29 charges:2024-01-10..2024-02-01"],
    ],
    [
      "a trial covering the whole first period bills nothing before the next period starts",
      terms("2024-01-25T00:00:00Z", { payInAdvance: true, trialEndsAt: "2024-02-08T00:00:00Z" }),
      "2024-02-10T00:00:00Z",
      ["2024-02-01 periodic fee:advance 2024-02-01..2024-02-29 charges:2024-01-25..2024-02-01"],
    ],
    [
      "a subscription terminated during its trial (paid in advance) bills its usage only",
      terms("2024-01-10T00:00:00Z", { payInAdvance: true, trialEndsAt: "2024-01-20T00:00:00Z", terminatedAt: "2024-01-15T00:00:00Z" }),
      "2024-02-01T00:00:00Z",
      ["2024-01-15 terminating charges:2024-01-10..2024-01-15 unused:2024-01-01..2024-01-31"],
    ],
    [
      "in New York, a calendar month closes at 05:00 UTC",
      terms("2024-03-10T15:00:00Z", { timezone: "America/New_York" }),
      "2024-04-01T04:00:00.000Z",
      ["2024-04-01T04:00:00.000Z periodic fee:arrears 2024-03-10T15:00:00.000Z..2024-04-01T03:59:59.999Z charges:2024-03-10T15:00:00.000Z..2024-04-01T04:00:00.000Z"],
    ],
  ] as const)("%s", (_case, t, through, expected) => {
    expect(due(t, through)).toEqual(expected);
  });

  it("an instant already billed is not due again: runs over (a, b] then (b, c] bill each instant once", () => {
    const t = terms("2024-01-15T00:00:00Z", { payInAdvance: true });
    const all = due(t, "2024-05-01T00:00:00Z");
    const first = due(t, "2024-03-01T00:00:00Z");
    const rest = due(t, "2024-05-01T00:00:00Z", "2024-03-01T00:00:00Z");
    expect([...first, ...rest]).toEqual(all);
    expect(all).toHaveLength(5);
  });

  it("a long-stopped job catches up at most `limit` instants per run, oldest first", () => {
    const t = terms("2020-01-01T00:00:00Z");
    const firstRun = dueInstants(t, null, new Date("2024-01-01T00:00:00Z"), 10);
    expect(firstRun.map((i) => i.at.toISOString().slice(0, 10))).toEqual([
      "2020-02-01", "2020-03-01", "2020-04-01", "2020-05-01", "2020-06-01", "2020-07-01", "2020-08-01", "2020-09-01", "2020-10-01", "2020-11-01",
    ]);
    const secondRun = dueInstants(t, firstRun.at(-1)!.at, new Date("2024-01-01T00:00:00Z"), 1000);
    expect(firstRun.length + secondRun.length).toBe(48);
  });

  it("an instant that bills nothing is not an instant", () => {
    expect(describeInstant(terms("2024-01-10T00:00:00Z"), new Date("2024-01-20T00:00:00Z"))).toBeNull();
    expect(describeInstant(terms("2024-01-10T00:00:00Z"), new Date("2023-12-01T00:00:00Z"))).toBeNull();
  });

  it("whatever the plan, runs split anywhere bill the same instants as one run, each at most once", () => {
    const interval = fc.constantFrom("weekly", "monthly", "quarterly", "yearly" as const);
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 2 * 365 * 24 }),
        fc.integer({ min: 1, max: 500 * 24 }),
        fc.integer({ min: 0, max: 1000 }),
        interval,
        fc.boolean(),
        fc.boolean(),
        fc.constantFrom("calendar", "anniversary" as const),
        fc.option(fc.integer({ min: 1, max: 400 * 24 })),
        (startHour, lengthHours, splitPermille, i, payInAdvance, monthly, billingTime, terminateAfter) => {
          const start = Date.UTC(2023, 0, 1) + startHour * 3_600_000;
          const end = start + lengthHours * 3_600_000;
          const t = terms(new Date(start).toISOString(), {
            interval: i,
            payInAdvance,
            billChargesMonthly: monthly,
            billingTime,
            ...(terminateAfter === null ? {} : { terminatedAt: new Date(start + terminateAfter * 3_600_000).toISOString() }),
          });
          const split = start + Math.floor(((end - start) * splitPermille) / 1000);
          const whole = dueInstants(t, null, new Date(end), 10_000).map((x) => x.at.getTime());
          const first = dueInstants(t, null, new Date(split), 10_000);
          const after = first.length === 0 ? null : first.at(-1)!.at;
          const second = dueInstants(t, after, new Date(end), 10_000);
          const pieces = [...first, ...second].map((x) => x.at.getTime());
          expect(pieces).toEqual(whole);
          expect(new Set(whole).size).toBe(whole.length);
        },
      ),
      { numRuns: 60 },
    );
  });
});
