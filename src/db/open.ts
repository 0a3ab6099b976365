import fs from "node:fs";
import path from "node:path";
import type { Config } from "../shared/config.ts";
import type { Db } from "./db.ts";
import { openPglite } from "./pglite.ts";
import { DEFAULT_TEMPLATE_CACHE_DIR, copyTemplate, ensureTemplate, isFreshPgDir } from "./pglite_template.ts";
import { openPostgres } from "./postgres.ts";

/** Where opening the database reports how it went (fastify's / pino's logger fits). */
export interface OpenLog {
  info(fields: object, msg: string): void;
  warn(fields: object, msg: string): void;
}

const quiet: OpenLog = { info() {}, warn() {} };

/** PostgreSQL when DATABASE_URL is set, otherwise the embedded database in DATA_DIR. */
export async function openDatabase(config: Config, log: OpenLog = quiet): Promise<Db> {
  if (config.databaseUrl) {
    return openPostgres({ url: config.databaseUrl, ...config.pool });
  }
  const release = lockDataDir(config.dataDir);
  try {
    const db = await openEmbedded(path.join(config.dataDir, "pg"), log);
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
 * Opens the PGlite database in `pgDir`. A new one starts as a copy of the migrated template
 * (src/db/pglite_template.ts) instead of an initdb plus every migration; an existing one is opened
 * as it is (and migrated by the caller). Without a usable template, PGlite initialises it as before.
 */
export async function openEmbedded(pgDir: string, log: OpenLog = quiet, templateCacheDir = DEFAULT_TEMPLATE_CACHE_DIR): Promise<Db> {
  const template = isFreshPgDir(pgDir) ? await copyFromTemplate(pgDir, log, templateCacheDir) : null;
  if (template === null) return openPglite({ dataDir: pgDir });
  let db: Db;
  try {
    db = await openPglite({ dataDir: pgDir });
  } catch (err) {
    // A copy that does not open holds nothing of the operator's yet: drop it and the template.
    log.warn({ err, template }, "the copy of the migrated PGlite template does not open; initialising the data directory from scratch");
    fs.rmSync(pgDir, { recursive: true, force: true });
    fs.rmSync(path.dirname(template), { recursive: true, force: true });
    return openPglite({ dataDir: pgDir });
  }
  try {
    // As if the migrations had run now, on this database (the template ran them when it was built).
    await db.query("UPDATE schema_migrations SET applied_at = now()");
  } catch (err) {
    await db.close();
    throw err;
  }
  return db;
}

async function copyFromTemplate(pgDir: string, log: OpenLog, cacheDir: string): Promise<string | null> {
  const started = performance.now();
  try {
    const { dir, built } = await ensureTemplate(cacheDir);
    await copyTemplate(dir, pgDir);
    log.info({ template: dir, template_built: built, ms: Math.round(performance.now() - started) }, "new data directory created from the migrated PGlite template");
    return dir;
  } catch (err) {
    log.warn({ err, cache: cacheDir }, "cannot use a migrated PGlite template; initialising the data directory from scratch");
    fs.rmSync(pgDir, { recursive: true, force: true });
    return null;
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
