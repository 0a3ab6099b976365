import { describe, expect, it } from "vitest";
import { ALL_FILTER_VALUES, type FilterValues, type MetricFilter } from "../../../src/modules/catalog/index.ts";
import { Bucketer, bucketOf, parseDims, resolveFilter } from "../../../src/modules/metering/core/index.ts";

const metricFilters: MetricFilter[] = [
  { key: "cloud", values: ["aws", "gcp"] },
  { key: "region", values: ["ap", "eu", "us"] },
];
const buckets = (...filters: FilterValues[]) => filters.map((f) => resolveFilter(f, metricFilters));

describe("charge filter buckets", () => {
  it.each<[string, FilterValues[], Record<string, string>, number]>([
    ["a charge without filters puts everything in the default bucket", [], { region: "eu" }, -1],
    ["an event matching a filter's only key goes to it", [{ region: ["eu"] }], { region: "eu" }, 0],
    ["an event matching no filter goes to the default bucket", [{ region: ["eu"] }], { region: "us" }, -1],
    ["an event without the key matches no filter", [{ region: ["eu"] }], {}, -1],
    ["a filter with several values matches each", [{ region: ["eu", "us"] }], { region: "us" }, 0],
    ["a filter's keys must all match", [{ cloud: ["aws"], region: ["eu"] }], { region: "eu" }, -1],
    ["the wildcard matches every value the metric declares", [{ region: [ALL_FILTER_VALUES] }], { region: "us" }, 0],
    ["the filter with more keys wins (Lago: a parent excludes its children)", [{ region: ["eu"] }, { cloud: ["aws"], region: ["eu"] }], { cloud: "aws", region: "eu" }, 1],
    ["a parent still takes the events its children do not", [{ region: ["eu"] }, { cloud: ["aws"], region: ["eu"] }], { cloud: "gcp", region: "eu" }, 0],
    ["among filters on the same keys, the narrower wins", [{ region: ["eu", "us"] }, { region: ["eu"] }], { region: "eu" }, 1],
    ["identical filters: the first one counts (Lago: the oldest)", [{ region: ["eu"] }, { region: ["eu"] }], { region: "eu" }, 0],
    ["partly overlapping filters count a shared event once, in the first (Lago would count it in both)", [{ region: ["eu", "us"] }, { region: ["us", "ap"] }], { region: "us" }, 0],
    ["a wildcard key still needs the event to have a declared value", [{ cloud: [ALL_FILTER_VALUES] }], { region: "us" }, -1],
  ])("%s", (_case, filters, dims, expected) => {
    expect(bucketOf(buckets(...filters), dims)).toBe(expected);
  });

  it("dims text is parsed once per distinct value", () => {
    const b = new Bucketer(buckets({ region: ["eu"] }));
    expect(b.bucket('{"region": "eu"}')).toBe(0);
    expect(b.bucket('{"region": "eu"}')).toBe(0);
    expect(b.bucket("")).toBe(-1);
  });

  it("empty dims text is no values", () => {
    expect(parseDims("")).toEqual({});
    expect(parseDims('{"cloud": "aws", "region": "eu"}')).toEqual({ cloud: "aws", region: "eu" });
  });
});
