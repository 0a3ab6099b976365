import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { type Decimal, Decimal as Dec, ZERO, d, sum } from "../../../src/shared/money.ts";
import {
  type GraduatedPrice,
  type Price,
  rate,
  rateGraduated,
  rateGraduatedPercentage,
  ratePackage,
  ratePercentage,
  rateVolume,
} from "../../../src/modules/pricing/index.ts";
import { expectWellFormed, price } from "./helpers.ts";

/** A non-negative decimal string with up to 4 decimals, e.g. "12.0375". */
const money = fc
  .tuple(fc.integer({ min: 0, max: 100_000 }), fc.integer({ min: 0, max: 4 }))
  .map(([n, scale]) => d(n).div(d(10).pow(scale)).toString());
const percent = fc.integer({ min: 0, max: 10_000 }).map((n) => d(n).div(100).toString());
const usage = fc
  .tuple(fc.integer({ min: 0, max: 6_000 }), fc.constantFrom("", ".25", ".5", ".999"))
  .map(([n, fraction]) => d(`${n}${fraction}`));

/** Lago-valid tier bounds: from 0, each next from = previous to + 1, the last open-ended. */
function bounds(widths: readonly number[]): { from_value: number; to_value: number | null }[] {
  let from = 0;
  return widths.map((width, i) => {
    const to = i === widths.length - 1 ? null : from + width;
    const tier = { from_value: from, to_value: to };
    from = (to ?? 0) + 1;
    return tier;
  });
}

const tierCount = { minLength: 1, maxLength: 5 };
const graduated = fc
  .array(fc.record({ width: fc.integer({ min: 1, max: 1_000 }), per_unit_amount: money, flat_amount: money }), tierCount)
  .map((tiers) => {
    const b = bounds(tiers.map((t) => t.width));
    return price("graduated", {
      graduated_ranges: tiers.map((t, i) => ({ ...b[i], per_unit_amount: t.per_unit_amount, flat_amount: t.flat_amount })),
    });
  });
const volume = graduated.map((g) => price("volume", { volume_ranges: toLago(g) }));
const graduatedPercentage = fc
  .array(fc.record({ width: fc.integer({ min: 1, max: 1_000 }), rate: percent, flat_amount: money }), tierCount)
  .map((tiers) => {
    const b = bounds(tiers.map((t) => t.width));
    return price("graduated_percentage", {
      graduated_percentage_ranges: tiers.map((t, i) => ({ ...b[i], rate: t.rate, flat_amount: t.flat_amount })),
    });
  });
const packaged = fc
  .record({ amount: money, package_size: fc.integer({ min: 1, max: 500 }), free_units: fc.integer({ min: 0, max: 500 }) })
  .map((p) => price("package", p));
const percentage = fc
  .record(
    {
      rate: percent,
      fixed_amount: money,
      free_units_per_events: fc.integer({ min: 0, max: 5 }),
      free_units_per_total_aggregation: money,
      per_transaction_min_amount: money,
      per_transaction_max_amount: money,
    },
    { requiredKeys: ["rate"] },
  )
  .filter((p) => !(p.per_transaction_min_amount && p.per_transaction_max_amount && d(p.per_transaction_max_amount).lt(d(p.per_transaction_min_amount))))
  .map((p) => price("percentage", p));
const standard = money.map((amount) => price("standard", { amount }));
const eventAmounts = fc.array(
  fc.tuple(fc.integer({ min: -100, max: 100_000 }), fc.integer({ min: 0, max: 2 })).map(([n, s]) => d(n).div(d(10).pow(s))),
  { maxLength: 20 },
);
const anyPrice: fc.Arbitrary<Price> = fc.oneof(standard, graduated, volume, packaged, percentage, graduatedPercentage);

function toLago(g: GraduatedPrice) {
  return g.graduated_ranges.map((r) => ({
    from_value: r.from_value.toNumber(),
    to_value: r.to_value?.toNumber() ?? null,
    per_unit_amount: r.per_unit_amount.toString(),
    flat_amount: r.flat_amount.toString(),
  }));
}

const floorOf = (from: Decimal) => (from.isZero() ? ZERO : from.minus(1));

describe("every model", () => {
  it("bills a total equal to the sum of its lines, and nothing negative", () => {
    fc.assert(
      fc.property(anyPrice, usage, eventAmounts, (p, units, events) => {
        expectWellFormed(rate(p, { units }));
        expectWellFormed(rate(p, { units, eventAmounts: events }));
      }),
    );
  });

  it("bills nothing for zero or negative usage", () => {
    fc.assert(
      fc.property(anyPrice, fc.integer({ min: -1_000, max: 0 }), (p, units) => {
        expect(rate(p, { units: d(units), eventAmounts: [] }).amount.isZero()).toBe(true);
      }),
    );
  });
});

describe("graduated", () => {
  it("never bills less for more usage", () => {
    fc.assert(
      fc.property(graduated, usage, usage, (p, a, b) => {
        const [low, high] = a.lte(b) ? [a, b] : [b, a];
        expect(rateGraduated(p, low).amount.lte(rateGraduated(p, high).amount)).toBe(true);
      }),
    );
  });

  it("never exceeds the sum of its bounded tiers' caps while usage stays within them", () => {
    fc.assert(
      fc.property(graduated, usage, (p, units) => {
        const bounded = p.graduated_ranges.filter((r) => r.to_value !== null);
        const caps = bounded.map((r) => (r.to_value ?? ZERO).minus(floorOf(r.from_value)).times(r.per_unit_amount).plus(r.flat_amount));
        const ceiling = bounded.at(-1)?.to_value;
        fc.pre(ceiling !== undefined && ceiling !== null && units.lte(ceiling));
        expect(rateGraduated(p, units).amount.lte(sum(caps))).toBe(true);
      }),
    );
  });

  it("spreads exactly the usage over consecutive tiers from the first", () => {
    fc.assert(
      fc.property(graduated, usage, (p, units) => {
        fc.pre(units.gt(0));
        const { lines } = rateGraduated(p, units);
        expect(sum(lines.map((l) => l.units)).eq(units)).toBe(true);
        expect(lines.map((l) => l.tier?.index)).toEqual(lines.map((_, i) => i));
      }),
    );
  });
});

describe("volume", () => {
  it("prices all usage at exactly one tier, the one whose bounds hold it", () => {
    fc.assert(
      fc.property(volume, usage, (p, units) => {
        fc.pre(units.gt(0));
        const { lines } = rateVolume(p, units);
        expect(lines).toHaveLength(1);
        const [only] = lines;
        const tier = only?.tier;
        expect(only?.units.eq(units)).toBe(true);
        expect(tier && floorOf(tier.from_value).lt(units) && (tier.to_value === null || units.lte(tier.to_value))).toBe(true);
      }),
    );
  });
});

describe("package", () => {
  it("bills a whole number of packages covering the usage beyond the free units", () => {
    fc.assert(
      fc.property(packaged, usage, (p, units) => {
        const result = ratePackage(p, units);
        const packages = result.lines.reduce((n, l) => n.plus(l.units), ZERO);
        expect(packages.isInteger()).toBe(true);
        expect(result.amount.eq(packages.times(p.amount))).toBe(true);
        const billable = Dec.max(units.minus(p.free_units), ZERO);
        expect(packages.times(p.package_size).gte(billable)).toBe(true);
        expect(packages.minus(1).times(p.package_size).lt(billable) || packages.isZero()).toBe(true);
      }),
    );
  });
});

describe("percentage", () => {
  it("never bills more per transaction than the maximum", () => {
    fc.assert(
      fc.property(percentage, eventAmounts, (p, events) => {
        const max = p.per_transaction_max_amount;
        fc.pre(max !== null);
        expect(ratePercentage(p, events).amount.lte(max.times(events.length))).toBe(true);
      }),
    );
  });

  it("never bills less when a transaction is added", () => {
    fc.assert(
      fc.property(percentage, eventAmounts, eventAmounts, (p, before, after) => {
        fc.pre(p.per_transaction_min_amount === null && p.per_transaction_max_amount === null);
        expect(ratePercentage(p, before).amount.lte(ratePercentage(p, [...before, ...after]).amount)).toBe(true);
      }),
    );
  });
});

describe("graduated percentage", () => {
  it("is graduated pricing with the rate as a fraction per unit", () => {
    fc.assert(
      fc.property(graduatedPercentage, usage, (p, units) => {
        const asGraduated = price("graduated", {
          graduated_ranges: p.graduated_percentage_ranges.map((r) => ({
            from_value: r.from_value.toNumber(),
            to_value: r.to_value?.toNumber() ?? null,
            per_unit_amount: r.rate.div(100).toString(),
            flat_amount: r.flat_amount.toString(),
          })),
        });
        expect(rateGraduatedPercentage(p, units).amount.eq(rateGraduated(asGraduated, units).amount)).toBe(true);
      }),
    );
  });
});
