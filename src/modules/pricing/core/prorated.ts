// Prorated charges (Lago's `prorated: true`: standard, volume and graduated on a recurring metric).
// The units are known twice: in full (present at the period's end) and prorated (each unit
// weighted by the share of the period it was present). Standard bills the prorated units; volume
// picks its tier by the full units and bills the prorated ones at that tier's price, plus its flat
// amount (lago-api's VolumeService); graduated places every change of the units, in stream order,
// on the tiers of the units it moves and bills its prorated share at those tiers' prices, each
// tier the units ever reached adding its flat amount once (lago-api's ProratedGraduatedService).
import { type Decimal, ZERO } from "../../../shared/money.ts";
import type { GraduatedPrice } from "./graduated.ts";
import { NOTHING, type Line, type Rated, line, rated } from "./line.ts";
import type { StandardPrice } from "./standard.ts";
import { rateStandard } from "./standard.ts";
import { type Range, tierOf } from "./tiers.ts";
import type { VolumePrice } from "./volume.ts";

/** One change of the units in stream order: `full` arriving (> 0) or leaving (< 0), `prorated` its share of the prorated units. */
export interface ProratedSlice {
  readonly full: Decimal;
  readonly prorated: Decimal;
}

export interface ProratedUsage {
  /** Units at the period's end. */
  readonly fullUnits: Decimal;
  /** Σ of the slices' prorated units (rounded as the aggregation rounds them), never negative. */
  readonly proratedUnits: Decimal;
  readonly slices: readonly ProratedSlice[];
}

export type ProratablePrice = StandardPrice | VolumePrice | GraduatedPrice;

export function rateProrated(price: ProratablePrice, usage: ProratedUsage): Rated {
  switch (price.model) {
    case "standard":
      return rateStandard(price, usage.proratedUnits);
    case "volume":
      return rateProratedVolume(price, usage);
    case "graduated":
      return rateProratedGraduated(price, usage);
  }
}

export function rateProratedVolume(price: VolumePrice, usage: ProratedUsage): Rated {
  if (usage.proratedUnits.lte(0)) return NOTHING;
  const { range, ref } = tierOf(price.volume_ranges, usage.fullUnits.isNegative() ? ZERO : usage.fullUnits);
  return rated([line("tier", usage.proratedUnits, range.per_unit_amount, range.flat_amount, ref)]);
}

const floorOf = (range: Range): Decimal => (range.from_value.isZero() ? ZERO : range.from_value.minus(1));

/**
 * Units (lo, hi] cross tiers; each tier gets the part of `prorated` in proportion to the units of
 * the change that fall in it. A change that adds units reaches the tiers it covers.
 */
export function rateProratedGraduated(price: GraduatedPrice, usage: ProratedUsage): Rated {
  if (usage.proratedUnits.lte(0)) return NOTHING;
  const ranges = price.graduated_ranges;
  const inTier: Decimal[] = ranges.map(() => ZERO);
  let reached = -1;
  let held = ZERO;
  for (const s of usage.slices) {
    if (s.full.isZero()) continue;
    const lo = s.full.isNegative() ? held.plus(s.full) : held;
    const hi = s.full.isNegative() ? held : held.plus(s.full);
    const size = hi.minus(lo);
    ranges.forEach((range, i) => {
      const floor = floorOf(range);
      const top = range.to_value;
      const from = lo.gt(floor) ? lo : floor;
      const to = top === null || hi.lt(top) ? hi : top;
      if (!to.gt(from)) return;
      const part = to.minus(from);
      // A change that fits in one tier keeps its prorated units exact (no ratio round trip).
      inTier[i] = inTier[i]!.plus(part.eq(size) ? s.prorated : s.prorated.times(part).div(size));
      if (!s.full.isNegative() && i > reached) reached = i;
    });
    held = held.plus(s.full);
  }
  const lines: Line[] = [];
  ranges.forEach((range, i) => {
    if (i > reached) return;
    const units = inTier[i]!.isNegative() ? ZERO : inTier[i]!;
    lines.push(line("tier", units, range.per_unit_amount, range.flat_amount, { index: i, from_value: range.from_value, to_value: range.to_value }));
  });
  return rated(lines);
}
