-- Credit notes and wallets (prepaid credits). Every row carries the organization and every query is
-- scoped by it. Amounts in the currency's minor unit.

CREATE TABLE credit_notes (
  id                                     bigserial PRIMARY KEY,
  org_id                                 int    NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
  lago_id                                uuid   NOT NULL UNIQUE,
  invoice_id                             bigint NOT NULL REFERENCES invoices(id),
  customer_id                            bigint NOT NULL REFERENCES customers(id),
  -- Per invoice, from 1; the number is the invoice's with "-CN<sequential_id>".
  sequential_id                          int    NOT NULL,
  number                                 text   NOT NULL,
  issuing_date                           date   NOT NULL,
  reason                                 text   NOT NULL CHECK (reason IN
                                           ('duplicated_charge', 'product_unsatisfactory', 'order_change', 'order_cancellation', 'fraudulent_charge', 'other')),
  description                            text,
  currency                               text   NOT NULL,
  credit_status                          text   CHECK (credit_status IN ('available', 'consumed', 'voided')),
  refund_status                          text   CHECK (refund_status IN ('pending', 'succeeded', 'failed')),
  sub_total_excluding_taxes_amount_cents bigint NOT NULL CHECK (sub_total_excluding_taxes_amount_cents >= 0),
  taxes_amount_cents                     bigint NOT NULL CHECK (taxes_amount_cents >= 0),
  precise_taxes_amount_cents             numeric NOT NULL DEFAULT 0,
  taxes_rate                             numeric NOT NULL DEFAULT 0,
  coupons_adjustment_amount_cents        bigint NOT NULL DEFAULT 0,
  total_amount_cents                     bigint NOT NULL CHECK (total_amount_cents >= 0),
  credit_amount_cents                    bigint NOT NULL CHECK (credit_amount_cents >= 0),
  refund_amount_cents                    bigint NOT NULL CHECK (refund_amount_cents >= 0),
  -- What is left of the credit part for the customer's next invoices.
  balance_amount_cents                   bigint NOT NULL CHECK (balance_amount_cents >= 0 AND balance_amount_cents <= credit_amount_cents),
  applied_taxes                          jsonb  NOT NULL DEFAULT '[]',
  -- Ours: created by a termination or an upgrade for the unused days of a fee paid in advance.
  automatic                              boolean NOT NULL DEFAULT false,
  voided_at                              timestamptz,
  created_at                             timestamptz NOT NULL,
  updated_at                             timestamptz NOT NULL,
  CONSTRAINT credit_notes_invoice_sequence UNIQUE (org_id, invoice_id, sequential_id)
);
CREATE INDEX credit_notes_org_created_idx ON credit_notes (org_id, created_at DESC, id DESC);
CREATE INDEX credit_notes_available_idx ON credit_notes (org_id, customer_id, created_at, id) WHERE credit_status = 'available';

CREATE TABLE credit_note_items (
  id              bigserial PRIMARY KEY,
  org_id          int    NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
  lago_id         uuid   NOT NULL UNIQUE,
  credit_note_id  bigint NOT NULL REFERENCES credit_notes(id) ON DELETE CASCADE,
  fee_id          bigint NOT NULL REFERENCES fees(id),
  amount_cents    bigint NOT NULL CHECK (amount_cents >= 0),
  created_at      timestamptz NOT NULL
);
CREATE INDEX credit_note_items_note_idx ON credit_note_items (org_id, credit_note_id);
CREATE INDEX credit_note_items_fee_idx ON credit_note_items (org_id, fee_id);

ALTER TABLE credits ADD CONSTRAINT credits_credit_note_fk FOREIGN KEY (credit_note_id) REFERENCES credit_notes(id);
CREATE INDEX credits_credit_note_idx ON credits (org_id, credit_note_id) WHERE credit_note_id IS NOT NULL;

-- Prepaid credits of a customer. Credits convert to money at `rate_amount` per credit; the balance
-- in minor units is the authority, credits are derived from it.
CREATE TABLE wallets (
  id                                  bigserial PRIMARY KEY,
  org_id                              int    NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
  lago_id                             uuid   NOT NULL UNIQUE,
  customer_id                         bigint NOT NULL REFERENCES customers(id),
  status                              text   NOT NULL CHECK (status IN ('active', 'terminated')),
  name                                text,
  code                                text,
  priority                            int    NOT NULL DEFAULT 50 CHECK (priority BETWEEN 1 AND 50),
  currency                            text   NOT NULL,
  rate_amount                         numeric NOT NULL CHECK (rate_amount > 0),
  balance_cents                       bigint NOT NULL DEFAULT 0 CHECK (balance_cents >= 0),
  consumed_amount_cents               bigint NOT NULL DEFAULT 0 CHECK (consumed_amount_cents >= 0),
  invoice_requires_successful_payment boolean NOT NULL DEFAULT false,
  expiration_at                       timestamptz,
  last_balance_sync_at                timestamptz,
  last_consumed_credit_at             timestamptz,
  terminated_at                       timestamptz,
  created_at                          timestamptz NOT NULL,
  updated_at                          timestamptz NOT NULL
);
CREATE INDEX wallets_customer_idx ON wallets (org_id, customer_id, status, priority, created_at, id);
CREATE INDEX wallets_org_created_idx ON wallets (org_id, created_at DESC, id DESC);
CREATE UNIQUE INDEX wallets_customer_code_idx ON wallets (org_id, customer_id, code) WHERE code IS NOT NULL AND status = 'active';

CREATE TABLE wallet_transactions (
  id                                  bigserial PRIMARY KEY,
  org_id                              int    NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
  lago_id                             uuid   NOT NULL UNIQUE,
  wallet_id                           bigint NOT NULL REFERENCES wallets(id),
  invoice_id                          bigint REFERENCES invoices(id),
  credit_note_id                      bigint REFERENCES credit_notes(id),
  status                              text   NOT NULL CHECK (status IN ('pending', 'settled', 'failed')),
  source                              text   NOT NULL DEFAULT 'manual' CHECK (source IN ('manual', 'interval', 'threshold')),
  transaction_status                  text   NOT NULL CHECK (transaction_status IN ('purchased', 'granted', 'voided', 'invoiced')),
  transaction_type                    text   NOT NULL CHECK (transaction_type IN ('inbound', 'outbound')),
  -- Minor units moved, and the same in credits (amount / rate).
  amount_cents                        bigint NOT NULL CHECK (amount_cents >= 0),
  credit_amount                       numeric NOT NULL CHECK (credit_amount >= 0),
  name                                text,
  invoice_requires_successful_payment boolean NOT NULL DEFAULT false,
  metadata                            jsonb  NOT NULL DEFAULT '[]',
  settled_at                          timestamptz,
  failed_at                           timestamptz,
  created_at                          timestamptz NOT NULL,
  updated_at                          timestamptz NOT NULL
);
CREATE INDEX wallet_transactions_wallet_idx ON wallet_transactions (org_id, wallet_id, created_at DESC, id DESC);
-- One outbound transaction per wallet and invoice: prepaid credits are taken once per finalization.
CREATE UNIQUE INDEX wallet_transactions_invoice_idx ON wallet_transactions (org_id, wallet_id, invoice_id) WHERE transaction_type = 'outbound';
