// A real PostgreSQL streaming replica of the test cluster (TEST_DATABASE_URL), for the read-replica
// tests: pg_basebackup -R with its own replication slot into a temp directory, started on a free
// port on 127.0.0.1; it can be killed (immediate shutdown) and started again, and its WAL replay
// paused so that it visibly lags. `destroy()` stops it, removes its files and drops its slot.
import { execFile } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import pg from "pg";

const run = promisify(execFile);

const SLOT_PREFIX = "vv_test_replica_";

function binDir(): string {
  const root = "/usr/lib/postgresql";
  const versions = fs.existsSync(root) ? fs.readdirSync(root).filter((v) => fs.existsSync(path.join(root, v, "bin", "pg_basebackup"))) : [];
  versions.sort((a, b) => Number(b) - Number(a));
  if (versions[0] === undefined) throw new Error("PostgreSQL server binaries not found under /usr/lib/postgresql (apt-get install postgresql)");
  return path.join(root, versions[0], "bin");
}

/** PostgreSQL refuses to run as root: as root, its tools run as the postgres user. */
async function pgTool(tool: string, args: string[]): Promise<string> {
  const bin = path.join(binDir(), tool);
  const [file, argv] = process.getuid?.() === 0 ? ["runuser", ["-u", "postgres", "--", bin, ...args]] : [bin, args];
  const { stdout } = await run(file, argv, { maxBuffer: 1 << 22 });
  return stdout;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
    s.on("error", reject);
  });
}

async function withClient<T>(url: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5_000 });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface Replica {
  port: number;
  /** `databaseUrl` (a database on the primary) with the replica's host and port. */
  urlFor(databaseUrl: string): string;
  /** Kills the replica at once (`pg_ctl stop -m immediate`): open connections drop, new ones are refused. */
  kill(): Promise<void>;
  /** Starts it again; it resumes streaming from where it stopped. */
  start(): Promise<void>;
  /** Stops replaying WAL (the replica answers, from the past); resolves once replay is paused. */
  pauseReplay(): Promise<void>;
  resumeReplay(): Promise<void>;
  /** Resolves once the replica has replayed everything the primary had written when called. */
  waitCaughtUp(timeoutMs?: number): Promise<void>;
  destroy(): Promise<void>;
}

export async function startReplica(primaryAdminUrl: string): Promise<Replica> {
  const primary = new URL(primaryAdminUrl);
  // Slots of earlier runs that died before cleaning up would keep WAL forever.
  await withClient(primaryAdminUrl, (c) =>
    c.query(`SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name LIKE '${SLOT_PREFIX}%' AND NOT active`),
  );
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "vv-replica-"));
  if (process.getuid?.() === 0) fs.chownSync(dir, Number((await run("id", ["-u", "postgres"])).stdout.trim()), Number((await run("id", ["-g", "postgres"])).stdout.trim()));
  fs.chmodSync(dir, 0o700);
  const slot = `${SLOT_PREFIX}${process.pid}_${Date.now().toString(36)}`;
  const port = await freePort();
  let started = false;

  const destroy = async () => {
    if (started) await pgTool("pg_ctl", ["-D", dir, "-m", "immediate", "-w", "stop"]).catch(() => {});
    started = false;
    fs.rmSync(dir, { recursive: true, force: true });
    await withClient(primaryAdminUrl, async (c) => {
      // The walsender of a just-killed replica takes a moment to let go of its slot.
      for (let i = 0; i < 50; i++) {
        const { rows } = await c.query("SELECT active FROM pg_replication_slots WHERE slot_name = $1", [slot]);
        if (rows.length === 0) return;
        if (!rows[0].active) {
          await c.query("SELECT pg_drop_replication_slot($1)", [slot]);
          return;
        }
        await sleep(100);
      }
    }).catch(() => {});
  };

  try {
    await pgTool("pg_basebackup", ["-h", primary.hostname, "-p", primary.port || "5432", "-U", decodeURIComponent(primary.username || "postgres"), "-D", dir, "-R", "-X", "stream", "-c", "fast", "-C", "-S", slot]);
    fs.appendFileSync(
      path.join(dir, "postgresql.conf"),
      [
        "# read-replica test: its own port and socket directory, smaller memory",
        `port = ${port}`,
        "listen_addresses = '127.0.0.1'",
        `unix_socket_directories = '${dir}'`,
        "shared_buffers = 128MB",
        "hot_standby = on",
        "",
      ].join("\n"),
    );
  } catch (err) {
    await destroy();
    throw err;
  }

  const replicaAdmin = new URL(primaryAdminUrl);
  replicaAdmin.port = String(port);
  const admin = replicaAdmin.toString();

  const replica: Replica = {
    port,
    urlFor(databaseUrl) {
      const u = new URL(databaseUrl);
      u.hostname = "127.0.0.1";
      u.port = String(port);
      return u.toString();
    },
    async kill() {
      await pgTool("pg_ctl", ["-D", dir, "-m", "immediate", "-w", "stop"]);
      started = false;
    },
    async start() {
      await pgTool("pg_ctl", ["-D", dir, "-l", path.join(dir, "server.log"), "-w", "-t", "60", "start"]);
      started = true;
      // Accepting connections once consistent (hot standby); wait until a query answers.
      for (let i = 0; ; i++) {
        try {
          await withClient(admin, (c) => c.query("SELECT 1"));
          return;
        } catch (err) {
          if (i > 100) throw err;
          await sleep(100);
        }
      }
    },
    async pauseReplay() {
      await withClient(admin, async (c) => {
        await c.query("SELECT pg_wal_replay_pause()");
        for (let i = 0; i < 100; i++) {
          if ((await c.query("SELECT pg_get_wal_replay_pause_state() AS s")).rows[0].s === "paused") return;
          await sleep(50);
        }
        throw new Error("WAL replay did not pause");
      });
    },
    async resumeReplay() {
      await withClient(admin, (c) => c.query("SELECT pg_wal_replay_resume()"));
    },
    async waitCaughtUp(timeoutMs = 30_000) {
      const lsn = await withClient(primaryAdminUrl, async (c) => (await c.query("SELECT pg_current_wal_lsn()::text AS l")).rows[0].l as string);
      const deadline = Date.now() + timeoutMs;
      await withClient(admin, async (c) => {
        while (Date.now() < deadline) {
          const { rows } = await c.query("SELECT pg_last_wal_replay_lsn() >= $1::pg_lsn AS ok", [lsn]);
          if (rows[0].ok) return;
          await sleep(20);
        }
        throw new Error(`the replica did not replay up to ${lsn} within ${timeoutMs} ms`);
      });
    },
    destroy,
  };
  try {
    await replica.start();
  } catch (err) {
    await destroy();
    throw err;
  }
  return replica;
}
