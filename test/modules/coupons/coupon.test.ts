import { describe, expect, it } from "vitest";
import { checkAppliedCoupon, checkCoupon, type Coupon } from "../../../src/modules/coupons/index.ts";
import { d } from "../../../src/shared/money.ts";

const now = new Date("2026-01-01T00:00:00Z");
const base = { name: "Welcome", code: "welcome", frequency: "once", expiration: "no_expiration" };

describe("coupon input", () => {
  it.each<[string, Record<string, unknown>, Record<string, unknown>]>([
    ["a fixed amount once", { ...base, coupon_type: "fixed_amount", amount_cents: 1000, amount_currency: "EUR" }, { amountCents: 1000n, amountCurrency: "EUR", percentageRate: null, frequencyDuration: null }],
    ["a percentage recurring for 3 periods", { ...base, coupon_type: "percentage", percentage_rate: "12.5", frequency: "recurring", frequency_duration: 3 }, { amountCents: null, frequencyDuration: 3 }],
    ["a duration is dropped unless recurring", { ...base, coupon_type: "percentage", percentage_rate: "5", frequency: "forever", frequency_duration: 3 }, { frequency: "forever", frequencyDuration: null }],
    ["limited to metrics", { ...base, coupon_type: "percentage", percentage_rate: "5", applies_to: { billable_metric_codes: ["calls", "calls"] } }, { billableMetricCodes: ["calls"], planCodes: [] }],
    ["an expiry in the future", { ...base, coupon_type: "percentage", percentage_rate: "5", expiration: "time_limit", expiration_at: "2026-02-01T00:00:00Z" }, { expirationAt: new Date("2026-02-01T00:00:00Z") }],
  ])("reads %s", (_name, raw, expected) => {
    const r = checkCoupon(raw, null, now);
    expect(r.ok ? r.value : r.errors).toMatchObject(expected);
  });

  it.each<[string, Record<string, unknown>, string[]]>([
    ["a fixed amount without amount nor currency", { ...base, coupon_type: "fixed_amount" }, ["amount_cents", "amount_currency"]],
    ["a percentage over 100", { ...base, coupon_type: "percentage", percentage_rate: "101" }, ["percentage_rate"]],
    ["a recurring coupon without duration", { ...base, coupon_type: "percentage", percentage_rate: "1", frequency: "recurring" }, ["frequency_duration"]],
    ["an expiry in the past", { ...base, coupon_type: "percentage", percentage_rate: "1", expiration: "time_limit", expiration_at: "2025-01-01T00:00:00Z" }, ["expiration_at"]],
    ["both kinds of limitation", { ...base, coupon_type: "percentage", percentage_rate: "1", applies_to: { plan_codes: ["p"], billable_metric_codes: ["m"] } }, ["applies_to"]],
    ["unknown enums", { ...base, coupon_type: "gift", frequency: "sometimes", expiration: "never" }, ["coupon_type", "frequency", "expiration"]],
  ])("refuses %s, naming the fields", (_name, raw, fields) => {
    const r = checkCoupon(raw, null, now);
    expect(r.ok ? [] : Object.keys(r.errors).sort()).toEqual([...fields].sort());
  });
});

describe("applied coupon input", () => {
  const coupon = {
    couponType: "fixed_amount",
    amountCents: 1000n,
    amountCurrency: "EUR",
    percentageRate: null,
    frequency: "recurring",
    frequencyDuration: 3,
  } as unknown as Coupon;

  it("takes the coupon's values unless the request overrides them", () => {
    const r = checkAppliedCoupon({ external_customer_id: "c", coupon_code: "welcome", amount_cents: 500 });
    const v = r.ok ? r.value.resolve(coupon) : null;
    expect(v?.ok && v.value).toMatchObject({ amountCents: 500n, amountCurrency: "EUR", frequency: "recurring", frequencyDuration: 3 });
  });

  it("a percentage coupon takes an overriding rate", () => {
    const pct = { ...coupon, couponType: "percentage", amountCents: null, amountCurrency: null, percentageRate: d(10) } as unknown as Coupon;
    const r = checkAppliedCoupon({ external_customer_id: "c", coupon_code: "x", percentage_rate: "15", frequency: "once" });
    const v = r.ok ? r.value.resolve(pct) : null;
    expect(v?.ok && [v.value.percentageRate?.toString(), v.value.frequency, v.value.frequencyDuration, v.value.amountCents]).toEqual(["15", "once", null, null]);
  });

  it("names what is missing", () => {
    const r = checkAppliedCoupon({});
    expect(r.ok ? [] : Object.keys(r.errors).sort()).toEqual(["coupon_code", "external_customer_id"]);
  });
});
