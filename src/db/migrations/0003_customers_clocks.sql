-- Customers, as Lago's API shapes them. `id` is the compact internal key other tables reference;
-- `lago_id` is the public UUID. Deleting a customer only stamps `deleted_at` (Lago discards, it
-- never destroys): invoices and subscriptions keep pointing at the row, and the external_id is
-- free again for a new customer.
CREATE TABLE customers (
  id                          bigserial PRIMARY KEY,
  org_id                      int  NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
  lago_id                     uuid NOT NULL UNIQUE,
  external_id                 text NOT NULL,
  -- Lago's per-organization creation counter (deleted customers keep their number) and slug.
  sequential_id               int  NOT NULL,
  slug                        text NOT NULL,
  name                        text,
  firstname                   text,
  lastname                    text,
  email                       text,
  currency                    text,
  timezone                    text,
  country                     text,
  address_line1               text,
  address_line2               text,
  city                        text,
  state                       text,
  zipcode                     text,
  shipping_address_line1      text,
  shipping_address_line2      text,
  shipping_city               text,
  shipping_state              text,
  shipping_zipcode            text,
  shipping_country            text,
  legal_name                  text,
  legal_number                text,
  tax_identification_number   text,
  phone                       text,
  url                         text,
  logo_url                    text,
  external_salesforce_id      text,
  customer_type               text,
  account_type                text NOT NULL DEFAULT 'customer',
  net_payment_term            int,
  finalize_zero_amount_invoice text NOT NULL DEFAULT 'inherit',
  skip_invoice_custom_sections boolean NOT NULL DEFAULT false,
  -- billing_configuration basics (payment providers are not connected yet: stored as given).
  invoice_grace_period        int,
  payment_provider            text,
  payment_provider_code       text,
  provider_customer_id        text,
  document_locale             text,
  subscription_invoice_issuing_date_anchor     text,
  subscription_invoice_issuing_date_adjustment text,
  -- [{lago_id, key, value, display_in_invoice, created_at}], at most 5 (Lago's limit).
  metadata                    jsonb NOT NULL DEFAULT '[]',
  -- Placeholder until taxes exist: the codes as given, resolved to taxes later.
  tax_codes                   text[] NOT NULL DEFAULT '{}',
  created_at                  timestamptz NOT NULL,
  updated_at                  timestamptz NOT NULL,
  deleted_at                  timestamptz
);
-- One live customer per external_id and organization; deleted ones do not count.
CREATE UNIQUE INDEX customers_org_external_id_idx ON customers (org_id, external_id) WHERE deleted_at IS NULL;
CREATE UNIQUE INDEX customers_org_sequential_id_idx ON customers (org_id, sequential_id);
-- The list order (newest first).
CREATE INDEX customers_org_created_idx ON customers (org_id, created_at DESC, sequential_id DESC) WHERE deleted_at IS NULL;

-- Test clocks (VALUEVERSE_TEST_CLOCK=on): an organization's frozen "now". No row: the wall clock.
CREATE TABLE test_clocks (
  org_id     int PRIMARY KEY REFERENCES organizations(id) ON DELETE CASCADE,
  frozen_at  timestamptz NOT NULL,
  updated_at timestamptz NOT NULL
);
