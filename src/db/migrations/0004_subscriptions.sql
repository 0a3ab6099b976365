-- Subscriptions: a customer on a plan, as Lago's API shapes them. Rows are never deleted: a plan
-- change terminates the subscription and starts a new row with the same external_id linked by
-- `previous_subscription_id` (upgrade now), or adds a pending row that takes over at
-- `downgrade_at` (downgrade at the end of the period). Every row carries the organization and every
-- query is scoped by it.
CREATE TABLE subscriptions (
  id                       bigserial PRIMARY KEY,
  org_id                   int    NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
  lago_id                  uuid   NOT NULL UNIQUE,
  external_id              text   NOT NULL,
  customer_id              bigint NOT NULL REFERENCES customers(id),
  -- The plan as it was when subscribed; deleted plans stay readable by id.
  plan_id                  bigint NOT NULL REFERENCES plans(id),
  name                     text,
  status                   text   NOT NULL CHECK (status IN ('pending', 'active', 'terminated', 'canceled')),
  billing_time             text   NOT NULL CHECK (billing_time IN ('calendar', 'anniversary')),
  subscription_at          timestamptz NOT NULL,
  started_at               timestamptz,
  ending_at                timestamptz,
  terminated_at            timestamptz,
  canceled_at              timestamptz,
  previous_subscription_id bigint REFERENCES subscriptions(id),
  -- A downgrade's pending row: when it replaces the previous one (the end of its billing period).
  downgrade_at             timestamptz,
  -- Lago's plan_overrides, layered over the plan when read (null: the plan as it is).
  plan_overrides           jsonb,
  created_at               timestamptz NOT NULL,
  updated_at               timestamptz NOT NULL,
  CHECK (status <> 'active' OR started_at IS NOT NULL),
  CHECK (status <> 'terminated' OR terminated_at IS NOT NULL),
  CHECK (status <> 'canceled' OR canceled_at IS NOT NULL)
);
-- The brief's index: listing and settling by status.
CREATE INDEX idx_subscriptions_org_status ON subscriptions (org_id, status);
-- Events find their subscription by external_id (every row of it, terminated ones included, for late events).
CREATE INDEX idx_subscriptions_org_external_id ON subscriptions (org_id, external_id);
-- One active and at most one pending subscription per external_id and organization (Lago's rule):
-- a pending one is either a future start (no active one then) or a scheduled downgrade.
CREATE UNIQUE INDEX subscriptions_org_external_id_active_idx ON subscriptions (org_id, external_id) WHERE status = 'active';
CREATE UNIQUE INDEX subscriptions_org_external_id_pending_idx ON subscriptions (org_id, external_id) WHERE status = 'pending';
CREATE INDEX subscriptions_org_customer_idx ON subscriptions (org_id, customer_id, status);
CREATE INDEX subscriptions_org_plan_idx ON subscriptions (org_id, plan_id, status);
CREATE INDEX subscriptions_previous_idx ON subscriptions (org_id, previous_subscription_id) WHERE previous_subscription_id IS NOT NULL;
-- The list order (Lago: subscription_at DESC, then creation).
CREATE INDEX subscriptions_org_list_idx ON subscriptions (org_id, subscription_at DESC, created_at DESC, id DESC);
