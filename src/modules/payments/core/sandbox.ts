// The sandbox provider's behaviour, chosen by the customer's payment method token
// (billing_configuration.provider_customer_id). Pure: the ledger and the waiting are the
// provider's (../sandbox.ts).

/**
 * - `pm_succeeds` (or any token starting `pm_succeeds`): charged.
 * - `pm_declines`: declined (`card_declined`).
 * - `pm_insufficient_funds`: declined (`insufficient_funds`).
 * - `pm_fails_transiently`: never charged now (`processing_error`), every time.
 * - `pm_fails_then_succeeds`, `pm_fails_<n>_then_succeeds`: the first 1 (or n) requests for an
 *   invoice fail transiently, the next one is charged.
 * - `pm_times_out`: charged, but the answer never comes (the caller times out); asked again with
 *   the same idempotency key, the sandbox answers the charge it made.
 * - anything else, or no token: declined (`payment_method_missing` / `unknown_payment_method`).
 */
export type SandboxBehaviour =
  | { readonly kind: "charge" }
  | { readonly kind: "decline"; readonly errorCode: string; readonly message: string }
  | { readonly kind: "transient"; readonly errorCode: string; readonly message: string }
  | { readonly kind: "charge_then_hang" };

export const SANDBOX_TOKENS = [
  "pm_succeeds",
  "pm_declines",
  "pm_insufficient_funds",
  "pm_fails_transiently",
  "pm_fails_then_succeeds",
  "pm_fails_<n>_then_succeeds",
  "pm_times_out",
] as const;

const FAILS_THEN_SUCCEEDS = /^pm_fails_(?:(\d{1,3})_)?then_succeeds$/;

/** Whether the token's behaviour depends on earlier transient failures for the invoice (the ledger is read only then). */
export const sandboxNeedsHistory = (token: string): boolean => FAILS_THEN_SUCCEEDS.test(token);

/** What the sandbox does with a new request (no ledger row for its key), given earlier transient failures for the same invoice. */
export function sandboxBehaviour(token: string, priorTransientFailures: number): SandboxBehaviour {
  if (token === "") return { kind: "decline", errorCode: "payment_method_missing", message: "the customer has no payment method (billing_configuration.provider_customer_id)" };
  if (token.startsWith("pm_succeeds")) return { kind: "charge" };
  if (token === "pm_declines") return { kind: "decline", errorCode: "card_declined", message: "Your card was declined." };
  if (token === "pm_insufficient_funds") return { kind: "decline", errorCode: "insufficient_funds", message: "Your card has insufficient funds." };
  if (token === "pm_fails_transiently") return transient();
  if (token === "pm_times_out") return { kind: "charge_then_hang" };
  const m = FAILS_THEN_SUCCEEDS.exec(token);
  if (m !== null) {
    const failures = m[1] === undefined ? 1 : Number(m[1]);
    return priorTransientFailures < failures ? transient() : { kind: "charge" };
  }
  return { kind: "decline", errorCode: "unknown_payment_method", message: `the sandbox has no payment method ${JSON.stringify(token.slice(0, 64))}` };
}

const transient = (): SandboxBehaviour => ({
  kind: "transient",
  errorCode: "processing_error",
  message: "An error occurred while processing the payment; nothing was charged. Try again later.",
});

/**
 * What the sandbox does with a new refund request, from the payment method the charge was made on:
 * - `pm_succeeds_refund_declines`: declined (`refund_declined`), for good.
 * - `pm_succeeds_refund_fails_transiently`: nothing refunded now (`processing_error`), every time.
 * - `pm_succeeds_refund_fails_then_succeeds`: the first request for a credit note fails transiently, the next is refunded.
 * - `pm_succeeds_refund_times_out`: refunded, but the answer never comes; asked again with the same key, the refund made.
 * - a token that never charges (`pm_declines`, ..., none): declined (`no_charge_to_refund`).
 * - any other token that charges (`pm_succeeds…`, `pm_fails_then_succeeds`, `pm_times_out`): refunded.
 */
export function sandboxRefundBehaviour(token: string, priorTransientFailures: number): SandboxBehaviour {
  if (token === "pm_succeeds_refund_declines") return { kind: "decline", errorCode: "refund_declined", message: "The refund was declined." };
  if (token === "pm_succeeds_refund_fails_transiently") return refundTransient();
  if (token === "pm_succeeds_refund_fails_then_succeeds") return priorTransientFailures < 1 ? refundTransient() : { kind: "charge" };
  if (token === "pm_succeeds_refund_times_out") return { kind: "charge_then_hang" };
  const charges = sandboxBehaviour(token, Number.MAX_SAFE_INTEGER).kind;
  if (charges === "charge" || charges === "charge_then_hang") return { kind: "charge" };
  return { kind: "decline", errorCode: "no_charge_to_refund", message: "this payment method was never charged" };
}

/** Whether a refund's behaviour depends on earlier transient failures for the credit note. */
export const sandboxRefundNeedsHistory = (token: string): boolean => token === "pm_succeeds_refund_fails_then_succeeds";

const refundTransient = (): SandboxBehaviour => ({
  kind: "transient",
  errorCode: "processing_error",
  message: "An error occurred while processing the refund; nothing was refunded. Try again later.",
});
