import type { EndpointAttributes } from "./endpoint.ts";
import type { WebhookType } from "./event_types.ts";

export interface WebhookEndpoint extends EndpointAttributes {
  id: number;
  orgId: number;
  lagoId: string;
  createdAt: Date;
  updatedAt: Date;
}

export type DeliveryStatus = "pending" | "retrying" | "succeeded" | "failed";
export const DELIVERY_STATUSES: readonly DeliveryStatus[] = ["pending", "retrying", "succeeded", "failed"];

/** One webhook for one endpoint: the outbox row and its delivery record. */
export interface Delivery {
  id: number;
  orgId: number;
  lagoId: string;
  endpointId: number;
  endpointLagoId: string;
  webhookUrl: string;
  webhookType: WebhookType;
  objectType: string;
  objectId: string | null;
  payload: string;
  status: DeliveryStatus;
  attempts: number;
  maxAttempts: number;
  nextAttemptAt: Date | null;
  httpStatus: number | null;
  response: string | null;
  lastError: string | null;
  lastRetriedAt: Date | null;
  deliveredAt: Date | null;
  createdAt: Date;
  updatedAt: Date;
}

export interface DeliveryAttempt {
  attempt: number;
  endpoint: string;
  httpStatus: number | null;
  error: string | null;
  response: string | null;
  durationMs: number;
  startedAt: Date;
}
