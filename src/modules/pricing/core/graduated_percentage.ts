import type { Decimal } from "../../../shared/money.ts";
import { NOTHING, type Rated, rated } from "./line.ts";
import type { PropertyReader } from "./properties.ts";
import { type Range, graduate, readRanges } from "./tiers.ts";

export interface GraduatedPercentageRange extends Range {
  /** Percent, 0–100. */
  readonly rate: Decimal;
}

export interface GraduatedPercentagePrice {
  readonly model: "graduated_percentage";
  readonly graduated_percentage_ranges: readonly GraduatedPercentageRange[];
}

export function readGraduatedPercentage(reader: PropertyReader): GraduatedPercentagePrice {
  const graduated_percentage_ranges = readRanges(reader, "graduated_percentage_ranges", (item) => ({
    rate: item.rate("rate"),
  }));
  return { model: "graduated_percentage", graduated_percentage_ranges };
}

/** Graduated over the aggregated amount: each touched tier takes its rate of its slice plus its flat amount. */
export function rateGraduatedPercentage(price: GraduatedPercentagePrice, units: Decimal): Rated {
  if (units.lte(0)) return NOTHING;
  return rated(graduate(price.graduated_percentage_ranges, units, (range) => range.rate.div(100)));
}
