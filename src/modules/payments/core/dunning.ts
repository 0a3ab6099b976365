// What an attempt's outcome makes of a payment: paid, failed for good, or retried after the
// dunning schedule's next wait — with the same idempotency key when the outcome left the charge
// unknown (a timeout), a new one when the provider said nothing was charged.
import type { ChargeOutcome } from "./provider.ts";

export type AttemptVerdict =
  | { readonly status: "succeeded" }
  | { readonly status: "failed"; readonly reason: "declined" | "retries_exhausted"; readonly newKey: boolean }
  | { readonly status: "retrying"; readonly nextAttemptAt: number; readonly newKey: boolean };

/**
 * `roundAttempt`: this attempt's number since collection (re)started, from 1. `scheduleMs[i]` is
 * the wait after the (i+1)-th failed attempt; with n waits a round has n + 1 attempts.
 */
export function afterAttempt(outcome: ChargeOutcome, roundAttempt: number, scheduleMs: readonly number[], nowMs: number): AttemptVerdict {
  switch (outcome) {
    case "succeeded":
      return { status: "succeeded" };
    case "declined":
      return { status: "failed", reason: "declined", newKey: true };
    case "transient_failure":
    case "timeout": {
      const newKey = outcome === "transient_failure";
      const wait = scheduleMs[roundAttempt - 1];
      if (wait === undefined) return { status: "failed", reason: "retries_exhausted", newKey };
      return { status: "retrying", nextAttemptAt: nowMs + wait, newKey };
    }
    default: {
      const never: never = outcome;
      throw new Error(`unknown charge outcome ${String(never)}`);
    }
  }
}

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };
const DURATION = /^(\d{1,9})(ms|s|m|h|d)$/;

/**
 * A dunning schedule as configured (PAYMENT_RETRY_SCHEDULE): comma-separated waits such as
 * "1h,1d,3d" (units ms, s, m, h, d), or "none" for no automatic retry. Answers the waits in
 * milliseconds, or the reason it is not one.
 */
export function parseRetrySchedule(raw: string): { ok: true; value: number[] } | { ok: false; reason: string } {
  const text = raw.trim();
  if (text === "none") return { ok: true, value: [] };
  const parts = text.split(",").map((p) => p.trim());
  const waits: number[] = [];
  for (const part of parts) {
    const m = DURATION.exec(part);
    if (m === null) return { ok: false, reason: `"${part}" is not a duration such as 30m, 1h or 3d` };
    const ms = Number(m[1]) * UNIT_MS[m[2]!]!;
    if (ms < 1 || ms > 366 * 86_400_000) return { ok: false, reason: `"${part}" must be between 1ms and 366d` };
    waits.push(ms);
  }
  if (waits.length > 50) return { ok: false, reason: "at most 50 retries" };
  return { ok: true, value: waits };
}
