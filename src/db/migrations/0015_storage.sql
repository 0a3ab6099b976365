-- Storage efficiency (README "Storage"; measured by `npm run bench:storage`).

-- Identity lookup key narrowed: `tx_hash` keeps the first 32 bits of MD5(transaction_id) (it only
-- finds the candidates of a transaction_id; `key_digest` decides identity). With org_id it packs
-- into 8 bytes, without alignment padding, in the heap row and in the primary key. The new value
-- is the old one's high half (both read the digest's leading bits as a signed integer).
ALTER TABLE event_identities ALTER COLUMN tx_hash TYPE int4 USING (tx_hash >> 32)::int4;

-- The query index (org, metric code, subscription, time) becomes per partition, like the hot-data
-- (org, time) index: the lifecycle replaces it on partitions past 7 days by a deduplicated
-- (org, code, subscription) btree and a BRIN index on time (src/modules/ingest/lifecycle.ts), which
-- an index attached to the partitioned table would not allow.
DROP INDEX events_org_metric_time_idx;
DO $$
DECLARE
  p text;
BEGIN
  FOR p IN SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'events'::regclass LOOP
    EXECUTE format('CREATE INDEX %I ON %I (org_id, code, external_subscription_id, ts)', p || '_main_idx', p);
  END LOOP;
END $$;

-- Large properties (above the ~2 kB TOAST threshold; smaller values are never compressed) are
-- compressed with lz4 where the server has it (PostgreSQL built --with-lz4; not the embedded one).
DO $$
BEGIN
  ALTER TABLE events ALTER COLUMN properties SET COMPRESSION lz4;
EXCEPTION WHEN feature_not_supported THEN
  NULL;
END $$;
