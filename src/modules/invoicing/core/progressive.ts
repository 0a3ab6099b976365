// Progressive billing (Lago's guide "Progressive billing"): a plan's usage thresholds issue a
// `progressive_billing` invoice as soon as a subscription's usage amount in the current charge
// period (charges in arrears, before taxes) reaches them; the invoice bills the period's usage so
// far, less what earlier progressive invoices of the period already billed, and the period-end
// invoice credits them all the same way. Fixed thresholds are crossed once per period; a recurring
// threshold is crossed again each time usage grows by its amount past the highest fixed one. Pure.
import type { UsageThreshold } from "../../catalog/index.ts";

/** A threshold reached: fixed ones at step 0, a recurring one at the number of times its amount was passed. */
export interface ThresholdCrossing {
  readonly threshold: UsageThreshold;
  readonly step: number;
}

/**
 * The thresholds `usageCents` reaches that were not crossed yet in the period (`applied`: threshold
 * lago_id → highest step already crossed). A recurring threshold yields only its highest step: one
 * invoice covers however many times usage passed it since the last run.
 */
export function crossedThresholds(
  thresholds: readonly UsageThreshold[],
  usageCents: bigint,
  applied: ReadonlyMap<string, number>,
): ThresholdCrossing[] {
  const out: ThresholdCrossing[] = [];
  let highestFixed = 0n;
  for (const t of thresholds) {
    if (t.recurring) continue;
    if (t.amountCents > highestFixed) highestFixed = t.amountCents;
    if (t.amountCents <= usageCents && !applied.has(t.lagoId)) out.push({ threshold: t, step: 0 });
  }
  const recurring = thresholds.find((t) => t.recurring);
  if (recurring !== undefined && recurring.amountCents > 0n && usageCents > highestFixed) {
    const step = Number((usageCents - highestFixed) / recurring.amountCents);
    if (step > 0 && step > (applied.get(recurring.lagoId) ?? 0)) out.push({ threshold: recurring, step });
  }
  return out.sort((a, b) => (levelOf(a, highestFixed) < levelOf(b, highestFixed) ? -1 : 1));
}

/** The usage amount a crossing stands for (a recurring one: the highest fixed threshold plus its steps). */
export function levelOf(c: ThresholdCrossing, highestFixed: bigint): bigint {
  return c.threshold.recurring ? highestFixed + c.threshold.amountCents * BigInt(c.step) : c.threshold.amountCents;
}

/** The highest fixed threshold: where a recurring threshold starts counting. */
export function highestFixedThreshold(thresholds: readonly UsageThreshold[]): bigint {
  return thresholds.reduce((m, t) => (!t.recurring && t.amountCents > m ? t.amountCents : m), 0n);
}
