-- Voiding gives back what an invoice used; credit note refunds executed through the payment
-- provider; late events that lower an amount issue a credit note. Every row carries the
-- organization and every query is scoped by it.

-- Prepaid credits an invoice drew on come back once when it is voided: one inbound transaction
-- per wallet and voided invoice.
CREATE UNIQUE INDEX wallet_transactions_restore_idx ON wallet_transactions (org_id, wallet_id, invoice_id)
  WHERE transaction_type = 'inbound' AND transaction_status = 'granted' AND invoice_id IS NOT NULL;

-- The credit note a late-event credit was issued as.
ALTER TABLE late_event_credits ADD COLUMN credit_note_id bigint REFERENCES credit_notes(id);

-- The refund part of a credit note, executed through the provider that collected the invoice.
-- Written in the transaction that creates the credit note (it is the refund's outbox); the refund
-- worker asks the provider after the commit. Same key discipline as payments: the key changes only
-- after the provider answered that nothing was refunded; after a timeout the same key is sent again.
CREATE TABLE credit_note_refunds (
  id                  bigserial PRIMARY KEY,
  org_id              int    NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
  lago_id             uuid   NOT NULL UNIQUE,
  credit_note_id      bigint NOT NULL REFERENCES credit_notes(id) ON DELETE CASCADE,
  payment_id          bigint NOT NULL REFERENCES payments(id) ON DELETE CASCADE,
  provider            text   NOT NULL,
  payment_method      text   NOT NULL,
  provider_payment_id text   NOT NULL,
  amount_cents        bigint NOT NULL CHECK (amount_cents > 0),
  currency            text   NOT NULL,
  status              text   NOT NULL CHECK (status IN ('pending', 'succeeded', 'failed')),
  attempts            int    NOT NULL DEFAULT 0 CHECK (attempts >= 0),
  idempotency_key     text   NOT NULL,
  key_seq             int    NOT NULL DEFAULT 1,
  next_attempt_at     timestamptz,
  lease_id            uuid,
  lease_until         timestamptz,
  provider_refund_id  text,
  last_outcome        text CHECK (last_outcome IN ('succeeded', 'declined', 'transient_failure', 'timeout')),
  last_error_code     text,
  last_error_message  text,
  succeeded_at        timestamptz,
  failed_at           timestamptz,
  created_at          timestamptz NOT NULL,
  updated_at          timestamptz NOT NULL,
  CONSTRAINT credit_note_refunds_one_per_note UNIQUE (credit_note_id),
  CHECK (status = 'pending' OR next_attempt_at IS NULL)
);
CREATE INDEX credit_note_refunds_due_idx ON credit_note_refunds (org_id, next_attempt_at, id) WHERE next_attempt_at IS NOT NULL;

-- The sandbox provider's own ledger of refunds, by idempotency key (as sandbox_charges).
CREATE TABLE sandbox_refunds (
  org_id              int    NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
  idempotency_key     text   NOT NULL,
  provider_refund_id  text   NOT NULL UNIQUE,
  provider_payment_id text   NOT NULL,
  payment_method      text   NOT NULL,
  reference           text   NOT NULL,
  amount_cents        bigint NOT NULL,
  currency            text   NOT NULL,
  outcome             text   NOT NULL CHECK (outcome IN ('succeeded', 'declined', 'transient_failure')),
  error_code          text,
  created_at          timestamptz NOT NULL,
  PRIMARY KEY (org_id, idempotency_key)
);
CREATE INDEX sandbox_refunds_reference_idx ON sandbox_refunds (org_id, reference);
