// The GraphQL read API's schema. Object fields are the REST API's JSON keys (snake_case), resolved
// from the same renderers (customerJson, subscriptionJson, usageJson, invoiceJson), so both APIs
// answer the same data. Money amounts are strings of minor units (cents), exact beyond 2^31.
export const SDL = /* GraphQL */ `
  "Any JSON value (nested Lago objects rendered as the REST API renders them)."
  scalar JSON

  type Query {
    customers(page: Int = 1, perPage: Int = 20): [Customer!]!
    customer(externalId: String!): Customer
    subscriptions(externalCustomerId: String, page: Int = 1, perPage: Int = 20): [Subscription!]!
    subscription(externalId: String!): Subscription
    currentUsage(externalCustomerId: String!, externalSubscriptionId: String!): Usage
    invoices(externalCustomerId: String, page: Int = 1, perPage: Int = 20): [Invoice!]!
    invoice(id: ID!): Invoice
  }

  type Customer {
    lago_id: ID!
    external_id: String!
    name: String
    firstname: String
    lastname: String
    email: String
    account_type: String
    customer_type: String
    country: String
    currency: String
    timezone: String
    applicable_timezone: String
    net_payment_term: Int
    sequential_id: Int
    slug: String
    created_at: String!
    updated_at: String!
    metadata: JSON
    billing_configuration: JSON
    subscriptions(page: Int = 1, perPage: Int = 20): [Subscription!]!
    invoices(page: Int = 1, perPage: Int = 20): [Invoice!]!
  }

  type Subscription {
    lago_id: ID!
    external_id: String!
    lago_customer_id: ID!
    external_customer_id: String!
    name: String
    plan_code: String!
    plan_amount_cents: String!
    plan_amount_currency: String!
    status: String!
    billing_time: String!
    subscription_at: String
    started_at: String
    trial_ended_at: String
    ending_at: String
    terminated_at: String
    canceled_at: String
    created_at: String
    previous_plan_code: String
    next_plan_code: String
    downgrade_plan_date: String
    current_billing_period_started_at: String
    current_billing_period_ending_at: String
    customer: Customer
    currentUsage: Usage
  }

  type Usage {
    from_datetime: String!
    to_datetime: String!
    issuing_date: String!
    currency: String!
    amount_cents: String!
    taxes_amount_cents: String!
    total_amount_cents: String!
    charges_usage: JSON!
  }

  type Invoice {
    lago_id: ID!
    sequential_id: Int
    number: String!
    issuing_date: String!
    payment_due_date: String
    invoice_type: String!
    status: String!
    payment_status: String!
    currency: String!
    fees_amount_cents: String!
    taxes_amount_cents: String!
    sub_total_excluding_taxes_amount_cents: String!
    sub_total_including_taxes_amount_cents: String!
    total_amount_cents: String!
    total_due_amount_cents: String!
    created_at: String!
    updated_at: String!
    voided_at: String
    customer: Customer
    "The invoice's fees (as GET /invoices/:id renders them)."
    fees: JSON
  }
`;
