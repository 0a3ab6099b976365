import { describe, expect, it } from "vitest";
import {
  type Span,
  type SubscriptionTimes,
  previousWindows,
  splitByHours,
  usageWindowAt,
} from "../../../src/modules/metering/core/index.ts";
import { at } from "./helpers.ts";

const show = (s: Span) => `${s.from === null ? "-inf" : s.from.toISOString().slice(11, 16)}..${s.to.toISOString().slice(11, 16)}`;

describe("splitByHours", () => {
  it.each([
    ["a span on hour boundaries is all rollups", "2026-03-01T00:00:00Z", "2026-03-01T05:00:00Z", "00:00..05:00", []],
    ["a :30 start (Asia/Kolkata midnight) reads its first half hour raw", "2026-02-28T18:30:00Z", "2026-02-28T21:00:00Z", "19:00..21:00", ["18:30..19:00"]],
    ["a :45 end reads its last 45 minutes raw", "2026-03-01T00:00:00Z", "2026-03-01T03:45:00Z", "00:00..03:00", ["03:00..03:45"]],
    ["both edges partial", "2026-03-01T00:15:00Z", "2026-03-01T03:45:00Z", "01:00..03:00", ["00:15..01:00", "03:00..03:45"]],
    ["a span inside one hour is all raw", "2026-03-01T10:10:00Z", "2026-03-01T10:50:00Z", null, ["10:10..10:50"]],
    ["a span across one boundary but no whole hour is all raw", "2026-03-01T10:10:00Z", "2026-03-01T11:50:00Z", null, ["10:10..11:50"]],
    ["one whole hour between two partial ones", "2026-03-01T10:10:00Z", "2026-03-01T12:50:00Z", "11:00..12:00", ["10:10..11:00", "12:00..12:50"]],
  ])("%s", (_case, from, to, rollups, raw) => {
    const split = splitByHours({ from: at(from), to: at(to) });
    expect(split.rollups === null ? null : show(split.rollups)).toBe(rollups);
    expect(split.raw.map(show)).toEqual(raw);
  });

  it("an empty span reads nothing", () => {
    expect(splitByHours({ from: at("2026-03-01T10:00:00Z"), to: at("2026-03-01T10:00:00Z") })).toEqual({ rollups: null, raw: [] });
  });

  it("an unbounded span (recurring metric) reads every rollup hour before the last partial hour", () => {
    const split = splitByHours({ from: null, to: at("2026-03-01T10:20:00Z") });
    expect(split.rollups && show(split.rollups)).toBe("-inf..10:00");
    expect(split.raw.map(show)).toEqual(["10:00..10:20"]);
  });
});

const sub = (fields: Partial<SubscriptionTimes> = {}): SubscriptionTimes => ({
  subscriptionAt: at("2026-01-01T00:00:00Z"),
  startedAt: at("2026-01-01T00:00:00Z"),
  terminatedAt: null,
  billingTime: "calendar",
  timezone: "UTC",
  ...fields,
});
const monthly = { interval: "monthly" as const, billChargesMonthly: null };

describe("usageWindowAt", () => {
  it("a calendar monthly subscription counts the whole month holding now", () => {
    const w = usageWindowAt(sub(), monthly, at("2026-03-15T12:00:00Z"))!;
    expect([w.from.toISOString(), w.to.toISOString(), w.issuingDate]).toEqual(["2026-03-01T00:00:00.000Z", "2026-04-01T00:00:00.000Z", "2026-04-01"]);
  });

  it("periods start at midnight in the customer's timezone, a :30 offset included", () => {
    const w = usageWindowAt(sub({ timezone: "Asia/Kolkata" }), monthly, at("2026-03-15T12:00:00Z"))!;
    expect([w.from.toISOString(), w.to.toISOString()]).toEqual(["2026-02-28T18:30:00.000Z", "2026-03-31T18:30:00.000Z"]);
  });

  it("the first period starts when the subscription started", () => {
    const w = usageWindowAt(sub({ startedAt: at("2026-03-10T08:00:00Z") }), monthly, at("2026-03-15T12:00:00Z"))!;
    expect(w.from.toISOString()).toBe("2026-03-10T08:00:00.000Z");
    expect(w.period.days).toBe(31);
  });

  it("a terminated subscription's last period ends at its termination", () => {
    const w = usageWindowAt(sub({ terminatedAt: at("2026-03-20T00:00:00Z") }), monthly, at("2026-03-15T12:00:00Z"))!;
    expect(w.to.toISOString()).toBe("2026-03-20T00:00:00.000Z");
  });

  it("a yearly plan billing charges monthly counts the month", () => {
    const w = usageWindowAt(sub(), { interval: "yearly", billChargesMonthly: true }, at("2026-03-15T12:00:00Z"))!;
    expect([w.from.toISOString(), w.to.toISOString()]).toEqual(["2026-03-01T00:00:00.000Z", "2026-04-01T00:00:00.000Z"]);
  });

  it("past windows go back to the subscription's start, newest first", () => {
    const s = sub({ startedAt: at("2026-01-20T00:00:00Z") });
    const current = usageWindowAt(s, monthly, at("2026-03-15T12:00:00Z"))!;
    const past = previousWindows(s, monthly, current, 10);
    expect(past.map((w) => [w.from.toISOString().slice(0, 10), w.to.toISOString().slice(0, 10)])).toEqual([
      ["2026-02-01", "2026-03-01"],
      ["2026-01-20", "2026-02-01"],
    ]);
  });
});
