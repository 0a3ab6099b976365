-- Taxes and coupons. Every row carries the organization and every query is scoped by it.

-- A tax rate (percent) an organization defines once and applies by code: to the whole organization
-- (applied_to_organization), to customers (customers.tax_codes), plans and charges (tax_codes below).
CREATE TABLE taxes (
  id                      bigserial PRIMARY KEY,
  org_id                  int     NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
  lago_id                 uuid    NOT NULL UNIQUE,
  code                    text    NOT NULL,
  name                    text    NOT NULL,
  description             text,
  rate                    numeric NOT NULL CHECK (rate >= 0 AND rate <= 100),
  applied_to_organization boolean NOT NULL DEFAULT false,
  created_at              timestamptz NOT NULL,
  updated_at              timestamptz NOT NULL
);
CREATE UNIQUE INDEX taxes_org_code_idx ON taxes (org_id, code);
CREATE INDEX taxes_org_created_idx ON taxes (org_id, created_at DESC, id DESC);

-- The taxes of a plan (all its fees) and of one charge (its fees only), by code; a deleted tax is
-- removed from these lists, a renamed one renamed in them.
ALTER TABLE plans ADD COLUMN tax_codes text[] NOT NULL DEFAULT '{}';
ALTER TABLE charges ADD COLUMN tax_codes text[] NOT NULL DEFAULT '{}';

-- A fee's taxes, computed on its amount less its share of the invoice's coupons. `applied_taxes`
-- keeps each tax as it was when billed (name, code, rate, amount), so later edits do not rewrite history.
ALTER TABLE fees ADD COLUMN taxes_rate numeric NOT NULL DEFAULT 0;
ALTER TABLE fees ADD COLUMN taxes_precise_amount_cents numeric NOT NULL DEFAULT 0;
ALTER TABLE fees ADD COLUMN precise_coupons_amount_cents numeric NOT NULL DEFAULT 0;
ALTER TABLE fees ADD COLUMN applied_taxes jsonb NOT NULL DEFAULT '[]';

-- An invoice's taxes, one row per tax: its base (the fees it applies to, after coupons) and its
-- amount, rounded once per tax.
CREATE TABLE invoice_applied_taxes (
  id                bigserial PRIMARY KEY,
  org_id            int    NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
  lago_id           uuid   NOT NULL UNIQUE,
  invoice_id        bigint NOT NULL REFERENCES invoices(id) ON DELETE CASCADE,
  tax_id            bigint,
  tax_lago_id       uuid,
  tax_code          text   NOT NULL,
  tax_name          text   NOT NULL,
  tax_description   text,
  tax_rate          numeric NOT NULL,
  amount_cents      bigint NOT NULL CHECK (amount_cents >= 0),
  fees_amount_cents bigint NOT NULL,
  currency          text   NOT NULL,
  created_at        timestamptz NOT NULL
);
CREATE INDEX invoice_applied_taxes_invoice_idx ON invoice_applied_taxes (org_id, invoice_id);

CREATE TABLE coupons (
  id                     bigserial PRIMARY KEY,
  org_id                 int  NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
  lago_id                uuid NOT NULL UNIQUE,
  code                   text NOT NULL,
  name                   text NOT NULL,
  description            text,
  coupon_type            text NOT NULL CHECK (coupon_type IN ('fixed_amount', 'percentage')),
  amount_cents           bigint CHECK (amount_cents >= 0),
  amount_currency        text,
  percentage_rate        numeric CHECK (percentage_rate >= 0 AND percentage_rate <= 100),
  frequency              text NOT NULL CHECK (frequency IN ('once', 'recurring', 'forever')),
  frequency_duration     int CHECK (frequency_duration > 0),
  reusable               boolean NOT NULL DEFAULT true,
  expiration             text NOT NULL CHECK (expiration IN ('no_expiration', 'time_limit')),
  expiration_at          timestamptz,
  -- Limitations (empty: the coupon applies to every fee).
  plan_codes             text[] NOT NULL DEFAULT '{}',
  billable_metric_codes  text[] NOT NULL DEFAULT '{}',
  created_at             timestamptz NOT NULL,
  updated_at             timestamptz NOT NULL,
  terminated_at          timestamptz,
  deleted_at             timestamptz
);
CREATE UNIQUE INDEX coupons_org_code_idx ON coupons (org_id, code) WHERE deleted_at IS NULL;
CREATE INDEX coupons_org_created_idx ON coupons (org_id, created_at DESC, id DESC) WHERE deleted_at IS NULL;

-- A coupon applied to a customer, with the values it was applied with (overrides) and what is left
-- of it. What is left changes only when an invoice is finalized, under the customer's lock.
CREATE TABLE applied_coupons (
  id                           bigserial PRIMARY KEY,
  org_id                       int    NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
  lago_id                      uuid   NOT NULL UNIQUE,
  coupon_id                    bigint NOT NULL REFERENCES coupons(id),
  customer_id                  bigint NOT NULL REFERENCES customers(id),
  status                       text   NOT NULL CHECK (status IN ('active', 'terminated')),
  amount_cents                 bigint CHECK (amount_cents >= 0),
  amount_currency              text,
  percentage_rate              numeric,
  frequency                    text   NOT NULL CHECK (frequency IN ('once', 'recurring', 'forever')),
  frequency_duration           int,
  frequency_duration_remaining int,
  amount_cents_remaining       bigint,
  created_at                   timestamptz NOT NULL,
  updated_at                   timestamptz NOT NULL,
  terminated_at                timestamptz
);
CREATE INDEX applied_coupons_customer_idx ON applied_coupons (org_id, customer_id, status, created_at, id);

-- What was deducted from an invoice: a coupon (before taxes) or a credit note (after taxes).
CREATE TABLE credits (
  id                bigserial PRIMARY KEY,
  org_id            int    NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
  lago_id           uuid   NOT NULL UNIQUE,
  invoice_id        bigint NOT NULL REFERENCES invoices(id) ON DELETE CASCADE,
  applied_coupon_id bigint REFERENCES applied_coupons(id),
  -- Set by 0009 (credit notes): the credit note consumed.
  credit_note_id    bigint,
  amount_cents      bigint NOT NULL CHECK (amount_cents > 0),
  amount_currency   text   NOT NULL,
  before_taxes      boolean NOT NULL,
  created_at        timestamptz NOT NULL,
  CHECK ((applied_coupon_id IS NULL) <> (credit_note_id IS NULL))
);
CREATE INDEX credits_invoice_idx ON credits (org_id, invoice_id);
CREATE INDEX credits_applied_coupon_idx ON credits (org_id, applied_coupon_id) WHERE applied_coupon_id IS NOT NULL;
