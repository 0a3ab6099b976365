import { describe, expect, it } from "vitest";
import { d } from "../../../src/shared/money.ts";
import {
  type Partial,
  type UniqueLast,
  applyRounding,
  combinePartials,
  latestValue,
  uniqueCount,
  weightedSum,
} from "../../../src/modules/metering/core/index.ts";
import { us } from "./helpers.ts";

const part = (eventsCount: number, valueSum: string | null, valueMax: string | null, dims = ""): Partial => ({
  dims,
  eventsCount,
  valueSum: valueSum === null ? null : d(valueSum),
  valueMax: valueMax === null ? null : d(valueMax),
});

describe("count, sum and max from partials", () => {
  it.each([
    ["zero usage: no partials count 0", "count_agg", [], "0", 0],
    ["zero usage: a sum without events is 0", "sum_agg", [], "0", 0],
    ["zero usage: a max without events is 0 (Lago: max || 0)", "max_agg", [], "0", 0],
    ["count adds the events of every partial", "count_agg", [part(3, null, null), part(4, null, null, "x")], "7", 7],
    ["sum adds fractional values exactly", "sum_agg", [part(2, "0.1", "0.1"), part(1, "0.2", "0.2")], "0.3", 3],
    ["Lago's sum example: 20 + 10 = 30 units", "sum_agg", [part(1, "20", "20"), part(1, "10", "10")], "30", 2],
    ["Lago's max example: max(10, 20) = 20 units", "max_agg", [part(1, "10", "10"), part(1, "20", "20")], "20", 2],
    ["a negative sum stays negative (the charge bills nothing)", "sum_agg", [part(2, "-5", "1")], "-5", 2],
    ["max keeps a negative maximum", "max_agg", [part(2, "-3", "-1")], "-1", 2],
  ] as const)("%s", (_case, agg, parts, units, events) => {
    const r = combinePartials(agg, parts);
    expect(r.units.toString()).toBe(units);
    expect(r.eventsCount).toBe(events);
  });
});

let seq = 0;
const ev = (value: string, iso: string, removes = false, dims = ""): UniqueLast => ({
  dims,
  value,
  removes,
  tsUs: us(iso),
  createdUs: 0,
  transactionId: `tx${++seq}`,
});

describe("unique count", () => {
  it.each([
    ["zero usage counts nothing", [], 0],
    ["Lago's example: the same user twice counts once", [ev("u1", "2022-03-16T00:00:00Z"), ev("u1", "2022-03-17T00:00:00Z")], 1],
    ["distinct values count one each", [ev("u1", "2022-03-16T00:00:00Z"), ev("u2", "2022-03-16T00:00:00Z")], 2],
    ["a value whose last operation removes it does not count", [ev("u1", "2022-03-16T00:00:00Z"), ev("u1", "2022-03-17T00:00:00Z", true)], 0],
    ["a value removed then added again counts", [ev("u1", "2022-03-16T00:00:00Z", true), ev("u1", "2022-03-17T00:00:00Z")], 1],
    ["the same value seen in two dims is one value; its latest event decides", [ev("u1", "2022-03-16T00:00:00Z", false, "a"), ev("u1", "2022-03-17T00:00:00Z", true, "b")], 0],
  ] as const)("%s", (_case, rows, count) => {
    const r = uniqueCount(rows);
    expect(r.units.toNumber()).toBe(count);
    expect(r.eventsCount).toBe(count);
  });

  it("recurring carry-over: values added in earlier periods and never removed still count", () => {
    // A recurring metric reads all history; January's add and February's remove of another value.
    const r = uniqueCount([ev("seat-1", "2026-01-05T00:00:00Z"), ev("seat-2", "2026-01-06T00:00:00Z"), ev("seat-2", "2026-02-02T00:00:00Z", true)]);
    expect(r.units.toNumber()).toBe(1);
  });
});

describe("latest", () => {
  const row = (value: string, iso: string, eventsCount = 1, createdUs = 0) => ({ dims: "", value: d(value), tsUs: us(iso), createdUs, transactionId: "t", eventsCount });
  it.each([
    ["zero usage is 0", [], "0", 0],
    ["Lago's example: 5, 7 then 6 GB bills 6", [row("5", "2023-01-01T00:00:00Z"), row("7", "2023-01-02T00:00:00Z"), row("6", "2023-01-03T00:00:00Z")], "6", 3],
    ["the latest by timestamp wins, not the last received", [row("6", "2023-01-03T00:00:00Z"), row("9", "2023-01-01T00:00:00Z")], "6", 2],
    ["at the same timestamp the later ingested wins", [row("1", "2023-01-03T00:00:00Z", 1, 2), row("2", "2023-01-03T00:00:00Z", 1, 1)], "1", 2],
    ["a negative latest value bills 0", [row("-4", "2023-01-03T00:00:00Z")], "0", 1],
  ] as const)("%s", (_case, rows, units, events) => {
    const r = latestValue(rows);
    expect(r.units.toString()).toBe(units);
    expect(r.eventsCount).toBe(events);
  });
});

describe("weighted sum (lago-api's WeightedSumService examples, August 2023, 31 days)", () => {
  const from = us("2023-08-01T00:00:00Z");
  const to = us("2023-09-01T00:00:00Z");
  const w = (value: string, iso: string, n = 0) => ({ value: d(value), tsUs: us(iso), createdUs: n, transactionId: `w${n}` });
  const sample = [
    w("2", "2023-08-01T00:00:00Z", 1),
    w("3", "2023-08-01T01:00:00Z", 2),
    w("1", "2023-08-01T01:30:00Z", 3),
    w("-4", "2023-08-01T02:00:00Z", 4),
    w("-2", "2023-08-01T04:00:00Z", 5),
    w("10", "2023-08-01T05:00:00Z", 6),
    w("-10", "2023-08-01T05:30:00Z", 7),
  ];
  const run = (events: ReturnType<typeof w>[], initial = "0", recurring = false) =>
    weightedSum({ events, initial: d(initial), fromUs: from, toUs: to, periodSeconds: 31 * 86_400, recurring });

  it("values held for hours weigh by their share of the period: 0.02218", () => {
    const r = run(sample);
    expect(r.units.toDecimalPlaces(5).toString()).toBe("0.02218");
    expect(r.eventsCount).toBe(7);
  });

  it("one event at the start holds for the whole period", () => {
    expect(run([w("1000", "2023-08-01T00:00:00Z")]).units.toString()).toBe("1000");
  });

  it("zero usage is 0", () => {
    expect(run([]).units.toString()).toBe("0");
  });

  it("events at the same instant add up: 3 + 3 held all period is 6", () => {
    expect(run([w("3", "2023-08-01T00:00:00Z", 1), w("3", "2023-08-01T00:00:00Z", 2)]).units.toString()).toBe("6");
  });

  it("recurring: the value carried over from earlier periods (1000) holds from the start", () => {
    const r = run(sample, "1000", true);
    expect(r.units.toDecimalPlaces(5).toString()).toBe("1000.02218");
    expect(r.totalAggregatedUnits.toString()).toBe("1000");
  });

  it("rounds up at 20 decimals, as lago-api", () => {
    const r = run([w("1", "2023-08-31T23:00:00Z")]);
    // 3600 / 2,678,400 = 0.001344086021505376344086...
    expect(r.units.toString()).toBe("0.00134408602150537635");
  });
});

describe("metric rounding", () => {
  it.each([
    ["no rounding function keeps the units", null, null, "1.2345", "1.2345"],
    ["round half-up at 2 decimals", "round", 2, "1.235", "1.24"],
    ["ceil at 0 decimals", "ceil", 0, "1.01", "2"],
    ["floor at 1 decimal", "floor", 1, "1.99", "1.9"],
    ["negative precision rounds to tens", "round", -1, "15", "20"],
    ["ceil without a precision rounds to units", "ceil", null, "0.2", "1"],
  ] as const)("%s", (_case, fn, precision, units, out) => {
    expect(applyRounding(d(units), fn, precision).toString()).toBe(out);
  });
});
