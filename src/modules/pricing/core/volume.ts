import type { Decimal } from "../../../shared/money.ts";
import { NOTHING, type Rated, line, rated } from "./line.ts";
import type { PropertyReader } from "./properties.ts";
import { type Range, readRanges, tierOf } from "./tiers.ts";

export interface VolumeRange extends Range {
  readonly per_unit_amount: Decimal;
}

export interface VolumePrice {
  readonly model: "volume";
  readonly volume_ranges: readonly VolumeRange[];
}

export function readVolume(reader: PropertyReader): VolumePrice {
  const volume_ranges = readRanges(reader, "volume_ranges", (item) => ({
    per_unit_amount: item.amount("per_unit_amount"),
  }));
  return { model: "volume", volume_ranges };
}

/** Every unit at the price of the one tier the total reaches, plus that tier's flat amount. */
export function rateVolume(price: VolumePrice, units: Decimal): Rated {
  if (units.lte(0)) return NOTHING;
  const { range, ref } = tierOf(price.volume_ranges, units);
  return rated([line("tier", units, range.per_unit_amount, range.flat_amount, ref)]);
}
