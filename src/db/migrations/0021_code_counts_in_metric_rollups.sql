-- A code's hourly event counts, kept in the rollups of its metric. A code has at most one live
-- billable metric; when that metric is rolled up (count/sum/max) and `counts_events` is set, its
-- metric_rollups_hourly rows also hold `all_count`, every stored event of the code (valued or not),
-- and the ingest statement no longer writes event_rollups_hourly for that code: one rollup upsert
-- per event instead of two. The code's count for an hour is then event_rollups_hourly plus the
-- metric's all_count, never both for one event: metering moves the counts between the two tables
-- under the code's exclusive lock when the metric is created, changes code or aggregation, or is
-- deleted (see rebuildMetricRollups). Metrics created before this migration keep counting in
-- event_rollups_hourly (counts_events false) until their rollups are next rebuilt; a process of the
-- previous version writes event_rollups_hourly and no all_count, so a mixed fleet still counts each
-- event once.
ALTER TABLE metric_rollups_hourly ADD COLUMN all_count bigint NOT NULL DEFAULT 0;
ALTER TABLE billable_metrics ADD COLUMN counts_events boolean NOT NULL DEFAULT false;
-- The hourly counts per code wherever they are kept (summed over writer slots by readers).
CREATE VIEW event_counts_hourly AS
  SELECT org_id, external_subscription_id, code, hour, slot, events_count FROM event_rollups_hourly
  UNION ALL
  SELECT r.org_id, r.external_subscription_id, m.code, r.hour, r.slot, r.all_count
    FROM metric_rollups_hourly r JOIN billable_metrics m ON m.org_id = r.org_id AND m.id = r.metric_id
   WHERE r.all_count > 0;
