// Server process CPU and memory, read from /proc (Linux). The server is found by the port it listens
// on (/proc/net/tcp{,6} → socket inode → the process holding it) or given by pid; its descendants
// (node:cluster workers) are counted with it.
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";

const CLK_TCK = (() => {
  try {
    const v = Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim());
    return v > 0 ? v : 100;
  } catch {
    return 100;
  }
})();

/** Socket inodes listening on `port` (any local address, IPv4 and IPv6). */
function listeningInodes(port: number): Set<string> {
  const inodes = new Set<string>();
  for (const file of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    let text: string;
    try {
      text = fs.readFileSync(file, "utf8");
    } catch {
      continue;
    }
    for (const line of text.split("\n").slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length < 10) continue;
      const local = f[1] ?? "";
      const state = f[3];
      const localPort = parseInt(local.slice(local.lastIndexOf(":") + 1), 16);
      if (state === "0A" && localPort === port && f[9] && f[9] !== "0") inodes.add(f[9]);
    }
  }
  return inodes;
}

function allPids(): number[] {
  return fs
    .readdirSync("/proc")
    .filter((n) => /^\d+$/.test(n))
    .map(Number);
}

/** Processes holding a socket listening on `port` (only those this user may inspect). */
export function pidsListeningOn(port: number): number[] {
  const inodes = listeningInodes(port);
  if (inodes.size === 0) return [];
  const wanted = new Set([...inodes].map((i) => `socket:[${i}]`));
  const found: number[] = [];
  for (const pid of allPids()) {
    if (pid === process.pid) continue;
    let fds: string[];
    try {
      fds = fs.readdirSync(`/proc/${pid}/fd`);
    } catch {
      continue;
    }
    for (const fd of fds) {
      try {
        if (wanted.has(fs.readlinkSync(`/proc/${pid}/fd/${fd}`))) {
          found.push(pid);
          break;
        }
      } catch {
        // fd closed meanwhile
      }
    }
  }
  return found;
}

interface Stat {
  ppid: number;
  ticks: number;
}

function readStat(pid: number): Stat | null {
  try {
    const s = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
    const f = s.slice(s.lastIndexOf(")") + 2).split(" ");
    // after "pid (comm) ": state ppid … utime(14th field) stime(15th)
    return { ppid: Number(f[1]), ticks: Number(f[11]) + Number(f[12]) };
  } catch {
    return null;
  }
}

function readRssBytes(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+)\s+kB/.exec(fs.readFileSync(`/proc/${pid}/status`, "utf8"));
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

/** The given pids and all their live descendants. */
export function withDescendants(roots: number[]): number[] {
  const children = new Map<number, number[]>();
  for (const pid of allPids()) {
    const st = readStat(pid);
    if (!st) continue;
    const list = children.get(st.ppid) ?? [];
    list.push(pid);
    children.set(st.ppid, list);
  }
  const out = new Set<number>();
  const stack = roots.filter((p) => fs.existsSync(`/proc/${p}`));
  for (let guard = 0; stack.length > 0 && guard < 10_000; guard++) {
    const p = stack.pop()!;
    if (out.has(p)) continue;
    out.add(p);
    stack.push(...(children.get(p) ?? []));
  }
  return [...out];
}

function readNumberFile(file: string): number | null {
  try {
    const v = fs.readFileSync(file, "utf8").trim();
    if (v === "max") return null;
    const n = Number(v.split(/\s+/)[0]);
    return Number.isFinite(n) ? n : null;
  } catch {
    return null;
  }
}

/** CPU cores and memory this machine (or its cgroup limit, when lower) offers. */
export function machineCapacity(): { cores: number; memoryBytes: number } {
  let cores = os.availableParallelism();
  const v2 = (() => {
    try {
      const [quota, period] = fs.readFileSync("/sys/fs/cgroup/cpu.max", "utf8").trim().split(/\s+/);
      return quota && quota !== "max" && period ? Number(quota) / Number(period) : null;
    } catch {
      return null;
    }
  })();
  const q1 = readNumberFile("/sys/fs/cgroup/cpu/cpu.cfs_quota_us");
  const p1 = readNumberFile("/sys/fs/cgroup/cpu/cpu.cfs_period_us");
  const v1 = q1 !== null && q1 > 0 && p1 ? q1 / p1 : null;
  for (const c of [v2, v1]) if (c !== null && c > 0 && c < cores) cores = c;
  let memoryBytes = os.totalmem();
  for (const m of [readNumberFile("/sys/fs/cgroup/memory.max"), readNumberFile("/sys/fs/cgroup/memory/memory.limit_in_bytes")]) {
    if (m !== null && m > 0 && m < memoryBytes) memoryBytes = m;
  }
  return { cores, memoryBytes };
}

export interface ProcSample {
  /** Share of the machine's CPU capacity used by the server processes over the interval, in %. */
  cpuPct: number;
  /** CPU cores' worth used over the interval. */
  cpuCores: number;
  rssBytes: number;
  pids: number;
}

/** Samples the summed CPU time and RSS of a process tree; call `sample()` about once a second. */
export class ProcSampler {
  private last = new Map<number, number>();
  private lastAt = performance.now();
  private pids: number[];
  readonly capacity = machineCapacity();

  constructor(private readonly roots: number[]) {
    this.pids = withDescendants(roots);
    for (const pid of this.pids) this.last.set(pid, readStat(pid)?.ticks ?? 0);
  }

  get currentPids(): number[] {
    return this.pids;
  }

  sample(refreshTree: boolean): ProcSample {
    if (refreshTree) this.pids = withDescendants(this.roots);
    const now = performance.now();
    const dt = Math.max(1e-3, (now - this.lastAt) / 1000);
    this.lastAt = now;
    let dticks = 0;
    let rss = 0;
    const next = new Map<number, number>();
    for (const pid of this.pids) {
      const st = readStat(pid);
      if (!st) continue;
      const prev = this.last.get(pid);
      if (prev !== undefined) dticks += Math.max(0, st.ticks - prev);
      next.set(pid, st.ticks);
      rss += readRssBytes(pid);
    }
    this.last = next;
    const cpuCores = dticks / CLK_TCK / dt;
    return { cpuPct: (cpuCores / this.capacity.cores) * 100, cpuCores, rssBytes: rss, pids: next.size };
  }
}
