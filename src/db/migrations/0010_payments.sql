-- Payments: the collection of finalized invoices through a payment provider, with dunning.
-- Every row carries the organization and every tenant query is scoped by it.

-- One payment per invoice (Lago's payments with payable_type "Invoice"). The row is written in the
-- transaction that finalizes the invoice, and it is also the outbox of the charge: the payment
-- worker attempts it once that transaction has committed, never inside a transaction.
--   next_attempt_at  when the next attempt is due, by the organization's clock; NULL: none is due
--                    (succeeded, failed for good, canceled).
--   idempotency_key  the key of the next (or in-flight) attempt. It changes only after the provider
--                    answered definitively that nothing was charged (a decline, a transient
--                    failure): after a timeout, or a worker that died mid-attempt, the same key is
--                    sent again, so the provider never charges twice.
--   lease_id/until   a worker's claim while it attempts (wall clock); an expired claim is due again.
--   round_attempts   attempts since collection (re)started; indexes the dunning schedule.
CREATE TABLE payments (
  id                   bigserial PRIMARY KEY,
  org_id               int    NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
  lago_id              uuid   NOT NULL UNIQUE,
  invoice_id           bigint NOT NULL REFERENCES invoices(id) ON DELETE CASCADE,
  customer_id          bigint NOT NULL REFERENCES customers(id),
  amount_cents         bigint NOT NULL CHECK (amount_cents > 0),
  currency             text   NOT NULL,
  -- The provider connection (the customer's billing_configuration.payment_provider_code) and the
  -- payment method it charges (billing_configuration.provider_customer_id), as of the last (re)start.
  provider             text   NOT NULL,
  provider_customer_id text   NOT NULL,
  status               text   NOT NULL CHECK (status IN ('pending', 'succeeded', 'failed', 'canceled')),
  attempts             int    NOT NULL DEFAULT 0 CHECK (attempts >= 0),
  round_attempts       int    NOT NULL DEFAULT 0 CHECK (round_attempts >= 0),
  idempotency_key      text   NOT NULL,
  key_seq              int    NOT NULL DEFAULT 1,
  next_attempt_at      timestamptz,
  lease_id             uuid,
  lease_until          timestamptz,
  provider_payment_id  text,
  last_outcome         text CHECK (last_outcome IN ('succeeded', 'declined', 'transient_failure', 'timeout')),
  last_error_code      text,
  last_error_message   text,
  succeeded_at         timestamptz,
  failed_at            timestamptz,
  created_at           timestamptz NOT NULL,
  updated_at           timestamptz NOT NULL,
  CONSTRAINT payments_one_per_invoice UNIQUE (invoice_id),
  CHECK (status = 'pending' OR next_attempt_at IS NULL)
);
-- The worker's poll: due payments only.
CREATE INDEX payments_due_idx ON payments (org_id, next_attempt_at, id) WHERE next_attempt_at IS NOT NULL;
CREATE INDEX payments_org_created_idx ON payments (org_id, created_at DESC, id DESC);
CREATE INDEX payments_org_customer_idx ON payments (org_id, customer_id);

-- Every attempt, as the provider answered it (or did not).
CREATE TABLE payment_attempts (
  id                  bigserial PRIMARY KEY,
  org_id              int    NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
  payment_id          bigint NOT NULL REFERENCES payments(id) ON DELETE CASCADE,
  attempt             int    NOT NULL,
  idempotency_key     text   NOT NULL,
  payment_method      text   NOT NULL,
  outcome             text   NOT NULL CHECK (outcome IN ('succeeded', 'declined', 'transient_failure', 'timeout')),
  provider_payment_id text,
  error_code          text,
  error_message       text,
  -- The provider answered from its idempotency record (an earlier request with the same key).
  replayed            boolean NOT NULL DEFAULT false,
  duration_ms         int    NOT NULL,
  started_at          timestamptz NOT NULL,
  UNIQUE (payment_id, attempt)
);

-- Invoices whose payment_status became `succeeded`, recorded the first time it happens: the
-- invoice-paid hook (wallet top-ups credited when their invoice is paid) fires once per invoice,
-- in that transaction, however often the status is set by hand afterwards.
CREATE TABLE paid_invoices (
  invoice_id bigint PRIMARY KEY REFERENCES invoices(id) ON DELETE CASCADE,
  org_id     int    NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
  via        text   NOT NULL CHECK (via IN ('provider', 'manual', 'nothing_due')),
  paid_at    timestamptz NOT NULL
);

-- The built-in sandbox provider's own ledger: what "the provider" did, keyed like a real provider's
-- idempotency records. It is written by the sandbox in its own transaction, apart from the payment
-- records, as an external system's would be. A request whose key is here is answered from its row
-- and charges nothing more; only rows with outcome 'succeeded' moved money.
CREATE TABLE sandbox_charges (
  org_id              int    NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
  idempotency_key     text   NOT NULL,
  provider_payment_id text   NOT NULL UNIQUE,
  payment_method      text   NOT NULL,
  reference           text   NOT NULL,
  amount_cents        bigint NOT NULL,
  currency            text   NOT NULL,
  outcome             text   NOT NULL CHECK (outcome IN ('succeeded', 'declined', 'transient_failure')),
  error_code          text,
  created_at          timestamptz NOT NULL,
  PRIMARY KEY (org_id, idempotency_key)
);
CREATE INDEX sandbox_charges_reference_idx ON sandbox_charges (org_id, reference);
