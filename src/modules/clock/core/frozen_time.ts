// The `frozen_time` of `PUT /test_clock`: an ISO 8601 instant that names its offset, or a date
// (midnight UTC). Pure.
import type { FieldErrors } from "../../../shared/errors.ts";

// Without an explicit offset the instant would depend on the server's own timezone: refused.
const INSTANT = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2})(?:\.\d{1,9})?)?(?:Z|[+-]\d{2}:?\d{2})$/i;
const DATE = /^(\d{4})-(\d{2})-(\d{2})$/;

/** The runtime rolls 2023-02-30 over into March and reads 24:00 as the next day: both are refused. */
function realDate(year: number, month: number, day: number): boolean {
  const d = utcMidnight(year, month, day);
  return d.getUTCFullYear() === year && d.getUTCMonth() === month - 1 && d.getUTCDate() === day;
}

// setUTCFullYear, unlike Date.UTC, does not map years 0–99 onto 1900–1999.
function utcMidnight(year: number, month: number, day: number): Date {
  const d = new Date(0);
  d.setUTCFullYear(year, month - 1, day);
  return d;
}

export type ParsedFrozenTime = { ok: true; at: Date } | { ok: false; errors: FieldErrors };

export function parseFrozenTime(raw: unknown): ParsedFrozenTime {
  if (raw === undefined || raw === null || raw === "") return { ok: false, errors: { frozen_time: ["value_is_mandatory"] } };
  const invalid: ParsedFrozenTime = { ok: false, errors: { frozen_time: ["invalid_date (ISO 8601 with an offset, e.g. 2024-03-01T00:00:00Z)"] } };
  if (typeof raw !== "string") return invalid;
  const s = raw.trim();
  let ms = Number.NaN;
  const date = DATE.exec(s);
  const instant = INSTANT.exec(s);
  if (date && realDate(Number(date[1]), Number(date[2]), Number(date[3]))) {
    ms = utcMidnight(Number(date[1]), Number(date[2]), Number(date[3])).getTime();
  } else if (instant && realDate(Number(instant[1]), Number(instant[2]), Number(instant[3])) && Number(instant[4]) < 24 && Number(instant[5]) < 60 && Number(instant[6] ?? 0) < 60) {
    ms = Date.parse(s.replace(/([+-]\d{2})(\d{2})$/, "$1:$2"));
  }
  // PostgreSQL has no year 0, and years past 9999 do not survive ISO 8601 round trips.
  if (!Number.isFinite(ms)) return invalid;
  const year = new Date(ms).getUTCFullYear();
  if (year < 1 || year > 9999) return { ok: false, errors: { frozen_time: ["value_is_out_of_range (years 0001 to 9999)"] } };
  return { ok: true, at: new Date(ms) };
}
