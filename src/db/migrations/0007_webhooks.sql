-- Webhook endpoints (Lago's /webhook_endpoints): where an organization's webhooks go and how they
-- are signed. `event_types` NULL means every type.
CREATE TABLE webhook_endpoints (
  id             bigserial PRIMARY KEY,
  org_id         int  NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
  lago_id        uuid NOT NULL UNIQUE,
  webhook_url    text NOT NULL,
  signature_algo text NOT NULL CHECK (signature_algo IN ('jwt', 'hmac')),
  name           text,
  event_types    text[],
  created_at     timestamptz NOT NULL,
  updated_at     timestamptz NOT NULL,
  UNIQUE (org_id, webhook_url)
);

-- The organization's signing keys, made on first use and never changed afterwards (so every
-- process may cache them): the HMAC key (Lago's "HMAC signature token") and an RSA key pair for
-- `jwt` endpoints (RS256; the public key is served at /api/v1/webhooks/public_key).
CREATE TABLE webhook_keys (
  org_id          int  PRIMARY KEY REFERENCES organizations(id) ON DELETE CASCADE,
  hmac_key        text NOT NULL,
  jwt_private_key text,
  jwt_public_key  text,
  created_at      timestamptz NOT NULL
);

-- The outbox and the delivery records: one row per (change, endpoint), inserted in the transaction
-- that made the change, so a webhook exists if and only if the change committed. `payload` is the
-- exact body sent (and signed) on every attempt. While a worker delivers a row, `lease_id` names
-- the claim and `next_attempt_at` is when the claim expires (a worker that died mid-delivery gives
-- the row back then: at least once). `attempts` counts finished attempts, `max_attempts` bounds them.
CREATE TABLE webhooks (
  id              bigserial PRIMARY KEY,
  org_id          int  NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
  lago_id         uuid NOT NULL UNIQUE,
  endpoint_id     bigint NOT NULL REFERENCES webhook_endpoints(id) ON DELETE CASCADE,
  webhook_type    text NOT NULL,
  object_type     text NOT NULL,
  object_id       text,
  payload         text NOT NULL,
  status          text NOT NULL CHECK (status IN ('pending', 'retrying', 'succeeded', 'failed')),
  attempts        int  NOT NULL DEFAULT 0,
  max_attempts    int  NOT NULL,
  next_attempt_at timestamptz,
  lease_id        uuid,
  http_status     int,
  response        text,
  last_error      text,
  last_retried_at timestamptz,
  delivered_at    timestamptz,
  created_at      timestamptz NOT NULL,
  updated_at      timestamptz NOT NULL
);
-- The delivery worker's poll: due rows only, oldest first.
CREATE INDEX webhooks_due_idx ON webhooks (next_attempt_at, id) WHERE status IN ('pending', 'retrying');
CREATE INDEX webhooks_org_created_idx ON webhooks (org_id, created_at DESC, id DESC);
CREATE INDEX webhooks_endpoint_idx ON webhooks (endpoint_id);

-- One row per HTTP attempt: what the receiver answered (or why there was no answer) and how long it took.
CREATE TABLE webhook_attempts (
  id          bigserial PRIMARY KEY,
  webhook_id  bigint NOT NULL REFERENCES webhooks(id) ON DELETE CASCADE,
  attempt     int  NOT NULL,
  endpoint    text NOT NULL,
  http_status int,
  error       text,
  response    text,
  duration_ms int  NOT NULL,
  started_at  timestamptz NOT NULL,
  UNIQUE (webhook_id, attempt)
);
