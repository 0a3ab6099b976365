import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { type Decimal, d } from "../../../src/shared/money.ts";
import { type ProratedSlice, rateGraduated, rateProrated } from "../../../src/modules/pricing/index.ts";
import { expectWellFormed, price } from "./helpers.ts";

// Slices are changes of the units in stream order: `full` units arriving (> 0) or leaving (< 0) and
// their share of the prorated units. In a 30-day month a seat added on day 16 is worth 15/30 = 0.5.
const slice = (full: string, prorated: string | Decimal): ProratedSlice => ({ full: d(full), prorated: d(prorated) });
const usage = (full: string, slices: ProratedSlice[], prorated?: string) => ({
  fullUnits: d(full),
  proratedUnits: prorated === undefined ? slices.reduce((s, x) => s.plus(x.prorated), d(0)) : d(prorated),
  slices,
});
const third = d(1).div(3);

describe("prorated standard", () => {
  it.each([
    ["Lago's guide: a $10 seat used 22 days of 31 bills 0.70968 × $10 (prorated units rounded up at 5 decimals)", "10", "0.70968", "7.0968"],
    ["a seat added on day 10 of 30 bills 21/30 of the price", "10", "0.7", "7"],
    ["no prorated units bill nothing", "10", "0", "0"],
  ])("%s", (_case, amount, prorated, total) => {
    const r = rateProrated(price("standard", { amount }), usage("1", [slice("1", prorated)], prorated));
    expectWellFormed(r);
    expect(r.amount.toString()).toBe(total);
  });
});

describe("prorated volume", () => {
  const volume = price("volume", {
    volume_ranges: [
      { from_value: 0, to_value: 10, per_unit_amount: "2", flat_amount: "0" },
      { from_value: 11, to_value: null, per_unit_amount: "1", flat_amount: "5" },
    ],
  });

  it.each([
    ["the full units pick the tier, the prorated ones are billed at its price plus its flat amount", "12", "8.5", "13.5", 1],
    ["at the first tier's bound the first tier prices the prorated units", "10", "7.25", "14.5", 0],
    ["units all gone by the end still bill their prorated days, in the first tier", "0", "0.5", "1", 0],
  ])("%s (%s full, %s prorated → %s)", (_case, full, prorated, total, tier) => {
    const r = rateProrated(volume, usage(full, [slice(full, prorated)], prorated));
    expectWellFormed(r);
    expect(r.amount.toString()).toBe(total);
    expect(r.lines.map((l) => l.tier?.index)).toEqual([tier]);
  });

  it("nothing prorated bills nothing, not even the flat amount", () => {
    expect(rateProrated(volume, usage("12", [], "0")).lines).toEqual([]);
  });
});

describe("prorated graduated", () => {
  // $10 per seat for the first two, $4 from the third on plus a $2 flat fee for reaching that tier.
  const graduated = price("graduated", {
    graduated_ranges: [
      { from_value: 0, to_value: 2, per_unit_amount: "10", flat_amount: "0" },
      { from_value: 3, to_value: null, per_unit_amount: "4", flat_amount: "2" },
    ],
  });
  const total = (full: string, slices: ProratedSlice[]) => {
    const r = rateProrated(graduated, usage(full, slices));
    expectWellFormed(r);
    return r.amount.toDecimalPlaces(10).toString();
  };

  it("each seat is billed at the tier of its place, for its share of the month", () => {
    // Seat 1 all month (1) and seat 2 from day 16 (0.5) at $10; seat 3 from day 21 (1/3) at $4, plus the $2 flat fee.
    expect(total("3", [slice("1", "1"), slice("1", "0.5"), slice("1", third)])).toBe("18.3333333333");
  });

  it("a removed seat frees its place in the tiers for a later one", () => {
    // Seat 2 leaves on day 20 (20/30); seat 3 arrives on day 25 (6/30) and takes place 2: all at $10, no flat fee.
    expect(total("2", [slice("1", "1"), slice("1", d(20).div(30)), slice("-1", "0"), slice("1", d(6).div(30))])).toBe("18.6666666667");
  });

  it("an increase that crosses a tier bound splits its prorated units in proportion", () => {
    // +5 on day 16 (2.5 prorated): 2 of the 5 units in the first tier (1 × $10), 3 in the second (1.5 × $4 + $2).
    expect(total("5", [slice("5", "2.5")])).toBe("18");
  });

  it("a decrease takes back the prorated units of the tiers its units held", () => {
    // 4 held all month (2 × $10 + 2 × $4 + $2), 2 leave on day 10: units 3 and 4 were there 10 days of 30.
    expect(total("2", [slice("4", "4"), slice("-2", d(-2).times(20).div(30))])).toBe("24.6666666667");
  });

  it("bills nothing without prorated units", () => {
    expect(rateProrated(graduated, usage("0", [slice("1", "0"), slice("-1", "0")])).lines).toEqual([]);
  });
});

describe("prorated pricing invariants (property tests)", () => {
  const money = fc.integer({ min: 0, max: 100_000 }).map((n) => d(n).div(100).toString());
  const graduated = fc
    .array(fc.record({ width: fc.integer({ min: 1, max: 50 }), per_unit_amount: money, flat_amount: money }), { minLength: 1, maxLength: 4 })
    .map((tiers) => {
      let from = 0;
      const ranges = tiers.map((t, i) => {
        const to = i === tiers.length - 1 ? null : from + t.width;
        const range = { from_value: from, to_value: to, per_unit_amount: t.per_unit_amount, flat_amount: t.flat_amount };
        from = (to ?? 0) + 1;
        return range;
      });
      return price("graduated", { graduated_ranges: ranges });
    });
  // Arrivals of 1–20 units, each present a share days/30 of a 30-day month.
  const arrivals = fc.array(fc.tuple(fc.integer({ min: 1, max: 20 }), fc.integer({ min: 1, max: 30 })), { minLength: 1, maxLength: 8 });
  const asSlices = (xs: [number, number][], present: (days: number) => number) =>
    xs.map(([units, days]) => ({ full: d(units), prorated: d(units).times(present(days)).div(30) }));

  it("units present the whole period bill exactly what the unprorated graduated charge bills", () => {
    fc.assert(
      fc.property(graduated, arrivals, (g, xs) => {
        const slices = asSlices(xs, () => 30);
        const full = slices.reduce((s, x) => s.plus(x.full), d(0));
        const r = rateProrated(g, usage(full.toString(), slices));
        expectWellFormed(r);
        expect(r.amount.eq(rateGraduated(g, full).amount)).toBe(true);
      }),
    );
  });

  it("present fewer days never bills more, and the lines stay well formed", () => {
    fc.assert(
      fc.property(graduated, arrivals, (g, xs) => {
        const slices = asSlices(xs, (days) => days);
        const full = slices.reduce((s, x) => s.plus(x.full), d(0));
        const r = rateProrated(g, usage(full.toString(), slices));
        expectWellFormed(r);
        expect(r.amount.lte(rateGraduated(g, full).amount)).toBe(true);
      }),
    );
  });

  it("a single open tier bills its price times the prorated units, like standard", () => {
    fc.assert(
      fc.property(money, arrivals, (amount, xs) => {
        const slices = asSlices(xs, (days) => days);
        const one = price("graduated", { graduated_ranges: [{ from_value: 0, to_value: null, per_unit_amount: amount, flat_amount: "0" }] });
        const u = usage("0", slices);
        expect(rateProrated(one, u).amount.eq(rateProrated(price("standard", { amount }), u).amount)).toBe(true);
      }),
    );
  });

  it("a change split across tiers loses nothing beyond the 30th decimal", () => {
    fc.assert(
      fc.property(graduated, arrivals, (g, xs) => {
        const slices = asSlices(xs, (days) => days);
        const flat = price("graduated", {
          graduated_ranges: g.graduated_ranges.map((r) => ({
            from_value: r.from_value.toNumber(),
            to_value: r.to_value?.toNumber() ?? null,
            per_unit_amount: "1",
            flat_amount: "0",
          })),
        });
        const total = slices.reduce((s, x) => s.plus(x.prorated), d(0));
        expect(rateProrated(flat, usage("0", slices)).amount.toDecimalPlaces(30).eq(total.toDecimalPlaces(30))).toBe(true);
      }),
    );
  });
});
