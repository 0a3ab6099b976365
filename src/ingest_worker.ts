// `valueverse ingest-worker`: one process consuming the JetStream stream (INGEST_MODE=jetstream)
// into PostgreSQL. Scale by starting more: they share the durable consumer, so each message goes to
// one of them at a time. Optional /metrics and /health on --metrics-port.
import http from "node:http";
import type { AddressInfo } from "node:net";
import type { NatsConnection } from "nats";
import { pino, type Logger } from "pino";
import type { Db } from "./db/db.ts";
import { migrate } from "./db/migrate.ts";
import { openDatabase } from "./db/open.ts";
import { EventWriter, Partitions } from "./modules/ingest/index.ts";
import {
  IngestConsumer,
  RejectedEventsService,
  connectNats,
  ensureConsumer,
  ensureStream,
  readLag,
  registerConsumerMetrics,
  registerLagGauges,
  withStartupRetry,
} from "./modules/jetstream/index.ts";
import { WebhookService } from "./modules/webhooks/index.ts";
import { createMetrics, type Metrics } from "./observability/metrics.ts";
import { systemClock, type Clock } from "./shared/clock.ts";
import type { Config } from "./shared/config.ts";

export interface IngestWorkerOptions {
  /** Serve /metrics and /health here (0: any free port, logged); none when undefined. */
  metricsPort?: number;
  metricsHost?: string;
}

export interface IngestWorker {
  consumer: IngestConsumer;
  writer: EventWriter;
  metrics: Metrics;
  /** Declares the stream and consumer (retried while the cluster elects its leaders) and starts consuming. */
  start(): Promise<void>;
  /** Stops taking messages, commits and acknowledges what it took, closes the NATS connection (not `db`). */
  stop(): Promise<void>;
}

/** The worker's parts over an open, migrated database (`runIngestWorker` below; tests build one in-process). */
export function createIngestWorker(
  config: Config,
  db: Db,
  log: Pick<Logger, "warn" | "error">,
  deps: { clock?: Clock; wrapWriter?: (w: EventWriter) => Pick<EventWriter, "submit"> } = {},
): IngestWorker {
  const clock = deps.clock ?? systemClock;
  const metrics = createMetrics(db);
  const partitions = new Partitions(db);
  const maxInFlight = 2 * config.ingest.batchMax * config.ingest.writers;
  // The writer's queue never refuses here: the consumer bounds what it takes (maxInFlight, plus
  // at most one pull of 256 messages beyond it).
  const writer = new EventWriter(db, partitions, clock, { batchMax: config.ingest.batchMax, writers: config.ingest.writers, queueMax: maxInFlight + 1_000_000 }, metrics);
  metrics.setQueueDepth(() => writer.queued);
  metrics.setCodeLockWaiting(() => writer.waitingOnCodeLock);
  // Webhooks are only written to the outbox here; the API processes' delivery workers send them.
  const webhooks = new WebhookService(db, clock, { maxAttempts: config.webhooks.maxAttempts });
  const rejected = new RejectedEventsService(db, clock, webhooks.enqueue);
  const consumerMetrics = registerConsumerMetrics(metrics.registry);
  let nc: NatsConnection | null = null;
  let consumer: IngestConsumer | null = null;
  const worker: IngestWorker = {
    get consumer() {
      if (consumer === null) throw new Error("the ingest worker is not started");
      return consumer;
    },
    writer,
    metrics,
    async start() {
      await partitions.ensureAround(clock.now());
      const waiting = setInterval(() => log.warn({ servers: config.nats.servers }, "waiting for a NATS server to answer"), 5_000);
      try {
        nc = await connectNats(config.nats, `valueverse-ingest-worker-${process.pid}`);
      } finally {
        clearInterval(waiting);
      }
      const conn = nc;
      void (async () => {
        for await (const s of conn.status()) {
          if (s.type === "disconnect" || s.type === "reconnect") log.warn({ nats: s.type, server: s.data }, "NATS connection changed");
        }
      })();
      const jsm = await nc.jetstreamManager();
      await withStartupRetry(
        async () => {
          await ensureStream(jsm, config.nats);
          await ensureConsumer(jsm, config.nats, config.ingest.batchMax);
        },
        60_000,
        (err) => log.warn({ err }, "JetStream not ready yet; retrying"),
      );
      registerLagGauges(metrics.registry, () => readLag(jsm, config.nats));
      consumer = new IngestConsumer(nc.jetstream(), config.nats, deps.wrapWriter ? deps.wrapWriter(writer) : writer, rejected, consumerMetrics, {
        maxInFlight,
        onError: (err, context) => log.error({ err }, context),
      });
      await consumer.start();
    },
    async stop() {
      await consumer?.stop();
      await writer.drain();
      if (nc !== null && !nc.isClosed()) await nc.drain();
    },
  };
  return worker;
}

export async function runIngestWorker(config: Config, opts: IngestWorkerOptions): Promise<void> {
  const log = pino({ level: config.logLevel, base: { pid: process.pid, role: "ingest-worker" } });
  const problems: string[] = [];
  if (config.nats.servers.length === 0) problems.push("NATS_URL is required (the JetStream cluster's servers, comma-separated)");
  if (config.databaseUrl === undefined) problems.push("DATABASE_URL is required (PostgreSQL)");
  if (problems.length > 0) {
    log.fatal({ problems }, "ingest-worker: invalid configuration");
    process.exit(2);
  }

  const db = await openDatabase(config);
  await migrate(db);
  const worker = createIngestWorker(config, db, log);
  await worker.start();

  let server: http.Server | null = null;
  let stopping = false;
  if (opts.metricsPort !== undefined) {
    server = http.createServer((req, res) => {
      const url = (req.url ?? "/").split("?")[0];
      if (req.method === "GET" && url === "/metrics") {
        worker.metrics.registry.metrics().then(
          (text) => res.writeHead(200, { "content-type": worker.metrics.registry.contentType }).end(text),
          (err: Error) => res.writeHead(500).end(err.message),
        );
      } else if (req.method === "GET" && url === "/health") {
        res
          .writeHead(stopping ? 503 : 200, { "content-type": "application/json" })
          .end(JSON.stringify({ status: stopping ? "stopping" : "ok", in_flight: worker.consumer.pending }));
      } else res.writeHead(404).end();
    });
    await new Promise<void>((resolve) => server!.listen(opts.metricsPort, opts.metricsHost ?? "0.0.0.0", resolve));
  }
  const port = server ? (server.address() as AddressInfo).port : null;
  log.info({ stream: config.nats.stream, consumer: config.nats.consumer, metrics_port: port, batch_max: config.ingest.batchMax }, "ingest worker ready");

  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, "ingest worker stopping: committing and acknowledging what it took");
    try {
      await worker.stop();
      server?.close();
      await db.close();
      process.exit(0);
    } catch (err) {
      log.error({ err }, "ingest worker shutdown failed");
      process.exit(1);
    }
  };
  process.on("SIGTERM", () => void shutdown("SIGTERM"));
  process.on("SIGINT", () => void shutdown("SIGINT"));
}
