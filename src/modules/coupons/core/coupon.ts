// Coupons as Lago's API defines them (fixed amount or percentage; once, recurring or forever; an
// optional expiry; limited to plans or to billable metrics) and the values a coupon is applied to a
// customer with (Lago lets the application override them). Pure: "now" is handed in.
import { type Checked, ErrorSink, Fields } from "../../catalog/index.ts";
import { Decimal, isCurrency } from "../../../shared/money.ts";
import type { CouponFrequency, CouponType } from "./apply.ts";

export const COUPON_TYPES = ["fixed_amount", "percentage"] as const;
export const COUPON_FREQUENCIES = ["once", "recurring", "forever"] as const;
export const COUPON_EXPIRATIONS = ["no_expiration", "time_limit"] as const;
export type CouponExpiration = (typeof COUPON_EXPIRATIONS)[number];

export interface CouponDraft {
  readonly code: string;
  readonly name: string;
  readonly description: string | null;
  readonly couponType: CouponType;
  readonly amountCents: bigint | null;
  readonly amountCurrency: string | null;
  readonly percentageRate: Decimal | null;
  readonly frequency: CouponFrequency;
  readonly frequencyDuration: number | null;
  readonly reusable: boolean;
  readonly expiration: CouponExpiration;
  readonly expirationAt: Date | null;
  readonly planCodes: readonly string[];
  readonly billableMetricCodes: readonly string[];
}

export interface Coupon extends CouponDraft {
  readonly id: number;
  readonly orgId: number;
  readonly lagoId: string;
  readonly createdAt: Date;
  readonly terminatedAt: Date | null;
  readonly deletedAt: Date | null;
}

const RATE = /^\d{1,3}(?:\.\d{1,10})?$/;
const MAX_DURATION = 1200;

function readRate(f: Fields, key: string): Decimal | undefined {
  const v = f.obj[key];
  if (v === undefined || v === null || v === "") return undefined;
  const text = typeof v === "number" && Number.isFinite(v) ? String(v) : v;
  if (typeof text !== "string" || !RATE.test(text)) {
    f.fail(key, "value_is_invalid");
    return undefined;
  }
  const rate = new Decimal(text);
  if (rate.lte(0) || rate.gt(100)) {
    f.fail(key, "value_is_out_of_range");
    return undefined;
  }
  return rate;
}

function readDate(f: Fields, key: string): Date | null | undefined {
  const v = f.obj[key];
  if (v === undefined) return undefined;
  if (v === null || v === "") return null;
  const at = typeof v === "string" && /^\d{4}-\d{2}-\d{2}/.test(v) ? new Date(v) : null;
  if (at === null || Number.isNaN(at.getTime())) {
    f.fail(key, "invalid_date");
    return undefined;
  }
  return at;
}

/** A create (`current` null) or an update (fields sent replace the current ones). */
export function checkCoupon(raw: unknown, current: CouponDraft | null, now: Date): Checked<CouponDraft> {
  const sink = new ErrorSink();
  const f = new Fields(raw, sink);
  const updating = current !== null;
  const take = <T>(key: string, read: () => T | undefined, fallback: T): T => f.take(updating, key, read, fallback);
  const name = take("name", () => f.requiredText("name"), current?.name ?? "");
  const code = take("code", () => f.requiredText("code"), current?.code ?? "");
  const description = take("description", () => f.optionalText("description"), current?.description ?? null);

  const required = <T extends string>(key: string, allowed: readonly T[], fallback: T | undefined): T | undefined => {
    if (updating && !f.has(key)) return fallback;
    const v = f.oneOf(key, allowed);
    if (v === null || (v === undefined && !f.has(key))) f.fail(key, "value_is_mandatory");
    return v ?? undefined;
  };
  const couponType = required("coupon_type", COUPON_TYPES, current?.couponType);
  const frequency = required("frequency", COUPON_FREQUENCIES, current?.frequency);
  const expiration = required("expiration", COUPON_EXPIRATIONS, current?.expiration) ?? "no_expiration";

  let amountCents = take("amount_cents", () => f.cents("amount_cents"), current?.amountCents ?? null);
  let amountCurrency = current?.amountCurrency ?? null;
  if (!updating || f.has("amount_currency")) {
    const v = f.obj["amount_currency"];
    if (v !== undefined && v !== null && v !== "") {
      if (isCurrency(v)) amountCurrency = v;
      else f.fail("amount_currency", "value_is_invalid");
    }
  }
  let percentageRate = updating && !f.has("percentage_rate") ? current.percentageRate : (readRate(f, "percentage_rate") ?? null);
  if (couponType === "fixed_amount") {
    if (amountCents === null) f.fail("amount_cents", "value_is_mandatory");
    if (amountCurrency === null) f.fail("amount_currency", "value_is_mandatory");
    percentageRate = null;
  } else if (couponType === "percentage") {
    if (percentageRate === null && f.obj["percentage_rate"] !== undefined && f.obj["percentage_rate"] !== null && f.obj["percentage_rate"] !== "") {
      // readRate reported it.
    } else if (percentageRate === null) f.fail("percentage_rate", "value_is_mandatory");
    amountCents = null;
    amountCurrency = null;
  }

  let frequencyDuration = take("frequency_duration", () => f.integer("frequency_duration", 1, MAX_DURATION), current?.frequencyDuration ?? null);
  if (frequency === "recurring" && frequencyDuration === null && !sink.details["frequency_duration"]) f.fail("frequency_duration", "value_is_mandatory");
  if (frequency !== "recurring") frequencyDuration = null;

  const reusable = take("reusable", () => f.bool("reusable"), current?.reusable ?? true);
  let expirationAt = take("expiration_at", () => readDate(f, "expiration_at"), current?.expirationAt ?? null);
  if (expiration === "time_limit") {
    if (expirationAt === null && !sink.details["expiration_at"]) f.fail("expiration_at", "value_is_mandatory");
    else if (expirationAt !== null && (!updating || f.has("expiration_at")) && expirationAt.getTime() <= now.getTime()) f.fail("expiration_at", "invalid_date");
  } else expirationAt = null;

  let planCodes = current?.planCodes ?? [];
  let billableMetricCodes = current?.billableMetricCodes ?? [];
  if (f.has("applies_to")) {
    const g = new Fields(f.obj["applies_to"] ?? {}, sink, "applies_to.");
    if (f.obj["applies_to"] !== null && (typeof f.obj["applies_to"] !== "object" || Array.isArray(f.obj["applies_to"]))) f.fail("applies_to", "value_is_invalid");
    planCodes = g.stringList("plan_codes") ?? [];
    billableMetricCodes = g.stringList("billable_metric_codes") ?? [];
    // Lago limits a coupon to plans or to metrics, not both.
    if (planCodes.length > 0 && billableMetricCodes.length > 0) f.fail("applies_to", "only_one_limitation_type_per_coupon_allowed");
  }

  return sink.result({
    code,
    name,
    description,
    couponType: couponType ?? "fixed_amount",
    amountCents,
    amountCurrency,
    percentageRate,
    frequency: frequency ?? "once",
    frequencyDuration,
    reusable,
    expiration,
    expirationAt,
    planCodes,
    billableMetricCodes,
  });
}

export const draftOfCoupon = (c: Coupon): CouponDraft => ({ ...c });

/** The values a coupon is applied with (Lago: the request may override the coupon's). */
export interface AppliedCouponDraft {
  readonly externalCustomerId: string;
  readonly couponCode: string;
  readonly amountCents: bigint | null;
  readonly amountCurrency: string | null;
  readonly percentageRate: Decimal | null;
  readonly frequency: CouponFrequency;
  readonly frequencyDuration: number | null;
}

export interface AppliedCouponRequest {
  readonly externalCustomerId: string;
  readonly couponCode: string;
  /** Reads the overrides against the coupon, once it is found. */
  readonly resolve: (coupon: Coupon) => Checked<AppliedCouponDraft>;
}

export function checkAppliedCoupon(raw: unknown): Checked<AppliedCouponRequest> {
  const sink = new ErrorSink();
  const f = new Fields(raw, sink);
  const externalCustomerId = f.requiredText("external_customer_id") ?? "";
  const couponCode = f.requiredText("coupon_code") ?? "";
  const resolve = (coupon: Coupon): Checked<AppliedCouponDraft> => {
    const s = new ErrorSink();
    const g = new Fields(raw, s);
    const frequency = g.oneOf("frequency", COUPON_FREQUENCIES) ?? coupon.frequency;
    let frequencyDuration = g.integer("frequency_duration", 1, MAX_DURATION) ?? (frequency === coupon.frequency ? coupon.frequencyDuration : null);
    if (frequency === "recurring" && frequencyDuration === null && !s.details["frequency_duration"]) g.fail("frequency_duration", "value_is_mandatory");
    if (frequency !== "recurring") frequencyDuration = null;
    let amountCents: bigint | null = null;
    let amountCurrency: string | null = null;
    let percentageRate: Decimal | null = null;
    if (coupon.couponType === "fixed_amount") {
      amountCents = g.cents("amount_cents") ?? coupon.amountCents;
      const cur = g.obj["amount_currency"];
      if (cur !== undefined && cur !== null && cur !== "" && !isCurrency(cur)) g.fail("amount_currency", "value_is_invalid");
      amountCurrency = isCurrency(cur) ? cur : coupon.amountCurrency;
    } else percentageRate = readRate(g, "percentage_rate") ?? coupon.percentageRate;
    return s.result({ externalCustomerId, couponCode, amountCents, amountCurrency, percentageRate, frequency, frequencyDuration });
  };
  return sink.result({ externalCustomerId, couponCode, resolve });
}
