// Civil days in a customer's IANA timezone. A "day" is an integer count of calendar days since
// 1970-01-01 (proleptic Gregorian, no timezone); instants are epoch milliseconds. Offsets come from
// Intl (the runtime's tz database), so DST and historical offset changes follow the zone's rules.

export const DAY_MS = 86_400_000;

/** A point in time: a Date, or an ISO 8601 string that names its offset ("...Z", "...+05:30"). */
export type Instant = Date | string;

// Without an explicit offset, `Date.parse` reads the string in the process's own timezone: the
// result would depend on the machine, so such strings are refused.
const ISO_INSTANT = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2})(?:\.\d{1,9})?)?(?:Z|[+-](?:[01]\d|2[0-3]):[0-5]\d)$/i;

export function instantMs(at: Instant): number {
  const ms = typeof at === "string" ? parseInstant(at) : at.getTime();
  if (!Number.isFinite(ms)) throw new RangeError(`${String(at)} is not an instant with an explicit offset`);
  return ms;
}

function parseInstant(text: string): number {
  const match = ISO_INSTANT.exec(text);
  if (match === null) return Number.NaN;
  const [year = 0, month = 0, day = 0, hour = 0, minute = 0, second = 0] = match.slice(1).map((part) => Number(part ?? 0));
  // Date.parse rolls "02-30" over to March 1st and accepts "24:00": refuse what is not on the calendar.
  const onCalendar = month >= 1 && month <= 12 && day >= 1 && day <= daysInMonth(year, month);
  const onClock = hour <= 23 && minute <= 59 && second <= 59;
  return onCalendar && onClock ? Date.parse(text) : Number.NaN;
}

// Formatters are costly to build and immutable once built: one per timezone for the process.
// Intl accepts any letter case ("asia/KOLKATA"), so the cache is capped rather than unbounded.
const formatters = new Map<string, Intl.DateTimeFormat>();
const MAX_FORMATTERS = 1024;

function formatter(timezone: string): Intl.DateTimeFormat {
  let format = formatters.get(timezone);
  if (format === undefined) {
    format = new Intl.DateTimeFormat("en-US", {
      timeZone: timezone,
      hourCycle: "h23",
      year: "numeric",
      month: "numeric",
      day: "numeric",
      hour: "numeric",
      minute: "numeric",
      second: "numeric",
    });
    if (formatters.size >= MAX_FORMATTERS) formatters.clear();
    formatters.set(timezone, format);
  }
  return format;
}

/** Whether the runtime knows this IANA timezone name. */
export function isTimezone(timezone: unknown): timezone is string {
  if (typeof timezone !== "string" || timezone === "") return false;
  try {
    formatter(timezone);
    return true;
  } catch {
    return false;
  }
}

/** Epoch milliseconds of a civil date-time read as if it were UTC. */
function civilMs(year: number, month: number, day: number, hour = 0, minute = 0, second = 0): number {
  const date = new Date(0);
  // setUTCFullYear, unlike Date.UTC, does not map years 0–99 onto 1900–1999.
  date.setUTCFullYear(year, month - 1, day);
  date.setUTCHours(hour, minute, second, 0);
  return date.getTime();
}

/** The customer's wall clock at `ms`, as milliseconds of a UTC clock showing the same time. */
function wallMs(ms: number, timezone: string): number {
  // UTC's wall clock is the instant itself (most customers): no formatter needed.
  if (timezone === "UTC" || timezone === "Etc/UTC") return ms;
  let year = 0;
  let month = 1;
  let day = 1;
  let hour = 0;
  let minute = 0;
  let second = 0;
  for (const part of formatter(timezone).formatToParts(ms)) {
    const value = Number(part.value);
    switch (part.type) {
      case "year":
        year = value;
        break;
      case "month":
        month = value;
        break;
      case "day":
        day = value;
        break;
      case "hour":
        hour = value;
        break;
      case "minute":
        minute = value;
        break;
      case "second":
        second = value;
        break;
      default:
        break;
    }
  }
  const millis = ((ms % 1000) + 1000) % 1000;
  return civilMs(year, month, day, hour, minute, second) + millis;
}

/** The customer's calendar day containing the instant. */
export function dayOf(ms: number, timezone: string): number {
  return Math.floor(wallMs(ms, timezone) / DAY_MS);
}

/**
 * The first instant of a calendar day in the timezone: local midnight, or, where a DST jump skips
 * midnight (America/Santiago, America/Havana...), the first instant the clock shows that day.
 */
export function dayStart(day: number, timezone: string): number {
  const wall = day * DAY_MS;
  // UTC offsets stay within ±18 h, so offsets sampled a day either side cover any change near midnight.
  const offsets = new Set([wallMs(wall - DAY_MS, timezone) - (wall - DAY_MS), wallMs(wall + DAY_MS, timezone) - (wall + DAY_MS)]);
  const candidates = [...offsets].map((offset) => wall - offset);
  // Where midnight happens twice (a fall-back at midnight), the day starts at the first one.
  const exact = candidates.filter((ms) => wallMs(ms, timezone) === wall);
  if (exact.length > 0) return Math.min(...exact);
  // Midnight was skipped: binary search the transition, the first instant whose wall clock is past it.
  let low = Math.min(...candidates);
  let high = Math.max(...candidates);
  while (low < high) {
    const mid = Math.floor((low + high) / 2);
    if (wallMs(mid, timezone) >= wall) high = mid;
    else low = mid + 1;
  }
  return low;
}

export interface CivilDate {
  readonly year: number;
  readonly month: number;
  readonly day: number;
}

export function civilOf(day: number): CivilDate {
  const date = new Date(day * DAY_MS);
  return { year: date.getUTCFullYear(), month: date.getUTCMonth() + 1, day: date.getUTCDate() };
}

/** The day number of a civil date; months and days past their range roll over like `Date`. */
export function dayNumber(year: number, month: number, day: number): number {
  return Math.round(civilMs(year, month, day) / DAY_MS);
}

export function daysInMonth(year: number, month: number): number {
  return dayNumber(year, month + 1, 1) - dayNumber(year, month, 1);
}

/** ISO weekday index with Monday = 0 (1970-01-01, day 0, was a Thursday). */
export function weekdayOf(day: number): number {
  return (((day + 3) % 7) + 7) % 7;
}

export function isoDay(day: number): string {
  const { year, month, day: dom } = civilOf(day);
  return `${String(year).padStart(4, "0")}-${String(month).padStart(2, "0")}-${String(dom).padStart(2, "0")}`;
}

const ISO_DAY = /^(\d{4})-(\d{2})-(\d{2})$/;

export function dayFromIso(text: string): number {
  const match = ISO_DAY.exec(text);
  if (match === null) throw new RangeError(`${text} is not a YYYY-MM-DD date`);
  const [, y, m, d] = match;
  const day = dayNumber(Number(y), Number(m), Number(d));
  if (isoDay(day) !== text) throw new RangeError(`${text} is not a calendar date`);
  return day;
}
