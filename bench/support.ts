// Helpers shared by the usage and catalog-ingest benchmarks: JSON calls to the API under test,
// percentiles, the empty-database check and a description of the machine.
import fs from "node:fs";
import os from "node:os";
import pg from "pg";

export type Log = (s: string) => void;

export class Api {
  constructor(
    readonly url: string,
    private readonly apiKey: string,
  ) {}

  /** One request; throws on anything but `expect` (200 by default), naming the route and the body. */
  async call<T = any>(method: "GET" | "POST" | "PUT" | "DELETE", route: string, body?: unknown, expect = 200): Promise<T> {
    let res: Response;
    let text: string;
    // A worker still starting answers 503 "starting" (another one already answered /health).
    for (let attempt = 0; ; attempt++) {
      res = await fetch(this.url + route, {
        method,
        headers: { authorization: `Bearer ${this.apiKey}`, ...(body === undefined ? {} : { "content-type": "application/json" }) },
        ...(body === undefined ? {} : { body: typeof body === "string" ? body : JSON.stringify(body) }),
      });
      text = await res.text();
      if (res.status !== 503 || !text.includes('"starting"') || attempt >= 300) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    if (res.status !== expect) throw new Error(`${method} ${route}: HTTP ${res.status} ${text.slice(0, 500)}`);
    return (text === "" ? null : JSON.parse(text)) as T;
  }
}

/** Nearest-rank percentile of an ascending array. */
export function percentile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
}

export const round2 = (x: number) => Math.round(x * 100) / 100;

export function latencySummary(ms: number[]): { p50_ms: number; p95_ms: number; p99_ms: number; min_ms: number; max_ms: number; mean_ms: number; requests: number } {
  const s = [...ms].sort((a, b) => a - b);
  return {
    p50_ms: round2(percentile(s, 0.5)),
    p95_ms: round2(percentile(s, 0.95)),
    p99_ms: round2(percentile(s, 0.99)),
    min_ms: round2(s[0] ?? NaN),
    max_ms: round2(s[s.length - 1] ?? NaN),
    mean_ms: round2(s.reduce((a, b) => a + b, 0) / Math.max(1, s.length)),
    requests: s.length,
  };
}

/** Refuses to run without DATABASE_URL or on a database that already holds events or a catalog. */
export async function requireEmptyDatabase(name: string): Promise<string> {
  const url = process.env.DATABASE_URL;
  if (!url) {
    process.stderr.write(`[${name}] DATABASE_URL is required (an empty PostgreSQL database; this benchmark writes millions of rows into it)\n`);
    process.exit(2);
  }
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    for (const table of ["events", "billable_metrics", "subscriptions"]) {
      const exists = (await c.query("SELECT to_regclass($1) IS NOT NULL AS e", [table])).rows[0].e as boolean;
      if (exists && (await c.query(`SELECT EXISTS (SELECT 1 FROM ${table}) AS e`)).rows[0].e) {
        process.stderr.write(`[${name}] DATABASE_URL must name an empty database: table ${table} has rows\n`);
        process.exit(2);
      }
    }
  } finally {
    await c.end();
  }
  return url;
}

export function machine(): Record<string, unknown> {
  return {
    cpus: os.availableParallelism(),
    cpu_model: os.cpus()[0]?.model ?? "unknown",
    memory_gib: Math.round(os.totalmem() / 2 ** 30),
    node: process.version,
    loadavg_1m_at_end: round2(os.loadavg()[0]!),
  };
}

export const loadavg = () => round2(os.loadavg()[0]!);

/** Runs `tasks` with at most `concurrency` in flight; resolves once all are done (fails on the first error). */
export async function pool<T>(count: number, concurrency: number, task: (i: number) => Promise<T>): Promise<T[]> {
  const out = new Array<T>(count);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(concurrency, count) }, async () => {
      while (next < count) {
        const i = next++;
        out[i] = await task(i);
      }
    }),
  );
  return out;
}

/** CPU time (clock ticks) of the whole machine, and per process, at one instant (Linux /proc). */
export interface CpuSnapshot {
  total: number;
  idle: number;
  /** pid -> command name (postgres backends all "postgres"), parent pid and ticks used so far. */
  byPid: Map<string, { name: string; ppid: string; ticks: number }>;
}

export function cpuSnapshot(): CpuSnapshot {
  const first = fs.readFileSync("/proc/stat", "utf8").split("\n")[0]!.trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal
  const total = first.slice(0, 8).reduce((a, b) => a + b, 0);
  const idle = first[3]! + (first[4] ?? 0);
  const byPid = new Map<string, { name: string; ppid: string; ticks: number }>();
  for (const pid of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(pid)) continue;
    let stat: string;
    try {
      stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
    } catch {
      continue; // exited meanwhile
    }
    const close = stat.lastIndexOf(")");
    const comm = stat.slice(stat.indexOf("(") + 1, close);
    const fields = stat.slice(close + 2).split(" ");
    // After "pid (comm) ", state is field 3 (1-based); utime and stime are fields 14 and 15: indexes 11 and 12 here.
    byPid.set(pid, { name: comm.startsWith("postgres") ? "postgres" : comm, ppid: fields[1]!, ticks: Number(fields[11]) + Number(fields[12]) });
  }
  return { total, idle, byPid };
}

/**
 * How busy the machine was between two snapshots (0..1), and the CPU seconds per command name
 * (postgres, node, wrk, ...) used meanwhile by the processes alive at both instants; the process
 * trees named in `trees` (name -> root pid, e.g. the server under test and its workers) are counted
 * under that name instead.
 */
export function cpuBetween(a: CpuSnapshot, b: CpuSnapshot, trees: Record<string, number> = {}): { busy: number; seconds: Record<string, number> } {
  const hz = 100; // USER_HZ on Linux
  const span = b.total - a.total;
  const treeOf = (pid: string): string | null => {
    for (let p = pid, depth = 0; p !== "0" && depth < 20; depth++) {
      for (const [name, root] of Object.entries(trees)) if (String(root) === p) return name;
      const parent = b.byPid.get(p)?.ppid;
      if (parent === undefined) return null;
      p = parent;
    }
    return null;
  };
  const seconds: Record<string, number> = {};
  for (const [pid, now] of b.byPid) {
    const before = a.byPid.get(pid);
    if (before === undefined || before.name !== now.name) continue;
    const name = treeOf(pid) ?? now.name;
    seconds[name] = (seconds[name] ?? 0) + (now.ticks - before.ticks) / hz;
  }
  for (const k of Object.keys(seconds)) {
    if (seconds[k]! < 0.05) delete seconds[k];
    else seconds[k] = round2(seconds[k]!);
  }
  return { busy: span > 0 ? round2(1 - (b.idle - a.idle) / span) : 0, seconds };
}
