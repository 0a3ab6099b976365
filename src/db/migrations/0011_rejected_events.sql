-- Events the API acknowledged in INGEST_MODE=jetstream and the ingest worker then refused: a
-- conflicting duplicate (the identity is stored with another payload; Lago's `value_already_exist`)
-- or a value the database refused. The API cannot answer 422 for these (it acknowledged once the
-- stream had the event), so they are kept here, listed at GET /api/v1/rejected_events and reported
-- as `event.error` webhooks. One row per identity and payload: a redelivered message records nothing
-- new (and sends no second webhook). `event` is the event as sent (Lago's event JSON), kept as text
-- so a value the database refused can still be shown.
CREATE TABLE rejected_events (
  id                       bigserial PRIMARY KEY,
  org_id                   int    NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
  lago_id                  uuid   NOT NULL UNIQUE,
  key_digest               uuid   NOT NULL,
  payload_hash             bigint NOT NULL,
  transaction_id           text   NOT NULL,
  external_subscription_id text   NOT NULL,
  code                     text   NOT NULL,
  reason                   text   NOT NULL CHECK (reason IN ('value_already_exist', 'invalid')),
  message                  text   NOT NULL,
  event                    text   NOT NULL,
  stream_sequence          bigint,
  received_at              timestamptz NOT NULL,
  created_at               timestamptz NOT NULL,
  UNIQUE (org_id, key_digest, payload_hash)
);
CREATE INDEX rejected_events_org_created_idx ON rejected_events (org_id, created_at DESC, id DESC);
