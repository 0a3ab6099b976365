// Usage alerts as Lago defines them: a subscription's alert of one type watches one value (the
// current period's usage amount, one metric's usage amount or units, or the lifetime usage amount)
// against thresholds; a threshold may be recurring (crossed again at every multiple of its value
// past the highest fixed one). Reading a create or update body, every broken field reported. Pure.
import { type Checked, ErrorSink, Fields, isRecord } from "../../catalog/index.ts";
import { Decimal } from "../../../shared/money.ts";

export const ALERT_TYPES = [
  "current_usage_amount",
  "billable_metric_current_usage_amount",
  "billable_metric_current_usage_units",
  "lifetime_usage_amount",
  "billable_metric_lifetime_usage_units",
] as const;
export type AlertType = (typeof ALERT_TYPES)[number];

/** The types about one billable metric (billable_metric_code required). */
export const isMetricAlert = (t: AlertType): boolean => t.startsWith("billable_metric_");
/** The types whose value starts again from 0 with each usage period. */
export const isPeriodAlert = (t: AlertType): boolean => t !== "lifetime_usage_amount" && t !== "billable_metric_lifetime_usage_units";

export interface AlertThreshold {
  readonly code: string | null;
  /** Units for the `*_units` types, minor units for the others. */
  readonly value: Decimal;
  readonly recurring: boolean;
}

export interface Alert {
  readonly id: number;
  readonly orgId: number;
  readonly lagoId: string;
  readonly externalSubscriptionId: string;
  readonly alertType: AlertType;
  readonly billableMetricId: number | null;
  readonly code: string;
  readonly name: string | null;
  readonly thresholds: readonly AlertThreshold[];
  readonly previousValue: Decimal;
  readonly previousPeriodFrom: Date | null;
  readonly lastProcessedAt: Date | null;
  readonly readAt: Date | null;
  readonly createdAt: Date;
}

/** What a body sets; `billableMetricCode` is resolved against the catalog by the service. */
export interface AlertDraft {
  readonly alertType: AlertType;
  readonly code: string;
  readonly name: string | null;
  readonly thresholds: readonly AlertThreshold[];
  /** null: none (types not about a metric); undefined on update: unchanged. */
  readonly billableMetricCode: string | null | undefined;
}

export const MAX_THRESHOLDS = 20;
const MAX_VALUE = new Decimal("1e18");
const DECIMAL = /^\d{1,19}(\.\d{0,18})?$/;

/** A threshold value: a JSON number or a decimal string, at least 0 (Lago: `^[0-9]+.?[0-9]*$`). */
function readValue(f: Fields, key: string): Decimal | undefined {
  const v = f.obj[key];
  if (v === undefined || v === null || v === "") {
    f.fail(key, "value_is_mandatory");
    return undefined;
  }
  let value: Decimal | null = null;
  if (typeof v === "number" && Number.isFinite(v)) value = new Decimal(v);
  else if (typeof v === "string" && DECIMAL.test(v)) value = new Decimal(v);
  if (value === null) {
    f.fail(key, "value_is_invalid");
    return undefined;
  }
  if (value.isNegative() || value.greaterThan(MAX_VALUE)) {
    f.fail(key, "value_is_out_of_range");
    return undefined;
  }
  return value;
}

function readThresholds(f: Fields): AlertThreshold[] | undefined {
  const list = f.array("thresholds");
  if (list === undefined && f.has("thresholds")) return undefined; // not an array: already reported
  if (list === undefined || list === null || list.length === 0) {
    f.fail("thresholds", "value_is_mandatory");
    return undefined;
  }
  if (list.length > MAX_THRESHOLDS) {
    f.fail("thresholds", "too_many_thresholds");
    return undefined;
  }
  const out: AlertThreshold[] = [];
  const seen = new Set<string>();
  let recurringSeen = false;
  list.forEach((raw, i) => {
    const prefix = f.path(`thresholds[${i}].`);
    if (!isRecord(raw)) {
      f.sink.add(f.path(`thresholds[${i}]`), "value_is_invalid");
      return;
    }
    const t = new Fields(raw, f.sink, prefix);
    const value = readValue(t, "value");
    const code = t.optionalText("code", 255);
    const recurring = t.bool("recurring") ?? false;
    if (recurring) {
      if (recurringSeen) t.fail("recurring", "only_one_recurring_threshold");
      recurringSeen = true;
      if (value !== undefined && value.isZero()) t.fail("value", "value_is_out_of_range");
    } else if (value !== undefined) {
      const key = value.toFixed();
      if (seen.has(key)) t.fail("value", "value_already_exist");
      seen.add(key);
    }
    if (value !== undefined) out.push({ code: code ?? null, value, recurring });
  });
  return out.length === list.length ? sortThresholds(out) : undefined;
}

/** Fixed thresholds by value, the recurring one last. */
export function sortThresholds(list: readonly AlertThreshold[]): AlertThreshold[] {
  return [...list].sort((a, b) => (a.recurring !== b.recurring ? (a.recurring ? 1 : -1) : a.value.comparedTo(b.value)));
}

/**
 * A create body (`current` null) or an update body applied onto `current` (absent fields keep
 * their value; `alert_type` is fixed once created, as in Lago's update input).
 */
export function checkAlert(raw: unknown, current: AlertDraft | null, prefix = ""): Checked<AlertDraft> {
  const sink = new ErrorSink();
  const f = new Fields(raw, sink, prefix);
  const updating = current !== null;
  let alertType: AlertType = current?.alertType ?? "current_usage_amount";
  if (!updating) {
    const t = f.oneOf("alert_type", ALERT_TYPES);
    if (t === undefined || t === null) {
      if (!f.has("alert_type") || t === null) f.fail("alert_type", "value_is_mandatory");
    } else alertType = t;
  }
  const code = f.take(updating, "code", () => f.requiredText("code"), current?.code ?? "");
  const name = f.take(updating, "name", () => f.optionalText("name", 255), current?.name ?? null);
  const thresholds = f.take(updating, "thresholds", () => readThresholds(f), current?.thresholds ?? []);
  let billableMetricCode: string | null | undefined = updating ? undefined : null;
  const sent = f.obj["billable_metric_code"];
  const typeKnown = updating || !sink.details[f.path("alert_type")];
  if (typeKnown && isMetricAlert(alertType)) {
    if (sent !== undefined || !updating) {
      if (sent === undefined || sent === null || sent === "") f.fail("billable_metric_code", "value_is_mandatory");
      else if (typeof sent !== "string" || sent.length > 255 || sent.includes("\u0000")) f.fail("billable_metric_code", "value_is_invalid");
      else billableMetricCode = sent;
    }
  } else if (typeKnown && sent !== undefined && sent !== null && sent !== "") {
    // Only the billable_metric_* types watch one metric.
    f.fail("billable_metric_code", "value_is_invalid");
  }
  return sink.result({ alertType, code, name, thresholds, billableMetricCode });
}

export const draftOfAlert = (a: Alert): AlertDraft => ({
  alertType: a.alertType,
  code: a.code,
  name: a.name,
  thresholds: a.thresholds,
  billableMetricCode: undefined,
});

/** Lago shows threshold values as BigDecimal strings: "99.0", "0.5". */
export function thresholdValueString(value: Decimal): string {
  const s = value.toFixed();
  return s.includes(".") ? s : `${s}.0`;
}
