// When a failed delivery is tried again, and when it is given up.

/** How retries are spaced and bounded (WEBHOOK_RETRY_BASE_MS, WEBHOOK_MAX_ATTEMPTS). */
export interface RetryPolicy {
  /** Wait after the first failed attempt; each later wait is RETRY_GROWTH times the previous. */
  baseMs: number;
  /** Attempts in all, the first included; after the last failed one the delivery is `failed`. */
  maxAttempts: number;
}

export const RETRY_GROWTH = 4;
/** No wait is longer than this, however many attempts came before. */
export const RETRY_CAP_MS = 6 * 60 * 60 * 1000;
/** Waits are stretched by up to this fraction so receivers coming back are not hit all at once. */
export const RETRY_JITTER = 0.1;

/**
 * The wait after the `failedAttempt`-th attempt failed (1-based): base × 4^(n−1), capped at six
 * hours, stretched by `jitter` (in [0, 1)) × 10 %.
 */
export function retryDelayMs(failedAttempt: number, baseMs: number, jitter = 0): number {
  const raw = baseMs * RETRY_GROWTH ** Math.max(0, failedAttempt - 1);
  return Math.round(Math.min(raw, RETRY_CAP_MS) * (1 + RETRY_JITTER * jitter));
}

/** The waits between consecutive attempts of a delivery that always fails (without jitter). */
export function retrySchedule(policy: RetryPolicy): number[] {
  return Array.from({ length: Math.max(0, policy.maxAttempts - 1) }, (_, i) => retryDelayMs(i + 1, policy.baseMs));
}

/**
 * A delivery's own jitter in [0, 1), taken from its id: stable across its retries and processes,
 * different between deliveries.
 */
export function jitterOf(id: string): number {
  const hex = id.replace(/[^0-9a-f]/gi, "").slice(-8);
  return hex.length === 0 ? 0 : Number.parseInt(hex, 16) / 2 ** (4 * hex.length);
}

export type AttemptVerdict =
  | { status: "succeeded" }
  | { status: "retrying"; nextAttemptAt: number }
  | { status: "failed" };

/** What the `attempt`-th attempt's outcome (1-based) makes of the delivery. */
export function afterAttempt(attempt: number, maxAttempts: number, delivered: boolean, nowMs: number, baseMs: number, jitter: number): AttemptVerdict {
  if (delivered) return { status: "succeeded" };
  if (attempt >= maxAttempts) return { status: "failed" };
  return { status: "retrying", nextAttemptAt: nowMs + retryDelayMs(attempt, baseMs, jitter) };
}
