import crypto from "node:crypto";
import type { Db } from "../../db/db.ts";
import type { Clock } from "../../shared/clock.ts";
import type { PreparedEvent } from "../ingest/core/event.ts";
import type { EnqueueWebhook } from "../webhooks/index.ts";
import { identityDigest, lagoEventJson } from "./core/message.ts";
import * as store from "./store.ts";
import type { RejectedFilters, RejectedEventRow, RejectionReason } from "./store.ts";

/** An event the worker refused after the API acknowledged it. */
export interface Rejection {
  event: PreparedEvent;
  reason: RejectionReason;
  message: string;
  receivedAtMs: number;
  streamSequence: number | null;
}

export interface RejectedEventJson {
  lago_id: string;
  transaction_id: string;
  external_subscription_id: string;
  code: string;
  /** Lago's error code: `value_already_exist` (the identity is stored with another payload) or `invalid`. */
  error_code: RejectionReason;
  message: string;
  /** The event as sent. */
  event: Record<string, unknown>;
  /** The lago_id of the event stored under this identity (for `value_already_exist`). */
  lago_event_id: string | null;
  received_at: string;
  rejected_at: string;
}

const MESSAGES: Record<RejectionReason, string> = {
  value_already_exist: "an event with this transaction_id and external_subscription_id exists with another payload",
  invalid: "the database refused the event",
};

/**
 * Rejected events (INGEST_MODE=jetstream): recorded once per identity and payload, each with an
 * `event.error` webhook written to the outbox in the same transaction.
 */
export class RejectedEventsService {
  constructor(
    private readonly db: Db,
    private readonly clock: Clock,
    private readonly enqueue: EnqueueWebhook | null,
    private readonly newId: () => string = () => crypto.randomUUID(),
  ) {}

  /** Records the rejections in one transaction; answers how many were new (a redelivery records none). */
  async record(rejections: readonly Rejection[]): Promise<Rejection[]> {
    if (rejections.length === 0) return [];
    const now = new Date(this.clock.now());
    return this.db.transaction(async (tx) => {
      const recorded: Rejection[] = [];
      for (const r of rejections) {
        const e = r.event;
        const lagoId = this.newId();
        const keyDigest = identityDigest(e.subscriptionId, e.transactionId);
        const event = lagoEventJson(e);
        const message = r.reason === "value_already_exist" ? MESSAGES.value_already_exist : `${MESSAGES.invalid}: ${r.message}`;
        const inserted = await store.insertRejected(tx, {
          orgId: e.orgId,
          lagoId,
          keyDigest,
          payloadHash: e.payloadHash,
          transactionId: e.transactionId,
          subscriptionId: e.subscriptionId,
          code: e.code,
          reason: r.reason,
          message,
          event: JSON.stringify(event),
          streamSequence: r.streamSequence,
          receivedAt: new Date(r.receivedAtMs),
          createdAt: now,
        });
        if (!inserted) continue;
        recorded.push(r);
        // Lago's `event.error`: the HTTP status and error the API would have answered, the error code, and the event as sent.
        await this.enqueue?.(tx, e.orgId, "event.error", "event_error", {
          lago_id: lagoId,
          status: 422,
          error: "Unprocessable Entity",
          message: r.reason,
          error_details: r.reason === "value_already_exist" ? { transaction_id: ["value_already_exist"] } : { event: [r.message] },
          event,
          lago_event_id: r.reason === "value_already_exist" ? keyDigest : null,
          received_at: new Date(r.receivedAtMs).toISOString(),
        });
      }
      return recorded;
    });
  }

  async list(orgId: number, filters: RejectedFilters): Promise<{ rejected: RejectedEventJson[]; total: number }> {
    const { rows, total } = await store.listRejected(this.db, orgId, filters);
    return { rejected: rows.map(render), total };
  }

  /**
   * Retention (RETENTION_DAYS, with the data lifecycle): deletes the rejected events recorded
   * before `before` (the lifecycle's cutoff: retention before the earliest organization clock),
   * in slices so no transaction grows large. Answers how many went.
   */
  async expire(before: Date, slice = 10_000): Promise<number> {
    let total = 0;
    for (;;) {
      const n = await store.deleteRejectedBefore(this.db, before, slice);
      total += n;
      if (n < slice) return total;
    }
  }

  totals(): Promise<Record<RejectionReason, number>> {
    return store.countRejected(this.db);
  }
}

function render(r: RejectedEventRow): RejectedEventJson {
  return {
    lago_id: r.lago_id,
    transaction_id: r.transaction_id,
    external_subscription_id: r.external_subscription_id,
    code: r.code,
    error_code: r.reason,
    message: r.message,
    event: JSON.parse(r.event) as Record<string, unknown>,
    lago_event_id: r.reason === "value_already_exist" ? r.key_digest : null,
    received_at: new Date(r.received_at).toISOString(),
    rejected_at: new Date(r.created_at).toISOString(),
  };
}
