// The API side of INGEST_MODE=jetstream: validated events go to the replicated stream, and a
// request is answered once JetStream acknowledged every one of its events (stored on a quorum of
// the stream's replicas). A batch is published all at once (asynchronous publishes) and answered
// when the last acknowledgement arrives.
import type { JetStreamClient } from "nats";
import type { Clock } from "../../shared/clock.ts";
import type { NatsConfig } from "../../shared/config.ts";
import { AppError } from "../../shared/errors.ts";
import type { PreparedEvent } from "../ingest/core/event.ts";
import { QueueFullError, type Outcome } from "../ingest/index.ts";
import { encodeEvent, identityDigest, messageId } from "./core/message.ts";
import { subjectOf } from "./nats.ts";

export interface PublisherMetrics {
  /** Events JetStream acknowledged; `duplicate`: dropped as a repeat of a message id in the window. */
  published(n: number, duplicates: number, seconds: number): void;
  publishFailed(n: number): void;
}

export interface PublisherOptions {
  /** Events waiting for JetStream's acknowledgement before requests get 429 (INGEST_QUEUE_MAX). */
  queueMax: number;
}

const encoder = new TextEncoder();

export class EventPublisher {
  private inFlight = 0;
  private closed = false;

  constructor(
    private readonly js: JetStreamClient,
    private readonly config: NatsConfig,
    private readonly clock: Clock,
    private readonly opts: PublisherOptions,
    private readonly metrics: PublisherMetrics,
  ) {}

  get pending(): number {
    return this.inFlight;
  }

  /**
   * Resolves once JetStream holds every event (each "created": its lago_id is the identity digest
   * the worker will store it under). Rejects with a 503 when the stream did not take them within
   * NATS_PUBLISH_TIMEOUT_MS; a client retry is then safe (same message ids, same identities).
   */
  async publish(events: readonly PreparedEvent[]): Promise<Outcome[]> {
    if (this.closed) throw new AppError("unavailable", "shutting_down", "the server is shutting down", undefined, { "retry-after": "1" });
    if (this.inFlight + events.length > this.opts.queueMax && this.inFlight > 0) throw new QueueFullError(1);
    this.inFlight += events.length;
    const started = performance.now();
    try {
      const duplicates = await Promise.all(events.map((e) => this.publishOne(e, started + this.config.publishTimeoutMs)));
      this.metrics.published(events.length, duplicates.filter(Boolean).length, (performance.now() - started) / 1000);
    } catch (err) {
      this.metrics.publishFailed(events.length);
      throw new AppError(
        "unavailable",
        "event_stream_unavailable",
        `the event stream did not acknowledge the event(s) within ${this.config.publishTimeoutMs} ms; retry (${(err as Error).message})`,
        undefined,
        { "retry-after": "1" },
      );
    } finally {
      this.inFlight -= events.length;
    }
    return events.map((e) => ({ kind: "created", lagoId: identityDigest(e.subscriptionId, e.transactionId) }));
  }

  /** Stops taking events (requests in flight still finish). */
  close(): void {
    this.closed = true;
  }

  /** Publishes one event, retrying until `deadline` (a stream electing a new leader answers errors for a moment). */
  private async publishOne(e: PreparedEvent, deadline: number): Promise<boolean> {
    const data = encoder.encode(encodeEvent(e, this.clock.now(e.orgId)));
    const subject = subjectOf(this.config, e.orgId);
    const msgID = messageId(e);
    for (let attempt = 1; ; attempt++) {
      const remaining = deadline - performance.now();
      try {
        // msgID travels as the Nats-Msg-Id header: JetStream's duplicate detection.
        const ack = await this.js.publish(subject, data, { msgID, timeout: Math.max(50, Math.min(remaining, 2_000)) });
        return ack.duplicate;
      } catch (err) {
        if (deadline - performance.now() <= 0) throw err;
        await new Promise((r) => setTimeout(r, Math.min(50 * attempt, 500, Math.max(1, deadline - performance.now()))));
      }
    }
  }
}
