// The API side of INGEST_MODE=jetstream: validated events go to the replicated stream, and a
// request is answered once JetStream acknowledged every one of its events (stored on a quorum of
// the stream's replicas). A single event is one message; a batch travels as messages of up to
// NATS_EVENTS_PER_MESSAGE events, all published at once (asynchronous publishes), and is answered
// when the last acknowledgement arrives. A message per event would cost a publish, a replication
// round and an acknowledgement per event: batches would go several times slower than direct mode.
import type { JetStreamClient } from "nats";
import type { Clock } from "../../shared/clock.ts";
import type { NatsConfig } from "../../shared/config.ts";
import { AppError } from "../../shared/errors.ts";
import type { PreparedEvent } from "../ingest/core/event.ts";
import { QueueFullError, type Outcome } from "../ingest/index.ts";
import { chunkEvents, encodeEvents, identityDigest, messageId } from "./core/message.ts";
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
/** Well under NATS's default max_payload (1 MB). */
const MAX_MESSAGE_BYTES = 512 * 1024;

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
    const digests = events.map((e) => identityDigest(e.subscriptionId, e.transactionId));
    try {
      const chunks = chunkEvents(events, this.config.eventsPerMessage, MAX_MESSAGE_BYTES);
      let offset = 0;
      const acks = chunks.map((chunk) => {
        const ids = digests.slice(offset, (offset += chunk.length));
        return this.publishChunk(chunk, ids, started + this.config.publishTimeoutMs).then((duplicate) => (duplicate ? chunk.length : 0));
      });
      const duplicates = (await Promise.all(acks)).reduce((a, b) => a + b, 0);
      this.metrics.published(events.length, duplicates, (performance.now() - started) / 1000);
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
    return digests.map((lagoId) => ({ kind: "created", lagoId }));
  }

  /** Stops taking events (requests in flight still finish). */
  close(): void {
    this.closed = true;
  }

  /** Publishes one message, retrying until `deadline` (a stream electing a new leader answers errors for a moment). */
  private async publishChunk(events: PreparedEvent[], digests: string[], deadline: number): Promise<boolean> {
    const orgId = events[0]!.orgId;
    const data = encoder.encode(encodeEvents(orgId, this.clock.now(orgId), events));
    const subject = subjectOf(this.config, orgId);
    const msgID = messageId(orgId, events, digests);
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
