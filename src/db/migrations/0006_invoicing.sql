-- Invoicing: invoices, the billing instants of subscriptions they close, and their fees. Every row
-- carries the organization and every query is scoped by it. Amounts are integers in the currency's
-- minor unit, rounded once per fee; the exact amounts are kept beside them (`precise_*`).

-- The organization's default grace period (days a subscription invoice stays a draft); a customer's
-- billing_configuration.invoice_grace_period overrides it.
ALTER TABLE organizations ADD COLUMN invoice_grace_period int NOT NULL DEFAULT 0
  CHECK (invoice_grace_period >= 0 AND invoice_grace_period <= 365);

-- Gapless invoice sequences, advanced in the transaction that finalizes an invoice: per organization
-- (customer_id 0, behind `number`) and per customer (Lago's `sequential_id`).
CREATE TABLE invoice_sequences (
  org_id      int    NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
  customer_id bigint NOT NULL,
  last_value  bigint NOT NULL,
  PRIMARY KEY (org_id, customer_id)
);

CREATE TABLE invoices (
  id                          bigserial PRIMARY KEY,
  org_id                      int    NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
  lago_id                     uuid   NOT NULL UNIQUE,
  customer_id                 bigint NOT NULL REFERENCES customers(id),
  invoice_type                text   NOT NULL CHECK (invoice_type IN ('subscription', 'one_off')),
  status                      text   NOT NULL CHECK (status IN ('draft', 'finalized', 'voided')),
  payment_status              text   NOT NULL CHECK (payment_status IN ('pending', 'succeeded', 'failed')),
  number                      text   NOT NULL,
  organization_sequential_id  bigint,
  sequential_id               bigint,
  issuing_date                date   NOT NULL,
  payment_due_date            date   NOT NULL,
  net_payment_term            int    NOT NULL DEFAULT 0,
  currency                    text   NOT NULL,
  fees_amount_cents           bigint NOT NULL CHECK (fees_amount_cents >= 0),
  coupons_amount_cents        bigint NOT NULL DEFAULT 0 CHECK (coupons_amount_cents >= 0),
  credit_notes_amount_cents   bigint NOT NULL DEFAULT 0 CHECK (credit_notes_amount_cents >= 0),
  prepaid_credit_amount_cents bigint NOT NULL DEFAULT 0 CHECK (prepaid_credit_amount_cents >= 0),
  taxes_amount_cents          bigint NOT NULL DEFAULT 0 CHECK (taxes_amount_cents >= 0),
  sub_total_excluding_taxes_amount_cents bigint NOT NULL,
  sub_total_including_taxes_amount_cents bigint NOT NULL,
  -- Totals are never negative: deductions are capped at what is left to pay.
  total_amount_cents          bigint NOT NULL CHECK (total_amount_cents >= 0),
  -- Drafts: when the billing job finalizes them (end of the grace period).
  grace_until                 timestamptz,
  finalized_at                timestamptz,
  voided_at                   timestamptz,
  created_at                  timestamptz NOT NULL,
  updated_at                  timestamptz NOT NULL,
  CHECK (status = 'draft' OR (organization_sequential_id IS NOT NULL AND finalized_at IS NOT NULL)),
  CHECK (status <> 'voided' OR voided_at IS NOT NULL)
);
CREATE UNIQUE INDEX invoices_org_sequence_idx ON invoices (org_id, organization_sequential_id) WHERE organization_sequential_id IS NOT NULL;
-- The list order (Lago: newest issuing date first).
CREATE INDEX invoices_org_list_idx ON invoices (org_id, issuing_date DESC, created_at DESC, id DESC);
CREATE INDEX invoices_org_customer_idx ON invoices (org_id, customer_id);
CREATE INDEX invoices_drafts_due_idx ON invoices (org_id, grace_until) WHERE status = 'draft';

-- The billing instants an invoice closes, one row per subscription (Lago's invoice_subscriptions).
-- The UNIQUE constraint is the rule "one invoice per subscription per billing period" as a database
-- fact: two billing runs (concurrent, repeated, or after a crash) can never both commit an invoice
-- for the same instant. Voided invoices keep their row, so a voided period is not billed again.
CREATE TABLE invoice_subscriptions (
  id                     bigserial PRIMARY KEY,
  org_id                 int    NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
  invoice_id             bigint NOT NULL REFERENCES invoices(id) ON DELETE CASCADE,
  subscription_id        bigint NOT NULL REFERENCES subscriptions(id),
  invoicing_reason       text   NOT NULL CHECK (invoicing_reason IN ('subscription_starting', 'subscription_periodic', 'subscription_terminating')),
  -- The instant that made it due: a start, a period end, a trial end or a termination.
  billed_at              timestamptz NOT NULL,
  -- The subscription fee's period (null when the instant bills none) and the usage period.
  fee_from               timestamptz,
  fee_to                 timestamptz,
  charges_from           timestamptz,
  charges_to             timestamptz,
  -- For a plan paid in advance ending mid-period: what a credit note owes back for the unused days.
  unused_advance_credit_cents bigint NOT NULL DEFAULT 0 CHECK (unused_advance_credit_cents >= 0),
  created_at             timestamptz NOT NULL,
  CONSTRAINT invoice_subscriptions_one_per_instant UNIQUE (org_id, subscription_id, billed_at)
);
CREATE INDEX invoice_subscriptions_invoice_idx ON invoice_subscriptions (org_id, invoice_id);

CREATE TABLE fees (
  id                     bigserial PRIMARY KEY,
  org_id                 int    NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
  lago_id                uuid   NOT NULL UNIQUE,
  invoice_id             bigint NOT NULL REFERENCES invoices(id) ON DELETE CASCADE,
  subscription_id        bigint REFERENCES subscriptions(id),
  -- Null for the subscription fee. Charges, filters and metrics are only ever soft-deleted.
  charge_id              bigint,
  charge_lago_id         uuid,
  charge_filter_id       bigint,
  billable_metric_id     bigint,
  fee_type               text   NOT NULL CHECK (fee_type IN ('subscription', 'charge', 'add_on')),
  -- Order on the invoice.
  position               int    NOT NULL,
  -- Lago's from_date / to_date (to: the period's last instant, or the termination).
  from_datetime          timestamptz,
  to_datetime            timestamptz,
  -- Usage fees: the events window [usage_from, usage_to) and the charge's buckets as billed, so the
  -- events behind the fee can be listed again (GET /fees/:id/events).
  usage_from             timestamptz,
  usage_to               timestamptz,
  bucket_filters         jsonb,
  bucket_index           int,
  units                  numeric NOT NULL,
  total_aggregated_units numeric NOT NULL,
  events_count           bigint  NOT NULL DEFAULT 0,
  currency               text    NOT NULL,
  -- Major units, exact; amount_cents is it rounded half-up to the minor unit, once.
  precise_amount         numeric NOT NULL,
  amount_cents           bigint  NOT NULL CHECK (amount_cents >= 0),
  precise_unit_amount    numeric NOT NULL,
  unit_amount_cents      bigint  NOT NULL,
  taxes_amount_cents     bigint  NOT NULL DEFAULT 0,
  pay_in_advance         boolean NOT NULL DEFAULT false,
  invoiceable            boolean NOT NULL DEFAULT true,
  item_code              text    NOT NULL,
  item_name              text    NOT NULL,
  item_description       text,
  invoice_display_name   text    NOT NULL,
  filter_invoice_display_name text,
  filter_values          jsonb,
  lago_item_id           uuid    NOT NULL,
  item_type              text    NOT NULL,
  amount_details         jsonb   NOT NULL DEFAULT '{}',
  created_at             timestamptz NOT NULL,
  updated_at             timestamptz NOT NULL
);
CREATE INDEX fees_invoice_idx ON fees (org_id, invoice_id, position);
-- The advance fee a termination credits is found by subscription and period start.
CREATE INDEX fees_subscription_idx ON fees (org_id, subscription_id, fee_type, from_datetime);
