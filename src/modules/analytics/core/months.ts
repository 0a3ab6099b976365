// Calendar months as analytics buckets them. A month is a "YYYY-MM" key; the window is the last
// `months` calendar months ending with the current one. Months are UTC calendar months: an
// organization here has no timezone of its own (Lago's default is UTC), and invoices carry their
// issuing and due dates as dates already (set in the customer's timezone when issued).

export type MonthKey = string;

const pad = (n: number) => String(n).padStart(2, "0");

export function monthKeyOf(year: number, month0: number): MonthKey {
  const y = year + Math.floor(month0 / 12);
  const m = ((month0 % 12) + 12) % 12;
  return `${y}-${pad(m + 1)}`;
}

/** The month of an instant (ms since the epoch), UTC. */
export function monthOfInstant(ms: number): MonthKey {
  const t = new Date(ms);
  return monthKeyOf(t.getUTCFullYear(), t.getUTCMonth());
}

/** The month of a "YYYY-MM-DD" date (or any string starting with "YYYY-MM"). */
export function monthOfDate(date: string): MonthKey {
  return date.slice(0, 7);
}

function parts(key: MonthKey): [number, number] {
  return [Number(key.slice(0, 4)), Number(key.slice(5, 7)) - 1];
}

/** `key` moved by `delta` months. */
export function addMonths(key: MonthKey, delta: number): MonthKey {
  const [y, m] = parts(key);
  return monthKeyOf(y, m + delta);
}

/** The `months` months ending with the month of `nowMs`, oldest first. */
export function monthWindow(nowMs: number, months: number): MonthKey[] {
  const last = monthOfInstant(nowMs);
  return Array.from({ length: months }, (_, i) => addMonths(last, i - months + 1));
}

/** The first day of a month, "YYYY-MM-01" (SQL bounds). */
export function firstDay(key: MonthKey): string {
  return `${key}-01`;
}

/** How Lago renders a month: its first instant, ISO 8601 with milliseconds. */
export function monthJson(key: MonthKey): string {
  return `${key}-01T00:00:00.000Z`;
}

/** The calendar months from the month of `from` to the month of `to`, both included (one at least). */
export function monthsBetween(from: MonthKey, to: MonthKey): MonthKey[] {
  const out: MonthKey[] = [from];
  for (let k = addMonths(from, 1); k <= to; k = addMonths(k, 1)) out.push(k);
  return out;
}

/** The UTC date ("YYYY-MM-DD") of an instant: "today" for an organization's clock. */
export function dateOfInstant(ms: number): string {
  return new Date(ms).toISOString().slice(0, 10);
}
