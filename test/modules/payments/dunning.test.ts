import { describe, expect, it } from "vitest";
import { afterAttempt, parseRetrySchedule } from "../../../src/modules/payments/core/index.ts";
import { ConfigError, loadConfig } from "../../../src/shared/config.ts";

const H = 3_600_000;
const D = 24 * H;
const SCHEDULE = [H, D, 3 * D];
const NOW = Date.UTC(2024, 3, 1);

describe("afterAttempt: what an attempt's outcome makes of a payment", () => {
  it.each([
    ["a success is paid, whatever the attempt", "succeeded", 4, { status: "succeeded" }],
    ["a decline fails at once and the next try gets a new key", "declined", 1, { status: "failed", reason: "declined", newKey: true }],
    ["a first transient failure is retried after the first wait, with a new key", "transient_failure", 1, { status: "retrying", nextAttemptAt: NOW + H, newKey: true }],
    ["a second transient failure waits the second wait", "transient_failure", 2, { status: "retrying", nextAttemptAt: NOW + D, newKey: true }],
    ["a timeout is retried with the same key", "timeout", 1, { status: "retrying", nextAttemptAt: NOW + H, newKey: false }],
    ["a timeout on the third attempt waits three days", "timeout", 3, { status: "retrying", nextAttemptAt: NOW + 3 * D, newKey: false }],
    ["the fourth transient failure of a 3-wait schedule is the last", "transient_failure", 4, { status: "failed", reason: "retries_exhausted", newKey: true }],
    ["the last timeout fails and keeps its key", "timeout", 4, { status: "failed", reason: "retries_exhausted", newKey: false }],
  ] as const)("%s", (_name, outcome, attempt, verdict) => {
    expect(afterAttempt(outcome, attempt, SCHEDULE, NOW)).toEqual(verdict);
  });

  it("with no retries, a transient failure fails at once", () => {
    expect(afterAttempt("transient_failure", 1, [], NOW)).toEqual({ status: "failed", reason: "retries_exhausted", newKey: true });
  });
});

describe("parseRetrySchedule", () => {
  it.each([
    ["1h,1d,3d", [H, D, 3 * D]],
    [" 30s , 15m ", [30_000, 900_000]],
    ["250ms", [250]],
    ["none", []],
  ])("%j is %j", (raw, waits) => {
    expect(parseRetrySchedule(raw)).toEqual({ ok: true, value: waits });
  });

  it.each([["1x"], ["1h,,1d"], ["-1h"], ["1.5h"], [""], ["h"], ["367d"], ["0s"]])("%j is refused", (raw) => {
    expect(parseRetrySchedule(raw).ok).toBe(false);
  });
});

describe("payment configuration", () => {
  it("defaults: 1h, 1d, 3d; 30 s timeout; worker and sandbox on", () => {
    const c = loadConfig({});
    expect(c.payments).toEqual({ retryScheduleMs: [H, D, 3 * D], timeoutMs: 30_000, pollMs: 1_000, worker: true, sandbox: true });
  });

  it("reads every variable", () => {
    const c = loadConfig({ PAYMENT_RETRY_SCHEDULE: "5m,1h", PAYMENT_TIMEOUT_MS: "5000", PAYMENT_POLL_MS: "200", PAYMENT_WORKER: "off", PAYMENT_SANDBOX: "off" });
    expect(c.payments).toEqual({ retryScheduleMs: [300_000, H], timeoutMs: 5000, pollMs: 200, worker: false, sandbox: false });
  });

  it("names every bad variable and what it accepts", () => {
    let err: unknown;
    try {
      loadConfig({ PAYMENT_RETRY_SCHEDULE: "1h,soon", PAYMENT_TIMEOUT_MS: "fast", PAYMENT_SANDBOX: "maybe" });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    const problems = (err as ConfigError).problems.join("\n");
    expect(problems).toMatch(/PAYMENT_RETRY_SCHEDULE="1h,soon": "soon" is not a duration/);
    expect(problems).toMatch(/PAYMENT_TIMEOUT_MS="fast"/);
    expect(problems).toMatch(/PAYMENT_SANDBOX="maybe": must be one of on, off/);
  });
});
