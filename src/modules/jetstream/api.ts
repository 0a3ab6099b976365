// INGEST_MODE=jetstream on the API: the NATS connection, the stream (declared at start), the
// publisher IngestService hands validated events to, and the lag gauges on the API's /metrics.
import type { NatsConnection } from "nats";
import type client from "prom-client";
import type { Clock } from "../../shared/clock.ts";
import type { Config } from "../../shared/config.ts";
import { registerLagGauges, registerPublisherMetrics } from "./metrics.ts";
import { connectNats, ensureConsumer, ensureStream, readLag, withStartupRetry } from "./nats.ts";
import { EventPublisher } from "./publisher.ts";
import type { PreparedEvent } from "../ingest/core/event.ts";
import type { Outcome } from "../ingest/index.ts";

export interface JetstreamIngest {
  /** What IngestService writes through in this mode. */
  sink: { publish(events: readonly PreparedEvent[]): Promise<Outcome[]> };
  /** Connects and declares the stream and consumer (retried while the cluster elects its leaders). */
  start(): Promise<void>;
  /** Stops publishing and closes the connection once every publish in flight is acknowledged. */
  close(): Promise<void>;
}

export function createJetstreamIngest(
  config: Config,
  clock: Clock,
  registry: client.Registry,
  onRetry: (err: unknown) => void,
): JetstreamIngest {
  let nc: NatsConnection | null = null;
  let publisher: EventPublisher | null = null;
  const metrics = registerPublisherMetrics(registry);
  return {
    sink: {
      publish(events) {
        if (publisher === null) throw new Error("the JetStream publisher is not started");
        return publisher.publish(events);
      },
    },
    async start() {
      // Until NATS answers, /health stays 503 ("starting"); say why now and then.
      const waiting = setInterval(() => onRetry(new Error(`no NATS server answers at ${config.nats.servers.join(",")}`)), 5_000);
      try {
        nc = await connectNats(config.nats, `valueverse-api-${process.pid}`);
      } finally {
        clearInterval(waiting);
      }
      const jsm = await nc.jetstreamManager();
      await withStartupRetry(
        async () => {
          await ensureStream(jsm, config.nats);
          await ensureConsumer(jsm, config.nats, config.ingest.batchMax);
        },
        60_000,
        onRetry,
      );
      registerLagGauges(registry, () => readLag(jsm, config.nats));
      publisher = new EventPublisher(nc.jetstream(), config.nats, clock, { queueMax: config.ingest.queueMax }, metrics);
    },
    async close() {
      publisher?.close();
      // Requests still waiting for acknowledgements are answered (HTTP close waits for them) before the drain.
      if (nc !== null && !nc.isClosed()) await nc.drain();
    },
  };
}
