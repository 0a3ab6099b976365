// JetStream ingestion benchmark (`npm run bench:jetstream`): on this one machine, three nats-server
// nodes (a replicated R3 stream), the API, `valueverse ingest-worker` processes and PostgreSQL. The
// same wrk workloads run against the API in direct mode and in jetstream mode, in one run; then the
// stream is drained and every event the API acknowledged is checked to be stored exactly once.
// Progress on stderr; the last line of stdout is one JSON object.
import os from "node:os";
import pg from "pg";
import { startNatsCluster } from "../e2e/helpers/nats.ts";
import { startIngestWorker, type IngestWorkerProcess } from "../e2e/helpers/ingest_worker.ts";
import { wrk, type Workload } from "./ingest.ts";
import { startServer } from "./server.ts";
import { machine, requireEmptyDatabase, round2 } from "./support.ts";

const log = (s: string) => process.stderr.write(`[bench:jetstream] ${s}\n`);

const WORKLOADS = [
  { name: "single", size: 0, connections: 256 },
  { name: "batch100", size: 100, connections: 16 },
] as const;

export interface JetstreamBenchOptions {
  seconds: number;
  ingestWorkers: number;
  /** Also batch100 with one stream message per event. */
  perEventVariant: boolean;
}

interface Stored {
  events: number;
  identities: number;
}

/** Answers of the ingest routes so far, by status (from the API's /metrics; summed over its workers). */
async function ingestStatuses(url: string): Promise<Record<string, number>> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const out: Record<string, number> = {};
  for (const m of text.matchAll(/^http_requests_total\{([^}]*)\} (\S+)$/gm)) {
    if (!/route="\/api\/v1\/events(\/batch)?"/.test(m[1]!) || !/method="POST"/.test(m[1]!)) continue;
    const status = /status="(\d+)"/.exec(m[1]!)?.[1] ?? "?";
    out[status] = (out[status] ?? 0) + Number(m[2]);
  }
  return out;
}

const minus = (a: Record<string, number>, b: Record<string, number>) =>
  Object.fromEntries(Object.entries(a).map(([k, v]) => [k, v - (b[k] ?? 0)]).filter(([, v]) => (v as number) > 0));

async function storedWithPrefix(db: pg.Client, prefix: string): Promise<Stored> {
  const r = await db.query<{ events: string; identities: string }>(
    `SELECT (SELECT count(*) FROM events WHERE transaction_id LIKE $1)::text AS events,
            (SELECT count(DISTINCT (external_subscription_id, transaction_id)) FROM events WHERE transaction_id LIKE $1)::text AS identities`,
    [`${prefix}-%`],
  );
  return { events: Number(r.rows[0]!.events), identities: Number(r.rows[0]!.identities) };
}

export async function runJetstreamBench(opts: JetstreamBenchOptions): Promise<void> {
  const seconds = Math.max(3, Math.min(120, opts.seconds || 10));
  const ingestWorkers = Math.max(1, Math.min(8, opts.ingestWorkers || 1));
  const databaseUrl = await requireEmptyDatabase("bench:jetstream");
  const apiKey = "bench_" + Math.random().toString(36).slice(2) + Math.random().toString(36).slice(2);
  const runId = Date.now().toString(36);
  const apiWorkers = Math.max(1, Math.min(os.availableParallelism(), Number(process.env.WORKERS) || os.availableParallelism()));
  const base = { DATABASE_URL: databaseUrl, VALUEVERSE_API_KEY: apiKey, INGEST_QUEUE_MAX: "1000000", WORKERS: String(apiWorkers), BILLING_SCHEDULER: "off" };
  log(`${os.cpus()[0]?.model ?? "cpu"} x${os.availableParallelism()}; ${apiWorkers} API worker(s), ${ingestWorkers} ingest worker(s); ${seconds}s per workload`);
  const db = new pg.Client({ connectionString: databaseUrl });
  await db.connect();

  const direct: Record<string, Workload> = {};
  const jetstream: Record<string, Workload & { stored: number; drain_seconds: number; committed_events_per_s: number; answers: Record<string, number> }> = {};
  const lost: Record<string, number> = {};
  const duplicated: Record<string, number> = {};

  // 1. Direct mode.
  let server = await startServer(base, log);
  try {
    await wrk(server.url, apiKey, { size: 0, seconds: 3, connections: 64, prefix: `${runId}-dwarm` });
    for (const w of WORKLOADS) {
      direct[w.name] = await wrk(server.url, apiKey, { size: w.size, seconds, connections: w.connections, prefix: `${runId}-d${w.name}` });
      log(`direct ${w.name}: ${JSON.stringify(direct[w.name])}`);
    }
  } finally {
    await server.stop();
  }

  // 2. JetStream mode: three NATS nodes, the API publishing, ingest workers committing.
  const cluster = await startNatsCluster(3);
  const nats = { NATS_URL: cluster.url, NATS_STREAM: `VV_BENCH_${runId}`, NATS_SUBJECT: `vvbench.${runId}`, NATS_CONSUMER: `vv-bench-${runId}` };
  const workers: IngestWorkerProcess[] = [];
  let lagAtEnd = 0;
  try {
    server = await startServer({ ...base, ...nats, INGEST_MODE: "jetstream" }, log);
    for (let i = 0; i < ingestWorkers; i++) workers.push(await startIngestWorker({ DATABASE_URL: databaseUrl, ...nats }));
    const lag = async (): Promise<number> => {
      const text = await (await fetch(`${workers[0]!.metricsUrl}/metrics`)).text();
      return Number(/^billing_ingest_lag_messages (\S+)$/m.exec(text)?.[1] ?? NaN);
    };
    const drain = async (): Promise<number> => {
      const started = performance.now();
      for (;;) {
        const n = await lag();
        if (n === 0) return (performance.now() - started) / 1000;
        if (performance.now() - started > 300_000) throw new Error(`the stream still holds ${n} messages after 300 s`);
        await new Promise((r) => setTimeout(r, 250));
      }
    };
    await wrk(server.url, apiKey, { size: 0, seconds: 3, connections: 64, prefix: `${runId}-jwarm` });
    await drain();
    const measure = async (name: string, size: number, connections: number) => {
      const prefix = `${runId}-j${name}`;
      const before = await ingestStatuses(server.url);
      const r = await wrk(server.url, apiKey, { size, seconds, connections, prefix });
      const answers = minus(await ingestStatuses(server.url), before);
      lagAtEnd = Math.max(lagAtEnd, await lag());
      const drainSeconds = await drain();
      const stored = await storedWithPrefix(db, prefix);
      // wrk counts the answered 2xx; requests cut off at its end may have been published too.
      lost[name] = Math.max(0, r.events - stored.identities);
      duplicated[name] = stored.events - stored.identities;
      jetstream[name] = {
        ...r,
        stored: stored.events,
        drain_seconds: round2(drainSeconds),
        committed_events_per_s: Math.round(stored.events / (r.seconds + drainSeconds)),
        answers,
      };
      log(`jetstream ${name}: ${JSON.stringify(jetstream[name])}`);
    };
    for (const w of WORKLOADS) await measure(w.name, w.size, w.connections);
    if (opts.perEventVariant) {
      // The same batches as one message per event (NATS_EVENTS_PER_MESSAGE=1), for comparison.
      await server.stop();
      server = await startServer({ ...base, ...nats, INGEST_MODE: "jetstream", NATS_EVENTS_PER_MESSAGE: "1" }, log);
      await measure("batch100_message_per_event", 100, 16);
    }
  } finally {
    await Promise.all(workers.map((w) => w.stop()));
    await server.stop();
    await cluster.stop();
    await db.end();
  }

  const ratio = (a: number, b: number) => Number((a / Math.max(1, b)).toFixed(2));
  const ratios: Record<string, number> = {};
  for (const w of WORKLOADS) {
    ratios[`${w.name}_acknowledged`] = ratio(jetstream[w.name]!.events_per_s, direct[w.name]!.events_per_s);
    ratios[`${w.name}_committed`] = ratio(jetstream[w.name]!.committed_events_per_s, direct[w.name]!.events_per_s);
  }
  if (jetstream.batch100_message_per_event) {
    ratios.batch100_message_per_event_acknowledged = ratio(jetstream.batch100_message_per_event.events_per_s, direct.batch100!.events_per_s);
  }
  const nothingLost = Object.values(lost).every((n) => n === 0) && Object.values(duplicated).every((n) => n === 0);
  const summary = {
    direct,
    jetstream,
    ratios,
    goal: "jetstream / direct >= 0.5 (acknowledged events/s)",
    goal_met: WORKLOADS.every((w) => ratios[`${w.name}_acknowledged`]! >= 0.5),
    nothing_lost: nothingLost,
    lost,
    duplicated,
    max_lag_messages_at_end_of_load: lagAtEnd,
    setup: { nats_nodes: 3, stream_replicas: 3, api_workers: apiWorkers, ingest_workers: ingestWorkers, seconds_per_workload: seconds },
    machine: machine(),
  };
  process.stdout.write(JSON.stringify(summary) + "\n");
  if (!nothingLost) process.exitCode = 1;
}
