// Webhooks: Lago's /webhook_endpoints, the transactional outbox every module reports changes to
// (`WebhookService.enqueue(tx, orgId, "invoice.created", "invoice", invoiceJson)`, inside the
// transaction that makes the change), signed at-least-once delivery with retries, and the records.
export { WebhookService, type EnqueueWebhook, type SigningKeys, type WebhookServiceOptions } from "./service.ts";
export { DeliveryWorker, type DeliveryRun, type DeliveryWorkerOptions } from "./worker.ts";
export { registerWebhookRoutes } from "./http.ts";
export { createWebhooks, type Webhooks } from "./setup.ts";
export { registerWebhookMetrics, type AttemptOutcome, type WebhookMetrics } from "./metrics.ts";
export { WEBHOOK_TYPES, isWebhookType, type WebhookType } from "./core/event_types.ts";
export { hmacSignature, jwtSignature, verifyHmacSignature, verifyJwtSignature, type SignatureAlgo } from "./core/signature.ts";
export { RETRY_CAP_MS, RETRY_GROWTH, afterAttempt, retryDelayMs, retrySchedule, type RetryPolicy } from "./core/backoff.ts";
export { webhookBody } from "./core/envelope.ts";
export type { Delivery, DeliveryAttempt, DeliveryStatus, WebhookEndpoint } from "./core/types.ts";
