// Ingest benchmark (`npm run bench:ingest`): a real server on DATABASE_URL (an empty database) or on
// an embedded database, driven by wrk in a separate process over 127.0.0.1. Workloads: single-event
// requests, 100- and 1000-event batches, the same single-event load through a one-INSERT-per-request
// path (`naive`), and COPY of the same rows into the events table (`copy_ceiling`). Progress goes
// to stderr; the last line on stdout is one JSON object.
import { execFile } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import pg from "pg";
import { from as copyFrom } from "pg-copy-streams";
import { pipeline } from "node:stream/promises";
import { Readable } from "node:stream";
import { openPglite } from "../src/db/pglite.ts";
import { spawn } from "node:child_process";
import { freePort, startServer } from "./server.ts";

const run = promisify(execFile);
const HERE = path.dirname(fileURLToPath(import.meta.url));
const log = (s: string) => process.stderr.write(`[bench:ingest] ${s}\n`);

export interface Workload {
  events_per_s: number;
  requests_per_s: number;
  p50_ms: number;
  p95_ms: number;
  p99_ms: number;
  error_rate: number;
  events: number;
  seconds: number;
  connections: number;
}

/** Runs wrk with `script` (default ingest.lua; args: prefix, events per request, API key, then `args`). */
export async function wrk(
  url: string,
  apiKey: string,
  opts: { size: number; seconds: number; connections: number; prefix: string; script?: string; args?: string[] },
): Promise<Workload> {
  const { stdout } = await run(
    "wrk",
    ["-t", "1", "-c", String(opts.connections), "-d", `${opts.seconds}s`, "--timeout", "5s", "-s", opts.script ?? path.join(HERE, "ingest.lua"), url, "--", opts.prefix, String(opts.size), apiKey, ...(opts.args ?? [])],
    { maxBuffer: 1 << 24 },
  );
  const line = stdout.split("\n").find((l) => l.startsWith("WRK_RESULT "));
  if (!line) throw new Error(`wrk printed no result:\n${stdout}`);
  const r = JSON.parse(line.slice("WRK_RESULT ".length)) as Record<string, number>;
  const seconds = r.duration_us! / 1e6;
  const perRequest = Math.max(1, opts.size);
  const round = (x: number) => Math.round(x * 100) / 100;
  return {
    events_per_s: Math.round(((r.requests! - r.errors!) * perRequest) / seconds),
    requests_per_s: Math.round(r.requests! / seconds),
    p50_ms: round(r.p50_us! / 1000),
    p95_ms: round(r.p95_us! / 1000),
    p99_ms: round(r.p99_us! / 1000),
    error_rate: r.requests! > 0 ? Number((r.errors! / r.requests!).toFixed(6)) : 1,
    events: (r.requests! - r.errors!) * perRequest,
    seconds: round(seconds),
    connections: opts.connections,
  };
}

function copyRows(orgId: number, n: number, prefix: string): string {
  const now = new Date().toISOString();
  let out = "";
  for (let i = 0; i < n; i++) {
    out += `${orgId}\t${now}\tapi_calls\tsub_${i % 1000}\t${prefix}-${i}\t{"region": "eu-west", "tokens": ${i % 97}}\t\\N\t${now}\n`;
  }
  return out;
}

const COPY_SQL = "COPY events (org_id, ts, code, external_subscription_id, transaction_id, properties, precise_total_amount_cents, created_at) FROM STDIN";

async function copyCeilingPostgres(url: string, seconds: number, connections: number): Promise<{ rows_per_s: number; connections: number }> {
  const clients = await Promise.all(
    Array.from({ length: connections }, async () => {
      const c = new pg.Client({ connectionString: url });
      await c.connect();
      return c;
    }),
  );
  const orgId = Number((await clients[0]!.query("SELECT min(id) AS id FROM organizations")).rows[0].id);
  const chunk = 10_000;
  let rows = 0;
  const deadline = Date.now() + seconds * 1000;
  const started = performance.now();
  await Promise.all(
    clients.map(async (c, k) => {
      for (let round = 0; Date.now() < deadline; round++) {
        const data = copyRows(orgId, chunk, `copy-${process.pid}-${k}-${round}`);
        await pipeline(Readable.from([data]), c.query(copyFrom(COPY_SQL)));
        rows += chunk;
      }
    }),
  );
  const elapsed = (performance.now() - started) / 1000;
  await Promise.all(clients.map((c) => c.end()));
  return { rows_per_s: Math.round(rows / elapsed), connections };
}

async function copyCeilingPglite(dataDir: string, seconds: number): Promise<{ rows_per_s: number; connections: number }> {
  const db = await openPglite({ dataDir: path.join(dataDir, "pg") });
  const pglite = (db as unknown as { pglite: { query(sql: string, p: unknown[], o: { blob: Blob }): Promise<unknown> } }).pglite;
  const orgId = Number((await db.query<{ id: number }>("SELECT min(id) AS id FROM organizations")).rows[0]!.id);
  const chunk = 10_000;
  let rows = 0;
  const deadline = Date.now() + seconds * 1000;
  const started = performance.now();
  for (let round = 0; Date.now() < deadline; round++) {
    const blob = new Blob([copyRows(orgId, chunk, `copy-${round}`)]);
    await pglite.query(COPY_SQL.replace("FROM STDIN", "FROM '/dev/blob'"), [], { blob });
    rows += chunk;
  }
  const elapsed = (performance.now() - started) / 1000;
  await db.close();
  return { rows_per_s: Math.round(rows / elapsed), connections: 1 };
}

/** Plain fastify with the same workers and load: what this machine's HTTP stack allows at best. */
async function httpCeiling(workers: number, seconds: number, connections: number): Promise<Workload> {
  const port = await freePort();
  const child = spawn(process.execPath, [path.join(HERE, "trivial-server.mjs"), String(port), String(workers)], { stdio: "ignore" });
  const url = `http://127.0.0.1:${port}`;
  try {
    for (let i = 0; ; i++) {
      try {
        if ((await fetch(`${url}/health`)).ok) break;
      } catch {
        if (i > 100) throw new Error("trivial server did not start");
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    await wrk(url, "none", { size: 0, seconds: 2, connections, prefix: "warm" });
    return await wrk(url, "none", { size: 0, seconds, connections, prefix: "ceiling" });
  } finally {
    child.kill("SIGTERM");
  }
}

export async function runIngestBench(opts: { seconds: number }): Promise<void> {
  const seconds = Math.max(3, Math.min(120, opts.seconds || 15));
  const databaseUrl = process.env.DATABASE_URL || undefined;
  const apiKey = "bench_" + Math.random().toString(36).slice(2) + Math.random().toString(36).slice(2);
  const runId = Date.now().toString(36);
  const dataDir = databaseUrl ? undefined : fs.mkdtempSync(path.join(os.tmpdir(), "vv-bench-"));
  const cores = os.availableParallelism();
  const workers = databaseUrl ? Math.max(1, Math.min(cores, Number(process.env.WORKERS) || cores)) : 1;
  const base: Record<string, string> = { VALUEVERSE_API_KEY: apiKey, INGEST_QUEUE_MAX: "1000000" };
  if (databaseUrl) base.DATABASE_URL = databaseUrl;
  else base.DATA_DIR = dataDir!;
  log(`${os.cpus()[0]?.model ?? "cpu"} x${cores}, ${Math.round(os.totalmem() / 2 ** 30)} GiB; ${databaseUrl ? "PostgreSQL" : "embedded PGlite"}; ${seconds}s per workload`);

  const results: Record<string, unknown> = {};
  let server = await startServer({ ...base, WORKERS: String(workers) }, log);
  try {
    log("warm-up (3 s)");
    await wrk(server.url, apiKey, { size: 0, seconds: 3, connections: 64, prefix: `${runId}-warm` });
    for (const [name, size, connections] of [
      ["single", 0, 256],
      ["batch100", 100, 16],
      ["batch1000", 1000, 8],
    ] as const) {
      log(`${name}: ${seconds}s, ${connections} connections`);
      results[name] = await wrk(server.url, apiKey, { size, seconds, connections, prefix: `${runId}-${name}` });
      log(`${name}: ${JSON.stringify(results[name])}`);
    }
  } finally {
    await server.stop();
  }

  server = await startServer({ ...base, WORKERS: String(workers), INGEST_MODE: "naive" }, log);
  try {
    await wrk(server.url, apiKey, { size: 0, seconds: 2, connections: 64, prefix: `${runId}-naivewarm` });
    log(`naive: ${seconds}s, 256 connections`);
    results.naive = await wrk(server.url, apiKey, { size: 0, seconds, connections: 256, prefix: `${runId}-naive` });
    log(`naive: ${JSON.stringify(results.naive)}`);
  } finally {
    await server.stop();
  }

  log(`http_ceiling: plain fastify, ${workers} worker(s), same single-event load`);
  results.http_ceiling = await httpCeiling(workers, seconds, 256);
  log(`http_ceiling: ${JSON.stringify(results.http_ceiling)}`);

  log("copy_ceiling: COPY into events (same table and indexes)");
  results.copy_ceiling = databaseUrl ? await copyCeilingPostgres(databaseUrl, seconds, workers) : await copyCeilingPglite(dataDir!, seconds);
  log(`copy_ceiling: ${JSON.stringify(results.copy_ceiling)}`);

  const single = results.single as Workload;
  const batch1000 = results.batch1000 as Workload;
  const naive = results.naive as Workload;
  const copy = results.copy_ceiling as { rows_per_s: number };
  const summary = {
    ...results,
    ratios: {
      single_vs_naive: Number((single.events_per_s / Math.max(1, naive.events_per_s)).toFixed(2)),
      single_vs_http_ceiling: Number((single.events_per_s / Math.max(1, (results.http_ceiling as Workload).events_per_s)).toFixed(2)),
      batch1000_vs_copy_ceiling: Number((batch1000.events_per_s / Math.max(1, copy.rows_per_s)).toFixed(2)),
    },
    machine: { cpus: cores, cpu_model: os.cpus()[0]?.model ?? "unknown", memory_gib: Math.round(os.totalmem() / 2 ** 30), node: process.version },
    database: databaseUrl ? "postgres" : "pglite",
    workers,
    seconds_per_workload: seconds,
  };
  if (dataDir) fs.rmSync(dataDir, { recursive: true, force: true });
  process.stdout.write(JSON.stringify(summary) + "\n");
}
