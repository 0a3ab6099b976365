import type { FilterValues, MinimumCommitment, UsageThreshold } from "../../catalog/index.ts";
import type { CommitmentDraft, ThresholdDraft } from "../../catalog/index.ts";
import type { BillingTime } from "../../billing/core/index.ts";

export const SUBSCRIPTION_STATUSES = ["pending", "active", "terminated", "canceled"] as const;
export type SubscriptionStatus = (typeof SUBSCRIPTION_STATUSES)[number];

export const isSubscriptionStatus = (v: unknown): v is SubscriptionStatus =>
  typeof v === "string" && (SUBSCRIPTION_STATUSES as readonly string[]).includes(v);

/**
 * The part of a subscription its lifecycle rules read and change. A subscription is `pending`
 * either because it starts in the future (`previousId` null) or because it is the plan a downgrade
 * switches to at `downgradeAt` (`previousId` is the subscription it replaces).
 */
export interface SubscriptionState {
  readonly id: number;
  readonly status: SubscriptionStatus;
  /** Lago's `subscription_at`: the requested start, and the anchor of anniversary periods. */
  readonly subscriptionAt: Date;
  readonly startedAt: Date | null;
  readonly endingAt: Date | null;
  readonly terminatedAt: Date | null;
  readonly canceledAt: Date | null;
  readonly previousId: number | null;
  /** For a downgrade's pending subscription: the end of the replaced one's period, when it takes over. */
  readonly downgradeAt: Date | null;
}

/** A price override of one charge filter, matched to the plan's filter by its values. */
export interface ChargeFilterOverride {
  readonly values: FilterValues;
  readonly properties: Readonly<Record<string, unknown>>;
  readonly invoiceDisplayName: string | null;
}

/** What a subscription changes on one of its plan's charges (a field present is overridden). */
export interface ChargeOverride {
  readonly minAmountCents?: bigint;
  readonly invoiceDisplayName?: string;
  readonly properties?: Readonly<Record<string, unknown>>;
  readonly filters?: readonly ChargeFilterOverride[];
}

/**
 * Lago's `plan_overrides`, kept on the subscription and layered over the plan when it is read (the
 * effective plan). A field present is overridden; charges are keyed by the charge's lago_id.
 */
export interface PlanOverrides {
  readonly amountCents?: bigint;
  readonly amountCurrency?: string;
  readonly name?: string;
  readonly description?: string;
  readonly invoiceDisplayName?: string;
  readonly trialPeriod?: number;
  readonly charges?: Readonly<Record<string, ChargeOverride>>;
  /** The plan's taxes replaced ([]: no plan-level taxes). */
  readonly taxCodes?: readonly string[];
  /** The subscription's own commitment, with its own lago_id. */
  readonly minimumCommitment?: MinimumCommitment;
  /** The plan's whole list of thresholds replaced ([]: no progressive billing). */
  readonly usageThresholds?: readonly UsageThreshold[];
}

/**
 * A `plan_overrides` request: `undefined` leaves a field as it is, `null` removes its override (the
 * plan's value shows again), anything else overrides it.
 */
export interface ChargeOverridePatch {
  readonly minAmountCents?: bigint | null;
  readonly invoiceDisplayName?: string | null;
  readonly properties?: Readonly<Record<string, unknown>> | null;
  /** Merged into the existing filter overrides by values. */
  readonly filters?: readonly ChargeFilterOverride[];
}

export interface PlanOverridesPatch {
  readonly amountCents?: bigint | null;
  readonly amountCurrency?: string | null;
  readonly name?: string | null;
  readonly description?: string | null;
  readonly invoiceDisplayName?: string | null;
  readonly trialPeriod?: number | null;
  readonly charges?: Readonly<Record<string, ChargeOverridePatch>>;
  readonly taxCodes?: readonly string[] | null;
  /** The whole commitment the subscription gets (the request's fields over the one it had); null: the plan's again. */
  readonly minimumCommitment?: CommitmentDraft | null;
  /** The whole list (ids kept from the thresholds the subscription overrode with); null: the plan's again. */
  readonly usageThresholds?: readonly ThresholdDraft[] | null;
}

/** What a merge needs to give new commitments and thresholds an identity (the service's id generator and clock). */
export interface OverrideStamp {
  readonly newId: () => string;
  readonly now: Date;
}

export type { BillingTime };

/** A subscription as stored, with what its reads need from around it (customer, linked plans). */
export interface StoredSubscription extends SubscriptionState {
  readonly orgId: number;
  readonly lagoId: string;
  readonly externalId: string;
  readonly customerId: number;
  readonly customerExternalId: string;
  readonly customerLagoId: string;
  /** The customer's applicable timezone (Lago: customer, else organization; ours: UTC). */
  readonly timezone: string;
  readonly planId: number;
  readonly name: string | null;
  readonly billingTime: BillingTime;
  readonly overrides: PlanOverrides | null;
  readonly createdAt: Date;
  readonly updatedAt: Date;
  /** Plan of the subscription this one replaced (Lago's `previous_plan_code`). */
  readonly previousPlanId: number | null;
  /** The latest subscription that replaces this one and is not canceled (Lago's `next_subscription`). */
  readonly next: { readonly planId: number; readonly status: SubscriptionStatus; readonly downgradeAt: Date | null } | null;
  /** The first start of any subscription of this customer with this external_id (trials count from it). */
  readonly initialStartedAt: Date | null;
}
