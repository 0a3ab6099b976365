-- Metering: hourly rollups per billable metric, maintained exactly by the ingest statement (same
-- transaction as the events) and rebuilt from raw events when a metric is created or its meaning
-- changes (see src/modules/metering). Only count_agg, sum_agg and max_agg have rollups: unique
-- count, latest and weighted sum depend on the order of events and are computed from raw events.

-- The event's value of a metric's field, as a decimal, or NULL when it is absent or not a plain
-- decimal number. Lago's event stores aggregate only properties matching this same pattern
-- (Events::Stores::PostgresStore#numeric_condition) and skip the others, so a non-numeric value
-- never fails a batch and never counts.
CREATE FUNCTION metering_value(props jsonb, field text) RETURNS numeric
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE WHEN (props ->> field) ~ '^-?\d+(\.\d+)?$' THEN (props ->> field)::numeric END
$$;

-- `slot` is the writer that added the row, as in event_rollups_hourly: concurrent writers never
-- wait on each other's row locks and readers sum over slots. `events_count` counts the events the
-- metric aggregates (for sum and max: those with a numeric value); `value_sum`/`value_max` are
-- NULL for count_agg.
CREATE TABLE metric_rollups_hourly (
  org_id                   int    NOT NULL,
  metric_id                bigint NOT NULL,
  external_subscription_id text   NOT NULL,
  dims                     text   NOT NULL DEFAULT '',
  hour                     timestamptz NOT NULL,
  slot                     smallint NOT NULL,
  events_count             bigint NOT NULL,
  value_sum                numeric,
  value_max                numeric,
  PRIMARY KEY (org_id, metric_id, external_subscription_id, dims, hour, slot)
);
-- No second index: usage reads one subscription and metric over a range of hours through the
-- primary key's (org_id, metric_id, external_subscription_id) prefix; every index added here is
-- paid by every ingested event.
