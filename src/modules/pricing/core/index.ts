// Pricing core: Lago's charge models as pure functions over exact decimals. It turns a charge's
// `properties` into a validated Price and rates usage into an amount with invoice lines; it does no
// IO and no rounding (fees round once, to the currency's minor unit, downstream).
import type { Decimal } from "../../../shared/money.ts";
import {
  type GraduatedPercentagePrice,
  rateGraduatedPercentage,
  readGraduatedPercentage,
} from "./graduated_percentage.ts";
import { type GraduatedPrice, rateGraduated, readGraduated } from "./graduated.ts";
import type { Rated } from "./line.ts";
import { type PackagePrice, ratePackage, readPackage } from "./package.ts";
import { type PercentagePrice, ratePercentage, readPercentage } from "./percentage.ts";
import { type FieldError, type Parsed, PropertyReader } from "./properties.ts";
import { type StandardPrice, rateStandard, readStandard } from "./standard.ts";
import { type VolumePrice, rateVolume, readVolume } from "./volume.ts";

export type { FieldError, Parsed } from "./properties.ts";
export type { Line, LinePart, Rated, TierRef } from "./line.ts";
export type { Range } from "./tiers.ts";
export type { GraduatedPercentagePrice, GraduatedPercentageRange } from "./graduated_percentage.ts";
export type { GraduatedPrice, GraduatedRange } from "./graduated.ts";
export type { PackagePrice } from "./package.ts";
export type { PercentagePrice } from "./percentage.ts";
export type { StandardPrice } from "./standard.ts";
export type { VolumePrice, VolumeRange } from "./volume.ts";
export { type ProratablePrice, type ProratedSlice, type ProratedUsage, rateProrated } from "./prorated.ts";
export { rateGraduated, rateGraduatedPercentage, ratePackage, ratePercentage, rateStandard, rateVolume };

export type Price =
  | StandardPrice
  | GraduatedPrice
  | VolumePrice
  | PackagePrice
  | PercentagePrice
  | GraduatedPercentagePrice;

export type ChargeModel = Price["model"];

const readers: { readonly [M in ChargeModel]: (reader: PropertyReader) => Extract<Price, { model: M }> } = {
  standard: readStandard,
  graduated: readGraduated,
  volume: readVolume,
  package: readPackage,
  percentage: readPercentage,
  graduated_percentage: readGraduatedPercentage,
};

export const CHARGE_MODELS = Object.keys(readers) as readonly ChargeModel[];

export function isChargeModel(model: unknown): model is ChargeModel {
  return typeof model === "string" && Object.hasOwn(readers, model);
}

/** A charge's Lago `properties` as a Price, or every broken field. */
export function parsePrice(model: string, properties: unknown): Parsed<Price> {
  if (!isChargeModel(model)) {
    return {
      ok: false,
      errors: [
        { field: "charge_model", code: "invalid_charge_model", reason: `must be one of ${CHARGE_MODELS.join(", ")}` },
      ],
    };
  }
  const reader = PropertyReader.of(properties);
  return reader.result<Price>(readers[model](reader));
}

export function validatePrice(model: string, properties: unknown): FieldError[] {
  const parsed = parsePrice(model, properties);
  return parsed.ok ? [] : parsed.errors;
}

export interface RateInput {
  /** The period's aggregated usage; zero or less bills nothing. */
  readonly units: Decimal;
  /**
   * Percentage only: each transaction's amount, in ingestion order (they sum to `units`).
   * Without it the aggregate is rated as a single transaction.
   */
  readonly eventAmounts?: readonly Decimal[];
}

export function rate(price: Price, input: RateInput): Rated {
  const { units } = input;
  if (!units.isFinite()) throw new RangeError(`units must be finite, got ${units.toString()}`);
  switch (price.model) {
    case "standard":
      return rateStandard(price, units);
    case "graduated":
      return rateGraduated(price, units);
    case "volume":
      return rateVolume(price, units);
    case "package":
      return ratePackage(price, units);
    case "percentage":
      return ratePercentage(price, input.eventAmounts ?? (units.gt(0) ? [units] : []));
    case "graduated_percentage":
      return rateGraduatedPercentage(price, units);
    default:
      return assertNever(price);
  }
}

export function assertNever(value: never): never {
  throw new Error(`unhandled price ${JSON.stringify(value)}`);
}
