// SQL for webhook endpoints, signing keys, the outbox and delivery records. Every statement a
// tenant's request reaches is scoped by org_id; only the delivery worker reads across organizations.
import type { Queryable } from "../../db/db.ts";
import type { EndpointAttributes } from "./core/endpoint.ts";
import type { WebhookType } from "./core/event_types.ts";
import type { SignatureAlgo } from "./core/signature.ts";
import type { Delivery, DeliveryAttempt, DeliveryStatus, WebhookEndpoint } from "./core/types.ts";

// Endpoint writes of one organization run one at a time (the per-organization limit).
const ENDPOINT_LOCK_NAMESPACE = 7_221_007;

interface EndpointRow {
  id: string | number;
  org_id: number;
  lago_id: string;
  webhook_url: string;
  signature_algo: SignatureAlgo;
  name: string | null;
  event_types: string[] | null;
  created_at: Date;
  updated_at: Date;
}

const toEndpoint = (r: EndpointRow): WebhookEndpoint => ({
  id: Number(r.id),
  orgId: Number(r.org_id),
  lagoId: r.lago_id,
  webhookUrl: r.webhook_url,
  signatureAlgo: r.signature_algo,
  name: r.name,
  eventTypes: r.event_types as WebhookType[] | null,
  createdAt: r.created_at,
  updatedAt: r.updated_at,
});

export async function lockOrgEndpoints(tx: Queryable, orgId: number): Promise<void> {
  await tx.query("SELECT pg_advisory_xact_lock($1::int, $2::int)", [ENDPOINT_LOCK_NAMESPACE, orgId]);
}

export async function countEndpoints(q: Queryable, orgId: number): Promise<number> {
  const { rows } = await q.query<{ n: string }>("SELECT count(*)::text AS n FROM webhook_endpoints WHERE org_id = $1", [orgId]);
  return Number(rows[0]?.n ?? 0);
}

export async function endpointByUrl(q: Queryable, orgId: number, webhookUrl: string): Promise<WebhookEndpoint | null> {
  const { rows } = await q.query<EndpointRow>("SELECT * FROM webhook_endpoints WHERE org_id = $1 AND webhook_url = $2", [orgId, webhookUrl]);
  return rows[0] ? toEndpoint(rows[0]) : null;
}

export async function insertEndpoint(tx: Queryable, orgId: number, lagoId: string, a: EndpointAttributes, now: Date): Promise<WebhookEndpoint> {
  const { rows } = await tx.query<EndpointRow>(
    `INSERT INTO webhook_endpoints (org_id, lago_id, webhook_url, signature_algo, name, event_types, created_at, updated_at)
     VALUES ($1, $2, $3, $4, $5, $6::text[], $7, $7) RETURNING *`,
    [orgId, lagoId, a.webhookUrl, a.signatureAlgo, a.name, a.eventTypes, now],
  );
  return toEndpoint(rows[0]!);
}

export async function findEndpoint(q: Queryable, orgId: number, lagoId: string): Promise<WebhookEndpoint | null> {
  const { rows } = await q.query<EndpointRow>("SELECT * FROM webhook_endpoints WHERE org_id = $1 AND lago_id = $2", [orgId, lagoId]);
  return rows[0] ? toEndpoint(rows[0]) : null;
}

export async function updateEndpoint(tx: Queryable, e: WebhookEndpoint, a: EndpointAttributes, now: Date): Promise<WebhookEndpoint> {
  const { rows } = await tx.query<EndpointRow>(
    `UPDATE webhook_endpoints SET webhook_url = $1, signature_algo = $2, name = $3, event_types = $4::text[], updated_at = $5
      WHERE org_id = $6 AND id = $7 RETURNING *`,
    [a.webhookUrl, a.signatureAlgo, a.name, a.eventTypes, now, e.orgId, e.id],
  );
  return toEndpoint(rows[0]!);
}

/** Deletes the endpoint and, with it, its delivery records (Lago's `dependent: :delete_all`). */
export async function deleteEndpoint(tx: Queryable, e: WebhookEndpoint): Promise<void> {
  await tx.query("DELETE FROM webhook_endpoints WHERE org_id = $1 AND id = $2", [e.orgId, e.id]);
}

export async function listEndpoints(q: Queryable, orgId: number, page: number, perPage: number): Promise<{ endpoints: WebhookEndpoint[]; total: number }> {
  const [rows, count] = await Promise.all([
    q.query<EndpointRow>(`SELECT * FROM webhook_endpoints WHERE org_id = $1 ORDER BY created_at DESC, id DESC LIMIT ${perPage} OFFSET ${(page - 1) * perPage}`, [
      orgId,
    ]),
    countEndpoints(q, orgId),
  ]);
  return { endpoints: rows.rows.map(toEndpoint), total: count };
}

export async function organizationPublicId(q: Queryable, orgId: number): Promise<string> {
  const { rows } = await q.query<{ public_id: string }>("SELECT public_id::text AS public_id FROM organizations WHERE id = $1", [orgId]);
  if (!rows[0]) throw new Error(`organization ${orgId} does not exist`);
  return rows[0].public_id;
}

// ---------------------------------------------------------------------------------------------
// Signing keys

export interface KeyRow {
  hmac_key: string;
  jwt_private_key: string | null;
  jwt_public_key: string | null;
}

/** The organization's keys, with `hmacKey` stored first when it has none yet (the first writer wins). */
export async function ensureKeys(q: Queryable, orgId: number, hmacKey: string, now: Date): Promise<KeyRow> {
  await q.query("INSERT INTO webhook_keys (org_id, hmac_key, created_at) VALUES ($1, $2, $3) ON CONFLICT (org_id) DO NOTHING", [orgId, hmacKey, now]);
  const { rows } = await q.query<KeyRow>("SELECT hmac_key, jwt_private_key, jwt_public_key FROM webhook_keys WHERE org_id = $1", [orgId]);
  return rows[0]!;
}

/** Stores an RSA pair unless the organization has one already; answers the one that is kept. */
export async function ensureJwtKeys(q: Queryable, orgId: number, privateKey: string, publicKey: string): Promise<KeyRow> {
  await q.query("UPDATE webhook_keys SET jwt_private_key = $2, jwt_public_key = $3 WHERE org_id = $1 AND jwt_private_key IS NULL", [
    orgId,
    privateKey,
    publicKey,
  ]);
  const { rows } = await q.query<KeyRow>("SELECT hmac_key, jwt_private_key, jwt_public_key FROM webhook_keys WHERE org_id = $1", [orgId]);
  return rows[0]!;
}

// ---------------------------------------------------------------------------------------------
// Outbox

/**
 * One pending delivery per endpoint of the organization that takes this type, in the caller's
 * transaction; answers how many.
 */
export async function insertOutbox(
  tx: Queryable,
  w: { orgId: number; webhookType: WebhookType; objectType: string; objectId: string | null; payload: string; maxAttempts: number; now: Date },
): Promise<number> {
  const { rowCount } = await tx.query(
    `INSERT INTO webhooks (org_id, lago_id, endpoint_id, webhook_type, object_type, object_id, payload, status, attempts, max_attempts,
                           next_attempt_at, created_at, updated_at)
     SELECT e.org_id, gen_random_uuid(), e.id, $2::text, $3::text, $4::text, $5::text, 'pending', 0, $6::int, $7::timestamptz, $7::timestamptz, $7::timestamptz
       FROM webhook_endpoints e
      WHERE e.org_id = $1 AND (e.event_types IS NULL OR $2::text = ANY (e.event_types))
      ORDER BY e.id`,
    [w.orgId, w.webhookType, w.objectType, w.objectId, w.payload, w.maxAttempts, w.now],
  );
  return rowCount;
}

interface DeliveryRow {
  id: string | number;
  org_id: number;
  lago_id: string;
  endpoint_id: string | number;
  endpoint_lago_id: string;
  webhook_url: string;
  webhook_type: WebhookType;
  object_type: string;
  object_id: string | null;
  payload: string;
  status: DeliveryStatus;
  attempts: number;
  max_attempts: number;
  next_attempt_at: Date | null;
  http_status: number | null;
  response: string | null;
  last_error: string | null;
  last_retried_at: Date | null;
  delivered_at: Date | null;
  created_at: Date;
  updated_at: Date;
}

const toDelivery = (r: DeliveryRow): Delivery => ({
  id: Number(r.id),
  orgId: Number(r.org_id),
  lagoId: r.lago_id,
  endpointId: Number(r.endpoint_id),
  endpointLagoId: r.endpoint_lago_id,
  webhookUrl: r.webhook_url,
  webhookType: r.webhook_type,
  objectType: r.object_type,
  objectId: r.object_id,
  payload: r.payload,
  status: r.status,
  attempts: Number(r.attempts),
  maxAttempts: Number(r.max_attempts),
  nextAttemptAt: r.next_attempt_at,
  httpStatus: r.http_status === null ? null : Number(r.http_status),
  response: r.response,
  lastError: r.last_error,
  lastRetriedAt: r.last_retried_at,
  deliveredAt: r.delivered_at,
  createdAt: r.created_at,
  updatedAt: r.updated_at,
});

const DELIVERY_COLUMNS = `w.*, e.lago_id::text AS endpoint_lago_id, e.webhook_url`;

/** A delivery claimed by the worker, with what it needs to send it. */
export interface ClaimedDelivery extends Delivery {
  signatureAlgo: SignatureAlgo;
}

/**
 * Claims up to `limit` due deliveries for `leaseId` until `leaseUntil` (rows other workers hold are
 * skipped, not waited for). A claim that is never completed expires and the row is due again.
 */
export async function claimDue(q: Queryable, now: Date, leaseId: string, leaseUntil: Date, limit: number): Promise<ClaimedDelivery[]> {
  const { rows } = await q.query<DeliveryRow & { signature_algo: SignatureAlgo }>(
    `UPDATE webhooks w SET lease_id = $1, next_attempt_at = $2
       FROM (SELECT id FROM webhooks
              WHERE status IN ('pending', 'retrying') AND next_attempt_at <= $3
              ORDER BY next_attempt_at, id
              LIMIT $4
              FOR UPDATE SKIP LOCKED) due,
            webhook_endpoints e
      WHERE w.id = due.id AND e.id = w.endpoint_id
      RETURNING ${DELIVERY_COLUMNS}, e.signature_algo`,
    [leaseId, leaseUntil, now, limit],
  );
  return rows.map((r) => ({ ...toDelivery(r), signatureAlgo: r.signature_algo })).sort((a, b) => a.id - b.id);
}

export interface AttemptRecord {
  id: number;
  leaseId: string;
  attempt: number;
  status: DeliveryStatus;
  nextAttemptAt: Date | null;
  endpoint: string;
  httpStatus: number | null;
  response: string | null;
  error: string | null;
  durationMs: number;
  startedAt: Date;
  now: Date;
}

/**
 * Records a finished attempt and the delivery's new state, if the claim still holds (a claim that
 * expired and was taken over records nothing: the newer claim's attempt counts). True when recorded.
 */
export async function recordAttempt(tx: Queryable, a: AttemptRecord): Promise<boolean> {
  const { rowCount } = await tx.query(
    `UPDATE webhooks SET status = $3::text, attempts = $4::int, next_attempt_at = $5::timestamptz, lease_id = NULL, http_status = $6::int,
                         response = $7::text, last_error = $8::text,
                         last_retried_at = CASE WHEN $4::int > 1 THEN $9::timestamptz ELSE last_retried_at END,
                         delivered_at = CASE WHEN $3::text = 'succeeded' THEN $9::timestamptz ELSE delivered_at END, updated_at = $9::timestamptz
      WHERE id = $1 AND lease_id = $2 AND status IN ('pending', 'retrying')`,
    [a.id, a.leaseId, a.status, a.attempt, a.nextAttemptAt, a.httpStatus, a.response, a.error, a.now],
  );
  if (rowCount === 0) return false;
  await tx.query(
    `INSERT INTO webhook_attempts (webhook_id, attempt, endpoint, http_status, error, response, duration_ms, started_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
    [a.id, a.attempt, a.endpoint, a.httpStatus, a.error, a.response, a.durationMs, a.startedAt],
  );
  return true;
}

/** Gives a claimed delivery back, due now, without counting an attempt (the worker is stopping). */
export async function releaseClaim(q: Queryable, id: number, leaseId: string, now: Date): Promise<void> {
  await q.query("UPDATE webhooks SET lease_id = NULL, next_attempt_at = $3 WHERE id = $1 AND lease_id = $2 AND status IN ('pending', 'retrying')", [
    id,
    leaseId,
    now,
  ]);
}

export async function pendingCount(q: Queryable): Promise<number> {
  const { rows } = await q.query<{ n: string }>("SELECT count(*)::text AS n FROM webhooks WHERE status IN ('pending', 'retrying')");
  return Number(rows[0]?.n ?? 0);
}

// ---------------------------------------------------------------------------------------------
// Delivery records

export interface DeliveryListQuery {
  page: number;
  perPage: number;
  status?: DeliveryStatus;
  webhookType?: string;
  endpointLagoId?: string;
  objectId?: string;
}

export async function listDeliveries(q: Queryable, orgId: number, f: DeliveryListQuery): Promise<{ deliveries: Delivery[]; total: number }> {
  const where = ["w.org_id = $1"];
  const params: unknown[] = [orgId];
  const p = (v: unknown) => `$${params.push(v)}`;
  if (f.status !== undefined) where.push(`w.status = ${p(f.status)}`);
  if (f.webhookType !== undefined) where.push(`w.webhook_type = ${p(f.webhookType)}`);
  if (f.endpointLagoId !== undefined) where.push(`e.lago_id = ${p(f.endpointLagoId)}::uuid`);
  if (f.objectId !== undefined) where.push(`w.object_id = ${p(f.objectId)}`);
  const cond = where.join(" AND ");
  const from = "webhooks w JOIN webhook_endpoints e ON e.id = w.endpoint_id";
  const [rows, count] = await Promise.all([
    q.query<DeliveryRow>(
      `SELECT ${DELIVERY_COLUMNS} FROM ${from} WHERE ${cond} ORDER BY w.created_at DESC, w.id DESC LIMIT ${f.perPage} OFFSET ${(f.page - 1) * f.perPage}`,
      params,
    ),
    q.query<{ n: string }>(`SELECT count(*)::text AS n FROM ${from} WHERE ${cond}`, params),
  ]);
  return { deliveries: rows.rows.map(toDelivery), total: Number(count.rows[0]?.n ?? 0) };
}

export async function findDelivery(q: Queryable, orgId: number, lagoId: string): Promise<Delivery | null> {
  const { rows } = await q.query<DeliveryRow>(
    `SELECT ${DELIVERY_COLUMNS} FROM webhooks w JOIN webhook_endpoints e ON e.id = w.endpoint_id WHERE w.org_id = $1 AND w.lago_id = $2`,
    [orgId, lagoId],
  );
  return rows[0] ? toDelivery(rows[0]) : null;
}

interface AttemptRow {
  attempt: number;
  endpoint: string;
  http_status: number | null;
  error: string | null;
  response: string | null;
  duration_ms: number;
  started_at: Date;
}

export async function attemptsOf(q: Queryable, webhookId: number): Promise<DeliveryAttempt[]> {
  const { rows } = await q.query<AttemptRow>("SELECT * FROM webhook_attempts WHERE webhook_id = $1 ORDER BY attempt", [webhookId]);
  return rows.map((r) => ({
    attempt: Number(r.attempt),
    endpoint: r.endpoint,
    httpStatus: r.http_status === null ? null : Number(r.http_status),
    error: r.error,
    response: r.response,
    durationMs: Number(r.duration_ms),
    startedAt: r.started_at,
  }));
}

/** A failed delivery due again now, with `moreAttempts` more attempts allowed. False when it is not failed (any more). */
export async function reopenFailed(q: Queryable, orgId: number, id: number, moreAttempts: number, now: Date): Promise<boolean> {
  const { rowCount } = await q.query(
    `UPDATE webhooks SET status = 'retrying', max_attempts = attempts + $3::int, next_attempt_at = $4::timestamptz, lease_id = NULL, updated_at = $4::timestamptz
      WHERE org_id = $1 AND id = $2 AND status = 'failed'`,
    [orgId, id, moreAttempts, now],
  );
  return rowCount > 0;
}
