// The body of a webhook as Lago sends it: `{"webhook_type", "object_type", "organization_id",
// <object_type>: {...}}`, serialized once when the webhook is enqueued; those exact bytes are sent
// and signed on every attempt.
import type { WebhookType } from "./event_types.ts";

const RESERVED = new Set(["webhook_type", "object_type", "organization_id"]);

export function webhookBody(webhookType: WebhookType, objectType: string, organizationId: string, object: unknown): string {
  if (!/^[a-z][a-z0-9_]*$/.test(objectType) || RESERVED.has(objectType)) throw new Error(`invalid webhook object_type ${JSON.stringify(objectType)}`);
  return JSON.stringify({ webhook_type: webhookType, object_type: objectType, organization_id: organizationId, [objectType]: object });
}

/** The id of the object a webhook is about (its `lago_id`), kept on the delivery record for lookups. */
export function objectIdOf(object: unknown): string | null {
  const id = (object as { lago_id?: unknown } | null)?.lago_id;
  return typeof id === "string" && id.length <= 255 ? id : null;
}
