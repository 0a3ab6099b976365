import { describe, expect, it } from "vitest";
import { RETRY_CAP_MS, afterAttempt, retryDelayMs, retrySchedule } from "../../../src/modules/webhooks/index.ts";
import { jitterOf } from "../../../src/modules/webhooks/core/backoff.ts";

describe("retry backoff", () => {
  it.each([
    [1, 5_000],
    [2, 20_000],
    [3, 80_000],
    [4, 320_000],
    [5, 1_280_000],
    [6, 5_120_000],
    [7, 20_480_000],
    [8, RETRY_CAP_MS],
    [1000, RETRY_CAP_MS],
  ])("after failed attempt %i the wait is %i ms (base 5 s, ×4 each time, capped at 6 h)", (attempt, ms) => {
    expect(retryDelayMs(attempt, 5_000)).toBe(ms);
  });

  it("stretches a wait by at most 10 % of jitter", () => {
    expect(retryDelayMs(2, 1_000, 0)).toBe(4_000);
    expect(retryDelayMs(2, 1_000, 0.5)).toBe(4_200);
    expect(retryDelayMs(2, 1_000, 0.999999)).toBeLessThanOrEqual(4_400);
  });

  it("lists the waits between the attempts of a delivery that never succeeds", () => {
    expect(retrySchedule({ baseMs: 100, maxAttempts: 5 })).toEqual([100, 400, 1_600, 6_400]);
    expect(retrySchedule({ baseMs: 100, maxAttempts: 1 })).toEqual([]);
  });

  it("takes each delivery's jitter from its id: stable, in [0, 1), different between ids", () => {
    const a = jitterOf("7f1c2d3e-0000-4000-8000-00000000ffff");
    expect(a).toBe(jitterOf("7f1c2d3e-0000-4000-8000-00000000ffff"));
    expect(a).toBeGreaterThanOrEqual(0);
    expect(a).toBeLessThan(1);
    expect(jitterOf("7f1c2d3e-0000-4000-8000-000000000001")).not.toBe(a);
  });
});

describe("what an attempt makes of a delivery", () => {
  const now = 1_000_000;
  it.each([
    ["a delivered first attempt", 1, 3, true, { status: "succeeded" }],
    ["a delivered last attempt", 3, 3, true, { status: "succeeded" }],
    ["a failed first attempt of three", 1, 3, false, { status: "retrying", nextAttemptAt: now + 100 }],
    ["a failed second attempt of three", 2, 3, false, { status: "retrying", nextAttemptAt: now + 400 }],
    ["a failed last attempt", 3, 3, false, { status: "failed" }],
    ["a failed only attempt", 1, 1, false, { status: "failed" }],
  ])("%s", (_what, attempt, max, delivered, verdict) => {
    expect(afterAttempt(attempt, max, delivered, now, 100, 0)).toEqual(verdict);
  });
});
