import { describe, expect, it } from "vitest";
import { sandboxBehaviour } from "../../../src/modules/payments/core/index.ts";

describe("the sandbox's behaviour by payment method token", () => {
  it.each([
    ["pm_succeeds", 0, "charge"],
    ["pm_succeeds_visa", 0, "charge"],
    ["pm_declines", 0, "decline"],
    ["pm_insufficient_funds", 0, "decline"],
    ["pm_fails_transiently", 0, "transient"],
    ["pm_fails_transiently", 7, "transient"],
    ["pm_times_out", 0, "charge_then_hang"],
    ["pm_fails_then_succeeds", 0, "transient"],
    ["pm_fails_then_succeeds", 1, "charge"],
    ["pm_fails_3_then_succeeds", 2, "transient"],
    ["pm_fails_3_then_succeeds", 3, "charge"],
    ["cus_12345", 0, "decline"],
    ["", 0, "decline"],
  ] as const)("%j after %d transient failures: %s", (token, prior, kind) => {
    expect(sandboxBehaviour(token, prior).kind).toBe(kind);
  });

  it("declines name their reason", () => {
    expect(sandboxBehaviour("pm_declines", 0)).toMatchObject({ errorCode: "card_declined" });
    expect(sandboxBehaviour("pm_insufficient_funds", 0)).toMatchObject({ errorCode: "insufficient_funds" });
    expect(sandboxBehaviour("", 0)).toMatchObject({ errorCode: "payment_method_missing" });
    expect(sandboxBehaviour("cus_1", 0)).toMatchObject({ errorCode: "unknown_payment_method" });
  });
});
