import { describe, expect, it } from "vitest";
import { ErrorSink } from "../../../src/modules/catalog/index.ts";
import { checkRules, occurrenceAt, occurrencesBehind, occurrencesDue, topUpCredits } from "../../../src/modules/wallets/core/rules.ts";
import { d } from "../../../src/shared/money.ts";

const at = (s: string) => new Date(s);
const day = (x: Date) => x.toISOString().slice(0, 10);

describe("anniversaries of an interval rule", () => {
  it.each([
    ["monthly", "2026-01-31T15:00:00Z", 1, "2026-02-28"],
    ["monthly", "2026-01-31T15:00:00Z", 2, "2026-03-31"],
    ["monthly", "2024-01-31T00:00:00Z", 1, "2024-02-29"],
    ["quarterly", "2026-11-30T00:00:00Z", 1, "2027-02-28"],
    ["semiannual", "2026-08-31T00:00:00Z", 1, "2027-02-28"],
    ["yearly", "2024-02-29T00:00:00Z", 1, "2025-02-28"],
    ["yearly", "2024-02-29T00:00:00Z", 4, "2028-02-29"],
    ["weekly", "2026-03-02T23:00:00Z", 2, "2026-03-16"],
    ["monthly", "2026-01-15T10:00:00Z", 0, "2026-01-15"],
  ] as const)("%s from %s: anniversary %i is %s (a short month uses its last day)", (interval, anchor, k, expected) => {
    expect(day(occurrenceAt(at(anchor), interval, k))).toBe(expected);
  });

  it.each([
    ["a rule set up with its wallet skips the creation day", "2026-01-15T10:00:00Z", "2026-01-15T10:00:00Z", 0],
    ["a start still ahead leaves its start day due", "2026-02-01T00:00:00Z", "2026-01-10T00:00:00Z", -1],
    ["a start in the past does not make up the anniversaries before the set-up", "2025-06-15T00:00:00Z", "2026-01-20T00:00:00Z", 7],
    ["an anniversary on the set-up day is behind", "2025-06-15T00:00:00Z", "2026-01-15T23:00:00Z", 7],
  ])("%s", (_name, anchor, setUp, behind) => {
    expect(occurrencesBehind(at(anchor), "monthly", at(setUp))).toBe(behind);
  });

  it("due anniversaries are those after the last done, up to now", () => {
    expect(occurrencesDue(at("2026-01-15T10:00:00Z"), "monthly", 0, at("2026-05-20T00:00:00Z"))).toEqual([1, 2, 3, 4]);
    expect(occurrencesDue(at("2026-01-15T10:00:00Z"), "monthly", 4, at("2026-05-20T00:00:00Z"))).toEqual([]);
    expect(occurrencesDue(at("2026-01-01T00:00:00Z"), "weekly", 0, at("2040-01-01T00:00:00Z")).length).toBe(400);
  });
});

describe("credits of a top-up", () => {
  const fixed = { method: "fixed" as const, paidCredits: d("20"), grantedCredits: d("5"), targetOngoingBalance: null, grantsTargetTopUp: null };
  const target = { method: "target" as const, paidCredits: d("0"), grantedCredits: d("0"), targetOngoingBalance: d("100"), grantsTargetTopUp: false };
  it.each([
    ["fixed adds its amounts whatever the balance", fixed, 123_456n, "1", "EUR", ["20", "5"]],
    ["target fills the gap at rate 1", target, 1500n, "1", "EUR", ["85", "0"]],
    ["target at rate 3 rounds the credits up at 5 decimals (€300 target, €10 held: €290)", target, 1000n, "3", "EUR", ["96.66667", "0"]],
    ["target already reached adds nothing", target, 10_000n, "1", "EUR", ["0", "0"]],
    ["target in a currency without minor units", target, 40n, "1", "JPY", ["60", "0"]],
    ["target granting instead of selling", { ...target, grantsTargetTopUp: true }, 0n, "2", "EUR", ["0", "100"]],
  ] as const)("%s", (_name, rule, balance, rate, currency, [paid, granted]) => {
    const r = topUpCredits(rule, balance, d(rate), currency);
    expect([r.paid.toString(), r.granted.toString()]).toEqual([paid, granted]);
  });
});

describe("checking rules", () => {
  const now = at("2026-01-01T00:00:00Z");
  it("collects every broken field of every rule", () => {
    const sink = new ErrorSink();
    checkRules([{ trigger: "sometimes", method: "percent", interval: "daily", paid_credits: "x", expiration_at: "2025-01-01" }], sink, now);
    expect(sink.details).toEqual({
      "recurring_transaction_rules[0].trigger": ["value_is_invalid"],
      "recurring_transaction_rules[0].method": ["value_is_invalid"],
      "recurring_transaction_rules[0].interval": ["value_is_invalid"],
      "recurring_transaction_rules[0].paid_credits": ["value_is_invalid"],
      "recurring_transaction_rules[0].expiration_at": ["invalid_date"],
    });
  });
  it("fills Lago's defaults: fixed method, no target, amounts as given", () => {
    const sink = new ErrorSink();
    const [rule] = checkRules([{ trigger: "threshold", threshold_credits: "10.5", granted_credits: 3 }], sink, now);
    expect(sink.empty).toBe(true);
    expect(rule).toMatchObject({ trigger: "threshold", method: "fixed", interval: null, targetOngoingBalance: null, grantsTargetTopUp: null });
    expect([rule!.thresholdCredits!.toString(), rule!.grantedCredits.toString(), rule!.paidCredits.toString()]).toEqual(["10.5", "3", "0"]);
  });
});
