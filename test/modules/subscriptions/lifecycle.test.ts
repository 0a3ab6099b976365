import { describe, expect, it } from "vitest";
import {
  type SubscriptionState,
  activationAt,
  currentBillingPeriod,
  downgradeAt,
  downgradePlanDate,
  initialStatus,
  planChange,
  scheduleOf,
  settle,
  trialEndedAt,
  yearlyAmountCents,
} from "../../../src/modules/subscriptions/core/index.ts";

const at = (iso: string) => new Date(iso);
const lago = (d: Date | null | undefined) => (d == null ? null : d.toISOString().replace(/\.\d{3}Z$/, "Z"));

describe("the status a new subscription starts in", () => {
  it.each([
    ["a start in the past is active", "2026-03-01T00:00:00Z", "2026-03-15T12:00:00Z", "UTC", "active"],
    ["a start earlier today is active", "2026-03-15T08:00:00Z", "2026-03-15T12:00:00Z", "UTC", "active"],
    ["a start later today is active at once, as in Lago (decided by day)", "2026-03-15T23:00:00Z", "2026-03-15T12:00:00Z", "UTC", "active"],
    ["a start tomorrow is pending", "2026-03-16T00:00:00Z", "2026-03-15T12:00:00Z", "UTC", "pending"],
    ["a start that is still today in New York but tomorrow in UTC is active there", "2026-03-16T02:00:00Z", "2026-03-15T20:00:00Z", "America/New_York", "active"],
    ["a start that is tomorrow in Tokyo is pending there although UTC says today", "2026-03-15T16:00:00Z", "2026-03-15T12:00:00Z", "Asia/Tokyo", "pending"],
  ])("%s", (_case, subscriptionAt, now, timezone, expected) => {
    expect(initialStatus(at(subscriptionAt), at(now), timezone)).toBe(expected);
  });

  it("a future subscription starts at midnight of its day in the customer's timezone", () => {
    expect(activationAt(at("2026-04-10T15:30:00Z"), "Europe/Paris").toISOString()).toBe("2026-04-09T22:00:00.000Z");
  });
});

describe("a plan change is an upgrade or a downgrade by yearly amount (Lago's rule)", () => {
  const plan = (interval: "weekly" | "monthly" | "quarterly" | "yearly", amountCents: bigint) => ({ interval, amountCents });
  it.each([
    ["the same plan changes nothing", 1, false, plan("monthly", 1000n), 1, plan("monthly", 1000n), "unchanged"],
    ["a dearer plan is an upgrade", 1, false, plan("monthly", 1000n), 2, plan("monthly", 2000n), "upgrade"],
    ["a plan of the same price is an upgrade (at least the current amount)", 1, false, plan("monthly", 1000n), 2, plan("monthly", 1000n), "upgrade"],
    ["a cheaper plan is a downgrade", 1, false, plan("monthly", 2000n), 2, plan("monthly", 1000n), "downgrade"],
    ["a yearly plan at 10 months' price is a downgrade from monthly", 1, false, plan("monthly", 1000n), 2, plan("yearly", 10_000n), "downgrade"],
    ["a weekly plan at 300 per week (15,600 a year) upgrades a 1,200 monthly one (14,400 a year)", 1, false, plan("monthly", 1200n), 2, plan("weekly", 300n), "upgrade"],
    ["a quarterly plan is compared four times a year", 1, false, plan("monthly", 1000n), 2, plan("quarterly", 2999n), "downgrade"],
    ["the same plan asked again by an overridden subscription is a change", 1, true, plan("monthly", 500n), 1, plan("monthly", 1000n), "upgrade"],
  ] as const)("%s", (_case, currentId, overridden, current, requestedId, requested, expected) => {
    expect(planChange({ planId: currentId, overridden, plan: current }, { planId: requestedId, overridden: false, plan: requested })).toBe(expected);
  });

  it.each([
    ["weekly", 100n, 5200n],
    ["monthly", 100n, 1200n],
    ["quarterly", 100n, 400n],
    ["yearly", 100n, 100n],
  ] as const)("a %s plan of %s a period is %s a year", (interval, amount, yearly) => {
    expect(yearlyAmountCents({ interval, amountCents: amount })).toBe(yearly);
  });
});

describe("a downgrade takes over at the end of the current billing period", () => {
  it.each([
    ["calendar monthly, mid-month", "calendar", "monthly", "2026-01-01T00:00:00Z", "2026-03-15T12:00:00Z", "UTC", "2026-04-01T00:00:00.000Z", "2026-04-01"],
    ["anniversary monthly from the 10th", "anniversary", "monthly", "2026-01-10T09:00:00Z", "2026-03-15T12:00:00Z", "UTC", "2026-04-10T00:00:00.000Z", "2026-04-10"],
    ["calendar yearly", "calendar", "yearly", "2025-06-01T00:00:00Z", "2026-03-15T12:00:00Z", "UTC", "2027-01-01T00:00:00.000Z", "2027-01-01"],
    ["calendar weekly (weeks start on Monday)", "calendar", "weekly", "2026-01-01T00:00:00Z", "2026-03-15T12:00:00Z", "UTC", "2026-03-16T00:00:00.000Z", "2026-03-16"],
    ["in the customer's timezone", "calendar", "monthly", "2026-01-01T00:00:00Z", "2026-03-15T12:00:00Z", "Europe/Paris", "2026-03-31T22:00:00.000Z", "2026-04-01"],
  ] as const)("%s", (_case, billingTime, interval, subscriptionAt, now, timezone, expected, date) => {
    const schedule = scheduleOf({ subscriptionAt: at(subscriptionAt), billingTime }, interval, timezone);
    const when = downgradeAt(schedule, at(now));
    expect(when.toISOString()).toBe(expected);
    expect(downgradePlanDate(when, timezone)).toBe(date);
  });
});

const state = (fields: Partial<SubscriptionState> & { id: number }): SubscriptionState => ({
  status: "active",
  subscriptionAt: at("2026-01-01T00:00:00Z"),
  startedAt: at("2026-01-01T00:00:00Z"),
  endingAt: null,
  terminatedAt: null,
  canceledAt: null,
  previousId: null,
  downgradeAt: null,
  ...fields,
});

describe("settling what time has made due", () => {
  it("leaves an active subscription with nothing due alone", () => {
    expect(settle([state({ id: 1 })], at("2026-06-01T00:00:00Z"), "UTC")).toEqual([]);
  });

  it("starts a future subscription on its day, started at its subscription_at", () => {
    const pending = state({ id: 1, status: "pending", subscriptionAt: at("2026-04-10T15:00:00Z"), startedAt: null });
    expect(settle([pending], at("2026-04-09T23:59:59Z"), "UTC")).toEqual([]);
    expect(settle([pending], at("2026-04-10T00:00:00Z"), "UTC")).toEqual([{ ...pending, status: "active", startedAt: at("2026-04-10T15:00:00Z") }]);
  });

  it("terminates an active subscription at its ending_at and cancels the downgrade it scheduled", () => {
    const current = state({ id: 1, endingAt: at("2026-03-20T00:00:00Z") });
    const next = state({ id: 2, status: "pending", startedAt: null, previousId: 1, downgradeAt: at("2026-04-01T00:00:00Z") });
    expect(settle([current, next], at("2026-03-19T23:59:59Z"), "UTC")).toEqual([]);
    expect(settle([current, next], at("2026-05-01T00:00:00Z"), "UTC")).toEqual([
      { ...current, status: "terminated", terminatedAt: at("2026-03-20T00:00:00Z") },
      { ...next, status: "canceled", canceledAt: at("2026-03-20T00:00:00Z") },
    ]);
  });

  it("switches a scheduled downgrade at its date: the current one terminated, the pending one started, at the same instant", () => {
    const current = state({ id: 1 });
    const next = state({ id: 2, status: "pending", startedAt: null, previousId: 1, downgradeAt: at("2026-04-01T00:00:00Z") });
    expect(settle([current, next], at("2026-03-31T23:59:59Z"), "UTC")).toEqual([]);
    expect(settle([current, next], at("2026-04-01T00:00:00Z"), "UTC")).toEqual([
      { ...current, status: "terminated", terminatedAt: at("2026-04-01T00:00:00Z") },
      { ...next, status: "active", startedAt: at("2026-04-01T00:00:00Z") },
    ]);
  });

  it("applies transitions in time order: a downgrade, then the new subscription's own ending_at", () => {
    const current = state({ id: 1 });
    const next = state({ id: 2, status: "pending", startedAt: null, previousId: 1, downgradeAt: at("2026-04-01T00:00:00Z"), endingAt: at("2026-04-15T00:00:00Z") });
    const settled = settle([current, next], at("2026-05-01T00:00:00Z"), "UTC");
    expect(settled).toEqual([
      { ...current, status: "terminated", terminatedAt: at("2026-04-01T00:00:00Z") },
      { ...next, status: "terminated", startedAt: at("2026-04-01T00:00:00Z"), terminatedAt: at("2026-04-15T00:00:00Z") },
    ]);
  });

  it("lets an ending_at at the very instant of a downgrade end the subscription, with nothing after it", () => {
    const current = state({ id: 1, endingAt: at("2026-04-01T00:00:00Z") });
    const next = state({ id: 2, status: "pending", startedAt: null, previousId: 1, downgradeAt: at("2026-04-01T00:00:00Z") });
    expect(settle([current, next], at("2026-04-02T00:00:00Z"), "UTC").map((s) => s.status)).toEqual(["terminated", "canceled"]);
  });

  it("is idempotent: settling the result again changes nothing", () => {
    const rows = [state({ id: 1 }), state({ id: 2, status: "pending", startedAt: null, previousId: 1, downgradeAt: at("2026-04-01T00:00:00Z") })];
    const now = at("2026-04-02T00:00:00Z");
    const once = settle(rows, now, "UTC");
    const merged = rows.map((r) => once.find((c) => c.id === r.id) ?? r);
    expect(settle(merged, now, "UTC")).toEqual([]);
  });
});

describe("the current billing period (Lago's current_billing_period_started_at / _ending_at)", () => {
  const monthly = { interval: "monthly" as const, billChargesMonthly: null };
  const sub = (fields: Partial<SubscriptionState> & { billingTime?: "calendar" | "anniversary" } = {}) => ({ ...state({ id: 1 }), billingTime: "calendar" as const, ...fields });
  it.each([
    ["an active calendar subscription: the month it is in", sub(), monthly, "UTC", "2026-03-15T12:00:00Z", "2026-03-01T00:00:00Z", "2026-03-31T23:59:59Z"],
    ["a subscription started mid-month: cut at its start", sub({ subscriptionAt: at("2026-03-10T09:30:00Z"), startedAt: at("2026-03-10T09:30:00Z") }), monthly, "UTC", "2026-03-15T12:00:00Z", "2026-03-10T09:30:00Z", "2026-03-31T23:59:59Z"],
    ["an anniversary subscription: from its day of the month", sub({ billingTime: "anniversary", subscriptionAt: at("2026-01-10T00:00:00Z") }), monthly, "UTC", "2026-03-15T12:00:00Z", "2026-03-10T00:00:00Z", "2026-04-09T23:59:59Z"],
    ["in the customer's timezone", sub(), monthly, "Europe/Paris", "2026-03-15T12:00:00Z", "2026-02-28T23:00:00Z", "2026-03-31T21:59:59Z"],
    ["a terminated subscription: its last period, cut at the termination", sub({ status: "terminated", terminatedAt: at("2026-02-20T10:00:00Z") }), monthly, "UTC", "2026-03-15T12:00:00Z", "2026-02-01T00:00:00Z", "2026-02-20T10:00:00Z"],
    ["a subscription ended by a downgrade at a period boundary: the period before it", sub({ status: "terminated", terminatedAt: at("2026-03-01T00:00:00Z") }), monthly, "UTC", "2026-03-15T12:00:00Z", "2026-02-01T00:00:00Z", "2026-02-28T23:59:59Z"],
    ["a future subscription: its first period", sub({ status: "pending", startedAt: null, subscriptionAt: at("2026-04-10T00:00:00Z") }), monthly, "UTC", "2026-03-15T12:00:00Z", "2026-04-10T00:00:00Z", "2026-04-30T23:59:59Z"],
    ["a scheduled downgrade: the period it takes over", sub({ status: "pending", startedAt: null, previousId: 9, downgradeAt: at("2026-04-01T00:00:00Z") }), monthly, "UTC", "2026-03-15T12:00:00Z", "2026-04-01T00:00:00Z", "2026-04-30T23:59:59Z"],
    ["a yearly plan billing charges monthly: the month", sub(), { interval: "yearly" as const, billChargesMonthly: true }, "UTC", "2026-03-15T12:00:00Z", "2026-03-01T00:00:00Z", "2026-03-31T23:59:59Z"],
    ["a yearly plan: the year", sub(), { interval: "yearly" as const, billChargesMonthly: false }, "UTC", "2026-03-15T12:00:00Z", "2026-01-01T00:00:00Z", "2026-12-31T23:59:59Z"],
  ])("%s", (_case, s, plan, timezone, now, from, to) => {
    const period = currentBillingPeriod(s, plan, timezone, at(now));
    expect([lago(period?.from), lago(period?.to)]).toEqual([from, to]);
  });

  it("a canceled subscription has none", () => {
    expect(currentBillingPeriod(sub({ status: "canceled", canceledAt: at("2026-03-01T00:00:00Z") }), monthly, "UTC", at("2026-03-15T00:00:00Z"))).toBeNull();
  });
});

describe("trial_ended_at", () => {
  const started = at("2026-03-01T10:00:00Z");
  it.each([
    ["is null while the trial runs", "active", null, 14, "2026-03-10T00:00:00Z", null],
    ["is the end of the trial once it is over", "active", null, 14, "2026-03-20T00:00:00Z", "2026-03-15T10:00:00Z"],
    ["counts fractional days", "active", null, 0.5, "2026-03-02T00:00:00Z", "2026-03-01T22:00:00Z"],
    ["is null for a plan without a trial", "active", null, null, "2026-04-01T00:00:00Z", null],
    ["is null for a zero-day trial", "active", null, 0, "2026-04-01T00:00:00Z", null],
    ["is null when terminated before the trial ended", "terminated", "2026-03-05T00:00:00Z", 14, "2026-04-01T00:00:00Z", null],
    ["is kept when terminated after the trial ended", "terminated", "2026-03-25T00:00:00Z", 14, "2026-04-01T00:00:00Z", "2026-03-15T10:00:00Z"],
    ["is null for a pending subscription", "pending", null, 14, "2026-04-01T00:00:00Z", null],
  ] as const)("%s", (_case, status, terminatedAt, trial, now, expected) => {
    const end = trialEndedAt({ status, terminatedAt: terminatedAt === null ? null : at(terminatedAt) }, trial, started, at(now));
    expect(lago(end)).toBe(expected);
  });
});
