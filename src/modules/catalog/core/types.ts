import type { ChargeModel, Price } from "../../pricing/index.ts";

export const AGGREGATION_TYPES = [
  "count_agg",
  "sum_agg",
  "max_agg",
  "unique_count_agg",
  "latest_agg",
  "weighted_sum_agg",
] as const;
export type AggregationType = (typeof AGGREGATION_TYPES)[number];

export const ROUNDING_FUNCTIONS = ["round", "ceil", "floor"] as const;
export type RoundingFunction = (typeof ROUNDING_FUNCTIONS)[number];

// Lago also has `semiannual`; the billing-period core does not compute semiannual periods yet, so a
// plan that could never be billed is refused rather than accepted.
export const PLAN_INTERVALS = ["weekly", "monthly", "quarterly", "yearly"] as const;
export type PlanInterval = (typeof PLAN_INTERVALS)[number];

/** Lago's wildcard: the charge filter matches every value of the key the metric allows. */
export const ALL_FILTER_VALUES = "__ALL_FILTER_VALUES__";

export interface MetricFilter {
  readonly key: string;
  readonly values: readonly string[];
}

export interface BillableMetric {
  /** Internal id (charges and, later, fees point at it). */
  readonly id: number;
  readonly orgId: number;
  readonly lagoId: string;
  readonly code: string;
  readonly name: string;
  readonly description: string | null;
  readonly aggregationType: AggregationType;
  /** The event property aggregated; null only for count_agg. */
  readonly fieldName: string | null;
  /** "seconds" for weighted_sum_agg, null otherwise. */
  readonly weightedInterval: "seconds" | null;
  readonly recurring: boolean;
  readonly roundingFunction: RoundingFunction | null;
  readonly roundingPrecision: number | null;
  /** Ordered by key. */
  readonly filters: readonly MetricFilter[];
  readonly createdAt: Date;
}

/** Lago's `values` of a charge filter: metric filter key to the values it matches. */
export type FilterValues = Readonly<Record<string, readonly string[]>>;

export interface ChargeFilter {
  readonly id: number;
  /** Lago's id of the filter (…/charges/:charge_code/filters/:filter_id); absent on filters built outside the catalog. */
  readonly lagoId?: string;
  readonly invoiceDisplayName: string | null;
  readonly values: FilterValues;
  /** As stored and returned by the API. */
  readonly properties: Readonly<Record<string, unknown>>;
  /** `properties` parsed: the price of events matching this filter. */
  readonly price: Price;
  readonly pricingGroupKeys: readonly string[] | null;
}

export interface Charge {
  readonly id: number;
  readonly lagoId: string;
  readonly code: string | null;
  readonly invoiceDisplayName: string | null;
  readonly metric: BillableMetric;
  readonly chargeModel: ChargeModel;
  readonly payInAdvance: boolean;
  readonly invoiceable: boolean;
  readonly regroupPaidFees: "invoice" | null;
  readonly prorated: boolean;
  /** Minimum fee per period, in the plan currency's minor unit. */
  readonly minAmountCents: bigint;
  readonly properties: Readonly<Record<string, unknown>>;
  /** The price of events no filter matches. */
  readonly price: Price;
  readonly pricingGroupKeys: readonly string[] | null;
  readonly filters: readonly ChargeFilter[];
  /** Codes of the taxes on this charge's fees (they take precedence over the plan's); absent: none. */
  readonly taxCodes?: readonly string[];
  readonly createdAt: Date;
}

export interface Plan {
  readonly id: number;
  readonly orgId: number;
  readonly lagoId: string;
  readonly code: string;
  readonly name: string;
  readonly invoiceDisplayName: string | null;
  readonly description: string | null;
  readonly interval: PlanInterval;
  /** The plan's fee, in `amountCurrency`'s minor unit. */
  readonly amountCents: bigint;
  readonly amountCurrency: string;
  /** Days (fractions allowed); null when the plan has no trial. */
  readonly trialPeriod: number | null;
  readonly payInAdvance: boolean;
  /** Yearly plans only; null for other intervals. */
  readonly billChargesMonthly: boolean | null;
  /** In the order they were sent. */
  readonly charges: readonly Charge[];
  /** Codes of the taxes on the plan's fees (over the customer's); absent: none. */
  readonly taxCodes?: readonly string[];
  /** Lago's `minimum_commitment`; absent or null: none. */
  readonly minimumCommitment?: MinimumCommitment | null;
  /** Lago's `usage_thresholds` (progressive billing), by amount; absent: none. */
  readonly usageThresholds?: readonly UsageThreshold[];
  readonly createdAt: Date;
  /** Set once the plan is deleted (plans read by id keep answering for billing history). */
  readonly deletedAt: Date | null;
}

/** A plan's minimum spend per billing period (Lago's `minimum_commitment`), topped up by a `commitment` fee. */
export interface MinimumCommitment {
  readonly lagoId: string;
  /** Minor units of the plan's currency; more than 0. */
  readonly amountCents: bigint;
  readonly invoiceDisplayName: string | null;
  /** Codes of the taxes on the commitment fee; absent: the plan's. */
  readonly taxCodes: readonly string[];
  readonly createdAt: Date;
  readonly updatedAt: Date;
}

/** A usage amount that issues a `progressive_billing` invoice when the period's usage reaches it. */
export interface UsageThreshold {
  readonly lagoId: string;
  /** Minor units of the plan's currency; more than 0. */
  readonly amountCents: bigint;
  readonly thresholdDisplayName: string | null;
  /** Crossed again every time usage grows by `amountCents` past the highest fixed threshold. */
  readonly recurring: boolean;
  readonly createdAt: Date;
  readonly updatedAt: Date;
}
