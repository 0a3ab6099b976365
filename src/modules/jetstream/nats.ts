// The NATS side of decoupled ingestion: the connection, the replicated stream and the durable
// consumer (both declared idempotently by the API and by every worker, whichever starts first),
// and the lag read from the stream.
import { createRequire } from "node:module";
import type * as NatsModule from "nats";
import type { JetStreamManager, NatsConnection, StreamInfo } from "nats";
import type { NatsConfig } from "../../shared/config.ts";

/** The nats client, loaded on first use: only INGEST_MODE=jetstream needs it (it cost every start ~0.1 s). */
let loaded: typeof NatsModule | undefined;
const nats = (): typeof NatsModule => (loaded ??= createRequire(import.meta.url)("nats") as typeof NatsModule);

export async function connectNats(config: NatsConfig, name: string): Promise<NatsConnection> {
  return nats().connect({
    servers: config.servers,
    name,
    // A server of the cluster going away is routine: reconnect to another one, for ever.
    maxReconnectAttempts: -1,
    reconnectTimeWait: 250,
    waitOnFirstConnect: true,
    timeout: 10_000,
    pingInterval: 10_000,
  });
}

/** The subjects of the stream: one per organization, `<prefix>.<org id>`. */
export const subjectOf = (config: NatsConfig, orgId: number) => `${config.subject}.${orgId}`;

/** The consumer's bound on messages handed out and not yet acknowledged, over all workers. */
export const maxAckPending = (batchMax: number) => Math.max(20_000, 4 * batchMax);

export class StreamSetupError extends Error {
  override name = "StreamSetupError";
}

/**
 * Creates the stream when missing: file storage, NATS_REPLICAS copies, work-queue retention (a
 * message leaves the stream once a worker acknowledged it, i.e. once it is committed), and the
 * duplicate window. An existing stream must hold at least as many replicas as asked: fewer would
 * quietly weaken the durability the API's acknowledgement promises.
 */
export async function ensureStream(jsm: JetStreamManager, config: NatsConfig): Promise<StreamInfo> {
  let info: StreamInfo | null = null;
  try {
    info = await jsm.streams.info(config.stream);
  } catch (err) {
    if (!isNotFound(err)) throw err;
  }
  if (info !== null) {
    if (info.config.num_replicas < config.replicas) {
      throw new StreamSetupError(
        `stream ${config.stream} exists with ${info.config.num_replicas} replica(s) but NATS_REPLICAS=${config.replicas}: ` +
          `raise its replicas (nats stream edit ${config.stream} --replicas ${config.replicas}) or lower NATS_REPLICAS`,
      );
    }
    const wanted = `${config.subject}.*`;
    if (!info.config.subjects?.includes(wanted)) {
      throw new StreamSetupError(`stream ${config.stream} exists without subject ${wanted} (NATS_SUBJECT=${config.subject}); use another NATS_STREAM or fix the stream`);
    }
    return info;
  }
  try {
    return await jsm.streams.add({
      name: config.stream,
      subjects: [`${config.subject}.*`],
      storage: nats().StorageType.File,
      retention: nats().RetentionPolicy.Workqueue,
      num_replicas: config.replicas,
      duplicate_window: nats().nanos(config.duplicateWindowMs),
    });
  } catch (err) {
    if (isNameInUse(err)) return jsm.streams.info(config.stream);
    const described = describe(err);
    if (/replica|insufficient resources|non-clustered|no suitable peers/i.test(described)) {
      throw new StreamSetupError(
        `NATS_REPLICAS=${config.replicas}: the JetStream cluster cannot hold ${config.replicas} copies of stream ${config.stream} ` +
          `(${described}); run at least ${config.replicas} JetStream servers in one cluster, or lower NATS_REPLICAS`,
      );
    }
    throw err;
  }
}

/** The durable pull consumer the ingest workers share: explicit acks, redelivery after NATS_ACK_WAIT_MS, never given up. */
export async function ensureConsumer(jsm: JetStreamManager, config: NatsConfig, batchMax: number): Promise<void> {
  try {
    await jsm.consumers.info(config.stream, config.consumer);
    return;
  } catch (err) {
    if (!isNotFound(err)) throw err;
  }
  try {
    await jsm.consumers.add(config.stream, {
      durable_name: config.consumer,
      ack_policy: nats().AckPolicy.Explicit,
      deliver_policy: nats().DeliverPolicy.All,
      ack_wait: nats().nanos(config.ackWaitMs),
      max_ack_pending: maxAckPending(batchMax),
      max_deliver: -1,
    });
  } catch (err) {
    // Another process created it in between.
    if (!isNameInUse(err)) throw err;
  }
}

export interface Lag {
  /** Events acknowledged to clients and not yet committed (the stream keeps a message until then). */
  messages: number;
  /** Age of the oldest of them (0 when none). */
  seconds: number;
}

/**
 * The lag from the stream's state. Its age compares the NATS servers' timestamps with this
 * machine's real time (not an injected or test clock: stream times are always real).
 */
export async function readLag(jsm: JetStreamManager, config: NatsConfig, nowMs = Date.now()): Promise<Lag> {
  const { state } = await jsm.streams.info(config.stream);
  if (state.messages === 0) return { messages: 0, seconds: 0 };
  const first = Date.parse(state.first_ts);
  return { messages: state.messages, seconds: Number.isFinite(first) ? Math.max(0, (nowMs - first) / 1000) : 0 };
}

/** Retries `fn` until it succeeds or `deadlineMs` passes (a cluster still electing its leaders answers errors for a while). */
export async function withStartupRetry<T>(fn: () => Promise<T>, timeoutMs: number, onRetry: (err: unknown) => void): Promise<T> {
  const deadline = performance.now() + timeoutMs;
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (err) {
      if (err instanceof StreamSetupError || performance.now() > deadline) throw err;
      onRetry(err);
      await new Promise((r) => setTimeout(r, Math.min(2_000, 100 * attempt)));
    }
  }
}

function describe(err: unknown): string {
  const e = err as { message?: string; api_error?: { description?: string; err_code?: number } };
  return e.api_error?.description ?? e.message ?? String(err);
}

function isNotFound(err: unknown): boolean {
  const e = err as { code?: string; api_error?: { code?: number; err_code?: number } };
  return e.api_error?.code === 404 || e.code === "404" || /not found/i.test(describe(err));
}

function isNameInUse(err: unknown): boolean {
  return /already in use|name already/i.test(describe(err));
}
