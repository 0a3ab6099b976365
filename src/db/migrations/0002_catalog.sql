-- The catalog: billable metrics, plans, their charges and charge filters. Every row carries the
-- organization and every query is scoped by it. Rows are soft-deleted (`deleted_at`) so fees and
-- invoices can keep pointing at the charge and metric that produced them; codes are unique per
-- organization among rows that are not deleted, as in Lago.

CREATE TABLE billable_metrics (
  id                 bigserial PRIMARY KEY,
  org_id             int  NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
  lago_id            uuid NOT NULL UNIQUE,
  code               text NOT NULL,
  name               text NOT NULL,
  description        text,
  aggregation_type   text NOT NULL CHECK (aggregation_type IN
                       ('count_agg', 'sum_agg', 'max_agg', 'unique_count_agg', 'latest_agg', 'weighted_sum_agg')),
  field_name         text,
  weighted_interval  text CHECK (weighted_interval IN ('seconds')),
  recurring          boolean NOT NULL DEFAULT false,
  rounding_function  text CHECK (rounding_function IN ('round', 'ceil', 'floor')),
  rounding_precision int,
  -- [{"key": "region", "values": ["eu", "us"]}], ordered by key.
  filters            jsonb NOT NULL DEFAULT '[]'::jsonb,
  created_at         timestamptz NOT NULL,
  updated_at         timestamptz NOT NULL,
  deleted_at         timestamptz
);
CREATE UNIQUE INDEX billable_metrics_org_code_idx ON billable_metrics (org_id, code) WHERE deleted_at IS NULL;
CREATE INDEX billable_metrics_org_created_idx ON billable_metrics (org_id, created_at DESC, id DESC) WHERE deleted_at IS NULL;

CREATE TABLE plans (
  id                   bigserial PRIMARY KEY,
  org_id               int  NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
  lago_id              uuid NOT NULL UNIQUE,
  code                 text NOT NULL,
  name                 text NOT NULL,
  invoice_display_name text,
  description          text,
  interval             text NOT NULL CHECK (interval IN ('weekly', 'monthly', 'quarterly', 'yearly')),
  -- The plan's fee in the currency's minor unit.
  amount_cents         bigint NOT NULL CHECK (amount_cents >= 0),
  amount_currency      text NOT NULL,
  -- Days; Lago accepts fractions.
  trial_period         numeric CHECK (trial_period >= 0),
  pay_in_advance       boolean NOT NULL DEFAULT false,
  -- Only meaningful for yearly plans; null otherwise (as Lago stores it).
  bill_charges_monthly boolean,
  created_at           timestamptz NOT NULL,
  updated_at           timestamptz NOT NULL,
  deleted_at           timestamptz
);
CREATE UNIQUE INDEX plans_org_code_idx ON plans (org_id, code) WHERE deleted_at IS NULL;
CREATE INDEX plans_org_created_idx ON plans (org_id, created_at DESC, id DESC) WHERE deleted_at IS NULL;

CREATE TABLE charges (
  id                   bigserial PRIMARY KEY,
  org_id               int    NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
  lago_id              uuid   NOT NULL UNIQUE,
  plan_id              bigint NOT NULL REFERENCES plans(id) ON DELETE CASCADE,
  billable_metric_id   bigint NOT NULL REFERENCES billable_metrics(id),
  -- Order of the charge in the plan, as it was sent.
  position             int    NOT NULL,
  code                 text,
  invoice_display_name text,
  charge_model         text   NOT NULL CHECK (charge_model IN
                         ('standard', 'graduated', 'volume', 'package', 'percentage', 'graduated_percentage')),
  pay_in_advance       boolean NOT NULL DEFAULT false,
  invoiceable          boolean NOT NULL DEFAULT true,
  regroup_paid_fees    text CHECK (regroup_paid_fees IN ('invoice')),
  prorated             boolean NOT NULL DEFAULT false,
  min_amount_cents     bigint NOT NULL DEFAULT 0 CHECK (min_amount_cents >= 0),
  -- Lago's `properties` for the charge model, as sent (money as decimal strings).
  properties           jsonb  NOT NULL,
  created_at           timestamptz NOT NULL,
  updated_at           timestamptz NOT NULL,
  deleted_at           timestamptz
);
CREATE INDEX charges_plan_idx ON charges (org_id, plan_id, position) WHERE deleted_at IS NULL;
CREATE INDEX charges_metric_idx ON charges (org_id, billable_metric_id) WHERE deleted_at IS NULL;

CREATE TABLE charge_filters (
  id                   bigserial PRIMARY KEY,
  org_id               int    NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
  charge_id            bigint NOT NULL REFERENCES charges(id) ON DELETE CASCADE,
  position             int    NOT NULL,
  invoice_display_name text,
  -- {"region": ["eu"], "cloud": ["aws", "gcp"]}: keys and values of the metric's filters.
  filter_values        jsonb  NOT NULL,
  properties           jsonb  NOT NULL,
  created_at           timestamptz NOT NULL,
  updated_at           timestamptz NOT NULL,
  deleted_at           timestamptz
);
CREATE INDEX charge_filters_charge_idx ON charge_filters (org_id, charge_id, position) WHERE deleted_at IS NULL;
