-- Add-ons (Lago's /add_ons) billed on one-off invoices, and the adjustments late events make to
-- usage periods already invoiced. Every row carries the organization and every query is scoped by it.

-- A catalog item sold once (a setup fee, a training day): its default amount and taxes. Deleted
-- add-ons are kept (their fees point at them) and free their code.
CREATE TABLE add_ons (
  id                   bigserial PRIMARY KEY,
  org_id               int    NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
  lago_id              uuid   NOT NULL UNIQUE,
  code                 text   NOT NULL,
  name                 text   NOT NULL,
  invoice_display_name text,
  description          text,
  amount_cents         bigint NOT NULL CHECK (amount_cents >= 0),
  amount_currency      text   NOT NULL,
  tax_codes            text[] NOT NULL DEFAULT '{}',
  created_at           timestamptz NOT NULL,
  updated_at           timestamptz NOT NULL,
  deleted_at           timestamptz
);
CREATE UNIQUE INDEX add_ons_org_code_idx ON add_ons (org_id, code) WHERE deleted_at IS NULL;
CREATE INDEX add_ons_org_created_idx ON add_ons (org_id, created_at DESC, id DESC) WHERE deleted_at IS NULL;

-- An add-on fee's own description (Lago's fee `description`, one-off invoices).
ALTER TABLE fees ADD COLUMN description text;

-- Late events. When an invoice is finalized, the wall-clock time up to which stored events were
-- counted is recorded; an event stored after it (events.created_at, same clock) with a timestamp in
-- a period that invoice billed is late. The next invoice of the subscription bills the difference
-- between the period's usage recomputed now and what was billed for it so far, as adjustment fees.
CREATE TABLE invoice_usage_cutoffs (
  org_id        int    NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
  invoice_id    bigint NOT NULL REFERENCES invoices(id) ON DELETE CASCADE,
  events_before timestamptz NOT NULL,
  PRIMARY KEY (org_id, invoice_id)
);

-- An adjustment fee: the billing instant of the period it corrects (with subscription_id), the fee
-- it corrects when the period had one for that bucket, and since when its events count as late (the
-- fee → events trace lists those).
ALTER TABLE fees ADD COLUMN adjusts_billed_at timestamptz;
ALTER TABLE fees ADD COLUMN adjusted_fee_id bigint REFERENCES fees(id);
ALTER TABLE fees ADD COLUMN late_events_after timestamptz;
-- A period's bucket is adjusted at most once per invoice (re-running or refreshing recomputes it).
CREATE UNIQUE INDEX fees_late_adjustment_once_idx
  ON fees (org_id, invoice_id, subscription_id, adjusts_billed_at, charge_id, bucket_index, (coalesce(grouped_by::text, '')))
  WHERE adjusts_billed_at IS NOT NULL;
CREATE INDEX fees_adjusts_idx ON fees (org_id, subscription_id, adjusts_billed_at) WHERE adjusts_billed_at IS NOT NULL;

-- A late event that lowers a billed amount (a max or latest aggregation, a negative value) is
-- credited on the period's invoice with a credit note; what was credited that way, per fee.
CREATE TABLE late_event_credits (
  id              bigserial PRIMARY KEY,
  org_id          int    NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
  fee_id          bigint NOT NULL REFERENCES fees(id),
  -- The invoice whose issuing found the lower amount.
  invoice_id      bigint NOT NULL REFERENCES invoices(id) ON DELETE CASCADE,
  amount_cents    bigint NOT NULL CHECK (amount_cents > 0),
  created_at      timestamptz NOT NULL,
  UNIQUE (org_id, fee_id, invoice_id)
);
