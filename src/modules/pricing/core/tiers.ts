import { type Decimal, ZERO } from "../../../shared/money.ts";
import { type Line, type TierRef, line } from "./line.ts";
import type { PropertyReader } from "./properties.ts";

/**
 * Lago v1 tiers: the first starts at 0, each next one at the previous `to_value + 1`, the last is
 * open-ended (`to_value: null`). A tier spans the usage interval (from_value − 1, to_value]
 * (the first (0, to_value]), so fractional usage between 100 and 101 belongs to the 101–200 tier.
 */
export interface Range {
  readonly from_value: Decimal;
  readonly to_value: Decimal | null;
  readonly flat_amount: Decimal;
}

const floorOf = (range: Range): Decimal => (range.from_value.isZero() ? ZERO : range.from_value.minus(1));

const tierRef = (index: number, range: Range): TierRef => ({
  index,
  from_value: range.from_value,
  to_value: range.to_value,
});

/** Reads and checks a ranges property: contiguous from 0, ascending, only the last one open-ended. */
export function readRanges<T>(
  reader: PropertyReader,
  key: string,
  readPrices: (item: PropertyReader) => T,
): ReadonlyArray<Range & T> {
  const code = `invalid_${key}`;
  const items = reader.list(key, `missing_${key}`, code);
  let expectedFrom: Decimal | null = ZERO;
  return items.map((item, index) => {
    const last = index === items.length - 1;
    const from = item.bound("from_value", code, false);
    const to = item.bound("to_value", code, true);
    if (from !== null && expectedFrom !== null && !from.eq(expectedFrom)) {
      const clash = from.lt(expectedFrom) ? "overlaps" : "leaves a gap after";
      const reason =
        index === 0
          ? "the first tier must start at 0"
          : `${clash} the previous tier: must be ${expectedFrom.toString()} (previous to_value + 1)`;
      item.fail("from_value", code, reason);
    }
    if (last && item.isSet("to_value")) item.fail("to_value", code, "the last tier must be open-ended (null)");
    if (!last && !item.isSet("to_value")) item.fail("to_value", code, "only the last tier may be open-ended");
    if (from !== null && to !== null && !to.gt(from)) item.fail("to_value", code, "must be greater than from_value");
    expectedFrom = to === null ? null : to.plus(1);
    const flat_amount = item.optionalAmount("flat_amount") ?? ZERO;
    return { from_value: from ?? ZERO, to_value: to, flat_amount, ...readPrices(item) };
  });
}

/** Graduated walk: each touched tier bills its own units and adds its flat amount once. */
export function graduate<R extends Range>(
  ranges: readonly R[],
  units: Decimal,
  unitAmountOf: (range: R) => Decimal,
): Line[] {
  const lines: Line[] = [];
  for (const [index, range] of ranges.entries()) {
    const floor = floorOf(range);
    if (units.lte(floor)) break;
    const top = range.to_value === null || units.lt(range.to_value) ? units : range.to_value;
    lines.push(line("tier", top.minus(floor), unitAmountOf(range), range.flat_amount, tierRef(index, range)));
  }
  return lines;
}

/** The one tier whose interval holds `units` (> 0). */
export function tierOf<R extends Range>(ranges: readonly R[], units: Decimal): { range: R; ref: TierRef } {
  for (const [index, range] of ranges.entries()) {
    if (range.to_value === null || units.lte(range.to_value)) return { range, ref: tierRef(index, range) };
  }
  throw new RangeError("ranges must end with an open-ended tier");
}
