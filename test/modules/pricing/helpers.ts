import { expect } from "vitest";
import { type Decimal, d, sum } from "../../../src/shared/money.ts";
import { type Price, type Rated, parsePrice } from "../../../src/modules/pricing/index.ts";

/** A Price from Lago-shaped `properties`; fails the test if they do not validate. */
export function price<M extends Price["model"]>(model: M, properties: unknown): Extract<Price, { model: M }> {
  const parsed = parsePrice(model, properties);
  if (!parsed.ok) throw new Error(`invalid ${model} properties: ${JSON.stringify(parsed.errors)}`);
  return parsed.value as Extract<Price, { model: M }>;
}

export const amounts = (xs: readonly string[]): Decimal[] => xs.map((x) => d(x));

/** The invariants every rating keeps: amount = Σ lines, each line = units × unit + flat, nothing negative. */
export function expectWellFormed(result: Rated): void {
  expect(result.amount.eq(sum(result.lines.map((l) => l.amount)))).toBe(true);
  expect(result.amount.isNegative()).toBe(false);
  for (const l of result.lines) {
    expect(l.amount.eq(l.units.times(l.unitAmount).plus(l.flatAmount))).toBe(true);
    for (const part of [l.units, l.unitAmount, l.flatAmount, l.amount]) expect(part.isNegative()).toBe(false);
  }
}
