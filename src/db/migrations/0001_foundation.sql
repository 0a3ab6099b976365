-- Organizations carry a compact integer key (every event row repeats it) and a public UUID.
CREATE TABLE organizations (
  id         serial PRIMARY KEY,
  public_id  uuid NOT NULL UNIQUE,
  name       text NOT NULL,
  created_at timestamptz NOT NULL
);

-- API keys are stored as SHA-256 digests; the key itself is shown once, when created.
CREATE TABLE api_keys (
  id         uuid PRIMARY KEY,
  org_id     int NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
  key_hash   text NOT NULL UNIQUE,
  key_prefix text NOT NULL,
  name       text,
  created_at timestamptz NOT NULL,
  revoked_at timestamptz
);
CREATE INDEX api_keys_org_idx ON api_keys (org_id);

-- Lifetime identity of an event: organization + external_subscription_id + transaction_id. A unique
-- index on the partitioned events table would have to include the timestamp, so identity lives here,
-- unpartitioned, for as long as the event is kept. `key_digest` is the identity itself (MD5 of
-- length(sub) ':' sub tx, 128 bits: distinct events never collide in practice); `tx_hash` (first 64
-- bits of MD5 of transaction_id) leads the key so an event can be found by transaction_id alone.
-- Both are computed by the database from the ids (see src/modules/ingest/store.ts). `payload_hash`
-- tells a retry (same payload) from a conflict; `ts` and `code` locate the event in its partition.
CREATE TABLE event_identities (
  org_id       int    NOT NULL,
  tx_hash      bigint NOT NULL,
  key_digest   uuid   NOT NULL,
  payload_hash bigint NOT NULL,
  ts           timestamptz NOT NULL,
  code         text   NOT NULL,
  PRIMARY KEY (org_id, tx_hash, key_digest)
);

-- Raw events, range-partitioned by event time (monthly partitions created ahead and on demand).
CREATE TABLE events (
  org_id                     int  NOT NULL,
  ts                         timestamptz NOT NULL,
  code                       text NOT NULL,
  external_subscription_id   text NOT NULL,
  transaction_id             text NOT NULL,
  properties                 jsonb,
  precise_total_amount_cents numeric,
  created_at                 timestamptz NOT NULL
) PARTITION BY RANGE (ts);
-- The brief's primary query pattern: organization + metric + time (per subscription).
CREATE INDEX events_org_metric_time_idx ON events (org_id, code, external_subscription_id, ts);
-- The brief's "recent" hot-data index (org, time) is created per partition, so it can be dropped
-- from partitions that are no longer hot.

-- Hourly rollups, maintained in the same transaction as the insert of each new (non-duplicate) event.
-- `slot` is the concurrent writer that added the counts: writers never wait on each other's row
-- locks; readers sum over slots.
CREATE TABLE event_rollups_hourly (
  org_id                   int  NOT NULL,
  external_subscription_id text NOT NULL,
  code                     text NOT NULL,
  hour                     timestamptz NOT NULL,
  slot                     smallint NOT NULL,
  events_count             bigint NOT NULL,
  PRIMARY KEY (org_id, external_subscription_id, code, hour, slot)
);
