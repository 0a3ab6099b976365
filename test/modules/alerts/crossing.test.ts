// Which thresholds an evaluation crosses, and what an alert body may hold: pure rules, table-driven.
import { describe, expect, it } from "vitest";
import { d } from "../../../src/shared/money.ts";
import { baselineOf, checkAlert, crossedThresholds, watchedValue, type AlertThreshold, type UsageReading } from "../../../src/modules/alerts/index.ts";
import type { ChargeUsage } from "../../../src/modules/metering/index.ts";
import { thresholdValueString } from "../../../src/modules/alerts/core/alert.ts";

const fixed = (value: string, code: string | null = null): AlertThreshold => ({ code, value: d(value), recurring: false });
const every = (value: string, code: string | null = "every"): AlertThreshold => ({ code, value: d(value), recurring: true });

// Lago's example: fixed thresholds at 500 and 1000, recurring every 200 (1200, 1400, ...).
const lago = [fixed("500", "soft"), fixed("1000", "hard"), every("200")];
const levels = (previous: string, current: string, thresholds = lago) =>
  crossedThresholds(thresholds, d(previous), d(current)).map((c) => `${c.code}:${c.value.toFixed()}${c.recurring ? "r" : ""}`);

describe("crossedThresholds", () => {
  it.each<[string, string, string[]]>([
    ["0", "499", []],
    ["0", "500", ["soft:500"]],
    ["500", "999", []],
    ["499", "1000", ["soft:500", "hard:1000"]],
    ["1000", "1199", []],
    ["1000", "1200", ["every:1200r"]],
    ["1199", "1650", ["every:1200r", "every:1400r", "every:1600r"]],
    ["0", "1400", ["soft:500", "hard:1000", "every:1200r", "every:1400r"]],
    ["1400", "1400", []],
    ["1600", "700", []],
  ])("from %s to %s crosses %j", (previous, current, expected) => expect(levels(previous, current)).toEqual(expected));

  it("counts a recurring threshold alone from 0", () => expect(levels("250", "1000", [every("300", null)])).toEqual(["null:300r", "null:600r", "null:900r"]));

  it("crosses decimal unit thresholds exactly", () => expect(levels("0.1", "0.3", [fixed("0.2", "u")])).toEqual(["u:0.2"]));

  it("lists at most the highest 1000 recurring levels of one huge jump", () => {
    const crossed = crossedThresholds([every("1")], d("0"), d("5000"));
    expect(crossed).toHaveLength(1000);
    expect(crossed[0]!.value.toFixed()).toBe("4001");
    expect(crossed.at(-1)!.value.toFixed()).toBe("5000");
  });
});

describe("baselineOf", () => {
  const jan = new Date("2026-01-01T00:00:00Z");
  const feb = new Date("2026-02-01T00:00:00Z");
  it("keeps the previous value within the same period", () => expect(baselineOf("current_usage_amount", d("700"), jan, jan).toFixed()).toBe("700"));
  it("starts a current-usage alert from 0 in a new period", () => expect(baselineOf("billable_metric_current_usage_units", d("700"), jan, feb).toFixed()).toBe("0"));
  it("starts from 0 before any evaluation", () => expect(baselineOf("current_usage_amount", d("0"), null, feb).toFixed()).toBe("0"));
  it("never resets a lifetime alert", () => expect(baselineOf("lifetime_usage_amount", d("700"), null, feb).toFixed()).toBe("700"));
});

describe("watchedValue", () => {
  // Two charges on metric 1 (one with filters), one on metric 2; €30.00 of usage, €12.34 invoiced before.
  const charge = (metricId: number, units: string, cents: bigint) => ({ charge: { metric: { id: metricId } }, units: d(units), amountCents: cents }) as unknown as ChargeUsage;
  const reading: UsageReading = {
    amountCents: 3000n,
    charges: [charge(1, "10", 1000n), charge(1, "2.5", 500n), charge(2, "7", 1500n)],
    invoicedUsageCents: 1234n,
    invoicedUnits: new Map([[1, d("40")]]),
  };
  it.each<[Parameters<typeof watchedValue>[0], number | null, string]>([
    ["current_usage_amount", null, "3000"],
    ["lifetime_usage_amount", null, "4234"],
    ["billable_metric_current_usage_amount", 1, "1500"],
    ["billable_metric_current_usage_units", 1, "12.5"],
    ["billable_metric_current_usage_units", 3, "0"],
    ["billable_metric_lifetime_usage_units", 1, "52.5"],
    ["billable_metric_lifetime_usage_units", 2, "7"],
  ])("%s (metric %s) reads %s", (type, metricId, expected) => expect(watchedValue(type, metricId, reading).toFixed()).toBe(expected));
});

describe("checkAlert", () => {
  const base = { alert_type: "current_usage_amount", code: "budget", thresholds: [{ value: 1000 }] };
  const errorsOf = (body: unknown) => {
    const r = checkAlert(body, null);
    return r.ok ? {} : r.errors;
  };

  it("reads a valid body, thresholds by value with the recurring one last", () => {
    const r = checkAlert({ ...base, name: "Budget", thresholds: [{ value: "50", recurring: true }, { value: 200, code: "hard" }, { value: "100.5" }] }, null);
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.value.thresholds.map((t) => [t.code, t.value.toFixed(), t.recurring])).toEqual([
      [null, "100.5", false],
      ["hard", "200", false],
      [null, "50", true],
    ]);
    expect(r.value.billableMetricCode).toBeNull();
  });

  it.each<[string, unknown, Record<string, string[]>]>([
    ["no alert_type", { code: "x", thresholds: [{ value: 1 }] }, { alert_type: ["value_is_mandatory"] }],
    ["an unknown alert_type", { ...base, alert_type: "wallet_balance_amount" }, { alert_type: ["value_is_invalid"] }],
    ["no code", { ...base, code: "" }, { code: ["value_is_mandatory"] }],
    ["no thresholds", { ...base, thresholds: [] }, { thresholds: ["value_is_mandatory"] }],
    ["thresholds not a list", { ...base, thresholds: "1000" }, { thresholds: ["value_is_invalid"] }],
    ["a negative value", { ...base, thresholds: [{ value: -1 }] }, { "thresholds[0].value": ["value_is_out_of_range"] }],
    ["a value in words", { ...base, thresholds: [{ value: "ten" }] }, { "thresholds[0].value": ["value_is_invalid"] }],
    ["a threshold without value", { ...base, thresholds: [{ code: "x" }] }, { "thresholds[0].value": ["value_is_mandatory"] }],
    ["two recurring thresholds", { ...base, thresholds: [{ value: 1, recurring: true }, { value: 2, recurring: true }] }, { "thresholds[1].recurring": ["only_one_recurring_threshold"] }],
    ["a recurring threshold of 0", { ...base, thresholds: [{ value: 0, recurring: true }] }, { "thresholds[0].value": ["value_is_out_of_range"] }],
    ["the same value twice", { ...base, thresholds: [{ value: 10 }, { value: "10.0" }] }, { "thresholds[1].value": ["value_already_exist"] }],
    ["recurring not a boolean", { ...base, thresholds: [{ value: 1, recurring: "yes" }] }, { "thresholds[0].recurring": ["value_is_invalid"] }],
    ["a metric type without its metric", { ...base, alert_type: "billable_metric_current_usage_units" }, { billable_metric_code: ["value_is_mandatory"] }],
    ["a metric on a type without one", { ...base, billable_metric_code: "calls" }, { billable_metric_code: ["value_is_invalid"] }],
  ])("refuses %s", (_name, body, errors) => expect(errorsOf(body)).toEqual(errors));

  it("names every broken field at once", () =>
    expect(Object.keys(errorsOf({ alert_type: "nope", code: 5, thresholds: [{ value: "x" }, 7] })).sort()).toEqual(
      ["alert_type", "code", "thresholds[0].value", "thresholds[1]"].sort(),
    ));

  it("prefixes the fields of a batch item", () => {
    const r = checkAlert({ alert_type: "current_usage_amount" }, null, "alerts[2].");
    expect(r.ok ? {} : r.errors).toEqual({ "alerts[2].code": ["value_is_mandatory"], "alerts[2].thresholds": ["value_is_mandatory"] });
  });

  it.each([["99", "99.0"], ["0.5", "0.5"], ["1200.25", "1200.25"]])("shows %s as %s", (v, shown) => expect(thresholdValueString(d(v))).toBe(shown));
});
