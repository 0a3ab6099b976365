import { describe, expect, it } from "vitest";
import { sandboxRefundBehaviour, sandboxRefundNeedsHistory } from "../../../src/modules/payments/core/index.ts";

describe("the sandbox's refunds, by the charge's payment method token", () => {
  it.each<[string, number, string, string?]>([
    ["pm_succeeds", 0, "charge"],
    ["pm_succeeds_visa", 0, "charge"],
    ["pm_fails_then_succeeds", 0, "charge"],
    ["pm_times_out", 0, "charge"],
    ["pm_succeeds_refund_declines", 0, "decline", "refund_declined"],
    ["pm_succeeds_refund_fails_transiently", 5, "transient", "processing_error"],
    ["pm_succeeds_refund_fails_then_succeeds", 0, "transient", "processing_error"],
    ["pm_succeeds_refund_fails_then_succeeds", 1, "charge"],
    ["pm_succeeds_refund_times_out", 0, "charge_then_hang"],
    ["pm_declines", 0, "decline", "no_charge_to_refund"],
    ["pm_fails_transiently", 0, "decline", "no_charge_to_refund"],
    ["", 0, "decline", "no_charge_to_refund"],
  ])("%s after %i transient failures: %s", (token, prior, kind, code) => {
    const b = sandboxRefundBehaviour(token, prior);
    expect(b.kind).toBe(kind);
    if (code !== undefined) expect("errorCode" in b ? b.errorCode : null).toBe(code);
  });

  it("only the fails-then-succeeds token reads the ledger", () => {
    expect(sandboxRefundNeedsHistory("pm_succeeds_refund_fails_then_succeeds")).toBe(true);
    expect(sandboxRefundNeedsHistory("pm_succeeds")).toBe(false);
  });
});
