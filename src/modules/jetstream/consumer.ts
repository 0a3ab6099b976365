// The ingest worker's loop: take messages from the durable pull consumer, hand them to the group
// commit writer (the same statement as direct ingestion: exactly once by identity, so a redelivered
// message stores nothing new), record what it refuses as rejected events, and acknowledge each
// message only once its event is committed. Messages a worker took and never acknowledged (it died,
// or the database was down) go to another worker after NATS_ACK_WAIT_MS.
import type { Consumer, ConsumerMessages, JetStreamClient, JsMsg } from "nats";
import type { NatsConfig } from "../../shared/config.ts";
import type { Outcome, EventWriter } from "../ingest/index.ts";
import { decodeEvents, type StreamEvent } from "./core/message.ts";
import type { ConsumerMetrics } from "./metrics.ts";
import type { Rejection, RejectedEventsService } from "./service.ts";

export interface ConsumerOptions {
  /** Events of messages taken and not yet acknowledged by this worker before it stops taking more. */
  maxInFlight: number;
  /** Delay before a message whose commit failed is delivered again. */
  retryDelayMs?: number;
  onError(err: unknown, context: string): void;
}

interface Taken {
  msg: JsMsg;
  events: StreamEvent[];
}

const decoder = new TextDecoder();
/** Messages one pull may bring: one event each, or up to NATS_EVENTS_PER_MESSAGE of a batch. */
const PULL_MESSAGES = 256;

export class IngestConsumer {
  private messages: ConsumerMessages | null = null;
  private loop: Promise<void> = Promise.resolve();
  private stopping = false;
  /** Events of the messages taken and not yet acknowledged (or given back). */
  private inFlight = 0;
  private gathered: Taken[] = [];
  private flushScheduled = false;
  private roomWaiters: (() => void)[] = [];
  private idleWaiters: (() => void)[] = [];

  constructor(
    private readonly js: JetStreamClient,
    private readonly config: NatsConfig,
    private readonly writer: Pick<EventWriter, "submit">,
    private readonly rejected: RejectedEventsService,
    private readonly metrics: ConsumerMetrics,
    private readonly opts: ConsumerOptions,
  ) {}

  /** Events taken and not yet acknowledged (or given back). */
  get pending(): number {
    return this.inFlight;
  }

  async start(): Promise<void> {
    const consumer = await this.js.consumers.get(this.config.stream, this.config.consumer);
    this.loop = this.run(consumer);
  }

  /** Stops taking messages and waits for the ones taken to be committed and acknowledged. */
  async stop(): Promise<void> {
    this.stopping = true;
    this.messages?.stop();
    for (const w of this.roomWaiters.splice(0)) w();
    await this.loop;
    this.flush();
    if (this.inFlight > 0) await new Promise<void>((resolve) => this.idleWaiters.push(resolve));
  }

  private async run(consumer: Consumer): Promise<void> {
    while (!this.stopping) {
      // Pull only while there is room: messages a worker holds unprocessed would wait on it (and on
      // its memory) instead of going to another worker. Its messages are handed on as they arrive.
      // (A pull bounded in bytes would be better for memory, but this client then also caps it at
      // 100 messages and holds it open until it expires: 50 messages/s.)
      while (this.inFlight >= this.opts.maxInFlight && !this.stopping) await new Promise<void>((resolve) => this.roomWaiters.push(resolve));
      if (this.stopping) break;
      try {
        // Short pulls: when the server holding one dies, or the consumer's leader moves, the next
        // pull goes elsewhere within ~2 s.
        const messages = await consumer.fetch({ max_messages: PULL_MESSAGES, expires: 2_000 });
        this.messages = messages;
        if (this.stopping) messages.stop();
        for await (const msg of messages) this.take(msg);
      } catch (err) {
        if (this.stopping) break;
        this.opts.onError(err, "pulling from the stream failed; starting again");
        await new Promise((r) => setTimeout(r, 500));
      }
    }
  }

  private take(msg: JsMsg): void {
    const d = decodeEvents(decoder.decode(msg.data));
    if (!d.ok) {
      // Not events of ours: retrying cannot help, and it must not block the stream.
      msg.term();
      this.metrics.undecodable(1);
      this.opts.onError(new Error(`stream message ${msg.seq} on ${msg.subject} holds no events (${d.reason}); terminated`), "decode");
      return;
    }
    this.inFlight += d.events.length;
    this.gathered.push({ msg, events: d.events });
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    // Messages delivered in the same I/O turn go to the writer together.
    setImmediate(() => this.flush());
  }

  private flush(): void {
    this.flushScheduled = false;
    if (this.gathered.length === 0) return;
    const group = this.gathered;
    this.gathered = [];
    void this.process(group);
  }

  private async process(group: Taken[]): Promise<void> {
    const events = group.flatMap((t) => t.events);
    try {
      const outcomes = await this.writer.submit(events.map((e) => e.event));
      await this.recordRejections(group, outcomes);
      let redelivered = 0;
      for (const t of group) {
        t.msg.ack();
        if (t.msg.redelivered) redelivered += t.events.length;
      }
      this.metrics.consumed(events.length, redelivered);
    } catch (err) {
      // Nothing is lost: the messages come back (to this worker or another) and are judged again.
      for (const t of group) t.msg.nak(this.opts.retryDelayMs ?? 1_000);
      this.opts.onError(err, "committing a batch failed; its messages will be delivered again");
    } finally {
      this.inFlight -= events.length;
      for (const w of this.roomWaiters.splice(0)) w();
      if (this.inFlight === 0) for (const w of this.idleWaiters.splice(0)) w();
    }
  }

  private async recordRejections(group: Taken[], outcomes: Outcome[]): Promise<void> {
    const rejections: Rejection[] = [];
    let i = 0;
    for (const t of group) {
      for (const e of t.events) {
        const o = outcomes[i++]!;
        if (o.kind !== "conflict" && o.kind !== "invalid") continue;
        rejections.push({
          event: e.event,
          reason: o.kind === "conflict" ? "value_already_exist" : "invalid",
          message: o.kind === "invalid" ? o.reason : "value_already_exist",
          receivedAtMs: e.receivedAtMs,
          streamSequence: t.msg.seq,
        });
      }
    }
    if (rejections.length === 0) return;
    const recorded = await this.rejected.record(rejections);
    const conflicts = recorded.filter((r) => r.reason === "value_already_exist").length;
    if (conflicts > 0) this.metrics.rejected("value_already_exist", conflicts);
    if (recorded.length > conflicts) this.metrics.rejected("invalid", recorded.length - conflicts);
  }
}
