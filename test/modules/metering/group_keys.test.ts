import { describe, expect, it } from "vitest";
import { type KeySampleRow, boundGroupKeys } from "../../../src/modules/metering/core/index.ts";

/** `n` events in `cells` subscription-hours, key values from `valueOf(i)`. */
const sample = (n: number, cells: number, valueOf: (i: number) => (string | null)[]): KeySampleRow[] =>
  Array.from({ length: n }, (_, i) => ({ cell: `c${i % cells}`, values: valueOf(i) }));

describe("which group keys the rollups keep", () => {
  it.each<[string, string[], KeySampleRow[], string[]]>([
    ["no sample yet: every key (nothing to judge by)", ["region"], [], ["region"]],
    ["a key with few values is kept", ["region"], sample(1000, 10, (i) => [["eu", "us", "ap"][i % 3]!]), ["region"]],
    ["a user id on every event goes", ["user"], sample(1000, 10, (i) => [`u${i}`]), []],
    ["only the unbounded key goes when the other keeps the rollups small", ["region", "user"], sample(1000, 10, (i) => [["eu", "us"][i % 2]!, `u${i}`]), ["region"]],
    ["missing values (null) are one value", ["model"], sample(1000, 10, (i) => [i % 2 === 0 ? null : "gpt"]), ["model"]],
    ["sparse events (one per cell) keep their keys: the rollups are as large without them", ["user"], sample(500, 500, (i) => [`u${i}`]), ["user"]],
    [
      "two keys fine alone but too many together: the one with more values goes",
      ["a", "b"],
      sample(1000, 5, (i) => [`a${i % 20}`, `b${Math.floor(i / 20) % 30}`]),
      ["a"],
    ],
  ])("%s", (_, keys, rows, expected) => expect(boundGroupKeys(keys, rows)).toEqual(expected));

  it("never keeps a key it was not given, and keeps their order", () => {
    const rows = sample(100, 50, (i) => [`x${i % 2}`, `y${i % 3}`, `z${i % 2}`]);
    expect(boundGroupKeys(["z", "x", "y"], rows, 10)).toEqual(["z", "x", "y"]);
  });
});
