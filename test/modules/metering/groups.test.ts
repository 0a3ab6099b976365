import { describe, expect, it } from "vitest";
import { d } from "../../../src/shared/money.ts";
import type { Charge, ChargeFilter } from "../../../src/modules/catalog/index.ts";
import {
  type BucketAggregate,
  ChargeSlots,
  WHOLE,
  bucketInputs,
  chargeUsageJson,
  priceCharge,
} from "../../../src/modules/metering/core/index.ts";
import { charge, chargeFilter, metric } from "./helpers.ts";

const agg = (units: string, eventsCount = Number(units)): BucketAggregate => ({ units: d(units), eventsCount, totalAggregatedUnits: d(units) });
const grouped = (c: Charge, keys: string[] | null): Charge => ({ ...c, pricingGroupKeys: keys });
const groupedFilter = (f: ChargeFilter, keys: string[] | null): ChargeFilter => ({ ...f, pricingGroupKeys: keys });
const row = (dims: string, groups: string) => ({ dims, groups });

/** Prices a charge from rows of (dims, groups, units): each (bucket, group) sums its rows' units. */
function price(c: Charge, rows: { dims: string; groups: string; units: string }[], currency = "USD") {
  const slots = new ChargeSlots(c);
  const split = slots.split(rows);
  return priceCharge(
    c,
    bucketInputs(slots, slots.groupsOf(split), (b, g) => {
      const units = (split[b]?.get(g) ?? []).reduce((s, r) => s.plus(r.units), d(0));
      return agg(units.toString());
    }),
    currency,
  );
}

describe("pricing group keys: where rows go", () => {
  const m = metric({ aggregationType: "sum_agg", fieldName: "gb", filters: [{ key: "tier", values: ["pro", "free"] }] });

  it("reads the union of the buckets' keys, and each bucket keeps its own", () => {
    const c = grouped(charge(m, "standard", { amount: "1" }, [groupedFilter(chargeFilter({ tier: ["pro"] }), ["cloud"])]), ["region", "cloud"]);
    const slots = new ChargeSlots(c);
    expect(slots.groupKeys).toEqual(["cloud", "region"]);
    // The store's group text follows the union: cloud, then region.
    expect(slots.bucketOf('{"tier": "pro"}')).toBe(0);
    expect(slots.groupOf(0, '["aws", "eu"]')).toBe('["aws"]');
    expect(slots.groupedBy(0, '["aws"]')).toEqual({ cloud: "aws" });
    expect(slots.bucketOf("")).toBe(1);
    expect(slots.groupOf(1, '["aws", "eu"]')).toBe('["eu","aws"]');
    expect(slots.groupedBy(1, '["eu","aws"]')).toEqual({ region: "eu", cloud: "aws" });
  });

  it("a filter without keys is priced whole even when the charge has keys (Lago: the filter's own properties)", () => {
    const c = grouped(charge(m, "standard", { amount: "1" }, [chargeFilter({ tier: ["pro"] })]), ["region"]);
    const slots = new ChargeSlots(c);
    expect([slots.isGrouped(0), slots.isGrouped(1)]).toEqual([false, true]);
    expect(slots.groupOf(0, '["eu"]')).toBe(WHOLE);
    expect(slots.groupsOf(slots.split([row('{"tier": "pro"}', '["eu"]')]))).toEqual([[WHOLE], ['[null]']]);
  });

  it("an event without the property is in the group whose value is null", () => {
    const slots = new ChargeSlots(grouped(charge(m, "standard", { amount: "1" }), ["region"]));
    expect(slots.groupedBy(0, slots.groupOf(0, "[null]"))).toEqual({ region: null });
  });

  it("a charge without keys reads no group values", () => {
    const slots = new ChargeSlots(charge(m, "standard", { amount: "1" }));
    expect([slots.grouped, slots.groupKeys]).toEqual([false, []]);
    expect(slots.groupsOf(slots.split([row("", "")]))).toEqual([[WHOLE]]);
  });
});

describe("pricing group keys: each group priced on its own", () => {
  const sum = metric({ aggregationType: "sum_agg", fieldName: "gb" });

  it("standard at $0.01 per unit: 1,000 units in eu and 250 in us are two fees, $10 and $2.50", () => {
    const c = grouped(charge(sum, "standard", { amount: "0.01" }), ["region"]);
    const usage = price(c, [
      { dims: "", groups: '["eu"]', units: "600" },
      { dims: "", groups: '["us"]', units: "250" },
      { dims: "", groups: '["eu"]', units: "400" },
    ]);
    expect(usage.fees.map((f) => [f.groupedBy, f.units.toString(), f.amountCents])).toEqual([
      [{ region: "eu" }, "1000", 1000n],
      [{ region: "us" }, "250", 250n],
    ]);
    expect([usage.units.toString(), usage.amountCents]).toEqual(["1250", 1250n]);
  });

  it("graduated tiers restart in every group: 80 + 80 units bill $160, where 160 together would bill $130", () => {
    const tiers = {
      graduated_ranges: [
        { from_value: 0, to_value: 100, per_unit_amount: "1", flat_amount: "0" },
        { from_value: 101, to_value: null, per_unit_amount: "0.5", flat_amount: "0" },
      ],
    };
    const rows = [
      { dims: "", groups: '["gpt"]', units: "80" },
      { dims: "", groups: '["claude"]', units: "80" },
    ];
    expect(price(grouped(charge(sum, "graduated", tiers), ["model"]), rows).amountCents).toBe(16000n);
    expect(price(charge(sum, "graduated", tiers), rows.map((r) => ({ ...r, groups: "" }))).amountCents).toBe(13000n);
  });

  it("each group's fee rounds once: half a cent in two groups is two cents", () => {
    const c = grouped(charge(sum, "standard", { amount: "0.005" }), ["region"]);
    expect(price(c, [{ dims: "", groups: '["eu"]', units: "1" }, { dims: "", groups: '["us"]', units: "1" }]).amountCents).toBe(2n);
  });

  it("a grouped charge without usage is one empty group, every key null (as Lago bills it)", () => {
    const usage = price(grouped(charge(sum, "standard", { amount: "1" }), ["region", "cloud"]), []);
    expect(usage.fees.map((f) => [f.groupedBy, f.amountCents])).toEqual([[{ region: null, cloud: null }, 0n]]);
  });
});

describe("pricing group keys on a prorated charge", () => {
  it("each group bills its own prorated units; usage shows the full ones", () => {
    const seats = metric({ aggregationType: "unique_count_agg", fieldName: "seat", recurring: true });
    const c = { ...grouped(charge(seats, "standard", { amount: "10" }), ["team"]), prorated: true };
    const prorated = (team: string, full: string, units: string) => ({
      ...agg(full),
      groupedBy: { team },
      proration: { units: d(units), slices: [{ full: d(full), prorated: d(units) }] },
    });
    // ops: 2 seats, one of them from day 16 of 30 (1.5); dev: 1 seat from day 10 (0.7).
    const usage = priceCharge(c, [[prorated("ops", "2", "1.5"), prorated("dev", "1", "0.7")]], "EUR");
    expect(usage.fees.map((f) => [f.groupedBy, f.units.toString(), f.proratedUnits?.toString(), f.amountCents])).toEqual([
      [{ team: "ops" }, "2", "1.5", 1500n],
      [{ team: "dev" }, "1", "0.7", 700n],
    ]);
    expect([usage.units.toString(), usage.amountCents]).toEqual(["3", 2200n]);
  });
});

describe("grouped usage in Lago's current usage shape", () => {
  it("lists each group's totals with its filters, and each filter's totals over the groups", () => {
    const m = metric({ aggregationType: "count_agg", filters: [{ key: "tier", values: ["pro"] }] });
    const pro = groupedFilter({ ...chargeFilter({ tier: ["pro"] }, "standard", { amount: "2" }), invoiceDisplayName: "Pro" }, ["region"]);
    const c = grouped(charge(m, "standard", { amount: "1" }, [pro]), ["region"]);
    const usage = price(
      c,
      [
        { dims: '{"tier": "pro"}', groups: '["eu"]', units: "3" },
        { dims: '{"tier": "pro"}', groups: '["us"]', units: "1" },
        { dims: "", groups: '["eu"]', units: "5" },
      ],
      "EUR",
    );
    const json = chargeUsageJson(usage, "EUR");
    expect([json.units, json.events_count, json.amount_cents]).toEqual(["9", 9, 600 + 200 + 500]);
    expect(json.filters).toEqual([{ units: "4", total_aggregated_units: "4", amount_cents: 800, events_count: 4, invoice_display_name: "Pro", values: { tier: ["pro"] } }]);
    expect(json.grouped_usage).toEqual([
      {
        amount_cents: 1100,
        events_count: 8,
        units: "8",
        total_aggregated_units: "8",
        grouped_by: { region: "eu" },
        filters: [{ units: "3", total_aggregated_units: "3", amount_cents: 600, events_count: 3, invoice_display_name: "Pro", values: { tier: ["pro"] } }],
      },
      {
        amount_cents: 200,
        events_count: 1,
        units: "1",
        total_aggregated_units: "1",
        grouped_by: { region: "us" },
        filters: [{ units: "1", total_aggregated_units: "1", amount_cents: 200, events_count: 1, invoice_display_name: "Pro", values: { tier: ["pro"] } }],
      },
    ]);
  });

  it("an ungrouped charge has no grouped usage", () => {
    const usage = price(charge(metric({ aggregationType: "count_agg" }), "standard", { amount: "1" }), [{ dims: "", groups: "", units: "2" }]);
    expect(chargeUsageJson(usage, "USD").grouped_usage).toEqual([]);
  });
});
