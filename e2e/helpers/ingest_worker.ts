// Starts `valueverse ingest-worker` as a child process (INGEST_MODE=jetstream's consumer), waits for
// its "ready" log line, and can stop (SIGTERM) or kill (SIGKILL) it.
import { spawn, type ChildProcess } from "node:child_process";
import path from "node:path";
import { ROOT, withTimeout } from "./server.ts";

export interface IngestWorkerProcess {
  child: ChildProcess;
  pid: number;
  /** http://127.0.0.1:<port> of its /metrics and /health. */
  metricsUrl: string;
  logs(): string;
  /** Parsed JSON log lines at or above pino level `minLevel`. */
  logLines(minLevel?: number): Array<Record<string, unknown>>;
  stop(graceMs?: number): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  kill(): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

const running = new Set<ChildProcess>();
process.once("exit", () => {
  for (const child of running) if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
});

export async function startIngestWorker(env: Record<string, string>, readyTimeoutMs = 60_000): Promise<IngestWorkerProcess> {
  const base: NodeJS.ProcessEnv = { ...process.env };
  for (const k of Object.keys(base)) {
    if (/^(VITEST|VALUEVERSE_|DATABASE_|INGEST_|NATS_|WEBHOOK_)/.test(k)) delete base[k];
  }
  for (const k of ["TEST_DATABASE_URL", "DATA_DIR", "NODE_OPTIONS", "NODE_ENV"]) delete base[k];
  const child = spawn(process.execPath, [path.join(ROOT, "bin", "valueverse.mjs"), "ingest-worker", "--metrics-port", "0", "--metrics-host", "127.0.0.1"], {
    cwd: ROOT,
    env: { ...base, LOG_LEVEL: "info", WEBHOOK_PRIVATE_NETWORKS: "allow", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  if (child.pid === undefined) throw new Error("could not spawn the ingest worker");
  running.add(child);
  let buf = "";
  let resolveReady!: (port: number) => void;
  let rejectReady!: (err: Error) => void;
  const ready = new Promise<number>((resolve, reject) => {
    resolveReady = resolve;
    rejectReady = reject;
  });
  ready.catch(() => {});
  const append = (d: Buffer) => {
    buf += d.toString("utf8");
    if (buf.length > 4 << 20) buf = buf.slice(-(2 << 20));
    const m = /"metrics_port":(\d+)[^\n]*"msg":"ingest worker ready"/.exec(buf);
    if (m) resolveReady(Number(m[1]));
  };
  child.stdout!.on("data", append);
  child.stderr!.on("data", append);
  let exitInfo: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once("exit", (code, signal) => {
      running.delete(child);
      exitInfo = { code, signal };
      rejectReady(new Error(`the ingest worker exited (code ${code}, signal ${signal}) before it was ready\n${buf.slice(-4000)}`));
      resolve(exitInfo);
    });
  });
  let port: number;
  try {
    port = await withTimeout(ready, readyTimeoutMs, () => `the ingest worker was not ready within ${readyTimeoutMs} ms\n${buf.slice(-4000)}`);
  } catch (err) {
    child.kill("SIGKILL");
    throw err;
  }
  return {
    child,
    pid: child.pid,
    metricsUrl: `http://127.0.0.1:${port}`,
    logs: () => buf,
    logLines(minLevel = 0) {
      const out: Array<Record<string, unknown>> = [];
      for (const line of buf.split("\n")) {
        if (!line.startsWith("{")) continue;
        try {
          const j = JSON.parse(line) as Record<string, unknown>;
          if (typeof j.level === "number" && j.level >= minLevel) out.push(j);
        } catch {
          /* partial line */
        }
      }
      return out;
    },
    async stop(graceMs = 30_000) {
      if (exitInfo) return exitInfo;
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), graceMs);
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
}
