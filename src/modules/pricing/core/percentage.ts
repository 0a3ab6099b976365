import { Decimal, ZERO } from "../../../shared/money.ts";
import { type Line, type Rated, line, rated } from "./line.ts";
import type { PropertyReader } from "./properties.ts";

export interface PercentagePrice {
  readonly model: "percentage";
  /** Percent, 0–100. */
  readonly rate: Decimal;
  /** Added to each charged transaction. */
  readonly fixed_amount: Decimal;
  readonly free_units_per_events: number | null;
  readonly free_units_per_total_aggregation: Decimal | null;
  readonly per_transaction_min_amount: Decimal | null;
  readonly per_transaction_max_amount: Decimal | null;
}

export function readPercentage(reader: PropertyReader): PercentagePrice {
  const rate = reader.rate("rate");
  const fixed_amount = reader.optionalAmount("fixed_amount", "invalid_fixed_amount") ?? ZERO;
  const freeEvents = reader.count("free_units_per_events", "invalid_free_units_per_events", 0, 0);
  const freeAmount = reader.optionalAmount(
    "free_units_per_total_aggregation",
    "invalid_free_units_per_total_aggregation",
  );
  const min = reader.optionalAmount("per_transaction_min_amount");
  const max = reader.optionalAmount("per_transaction_max_amount");
  if (min !== null && max !== null && max.lt(min)) {
    reader.fail(
      "per_transaction_max_amount",
      "per_transaction_max_lower_than_per_transaction_min",
      "must not be lower than per_transaction_min_amount",
    );
  }
  return {
    model: "percentage",
    rate,
    fixed_amount,
    // Lago reads a zero allowance as no allowance.
    free_units_per_events: freeEvents === 0 ? null : freeEvents,
    free_units_per_total_aggregation: freeAmount === null || freeAmount.isZero() ? null : freeAmount,
    per_transaction_min_amount: min,
    per_transaction_max_amount: max,
  };
}

/**
 * Rates each transaction in order. While the free allowance lasts (the first `free_units_per_events`
 * transactions and the first `free_units_per_total_aggregation` of amount, whichever runs out first)
 * a transaction is free; the one that uses up the amount allowance pays the rate on its part above it,
 * plus the fixed fee (as in Lago, a transaction is wholly free only while the allowance left exceeds it).
 * A charged transaction costs rate × amount + fixed_amount, raised to the per-transaction minimum or
 * cut to the maximum. Each transaction lands in exactly one line, so every line stays non-negative.
 */
export function ratePercentage(price: PercentagePrice, eventAmounts: readonly Decimal[]): Rated {
  const rate = price.rate.div(100);
  const min = price.per_transaction_min_amount;
  const max = price.per_transaction_max_amount;
  let eventsLeft = price.free_units_per_events;
  let amountLeft = price.free_units_per_total_aggregation;
  let freeOpen = eventsLeft !== null || amountLeft !== null;
  let base = ZERO;
  let inBounds = 0;
  let raised = 0;
  let cut = 0;
  for (const eventAmount of eventAmounts) {
    // A refund (negative transaction) is billed as nothing, never credited.
    let charged = Decimal.max(eventAmount, ZERO);
    if (freeOpen && eventsLeft === 0) freeOpen = false;
    if (freeOpen) {
      if (eventsLeft !== null) eventsLeft -= 1;
      if (amountLeft === null || amountLeft.gt(charged)) {
        if (amountLeft !== null) amountLeft = amountLeft.minus(charged);
        continue;
      }
      charged = charged.minus(amountLeft);
      freeOpen = false;
    }
    const cost = charged.times(rate).plus(price.fixed_amount);
    if (min !== null && cost.lt(min)) raised += 1;
    else if (max !== null && cost.gt(max)) cut += 1;
    else {
      base = base.plus(charged);
      inBounds += 1;
    }
  }
  const lines: Line[] = [];
  if (base.gt(0)) lines.push(line("percentage", base, rate));
  if (inBounds > 0 && price.fixed_amount.gt(0)) lines.push(line("fixed_fee", new Decimal(inBounds), price.fixed_amount));
  if (min !== null && raised > 0) lines.push(line("per_transaction_min", new Decimal(raised), min));
  if (max !== null && cut > 0) lines.push(line("per_transaction_max", new Decimal(cut), max));
  return rated(lines);
}
