import { Decimal } from "../../../shared/money.ts";
import { NOTHING, type Rated, line, rated } from "./line.ts";
import type { PropertyReader } from "./properties.ts";

export interface PackagePrice {
  readonly model: "package";
  /** Price of one package. */
  readonly amount: Decimal;
  readonly package_size: Decimal;
  readonly free_units: Decimal;
}

export function readPackage(reader: PropertyReader): PackagePrice {
  return {
    model: "package",
    amount: reader.amount("amount"),
    package_size: new Decimal(reader.count("package_size", "invalid_package_size", 1)),
    free_units: new Decimal(reader.count("free_units", "invalid_free_units", 0, 0)),
  };
}

/** Free units first, then whole packages: a started package is billed in full. */
export function ratePackage(price: PackagePrice, units: Decimal): Rated {
  const billable = units.minus(price.free_units);
  if (billable.lte(0)) return NOTHING;
  const packages = billable.div(price.package_size).ceil();
  return rated([line("packages", packages, price.amount)]);
}
