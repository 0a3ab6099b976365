-- Usage alerts (Lago's /subscriptions/:external_id/alerts): thresholds on a subscription's live
-- usage, evaluated in the background (src/modules/alerts), never on the ingest path. An alert
-- follows the subscription's external_id (plan changes keep it); deleted alerts are kept (their
-- triggered alerts point at them).
CREATE TABLE alerts (
  id                       bigserial PRIMARY KEY,
  org_id                   int    NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
  lago_id                  uuid   NOT NULL UNIQUE,
  external_subscription_id text   NOT NULL,
  alert_type               text   NOT NULL CHECK (alert_type IN ('current_usage_amount', 'billable_metric_current_usage_amount',
                                                               'billable_metric_current_usage_units', 'lifetime_usage_amount',
                                                               'billable_metric_lifetime_usage_units')),
  -- Metrics are only ever soft-deleted; null for the types not about one metric.
  billable_metric_id       bigint,
  code                     text   NOT NULL,
  name                     text,
  -- [{"code": text|null, "value": "<decimal>", "recurring": bool}], ordered by value, recurring last.
  thresholds               jsonb  NOT NULL,
  -- The value the last evaluation read, and (current-usage types) the start of the usage period it
  -- belongs to: a value of another period counts from 0.
  previous_value           numeric NOT NULL DEFAULT 0,
  previous_period_from     timestamptz,
  -- The organization's time of the last evaluation (Lago's last_processed_at).
  last_processed_at        timestamptz,
  -- The wall-clock time the last applied evaluation started reading usage: an evaluation that
  -- started earlier (a slower process) is dropped rather than applied over a newer value.
  read_at                  timestamptz,
  created_at               timestamptz NOT NULL,
  updated_at               timestamptz NOT NULL,
  deleted_at               timestamptz,
  CHECK ((alert_type LIKE 'billable_metric_%') = (billable_metric_id IS NOT NULL))
);
-- Codes are unique among a subscription's live alerts; one live alert per type (and metric).
CREATE UNIQUE INDEX alerts_org_subscription_code_idx ON alerts (org_id, external_subscription_id, code) WHERE deleted_at IS NULL;
CREATE UNIQUE INDEX alerts_org_subscription_kind_idx ON alerts (org_id, external_subscription_id, alert_type, coalesce(billable_metric_id, 0))
  WHERE deleted_at IS NULL;

-- One row per evaluation that crossed thresholds (Lago's triggered_alerts); its alert.triggered
-- webhook is written in the same transaction.
CREATE TABLE triggered_alerts (
  id                       bigserial PRIMARY KEY,
  org_id                   int    NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
  lago_id                  uuid   NOT NULL UNIQUE,
  alert_id                 bigint NOT NULL REFERENCES alerts(id) ON DELETE CASCADE,
  subscription_id          bigint NOT NULL REFERENCES subscriptions(id),
  current_value            numeric NOT NULL,
  previous_value           numeric NOT NULL,
  -- [{"code", "value", "recurring"}]: every level crossed (a recurring threshold's each multiple).
  crossed_thresholds       jsonb  NOT NULL,
  triggered_at             timestamptz NOT NULL,
  created_at               timestamptz NOT NULL
);
CREATE INDEX triggered_alerts_org_alert_idx ON triggered_alerts (org_id, alert_id, triggered_at);
