// Which billing instants the billing job may bill in a batch (batch.ts): a plain periodic invoice
// of an active subscription in arrears whose fees need nothing but the plan and rolled-up usage.
// The rest (advance fees, terminations and their credit notes, minimum commitments, usage
// thresholds, charges paid in advance, grouped, prorated or percentage charges) goes through the
// per-subscription path. Pure.
import type { Charge } from "../../catalog/index.ts";
import type { BillingInstant, BillingTerms } from "./due.ts";

/** What the decision reads of a subscription (structurally the subscriptions module's). */
export interface BatchableSubscription {
  readonly status: string;
  readonly plan: {
    readonly payInAdvance: boolean;
    readonly minimumCommitment?: unknown;
    readonly usageThresholds?: readonly unknown[] | null;
    readonly charges: readonly Charge[];
  };
}

/**
 * Whether the instant can be billed in a batch; `readsInBatch`: whether a charge's usage can be
 * read for many subscriptions at once (metering's `batchableCharge`).
 */
export function batchable(
  sub: BatchableSubscription,
  terms: BillingTerms,
  instant: BillingInstant,
  readsInBatch: (charge: Charge) => boolean,
): boolean {
  const plan = sub.plan;
  return (
    sub.status === "active" &&
    terms.terminatedAt === null &&
    !terms.payInAdvance &&
    instant.unused === null &&
    (plan.minimumCommitment ?? null) === null &&
    (plan.usageThresholds ?? []).length === 0 &&
    plan.charges.every((c) => !c.payInAdvance && readsInBatch(c))
  );
}
