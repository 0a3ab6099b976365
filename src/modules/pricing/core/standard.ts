import type { Decimal } from "../../../shared/money.ts";
import { NOTHING, type Rated, line, rated } from "./line.ts";
import type { PropertyReader } from "./properties.ts";

export interface StandardPrice {
  readonly model: "standard";
  readonly amount: Decimal;
}

export function readStandard(reader: PropertyReader): StandardPrice {
  return { model: "standard", amount: reader.amount("amount") };
}

export function rateStandard(price: StandardPrice, units: Decimal): Rated {
  if (units.lte(0)) return NOTHING;
  return rated([line("units", units, price.amount)]);
}
