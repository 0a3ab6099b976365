// `valueverse serve`: one process, or a node:cluster primary with N HTTP workers on one port.
import cluster from "node:cluster";
import { AggregatorRegistry } from "prom-client";
import { buildApp, type App } from "./app.ts";
import { migrate } from "./db/migrate.ts";
import { openDatabase } from "./db/open.ts";
import { OrgService } from "./modules/orgs/index.ts";
import { systemClock } from "./shared/clock.ts";
import type { Config } from "./shared/config.ts";

const METRICS_REQUEST = "valueverse:metrics";

export async function serve(config: Config): Promise<void> {
  if (config.workers > 1 && cluster.isPrimary) return runPrimary(config);
  await runServer(config, cluster.isWorker);
}

async function runServer(config: Config, isWorker: boolean): Promise<void> {
  const app = buildApp(config);
  if (isWorker) wireClusterMetrics(app);
  let closing = false;
  const shutdown = async (signal: string) => {
    if (closing) return;
    closing = true;
    app.http.log.info({ signal }, "shutting down: finishing in-flight requests and batches");
    try {
      await app.close();
      process.exit(0);
    } catch (err) {
      app.http.log.error({ err }, "shutdown failed");
      process.exit(1);
    }
  };
  process.on("SIGTERM", () => void shutdown("SIGTERM"));
  process.on("SIGINT", () => void shutdown("SIGINT"));

  // A single process listens first, so /health says 503 while the database opens and migrates. A
  // cluster worker listens once started (the primary migrated already): the primary hands
  // connections to every listening worker, and one still starting would answer them 503.
  if (!isWorker) await app.http.listen({ port: config.port, host: config.host });
  try {
    await app.start();
  } catch (err) {
    // Told to stop while starting (a worker SIGTERMed before it was ready): the shutdown closed
    // the database under the start-up, and exits by itself once it has drained.
    if (closing) return;
    app.http.log.fatal({ err }, "start-up failed");
    process.exit(1);
  }
  if (closing) return;
  if (isWorker) await app.http.listen({ port: config.port, host: config.host });
  app.http.log.info({ port: config.port, database: config.databaseUrl ? "postgres" : "embedded", pid: process.pid }, "ready");
}

async function runPrimary(config: Config): Promise<void> {
  // Migrate once here so workers start against a ready schema.
  const db = await openDatabase(config);
  await migrate(db);
  if (config.apiKey) await new OrgService(db, systemClock).ensureOrganizationForKey(config.apiKey);
  await db.close();

  const aggregator = new AggregatorRegistry();
  let stopping = false;
  // Shutting down: each worker drains (answers in-flight requests, commits queued events) and exits;
  // the primary exits once all have, non-zero when any of them failed to drain.
  let drainFailed = false;
  const fork = () => {
    const worker = cluster.fork();
    worker.on("message", (msg: { type?: string; id?: number }) => {
      if (msg?.type !== METRICS_REQUEST) return;
      aggregator
        .clusterMetrics()
        .then((text) => worker.send({ type: METRICS_REQUEST, id: msg.id, text }))
        .catch((err: Error) => worker.send({ type: METRICS_REQUEST, id: msg.id, error: err.message }));
    });
  };
  console.error(JSON.stringify({ level: 30, time: Date.now(), pid: process.pid, msg: `starting ${config.workers} worker processes`, workers: config.workers }));
  for (let i = 0; i < config.workers; i++) fork();
  cluster.on("exit", (worker, code, signal) => {
    if (stopping) {
      // Killed by the SIGTERM itself: it was still loading, before its handler existed (nothing accepted yet).
      if (code !== 0 && signal !== "SIGTERM") {
        drainFailed = true;
        console.error(JSON.stringify({ level: 40, time: Date.now(), pid: process.pid, msg: "worker did not drain cleanly", worker: worker.process.pid, code, signal }));
      }
      if (Object.keys(cluster.workers ?? {}).length === 0) process.exit(drainFailed ? 1 : 0);
      return;
    }
    console.error(JSON.stringify({ level: 50, msg: "worker exited; starting another", pid: worker.process.pid, code, signal }));
    fork();
  });
  const stop = () => {
    stopping = true;
    for (const w of Object.values(cluster.workers ?? {})) w?.process.kill("SIGTERM");
  };
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
}

/** In a worker, /metrics answers with every worker's metrics, aggregated by the primary. */
function wireClusterMetrics(app: App): void {
  AggregatorRegistry.setRegistries([app.metrics.registry]);
  // Constructing one installs prom-client's worker-side listener that answers the primary.
  new AggregatorRegistry();
  let nextId = 0;
  const waiting = new Map<number, (m: { text?: string; error?: string }) => void>();
  process.on("message", (msg: { type?: string; id?: number; text?: string; error?: string }) => {
    if (msg?.type === METRICS_REQUEST && typeof msg.id === "number") waiting.get(msg.id)?.(msg);
  });
  app.metrics.aggregate = () =>
    new Promise<string>((resolve, reject) => {
      const id = ++nextId;
      const timer = setTimeout(() => {
        waiting.delete(id);
        reject(new Error("metrics aggregation timed out"));
      }, 5000);
      waiting.set(id, (m) => {
        clearTimeout(timer);
        waiting.delete(id);
        m.text !== undefined ? resolve(m.text) : reject(new Error(m.error ?? "metrics aggregation failed"));
      });
      process.send?.({ type: METRICS_REQUEST, id });
    });
}
