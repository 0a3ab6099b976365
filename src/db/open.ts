import fs from "node:fs";
import path from "node:path";
import type { Config } from "../shared/config.ts";
import type { Db } from "./db.ts";
import { openPglite } from "./pglite.ts";
import { openPostgres } from "./postgres.ts";

/** PostgreSQL when DATABASE_URL is set, otherwise the embedded database in DATA_DIR. */
export async function openDatabase(config: Config): Promise<Db> {
  if (config.databaseUrl) {
    return openPostgres({ url: config.databaseUrl, ...config.pool });
  }
  const release = lockDataDir(config.dataDir);
  try {
    const db = await openPglite({ dataDir: path.join(config.dataDir, "pg") });
    const close = db.close.bind(db);
    db.close = async () => {
      await close();
      release();
    };
    return db;
  } catch (err) {
    release();
    throw err;
  }
}

/**
 * The read replica's pool (DATABASE_READ_URL), or null. Short client-side limits: a replica that
 * cannot connect within 5 s or answer a query within DATABASE_POOL_TIMEOUT_MS is given up on, and the
 * primary answers instead (src/db/replica.ts).
 */
export function openReadReplica(config: Config): Db | null {
  if (!config.databaseReadUrl) return null;
  return openPostgres({
    url: config.databaseReadUrl,
    ...config.pool,
    applicationName: "valueverse-read",
    connectTimeoutMs: Math.min(config.pool.timeoutMs, 5_000),
    queryTimeoutMs: config.pool.timeoutMs,
  });
}

/** The embedded database belongs to one process: a second server on the same DATA_DIR is refused. */
function lockDataDir(dir: string): () => void {
  fs.mkdirSync(dir, { recursive: true });
  const lock = path.join(dir, "valueverse.pid");
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      fs.writeFileSync(lock, String(process.pid), { flag: "wx" });
      return () => fs.rmSync(lock, { force: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
      const pid = Number(fs.readFileSync(lock, "utf8"));
      if (pid && pid !== process.pid && isAlive(pid)) {
        throw new Error(`DATA_DIR ${dir} is in use by process ${pid}; the embedded database belongs to one process`);
      }
      fs.rmSync(lock, { force: true }); // stale: its process is gone
    }
  }
  throw new Error(`could not lock DATA_DIR ${dir}`);
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}
