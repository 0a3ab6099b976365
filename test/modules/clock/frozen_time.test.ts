import { describe, expect, it } from "vitest";
import { parseFrozenTime } from "../../../src/modules/clock/core/frozen_time.ts";

const INVALID = ["invalid_date (ISO 8601 with an offset, e.g. 2024-03-01T00:00:00Z)"];

describe("parseFrozenTime", () => {
  it.each([
    ["2024-03-01T00:00:00Z", "2024-03-01T00:00:00.000Z"],
    ["2024-03-01T00:00Z", "2024-03-01T00:00:00.000Z"],
    ["2024-03-01T10:15:30.123456Z", "2024-03-01T10:15:30.123Z"],
    ["2024-03-01T01:00:00+01:00", "2024-03-01T00:00:00.000Z"],
    ["2024-03-01T01:00:00+0100", "2024-03-01T00:00:00.000Z"],
    ["2024-02-29", "2024-02-29T00:00:00.000Z"],
    [" 2030-12-31T23:59:59Z ", "2030-12-31T23:59:59.000Z"],
    ["0050-06-01", "0050-06-01T00:00:00.000Z"],
  ])("reads %j as %s", (raw, iso) => {
    const r = parseFrozenTime(raw);
    expect(r.ok && r.at.toISOString()).toBe(iso);
  });

  it.each([
    ["nothing", undefined, ["value_is_mandatory"]],
    ["null", null, ["value_is_mandatory"]],
    ["an empty string", "", ["value_is_mandatory"]],
    ["a unix timestamp", 1709251200, INVALID],
    ["an instant without an offset", "2024-03-01T00:00:00", INVALID],
    ["a date that does not exist", "2023-02-29", INVALID],
    ["an impossible time", "2024-03-01T25:00:00Z", INVALID],
    ["midnight written as 24:00", "2024-03-01T24:00:00Z", INVALID],
    ["a day past the end of its month", "2023-02-30T00:00:00Z", INVALID],
    ["April 31st", "2023-04-31", INVALID],
    ["prose", "next tuesday", INVALID],
    ["year 0", "0000-01-01T00:00:00Z", ["value_is_out_of_range (years 0001 to 9999)"]],
    ["year 0 as a date", "0000-01-01", ["value_is_out_of_range (years 0001 to 9999)"]],
  ])("refuses %s", (_case, raw, errors) => {
    expect(parseFrozenTime(raw)).toEqual({ ok: false, errors: { frozen_time: errors } });
  });
});
