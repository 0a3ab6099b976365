-- Charges paid in advance on recurring unique counts (seats; events carry Lago's `operation_type`
-- "add" or "remove"). A seat is a value held from its add to its remove; a period's fees pay for the
-- most seats held at once in it (Lago's max_aggregation), so a removal lowers the count without a
-- refund and a seat removed and added again within the period is not paid twice.

-- The most units held at once in the period so far: what the period's advance fees paid for
-- (recurring unique counts only; null elsewhere). `units` is the count held now.
ALTER TABLE advance_charge_usage ADD COLUMN paid_units numeric;

-- One row per time a value was held: from the event that added it (its coordinates, for
-- GET /fees/:id/events of the carried-over fee) to the one that removed it (null while held). Rows are
-- written by the advance worker in arrival order; a value is held at most once at a time.
CREATE TABLE advance_charge_seats (
  id                       bigserial PRIMARY KEY,
  org_id                   int     NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
  charge_id                bigint  NOT NULL,
  subscription_id          bigint  NOT NULL,
  bucket_index             int     NOT NULL,
  group_key                text    NOT NULL DEFAULT '',
  -- The bucket's charge filter and the group as a fee names them (matched against a fee's).
  charge_filter_id         bigint,
  grouped_by               jsonb,
  value                    text    NOT NULL,
  external_subscription_id text    NOT NULL,
  added_transaction_id     text    NOT NULL,
  added_at                 timestamptz NOT NULL,
  removed_at               timestamptz
);
CREATE UNIQUE INDEX advance_charge_seats_held_idx ON advance_charge_seats (org_id, charge_id, subscription_id, bucket_index, group_key, value)
  WHERE removed_at IS NULL;
CREATE INDEX advance_charge_seats_slot_idx ON advance_charge_seats (org_id, charge_id, subscription_id, added_at);

-- An upgrade's hand-over (inheritAdvanceUnits): a recurring advance charge of the old subscription
-- whose units moved to a charge of the new one, from the new one's first period. An event of the old
-- subscription billed after the upgrade (queued then, or late) moves the new one's units too.
CREATE TABLE advance_charge_handovers (
  org_id               int    NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
  from_charge_id       bigint NOT NULL,
  from_subscription_id bigint NOT NULL,
  to_charge_id         bigint NOT NULL,
  to_subscription_id   bigint NOT NULL,
  to_period_start      timestamptz NOT NULL,
  PRIMARY KEY (org_id, from_charge_id, from_subscription_id, to_charge_id, to_subscription_id)
);
