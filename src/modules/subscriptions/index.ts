// Subscriptions: customers on plans (Lago's /subscriptions) — create, plan changes (upgrade now,
// downgrade at period end), per-subscription plan overrides, update, terminate — and the lookup that
// attaches events to the subscription active when they happened (`getByExternalId`).
export {
  SubscriptionService,
  type Subscription,
  type SubscriptionServiceOptions,
  type SubscriptionTransitionListener,
  type SubscriptionView,
} from "./service.ts";
export { registerSubscriptionRoutes, subscriptionJson, subscriptionWithPlanJson } from "./http.ts";
export {
  SUBSCRIPTION_STATUSES,
  effectivePlan,
  type PlanOverrides,
  type StoredSubscription,
  type SubscriptionState,
  type SubscriptionStatus,
} from "./core/index.ts";
