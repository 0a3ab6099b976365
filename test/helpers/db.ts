// Test databases: embedded PGlite loaded from a migrated template (a fresh initdb takes seconds),
// or, when TEST_DATABASE_URL is set, a new database on that PostgreSQL server per call.
import crypto from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import pg from "pg";
import type { Db } from "../../src/db/db.ts";
import { listMigrations, migrate } from "../../src/db/migrate.ts";
import { openPglite } from "../../src/db/pglite.ts";
import { openPostgres } from "../../src/db/postgres.ts";

export const TEST_DATABASE_URL = process.env.TEST_DATABASE_URL || undefined;
export const DB_KIND: "postgres" | "pglite" = TEST_DATABASE_URL ? "postgres" : "pglite";

const TMP = path.resolve(".tmp");

/** Template file name changes whenever a migration changes, so a stale template is never used. */
export function templatePath(): string {
  const digest = crypto.createHash("sha256");
  for (const m of listMigrations()) digest.update(m.name + m.sql);
  return path.join(TMP, `pglite-template-${digest.digest("hex").slice(0, 12)}.tar`);
}

export async function ensurePgliteTemplate(): Promise<string> {
  const file = templatePath();
  if (fs.existsSync(file)) return file;
  fs.mkdirSync(TMP, { recursive: true });
  const db = await openPglite();
  await migrate(db);
  const dump = await (db as unknown as { pglite: { dumpDataDir(c: "none"): Promise<Blob> } }).pglite.dumpDataDir("none");
  const tmp = `${file}.${process.pid}`;
  fs.writeFileSync(tmp, Buffer.from(await dump.arrayBuffer()));
  fs.renameSync(tmp, file);
  await db.close();
  return file;
}

/** A new, migrated, empty database. `close()` releases (and on PostgreSQL drops) it. */
export async function openTestDb(): Promise<Db & { url?: string }> {
  if (TEST_DATABASE_URL) return openPostgresTestDb(TEST_DATABASE_URL);
  const file = await ensurePgliteTemplate();
  const db = await openPglite({ loadDataDir: new Blob([fs.readFileSync(file)]) });
  await migrate(db);
  return db;
}

export async function createPostgresDatabase(adminUrl: string): Promise<{ url: string; drop: () => Promise<void> }> {
  const name = `vv_test_${process.pid}_${crypto.randomBytes(4).toString("hex")}`;
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    async drop() {
      const c = new pg.Client({ connectionString: adminUrl });
      await c.connect();
      await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await c.end();
    },
  };
}

async function openPostgresTestDb(adminUrl: string): Promise<Db & { url: string }> {
  const { url, drop } = await createPostgresDatabase(adminUrl);
  const db = openPostgres({ url, size: 5, maxOverflow: 10, timeoutMs: 10_000, recycleMs: 600_000 });
  await migrate(db);
  const close = db.close.bind(db);
  return Object.assign(db, {
    url,
    async close() {
      await close();
      await drop();
    },
  });
}
