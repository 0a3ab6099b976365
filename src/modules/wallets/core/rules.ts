// Recurring top-up rules of a wallet (Lago's `recurring_transaction_rules`): an `interval` rule tops
// up on every anniversary of its start (started_at, else the wallet's creation; weekly, monthly,
// quarterly, semiannual, yearly; a month without that day uses its last day), never on the day the
// rule is set up; a `threshold` rule tops up when the balance falls to `threshold_credits`. `fixed`
// adds paid_credits / granted_credits; `target` adds what brings the balance to
// target_ongoing_balance. Pure: "now" is handed in; calendar days are UTC days.
import { type Checked, ErrorSink, Fields } from "../../catalog/index.ts";
import { Decimal, ZERO, minorUnits } from "../../../shared/money.ts";
import { readCredits } from "./wallet.ts";

export const RULE_TRIGGERS = ["interval", "threshold"] as const;
export const RULE_METHODS = ["fixed", "target"] as const;
export const RULE_INTERVALS = ["weekly", "monthly", "quarterly", "semiannual", "yearly"] as const;
export type RuleTrigger = (typeof RULE_TRIGGERS)[number];
export type RuleMethod = (typeof RULE_METHODS)[number];
export type RuleInterval = (typeof RULE_INTERVALS)[number];

/** At most this many top-ups of one rule per run (a clock moved years ahead stays bounded). */
export const MAX_OCCURRENCES_PER_RUN = 400;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export interface RuleDraft {
  /** An existing rule of the wallet to change (PUT); absent: a new rule. */
  readonly lagoId: string | null;
  readonly trigger: RuleTrigger;
  readonly method: RuleMethod;
  readonly interval: RuleInterval | null;
  readonly thresholdCredits: Decimal | null;
  readonly paidCredits: Decimal;
  readonly grantedCredits: Decimal;
  readonly targetOngoingBalance: Decimal | null;
  readonly grantsTargetTopUp: boolean | null;
  readonly startedAt: Date | null;
  readonly expirationAt: Date | null;
  readonly invoiceRequiresSuccessfulPayment: boolean;
  readonly transactionMetadata: readonly { key: string; value: string }[];
  readonly transactionName: string | null;
}

function readInstant(f: Fields, key: string): Date | null | undefined {
  const v = f.obj[key];
  if (v === undefined) return undefined;
  if (v === null || v === "") return null;
  const at = typeof v === "string" && /^\d{4}-\d{2}-\d{2}/.test(v) ? new Date(v.length === 10 ? `${v}T00:00:00Z` : v) : null;
  if (at === null || Number.isNaN(at.getTime()) || (v as string).length === 10 && at.toISOString().slice(0, 10) !== v) {
    f.fail(key, "invalid_date");
    return undefined;
  }
  return at;
}

/**
 * `recurring_transaction_rules` of POST or PUT /wallets (Lago allows one rule per wallet). Every
 * broken field is reported under its path (`recurring_transaction_rules[0].interval`).
 */
export function checkRules(raw: unknown, sink: ErrorSink, now: Date): RuleDraft[] {
  const key = "recurring_transaction_rules";
  if (raw === null) return [];
  if (!Array.isArray(raw)) {
    sink.add(key, "value_is_invalid");
    return [];
  }
  if (raw.length > 1) sink.add(key, "only_one_rule_allowed");
  const out: RuleDraft[] = [];
  raw.forEach((item, i) => {
    const f = new Fields(item, sink, `${key}[${i}].`);
    if (typeof item !== "object" || item === null || Array.isArray(item)) {
      sink.add(`${key}[${i}]`, "value_is_invalid");
      return;
    }
    const lagoId = f.optionalText("lago_id", 64) ?? null;
    if (lagoId !== null && !UUID.test(lagoId)) f.fail("lago_id", "value_is_invalid");
    const trigger = f.oneOf("trigger", RULE_TRIGGERS);
    if (trigger === undefined && !f.has("trigger")) f.fail("trigger", "value_is_mandatory");
    if (trigger === null) f.fail("trigger", "value_is_mandatory");
    const method = f.oneOf("method", RULE_METHODS) ?? "fixed";
    const interval = f.oneOf("interval", RULE_INTERVALS) ?? null;
    if (trigger === "interval" && interval === null && !(f.has("interval") && f.obj["interval"] !== null)) f.fail("interval", "value_is_mandatory");
    const threshold = readCredits(f, "threshold_credits") ?? null;
    if (trigger === "threshold" && threshold === null && !(f.has("threshold_credits") && f.obj["threshold_credits"] !== null)) {
      f.fail("threshold_credits", "value_is_mandatory");
    }
    const paid = readCredits(f, "paid_credits") ?? ZERO;
    const granted = readCredits(f, "granted_credits") ?? ZERO;
    const target = readCredits(f, "target_ongoing_balance") ?? null;
    if (method === "target" && target === null && !(f.has("target_ongoing_balance") && f.obj["target_ongoing_balance"] !== null)) {
      f.fail("target_ongoing_balance", "value_is_mandatory");
    }
    if (method === "fixed" && paid.lte(0) && granted.lte(0) && sink.details[f.path("paid_credits")] === undefined && sink.details[f.path("granted_credits")] === undefined) {
      f.fail("paid_credits", "value_is_mandatory");
    }
    const grantsTargetTopUp = f.bool("grants_target_top_up");
    const startedAt = readInstant(f, "started_at") ?? null;
    const expirationAt = readInstant(f, "expiration_at") ?? null;
    if (expirationAt !== null && expirationAt.getTime() <= now.getTime()) f.fail("expiration_at", "invalid_date");
    const requires = f.bool("invoice_requires_successful_payment") ?? false;
    const transactionName = f.optionalText("transaction_name", 255) ?? null;
    const metadata: { key: string; value: string }[] = [];
    f.array("transaction_metadata")?.forEach((m, j) => {
      const g = new Fields(m, sink, `${key}[${i}].transaction_metadata[${j}].`);
      const k = g.requiredText("key", 100);
      const v = g.optionalText("value", 255);
      if (k !== undefined) metadata.push({ key: k, value: v ?? "" });
    });
    out.push({
      lagoId: lagoId === null ? null : lagoId.toLowerCase(),
      trigger: trigger ?? "interval",
      method,
      interval: trigger === "interval" ? (interval ?? "monthly") : null,
      thresholdCredits: trigger === "threshold" ? (threshold ?? ZERO) : null,
      paidCredits: method === "fixed" ? paid : ZERO,
      grantedCredits: method === "fixed" ? granted : ZERO,
      targetOngoingBalance: method === "target" ? (target ?? ZERO) : null,
      grantsTargetTopUp: method === "target" ? (grantsTargetTopUp ?? false) : null,
      startedAt,
      expirationAt,
      invoiceRequiresSuccessfulPayment: requires,
      transactionMetadata: metadata,
      transactionName,
    });
  });
  return out;
}

/** Only the rules of a request body (the rest of it is checked elsewhere). */
export function checkRulesOf(raw: unknown, now: Date): Checked<RuleDraft[] | undefined> {
  const sink = new ErrorSink();
  const body = typeof raw === "object" && raw !== null ? (raw as Record<string, unknown>) : {};
  const value = body["recurring_transaction_rules"] === undefined ? undefined : checkRules(body["recurring_transaction_rules"], sink, now);
  return sink.result(value);
}

const DAY = 86_400_000;
const startOfUtcDay = (d: Date) => new Date(Math.floor(d.getTime() / DAY) * DAY);
const MONTHS: Record<Exclude<RuleInterval, "weekly">, number> = { monthly: 1, quarterly: 3, semiannual: 6, yearly: 12 };

/** The k-th anniversary day (k ≥ 0) of `anchor`, at 00:00 UTC; a month too short for its day uses its last day. */
export function occurrenceAt(anchor: Date, interval: RuleInterval, k: number): Date {
  const day = startOfUtcDay(anchor);
  if (interval === "weekly") return new Date(day.getTime() + k * 7 * DAY);
  const months = anchor.getUTCMonth() + k * MONTHS[interval];
  const year = anchor.getUTCFullYear() + Math.floor(months / 12);
  const month = ((months % 12) + 12) % 12;
  const last = new Date(Date.UTC(year, month + 1, 0)).getUTCDate();
  return new Date(Date.UTC(year, month, Math.min(anchor.getUTCDate(), last)));
}

/**
 * The last anniversary index already behind a rule set up at `setUpAt` (its day included: a rule
 * never tops up on the day it is set up; earlier anniversaries are not made up): -1 when the first
 * anniversary day (the start itself) is still ahead.
 */
export function occurrencesBehind(anchor: Date, interval: RuleInterval, setUpAt: Date): number {
  const today = startOfUtcDay(setUpAt).getTime();
  if (occurrenceAt(anchor, interval, 0).getTime() > today) return -1;
  // Close to the answer by arithmetic, then settle by stepping (months vary in length).
  const span = today - startOfUtcDay(anchor).getTime();
  let k = Math.max(0, Math.floor(span / ((interval === "weekly" ? 7 : 28 * MONTHS[interval]) * DAY)));
  while (k > 0 && occurrenceAt(anchor, interval, k).getTime() > today) k--;
  while (occurrenceAt(anchor, interval, k + 1).getTime() <= today) k++;
  return k;
}

/** The anniversary indexes after `done` that fell due by `now`, at most MAX_OCCURRENCES_PER_RUN. */
export function occurrencesDue(anchor: Date, interval: RuleInterval, done: number, now: Date): number[] {
  const out: number[] = [];
  for (let k = done + 1; out.length < MAX_OCCURRENCES_PER_RUN && occurrenceAt(anchor, interval, k).getTime() <= now.getTime(); k++) out.push(k);
  return out;
}

/** Credits a top-up adds: fixed amounts, or (target) what brings `balanceCents` to the target, rounded up to the minor unit. */
export function topUpCredits(
  rule: { method: RuleMethod; paidCredits: Decimal; grantedCredits: Decimal; targetOngoingBalance: Decimal | null; grantsTargetTopUp: boolean | null },
  balanceCents: bigint,
  rateAmount: Decimal,
  currency: string,
): { paid: Decimal; granted: Decimal } {
  if (rule.method === "fixed") return { paid: rule.paidCredits, granted: rule.grantedCredits };
  const scale = Decimal.pow(10, minorUnits(currency));
  const targetCents = (rule.targetOngoingBalance ?? ZERO).times(rateAmount).times(scale).toDecimalPlaces(0, Decimal.ROUND_HALF_UP);
  const gapCents = targetCents.minus(balanceCents.toString());
  if (gapCents.lte(0)) return { paid: ZERO, granted: ZERO };
  const credits = gapCents.div(scale).div(rateAmount).toDecimalPlaces(5, Decimal.ROUND_UP);
  return rule.grantsTargetTopUp === true ? { paid: ZERO, granted: credits } : { paid: credits, granted: ZERO };
}
