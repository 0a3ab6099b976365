-- Manual payments, wallets' recurring top-up rules, and what invoices show of progressive billing.
-- Every row carries the organization and every query is scoped by it.

-- What manual payments have paid of an invoice (Lago's total_paid_amount_cents). An invoice whose
-- payment_status is `succeeded` is paid in full whatever this says (a provider's charge, or the
-- status set by hand); otherwise this is what has been paid so far.
ALTER TABLE invoices ADD COLUMN total_paid_amount_cents bigint NOT NULL DEFAULT 0 CHECK (total_paid_amount_cents >= 0);

-- Payments recorded by hand (Lago's POST /payments, type `manual`): money received outside any
-- provider, for part or all of a finalized invoice. One row per reference and invoice: recording
-- the same reference again answers the payment already recorded (a retried request never counts
-- twice).
CREATE TABLE manual_payments (
  id           bigserial PRIMARY KEY,
  org_id       int    NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
  lago_id      uuid   NOT NULL UNIQUE,
  invoice_id   bigint NOT NULL REFERENCES invoices(id) ON DELETE CASCADE,
  customer_id  bigint NOT NULL REFERENCES customers(id),
  amount_cents bigint NOT NULL CHECK (amount_cents > 0),
  currency     text   NOT NULL,
  reference    text   NOT NULL,
  paid_at      timestamptz NOT NULL,
  created_at   timestamptz NOT NULL,
  CONSTRAINT manual_payments_reference_once UNIQUE (org_id, invoice_id, reference)
);
CREATE INDEX manual_payments_org_created_idx ON manual_payments (org_id, created_at DESC, id DESC);
CREATE INDEX manual_payments_invoice_idx ON manual_payments (org_id, invoice_id);

-- A wallet's recurring top-up rules (Lago's recurring_transaction_rules; one live rule per wallet).
--   interval rules top up on every anniversary of `anchor_at` (started_at, else the wallet's
--   creation) by the organization's clock; `next_due_at` is the next one (NULL: not an interval rule).
--   threshold rules top up when the wallet's balance, plus credits bought and awaiting payment,
--   is at or below `threshold_cents`, once per crossing: `armed` is cleared when the rule fires and
--   set again when that balance is seen above the threshold.
CREATE TABLE wallet_recurring_rules (
  id                                  bigserial PRIMARY KEY,
  org_id                              int    NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
  lago_id                             uuid   NOT NULL UNIQUE,
  wallet_id                           bigint NOT NULL REFERENCES wallets(id) ON DELETE CASCADE,
  status                              text   NOT NULL CHECK (status IN ('active', 'terminated')),
  trigger                             text   NOT NULL CHECK (trigger IN ('interval', 'threshold')),
  method                              text   NOT NULL CHECK (method IN ('fixed', 'target')),
  interval                            text   CHECK (interval IN ('weekly', 'monthly', 'quarterly', 'semiannual', 'yearly')),
  threshold_credits                   numeric,
  threshold_cents                     bigint,
  paid_credits                        numeric NOT NULL DEFAULT 0,
  granted_credits                     numeric NOT NULL DEFAULT 0,
  target_ongoing_balance              numeric,
  grants_target_top_up                boolean,
  started_at                          timestamptz,
  anchor_at                           timestamptz NOT NULL,
  expiration_at                       timestamptz,
  invoice_requires_successful_payment boolean NOT NULL DEFAULT false,
  transaction_metadata                jsonb  NOT NULL DEFAULT '[]',
  transaction_name                    text,
  next_due_at                         timestamptz,
  occurrences_done                    int    NOT NULL DEFAULT 0,
  armed                               boolean NOT NULL DEFAULT true,
  terminated_at                       timestamptz,
  created_at                          timestamptz NOT NULL,
  updated_at                          timestamptz NOT NULL,
  CHECK ((trigger = 'interval') = (interval IS NOT NULL)),
  CHECK ((trigger = 'threshold') = (threshold_cents IS NOT NULL))
);
CREATE INDEX wallet_recurring_rules_wallet_idx ON wallet_recurring_rules (org_id, wallet_id, created_at, id);
CREATE INDEX wallet_recurring_rules_due_idx ON wallet_recurring_rules (org_id, next_due_at) WHERE status = 'active' AND next_due_at IS NOT NULL;
CREATE INDEX wallet_recurring_rules_threshold_idx ON wallet_recurring_rules (org_id, wallet_id) WHERE status = 'active' AND trigger = 'threshold';

-- Each top-up a rule made, once: an interval rule's occurrence (`interval:<n>`, the n-th anniversary)
-- or a threshold rule's crossing (`threshold:<n>`). The unique key makes "one top-up per rule and
-- period or crossing" a database fact, whatever runs at once.
CREATE TABLE wallet_rule_top_ups (
  org_id         int    NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
  rule_id        bigint NOT NULL REFERENCES wallet_recurring_rules(id) ON DELETE CASCADE,
  occurrence     text   NOT NULL,
  due_at         timestamptz NOT NULL,
  paid_cents     bigint NOT NULL DEFAULT 0,
  granted_cents  bigint NOT NULL DEFAULT 0,
  created_at     timestamptz NOT NULL,
  PRIMARY KEY (rule_id, occurrence)
);

-- The usage threshold as it was when crossed (Lago's usage_threshold object on an invoice's
-- applied_usage_thresholds); rows from before this column render from the other columns.
ALTER TABLE applied_usage_thresholds ADD COLUMN usage_threshold jsonb;
