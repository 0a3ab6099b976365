// Starts the real server (`node bin/valueverse.mjs serve`) as a child process on 127.0.0.1, on an
// embedded PGlite DATA_DIR or on a fresh PostgreSQL database, and drives its life cycle: wait for
// /health, collect its logs, stop it with SIGTERM (then SIGKILL) or kill it outright.
import { spawn, type ChildProcess } from "node:child_process";
import crypto from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import pg from "pg";
import type { Db } from "../../src/db/db.ts";
import { openPglite } from "../../src/db/pglite.ts";
import { createPostgresDatabase, TEST_DATABASE_URL } from "../../test/helpers/db.ts";

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const BIN = path.join(ROOT, "bin", "valueverse.mjs");

export type DbKind = "pglite" | "postgres";
/** The database kind of this run: PostgreSQL when TEST_DATABASE_URL is set, embedded PGlite otherwise. */
export const E2E_DB_KIND: DbKind = TEST_DATABASE_URL ? "postgres" : "pglite";

export const randomKey = (prefix = "e2e_key_") => prefix + crypto.randomBytes(12).toString("hex");

// ---- databases ----------------------------------------------------------------------------------

/** Where a server keeps its data: a temp DATA_DIR (PGlite) or a fresh PostgreSQL database. */
export interface DataTarget {
  kind: DbKind;
  /** DATA_DIR given to the server (also set for PostgreSQL, so nothing lands in ./data). */
  dataDir: string;
  /** DATABASE_URL given to the server (PostgreSQL only). */
  databaseUrl?: string;
  /** Environment for the server process. */
  env: Record<string, string>;
  /**
   * Opens the database directly (for verification). For PGlite, only once no server runs on this
   * DATA_DIR (the embedded database belongs to one process); close it before starting one again.
   */
  openDb(): Promise<Db>;
  /** Removes the temp directory and drops the PostgreSQL database. */
  cleanup(): Promise<void>;
}

function tempDir(prefix: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

export async function createDataTarget(kind: DbKind = E2E_DB_KIND): Promise<DataTarget> {
  const dataDir = tempDir(`vv-e2e-${kind}-`);
  if (kind === "pglite") {
    return {
      kind,
      dataDir,
      env: { DATA_DIR: dataDir },
      openDb: () => openPglite({ dataDir: path.join(dataDir, "pg") }),
      async cleanup() {
        fs.rmSync(dataDir, { recursive: true, force: true });
      },
    };
  }
  if (!TEST_DATABASE_URL) throw new Error("a PostgreSQL target needs TEST_DATABASE_URL");
  const { url, drop } = await createPostgresDatabase(TEST_DATABASE_URL);
  return {
    kind,
    dataDir,
    databaseUrl: url,
    env: { DATA_DIR: dataDir, DATABASE_URL: url },
    openDb: () => openPostgresForCheck(url),
    async cleanup() {
      await drop();
      fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** A minimal Db over one pg client, for read-only checks (no pool, nothing left behind). */
async function openPostgresForCheck(url: string): Promise<Db> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  await client.query("SET TimeZone = 'UTC'");
  const query = async <T>(sql: string, params?: unknown[]) => {
    const r = await client.query(sql, params as unknown[]);
    return { rows: r.rows as T[], rowCount: r.rowCount ?? r.rows.length };
  };
  return {
    kind: "postgres",
    query,
    async transaction(fn) {
      await client.query("BEGIN");
      try {
        const out = await fn({ query });
        await client.query("COMMIT");
        return out;
      } catch (err) {
        await client.query("ROLLBACK");
        throw err;
      }
    },
    async exec(sql) {
      await client.query(sql);
    },
    poolStats: () => ({ total: 1, idle: 1, waiting: 0, max: 1 }),
    close: () => client.end(),
  };
}

// ---- server processes ---------------------------------------------------------------------------

export interface HealthProbe {
  /** Milliseconds since spawn. */
  atMs: number;
  status: number;
}

export interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface StartOptions {
  target: DataTarget;
  apiKey?: string;
  adminToken?: string;
  /** Extra environment (overrides the defaults). */
  env?: Record<string, string>;
  /** Wait for /health 200 (default true); otherwise only for the port to be known. */
  waitReady?: boolean;
  readyTimeoutMs?: number;
}

export interface ServerProcess {
  readonly child: ChildProcess;
  readonly pid: number;
  readonly apiKey: string;
  readonly adminToken: string | undefined;
  /** http://127.0.0.1:<port>, once known (after `started`). */
  url: string;
  port: number;
  /** Milliseconds from spawn to the first /health 200 (when waited for). */
  readyAfterMs: number | undefined;
  /** Every /health answer seen while waiting for readiness, in order. */
  readonly healthTrace: HealthProbe[];
  readonly exited: Promise<ExitInfo>;
  readonly exitInfo: ExitInfo | undefined;
  /** stdout + stderr so far (capped at the last few MB). */
  logs(): string;
  /** Parsed JSON log lines at or above pino level `minLevel` (50 = error). */
  logLines(minLevel?: number): Array<Record<string, unknown>>;
  waitReady(timeoutMs?: number): Promise<void>;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves with how it exited. */
  stop(graceMs?: number): Promise<ExitInfo>;
  /** SIGKILL now; resolves once the process is gone. */
  kill(): Promise<ExitInfo>;
}

const LOG_CAP = 4 << 20;
const running = new Set<ChildProcess>();

// Never leave a server behind, whatever happens to the test process.
process.once("exit", () => {
  for (const child of running) if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
});

/** Kills every server this process started that is still running (afterAll safety net). */
export async function killAllServers(): Promise<void> {
  const waits: Promise<unknown>[] = [];
  for (const child of running) {
    if (child.exitCode !== null || child.signalCode !== null) continue;
    waits.push(new Promise((resolve) => child.once("exit", resolve)));
    child.kill("SIGKILL");
  }
  await Promise.all(waits);
}

function childEnv(opts: StartOptions, apiKey: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  // Nothing from the test runner's own configuration leaks into the server under test.
  for (const k of Object.keys(env)) {
    if (k.startsWith("VITEST") || k.startsWith("VALUEVERSE_") || k.startsWith("DATABASE_") || k.startsWith("INGEST_")) delete env[k];
  }
  for (const k of ["DATABASE_URL", "TEST_DATABASE_URL", "DATA_DIR", "PORT", "HOST", "WORKERS", "NODE_OPTIONS", "NODE_ENV", "REDIS_URL"]) delete env[k];
  return {
    ...env,
    ...opts.target.env,
    HOST: "127.0.0.1",
    PORT: "0", // the kernel picks a free port; we read it from the "listening" log line
    LOG_LEVEL: "info",
    // The tests' webhook receivers listen on 127.0.0.1.
    WEBHOOK_PRIVATE_NETWORKS: "allow",
    VALUEVERSE_API_KEY: apiKey,
    ...(opts.adminToken ? { VALUEVERSE_ADMIN_TOKEN: opts.adminToken } : {}),
    ...opts.env,
  };
}

/** Spawns a server; by default resolves once /health answers 200 (within `readyTimeoutMs`). */
export async function startServer(opts: StartOptions): Promise<ServerProcess> {
  const apiKey = opts.apiKey ?? randomKey();
  const spawnedAt = performance.now();
  const child = spawn(process.execPath, [BIN, "serve"], {
    cwd: ROOT,
    env: childEnv(opts, apiKey),
    stdio: ["ignore", "pipe", "pipe"],
  });
  running.add(child);
  if (child.pid === undefined) throw new Error("could not spawn the server");

  let buf = "";
  let exitInfo: ExitInfo | undefined;
  let resolvePort!: (port: number) => void;
  let rejectPort!: (err: Error) => void;
  const portKnown = new Promise<number>((resolve, reject) => {
    resolvePort = resolve;
    rejectPort = reject;
  });
  portKnown.catch(() => {});
  const append = (chunk: Buffer) => {
    buf += chunk.toString("utf8");
    if (buf.length > LOG_CAP) buf = buf.slice(buf.length - LOG_CAP);
    const m = /Server listening at http:\/\/127\.0\.0\.1:(\d+)/.exec(buf);
    if (m) resolvePort(Number(m[1]));
  };
  child.stdout!.on("data", append);
  child.stderr!.on("data", append);
  const exited = new Promise<ExitInfo>((resolve) => {
    child.once("exit", (code, signal) => {
      exitInfo = { code, signal };
      running.delete(child);
      rejectPort(new Error(`the server exited (code ${code}, signal ${signal}) before listening\n${tail(buf)}`));
      resolve(exitInfo);
    });
  });

  const healthTrace: HealthProbe[] = [];
  const server: ServerProcess = {
    child,
    pid: child.pid,
    apiKey,
    adminToken: opts.adminToken,
    url: "",
    port: 0,
    readyAfterMs: undefined,
    healthTrace,
    exited,
    get exitInfo() {
      return exitInfo;
    },
    logs: () => buf,
    logLines(minLevel = 0) {
      const out: Array<Record<string, unknown>> = [];
      for (const line of buf.split("\n")) {
        if (!line.startsWith("{")) continue;
        try {
          const j = JSON.parse(line) as Record<string, unknown>;
          if (typeof j.level === "number" && j.level >= minLevel) out.push(j);
        } catch {
          /* a partial line */
        }
      }
      return out;
    },
    async waitReady(timeoutMs = opts.readyTimeoutMs ?? 30_000) {
      const deadline = spawnedAt + timeoutMs;
      const port = await withTimeout(portKnown, deadline - performance.now(), () => `the server did not listen within ${timeoutMs} ms\n${tail(buf)}`);
      server.port = port;
      server.url = `http://127.0.0.1:${port}`;
      while (performance.now() < deadline) {
        if (exitInfo) throw new Error(`the server exited (code ${exitInfo.code}, signal ${exitInfo.signal}) before it was ready\n${tail(buf)}`);
        let status = 0;
        try {
          const r = await fetch(`${server.url}/health`, { signal: AbortSignal.timeout(2000) });
          status = r.status;
          await r.arrayBuffer();
        } catch {
          status = 0; // not answering (yet)
        }
        healthTrace.push({ atMs: performance.now() - spawnedAt, status });
        if (status === 200) {
          server.readyAfterMs = performance.now() - spawnedAt;
          return;
        }
        await sleep(20);
      }
      throw new Error(`/health did not answer 200 within ${timeoutMs} ms; last: ${JSON.stringify(healthTrace.slice(-3))}\n${tail(buf)}`);
    },
    async stop(graceMs = 20_000) {
      if (exitInfo) return exitInfo;
      child.kill("SIGTERM");
      const timer = setTimeout(() => {
        if (!exitInfo) child.kill("SIGKILL");
      }, graceMs);
      const info = await exited;
      clearTimeout(timer);
      return info;
    },
    async kill() {
      if (exitInfo) return exitInfo;
      child.kill("SIGKILL");
      return exited;
    },
  };

  // Learn the port in any case (also for a server that is expected to fail to start).
  portKnown.then(
    (port) => {
      server.port = port;
      server.url = `http://127.0.0.1:${port}`;
    },
    () => {},
  );
  if (opts.waitReady !== false) {
    try {
      await server.waitReady();
    } catch (err) {
      await server.kill();
      throw err;
    }
  }
  return server;
}

export function tail(text: string, lines = 40): string {
  return text.split("\n").slice(-lines).join("\n");
}

/** `promise`, or a rejection with `message()` after `ms` (the timer is always cleared). */
export async function withTimeout<T>(promise: Promise<T>, ms: number, message: () => string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(message())), Math.max(0, ms));
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
