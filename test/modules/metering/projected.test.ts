import { describe, expect, it } from "vitest";
import { type SubscriptionUsage, usageWindowAt } from "../../../src/modules/metering/index.ts";
import { projectUsage, projectionDays } from "../../../src/modules/metering/core/projected.ts";

function usageAt(startedAt: string, timezone: string, at: string): SubscriptionUsage {
  const sub = { subscriptionAt: new Date(startedAt), startedAt: new Date(startedAt), terminatedAt: null, billingTime: "calendar" as const, timezone };
  const window = usageWindowAt(sub, { interval: "monthly", billChargesMonthly: null }, new Date(at))!;
  return { window, currency: "EUR", charges: [], amountCents: 0n, taxesAmountCents: 0n, totalAmountCents: 0n };
}

describe("the days a projection scales by", () => {
  it.each([
    ["March 10th at noon, UTC: 10 of 31 days", "2026-03-01T00:00:00Z", "UTC", "2026-03-10T12:00:00Z", 31, 10],
    ["the first instant of the period counts its first day", "2026-03-01T00:00:00Z", "UTC", "2026-03-01T00:00:00Z", 31, 1],
    ["the last day: nothing left to project", "2026-03-01T00:00:00Z", "UTC", "2026-03-31T23:59:59Z", 31, 31],
    ["started on the 10th: 22 days in the window, the 10th counted", "2026-03-10T15:00:00Z", "UTC", "2026-03-12T08:00:00Z", 22, 3],
    ["Paris across the March DST change: calendar days, not hours / 24", "2026-02-28T23:00:00Z", "Europe/Paris", "2026-03-30T21:59:00Z", 31, 30],
    ["Paris: 23:30 UTC on the 9th is already the 10th", "2026-02-28T23:00:00Z", "Europe/Paris", "2026-03-09T23:30:00Z", 31, 10],
  ] as [string, string, string, string, number, number][])("%s", (_name, started, tz, now, total, elapsed) => {
    expect(projectionDays(usageAt(started, tz, now), new Date(now))).toEqual({ total, elapsed });
  });

  it("the ratio is the window's days over the days elapsed", () => {
    expect(projectUsage(usageAt("2026-03-01T00:00:00Z", "UTC", "2026-03-10T12:00:00Z"), new Date("2026-03-10T12:00:00Z")).ratio.toString()).toBe("3.1");
  });
});
