-- Minimum commitments, spending minimums (true-up fees) and progressive billing.

-- A plan's minimum commitment (Lago's `minimum_commitment`: lago_id, amount_cents,
-- invoice_display_name, tax_codes, created_at, updated_at) and its usage thresholds (Lago's
-- `usage_thresholds`: lago_id, amount_cents, threshold_display_name, recurring, created_at,
-- updated_at), kept as JSON beside the plan: they are read and written with it, never queried apart.
ALTER TABLE plans ADD COLUMN minimum_commitment jsonb;
ALTER TABLE plans ADD COLUMN usage_thresholds jsonb NOT NULL DEFAULT '[]';

-- Lago's fee types and invoice types (a commitment true-up is a fee of its own; a threshold crossed
-- mid-period issues a `progressive_billing` invoice).
ALTER TABLE fees DROP CONSTRAINT IF EXISTS fees_fee_type_check;
ALTER TABLE fees ADD CONSTRAINT fees_fee_type_check
  CHECK (fee_type IN ('subscription', 'charge', 'add_on', 'commitment', 'credit', 'fixed_charge'));
ALTER TABLE invoices DROP CONSTRAINT IF EXISTS invoices_invoice_type_check;
ALTER TABLE invoices ADD CONSTRAINT invoices_invoice_type_check
  CHECK (invoice_type IN ('subscription', 'one_off', 'add_on', 'credit', 'advance_charges', 'progressive_billing'));
ALTER TABLE invoice_subscriptions DROP CONSTRAINT IF EXISTS invoice_subscriptions_invoicing_reason_check;
ALTER TABLE invoice_subscriptions ADD CONSTRAINT invoice_subscriptions_invoicing_reason_check
  CHECK (invoicing_reason IN ('subscription_starting', 'subscription_periodic', 'subscription_terminating',
                              'in_advance_charge', 'in_advance_charge_periodic', 'progressive_billing'));

-- A spending minimum's true-up fee and the charge fee it tops up point at each other (Lago's
-- lago_true_up_fee_id / lago_true_up_parent_fee_id); both are written in the same statement.
ALTER TABLE fees ADD COLUMN true_up_fee_lago_id uuid;
ALTER TABLE fees ADD COLUMN true_up_parent_fee_lago_id uuid;

-- What earlier progressive billing invoices of the same period already billed, credited on this
-- invoice before coupons and taxes (Lago's progressive_billing_credit_amount_cents).
ALTER TABLE invoices ADD COLUMN progressive_billing_credit_amount_cents bigint NOT NULL DEFAULT 0
  CHECK (progressive_billing_credit_amount_cents >= 0);

-- The usage thresholds a subscription crossed, one row per threshold crossing and charge period:
-- the UNIQUE constraint makes "one progressive invoice per threshold per period" a database fact,
-- as invoice_subscriptions does for billing instants. `step` tells a recurring threshold's
-- crossings apart (1, 2, ... times its amount past the last fixed threshold; 0 for fixed ones).
CREATE TABLE applied_usage_thresholds (
  id                          bigserial PRIMARY KEY,
  org_id                      int    NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
  subscription_id             bigint NOT NULL REFERENCES subscriptions(id),
  invoice_id                  bigint NOT NULL REFERENCES invoices(id) ON DELETE CASCADE,
  threshold_lago_id           uuid   NOT NULL,
  step                        int    NOT NULL DEFAULT 0,
  threshold_amount_cents      bigint NOT NULL,
  threshold_display_name      text,
  recurring                   boolean NOT NULL,
  period_start                timestamptz NOT NULL,
  lifetime_usage_amount_cents bigint NOT NULL,
  created_at                  timestamptz NOT NULL,
  CONSTRAINT applied_usage_thresholds_once UNIQUE (org_id, subscription_id, period_start, threshold_lago_id, step)
);
CREATE INDEX applied_usage_thresholds_invoice_idx ON applied_usage_thresholds (org_id, invoice_id);
