// A real NATS JetStream cluster on 127.0.0.1 for tests and benchmarks: N `nats-server -js` processes
// with routes to each other, private store directories under one temp directory, free ports. Nodes
// can be killed (SIGKILL) one by one; `stop()` ends them all and removes the directory.
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import crypto from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { connect } from "nats";

/** The nats-server binary: NATS_SERVER_BIN, else the Debian package's, else the PATH's; null when none. */
export function natsServerBinary(): string | null {
  const candidates = [process.env.NATS_SERVER_BIN, "/usr/sbin/nats-server", "/usr/bin/nats-server"].filter((x): x is string => !!x);
  for (const c of candidates) if (fs.existsSync(c)) return c;
  const found = spawnSync("sh", ["-c", "command -v nats-server"], { encoding: "utf8" });
  return found.status === 0 && found.stdout.trim() !== "" ? found.stdout.trim() : null;
}

// One free-port helper for the benchmarks and the e2e tests.
import { freePort } from "../../bench/server.ts";
export { freePort };

export interface NatsNode {
  name: string;
  url: string;
  child: ChildProcess;
  /** stdout + stderr so far (last 1 MB). */
  logs(): string;
  readonly alive: boolean;
  /** SIGKILL; resolves once the process is gone. */
  kill(): Promise<void>;
}

export interface NatsCluster {
  nodes: NatsNode[];
  /** Every node's URL, comma-separated (NATS_URL). */
  url: string;
  dir: string;
  stop(): Promise<void>;
}

const running = new Set<ChildProcess>();
process.once("exit", () => {
  for (const child of running) if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
});

/** Starts `size` clustered JetStream servers and waits until JetStream answers (its meta leader is elected). */
export async function startNatsCluster(size = 3, opts: { readyTimeoutMs?: number } = {}): Promise<NatsCluster> {
  const bin = natsServerBinary();
  if (bin === null) throw new Error("nats-server is not installed (Debian package nats-server)");
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "vv-nats-"));
  const clusterName = `vv-${crypto.randomBytes(3).toString("hex")}`;
  const ports = await Promise.all(Array.from({ length: size }, async () => ({ client: await freePort(), cluster: await freePort() })));
  const nodes: NatsNode[] = ports.map((p, i) => {
    const name = `${clusterName}-n${i + 1}`;
    const args = ["-a", "127.0.0.1", "-p", String(p.client), "-n", name, "-js", "-sd", path.join(dir, `n${i + 1}`)];
    if (size > 1) {
      const routes = ports.filter((_, j) => j !== i).map((q) => `nats://127.0.0.1:${q.cluster}`).join(",");
      args.push("--cluster_name", clusterName, "--cluster", `nats://127.0.0.1:${p.cluster}`, "--routes", routes);
    }
    const child = spawn(bin, args, { stdio: ["ignore", "pipe", "pipe"] });
    running.add(child);
    child.once("exit", () => running.delete(child));
    let buf = "";
    const append = (d: Buffer) => {
      buf += d.toString("utf8");
      if (buf.length > 1 << 20) buf = buf.slice(-(1 << 19));
    };
    child.stdout!.on("data", append);
    child.stderr!.on("data", append);
    const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
    return {
      name,
      url: `nats://127.0.0.1:${p.client}`,
      child,
      logs: () => buf,
      get alive() {
        return child.exitCode === null && child.signalCode === null;
      },
      async kill() {
        if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
        await exited;
      },
    };
  });
  const cluster: NatsCluster = {
    nodes,
    url: nodes.map((n) => n.url).join(","),
    dir,
    async stop() {
      await Promise.all(nodes.map((n) => n.kill()));
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
  try {
    await waitForJetStream(cluster.url, opts.readyTimeoutMs ?? 30_000);
  } catch (err) {
    const logs = nodes.map((n) => `--- ${n.name}\n${n.logs().split("\n").slice(-15).join("\n")}`).join("\n");
    await cluster.stop();
    throw new Error(`${(err as Error).message}\n${logs}`);
  }
  return cluster;
}

/** Resolves once a JetStream API request succeeds through `url` (a meta leader exists). */
export async function waitForJetStream(url: string, timeoutMs: number): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  let last: unknown;
  while (performance.now() < deadline) {
    try {
      const nc = await connect({ servers: url.split(","), timeout: 2_000 });
      try {
        const jsm = await nc.jetstreamManager({ timeout: 2_000 });
        await jsm.getAccountInfo();
        return;
      } finally {
        await nc.close();
      }
    } catch (err) {
      last = err;
      await new Promise((r) => setTimeout(r, 200));
    }
  }
  throw new Error(`JetStream did not become ready within ${timeoutMs} ms: ${(last as Error)?.message ?? last}`);
}
