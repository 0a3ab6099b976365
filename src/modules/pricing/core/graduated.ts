import type { Decimal } from "../../../shared/money.ts";
import { NOTHING, type Rated, rated } from "./line.ts";
import type { PropertyReader } from "./properties.ts";
import { type Range, graduate, readRanges } from "./tiers.ts";

export interface GraduatedRange extends Range {
  readonly per_unit_amount: Decimal;
}

export interface GraduatedPrice {
  readonly model: "graduated";
  readonly graduated_ranges: readonly GraduatedRange[];
}

export function readGraduated(reader: PropertyReader): GraduatedPrice {
  const graduated_ranges = readRanges(reader, "graduated_ranges", (item) => ({
    per_unit_amount: item.amount("per_unit_amount"),
  }));
  return { model: "graduated", graduated_ranges };
}

export function rateGraduated(price: GraduatedPrice, units: Decimal): Rated {
  if (units.lte(0)) return NOTHING;
  return rated(graduate(price.graduated_ranges, units, (range) => range.per_unit_amount));
}
