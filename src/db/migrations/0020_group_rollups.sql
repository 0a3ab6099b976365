-- Grouped charges served from the hourly rollups: besides its filter keys, a count/sum/max
-- metric's rollup rows keep the event's values of these pricing group keys in `dims` (see
-- METRIC_DIMS in src/modules/ingest/store.ts). Metering keeps the list equal to the group keys of
-- the live charges (and their filters and subscription overrides) on the metric, rebuilding the
-- metric's rollups whenever it changes; usage reads use the rollups for a grouped charge only when
-- every one of its keys is listed here and read raw events otherwise, so the list only ever decides
-- speed, never an amount. A sorted JSON array of strings; '[]' keeps dims as they were.
ALTER TABLE billable_metrics ADD COLUMN rollup_group_keys jsonb NOT NULL DEFAULT '[]'::jsonb;
