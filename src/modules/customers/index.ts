// Customers: Lago's upsert by external_id, with currency, timezone, billing details, metadata and
// tax codes (placeholder); reads, filtered list, soft deletion. Subscriptions and usage find their
// customer through `CustomerService.getByExternalId`.
export { CustomerService, type CurrencyLock, type CustomerDeleteListener, type CustomerUpsertListener } from "./service.ts";
export { registerCustomerRoutes } from "./http.ts";
export { customerJson, type CustomerJson } from "./core/json.ts";
export {
  applicableTimezone,
  normalizeTimezone,
  type Address,
  type BillingConfiguration,
  type Customer,
  type CustomerAttributes,
  type CustomerMetadata,
} from "./core/customer.ts";
export type { CustomerListQuery } from "./core/list_query.ts";
