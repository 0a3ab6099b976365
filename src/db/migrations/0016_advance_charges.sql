-- Charges paid in advance (Lago's `pay_in_advance` charges): billed when their event arrives, not at
-- the period's end. The ingest statement queues each new event whose code feeds a metric with a live
-- advance charge; a worker turns queued events into fees (and, for invoiceable charges, one invoice
-- per event), at most once per charge and event.

-- Whether a live charge paid in advance prices this metric. Kept by the trigger below whenever a
-- charge is written, so ingest reads one flag (through a partial index that is empty while the
-- organization sells nothing in advance) instead of joining charges.
ALTER TABLE billable_metrics ADD COLUMN has_advance_charges boolean NOT NULL DEFAULT false;
CREATE INDEX billable_metrics_advance_idx ON billable_metrics (org_id, code) WHERE has_advance_charges AND deleted_at IS NULL;

CREATE FUNCTION refresh_metric_advance_flag() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  UPDATE billable_metrics m
     SET has_advance_charges = EXISTS (SELECT 1 FROM charges c
                                        WHERE c.org_id = m.org_id AND c.billable_metric_id = m.id
                                          AND c.deleted_at IS NULL AND c.pay_in_advance)
   WHERE m.id IN (CASE WHEN TG_OP <> 'INSERT' THEN OLD.billable_metric_id END,
                  CASE WHEN TG_OP <> 'DELETE' THEN NEW.billable_metric_id END);
  RETURN NULL;
END $$;

CREATE TRIGGER charges_advance_flag AFTER INSERT OR UPDATE OR DELETE ON charges
  FOR EACH ROW EXECUTE FUNCTION refresh_metric_advance_flag();

UPDATE billable_metrics m SET has_advance_charges = true
 WHERE EXISTS (SELECT 1 FROM charges c WHERE c.org_id = m.org_id AND c.billable_metric_id = m.id AND c.deleted_at IS NULL AND c.pay_in_advance);

-- Events waiting to be billed by advance charges, in arrival order (`id`). Written by the ingest
-- statement in the transaction that stores the event; the worker bills a subscription's rows in
-- order, under a lock of that subscription, and deletes them in the same transaction (what was
-- billed is in advance_fees). A row that keeps failing stays, set aside after a few attempts
-- (`attempts`, `last_error`).
CREATE TABLE advance_charge_events (
  id                       bigserial PRIMARY KEY,
  org_id                   int   NOT NULL,
  -- The event's lago_id (its identity digest).
  lago_event_id            uuid  NOT NULL,
  external_subscription_id text  NOT NULL,
  transaction_id           text  NOT NULL,
  code                     text  NOT NULL,
  ts                       timestamptz NOT NULL,
  properties               jsonb,
  created_at               timestamptz NOT NULL,
  attempts                 int   NOT NULL DEFAULT 0,
  last_error               text
);
CREATE INDEX advance_charge_events_subscription_idx ON advance_charge_events (org_id, external_subscription_id, id);

-- What each advance charge has billed so far in a charge period, per bucket (filter index, -1 the
-- default bucket) and group: the next event's fee is price(after) - price(before) from here.
CREATE TABLE advance_charge_usage (
  org_id          int     NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
  charge_id       bigint  NOT NULL,
  subscription_id bigint  NOT NULL,
  period_start    timestamptz NOT NULL,
  bucket_index    int     NOT NULL,
  group_key       text    NOT NULL DEFAULT '',
  units           numeric NOT NULL,
  events_count    bigint  NOT NULL,
  -- Percentage charges: the sum of the transactions' amounts (negatives as 0), for free allowances.
  amounts_total   numeric NOT NULL DEFAULT 0,
  PRIMARY KEY (org_id, charge_id, subscription_id, period_start, bucket_index, group_key)
);

-- Unique count charges in advance: the values already counted in the period.
CREATE TABLE advance_charge_unique_values (
  org_id          int     NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
  charge_id       bigint  NOT NULL,
  subscription_id bigint  NOT NULL,
  period_start    timestamptz NOT NULL,
  bucket_index    int     NOT NULL,
  group_key       text    NOT NULL DEFAULT '',
  value           text    NOT NULL,
  PRIMARY KEY (org_id, charge_id, subscription_id, period_start, bucket_index, group_key, value)
);

-- What an advance charge billed for an event: one row per (charge, event), ever — the key that
-- keeps a retried or concurrent worker from billing an event twice. The fee (none when the event
-- cost nothing) and the event's coordinates, for GET /fees/:id/events.
CREATE TABLE advance_fees (
  org_id                   int    NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
  charge_id                bigint NOT NULL,
  lago_event_id            uuid   NOT NULL,
  external_subscription_id text   NOT NULL,
  transaction_id           text   NOT NULL,
  event_ts                 timestamptz NOT NULL,
  -- SET NULL, not CASCADE: the row outlives its fee, so the event stays billed.
  fee_id                   bigint REFERENCES fees(id) ON DELETE SET NULL,
  -- The invoice the fee was issued on (null: none, or not yet).
  invoice_id               bigint,
  created_at               timestamptz NOT NULL,
  PRIMARY KEY (org_id, charge_id, lago_event_id)
);
CREATE INDEX advance_fees_fee_idx ON advance_fees (org_id, fee_id);

-- The fee of a non-invoiceable advance charge belongs to no invoice (Lago: the fee alone and its
-- fee.created webhook); its customer is then recorded on the fee itself.
ALTER TABLE fees ALTER COLUMN invoice_id DROP NOT NULL;
ALTER TABLE fees ADD COLUMN customer_id bigint;
-- Such a fee's own payment status (PUT /api/v1/fees/:lago_id); a fee on an invoice follows the
-- invoice's. With regroup_paid_fees "invoice", its paid fees go on one `advance_charges` invoice
-- once their period is over; the partial index is what the worker's look-up reads.
ALTER TABLE fees ADD COLUMN payment_status text CHECK (payment_status IN ('pending', 'succeeded', 'failed'));
CREATE INDEX fees_paid_without_invoice_idx ON fees (org_id, subscription_id) WHERE invoice_id IS NULL AND payment_status = 'succeeded';
