// Webhook endpoints and delivery records as the API renders them.
import type { Delivery, DeliveryAttempt, WebhookEndpoint } from "./types.ts";

/** Lago renders times with second precision ("2022-04-29T08:59:51Z"). */
const iso = (d: Date | null) => (d === null ? null : d.toISOString().replace(/\.\d{3}Z$/, "Z"));

/** Lago's WebhookEndpointObject. */
export function endpointJson(e: WebhookEndpoint, organizationPublicId: string) {
  return {
    lago_id: e.lagoId,
    lago_organization_id: organizationPublicId,
    webhook_url: e.webhookUrl,
    signature_algo: e.signatureAlgo,
    name: e.name,
    event_types: e.eventTypes,
    created_at: iso(e.createdAt),
  };
}

function parsed(payload: string): unknown {
  try {
    return JSON.parse(payload);
  } catch {
    return payload;
  }
}

/**
 * A delivery record (our route; the fields of Lago's webhook log: `endpoint`, `http_status`,
 * `response`, `retries`, `last_retried_at`, `payload`), plus `attempts`/`max_attempts`, when the
 * next attempt is due, and with `attempts` listed on a single record.
 */
export function deliveryJson(d: Delivery, attempts?: readonly DeliveryAttempt[]) {
  return {
    lago_id: d.lagoId,
    lago_webhook_endpoint_id: d.endpointLagoId,
    endpoint: d.webhookUrl,
    webhook_type: d.webhookType,
    object_type: d.objectType,
    object_id: d.objectId,
    status: d.status,
    http_status: d.httpStatus,
    response: d.response,
    error: d.lastError,
    retries: Math.max(0, d.attempts - 1),
    attempts_count: d.attempts,
    max_attempts: d.maxAttempts,
    next_attempt_at: d.status === "pending" || d.status === "retrying" ? iso(d.nextAttemptAt) : null,
    last_retried_at: iso(d.lastRetriedAt),
    delivered_at: iso(d.deliveredAt),
    created_at: iso(d.createdAt),
    updated_at: iso(d.updatedAt),
    payload: parsed(d.payload),
    ...(attempts === undefined
      ? {}
      : {
          attempts: attempts.map((a) => ({
            attempt: a.attempt,
            endpoint: a.endpoint,
            http_status: a.httpStatus,
            error: a.error,
            response: a.response,
            duration_ms: a.durationMs,
            started_at: a.startedAt.toISOString(),
          })),
        }),
  };
}
