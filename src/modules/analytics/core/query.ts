// The query parameters of /analytics/*: read, validated, every broken one named.
import type { FieldErrors } from "../../../shared/errors.ts";
import { isCurrency } from "../../../shared/money.ts";

/** Lago's dashboards show a year; the API answers the last 12 months unless told otherwise. */
export const MONTHS_DEFAULT = 12;
export const MONTHS_MAX = 240;

export interface AnalyticsQuery {
  currency: string | null;
  externalCustomerId: string | null;
  months: number;
}

export type Read<T> = { ok: true; value: T } | { ok: false; errors: FieldErrors };

const str = (v: unknown): string | undefined => (typeof v === "string" ? v : undefined);

export function readAnalyticsQuery(raw: Record<string, unknown>): Read<AnalyticsQuery> {
  const errors: FieldErrors = {};
  let currency: string | null = null;
  if (raw.currency !== undefined && raw.currency !== "") {
    const v = str(raw.currency);
    if (v === undefined || !isCurrency(v)) errors.currency = ["value_is_invalid"];
    else currency = v;
  }
  let externalCustomerId: string | null = null;
  if (raw.external_customer_id !== undefined && raw.external_customer_id !== "") {
    const v = str(raw.external_customer_id);
    if (v === undefined || v.length > 255) errors.external_customer_id = ["value_is_invalid"];
    else externalCustomerId = v;
  }
  let months = MONTHS_DEFAULT;
  if (raw.months !== undefined && raw.months !== "") {
    const v = str(raw.months);
    if (v === undefined || !/^\d{1,4}$/.test(v) || Number(v) < 1 || Number(v) > MONTHS_MAX) {
      errors.months = [`must_be_an_integer_between_1_and_${MONTHS_MAX}`];
    } else months = Number(v);
  }
  if (Object.keys(errors).length > 0) return { ok: false, errors };
  return { ok: true, value: { currency, externalCustomerId, months } };
}
