import { describe, expect, it } from "vitest";
import { takeBack } from "../../../src/modules/wallets/core/wallet.ts";

describe("takeBack: what a credit note on a paid purchase of credits does to the wallet", () => {
  const active = (heldCents: bigint) => ({ walletActive: true, heldCents });
  it.each([
    ["a purchase that bought no credits that count leaves the wallet alone", null, 500n, "none"],
    ["a note taking nothing of the purchase leaves the wallet alone", active(0n), 0n, "none"],
    ["less than the wallet holds of the purchase is taken", active(500n), 499n, "take"],
    ["exactly what the wallet holds of the purchase is taken", active(500n), 500n, "take"],
    ["one cent more than it holds is refused", active(500n), 501n, "insufficient_credits"],
    ["nothing held of the purchase: any amount is refused", active(0n), 1n, "insufficient_credits"],
    ["a terminated wallet refuses even what it held", { walletActive: false, heldCents: 500n }, 100n, "wallet_terminated"],
  ] as const)("%s", (_, held, amount, outcome) => expect(takeBack(held, amount)).toBe(outcome));
});
