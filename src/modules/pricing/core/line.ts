import { type Decimal, ZERO, sum } from "../../../shared/money.ts";

/** Which part of a price produced a line, so an invoice can label it. */
export type LinePart =
  | "units"
  | "tier"
  | "packages"
  | "percentage"
  | "fixed_fee"
  | "per_transaction_min"
  | "per_transaction_max";

export interface TierRef {
  /** Position in the price's ranges, from 0. */
  readonly index: number;
  readonly from_value: Decimal;
  readonly to_value: Decimal | null;
}

/** One row of a fee's breakdown. Invariant: amount = units × unitAmount + flatAmount, none negative. */
export interface Line {
  readonly part: LinePart;
  readonly tier: TierRef | null;
  readonly units: Decimal;
  readonly unitAmount: Decimal;
  readonly flatAmount: Decimal;
  readonly amount: Decimal;
}

/** Exact, unrounded: rounding to the currency happens once per fee, downstream. amount = Σ lines. */
export interface Rated {
  readonly amount: Decimal;
  readonly lines: readonly Line[];
}

export function line(
  part: LinePart,
  units: Decimal,
  unitAmount: Decimal,
  flatAmount: Decimal = ZERO,
  tier: TierRef | null = null,
): Line {
  return { part, tier, units, unitAmount, flatAmount, amount: units.times(unitAmount).plus(flatAmount) };
}

export function rated(lines: readonly Line[]): Rated {
  return { amount: sum(lines.map((l) => l.amount)), lines };
}

export const NOTHING: Rated = rated([]);
