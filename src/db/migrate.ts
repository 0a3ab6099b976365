// Versioned plain-SQL migrations: `NNNN_name.sql` in ./migrations, applied in order, recorded in
// schema_migrations. An advisory lock lets several processes start at once: each migration is applied
// exactly once, by whichever process holds the lock.
//
// Pending migrations run in one transaction under the lock, up to the first migration whose first line
// is `-- valueverse: no-transaction` (NO_TRANSACTION_HEADER). That transaction commits; the
// no-transaction migration then runs statement by statement, each committing by itself (what CREATE
// INDEX CONCURRENTLY needs), on one connection holding the same lock at session level, and is recorded
// once all its statements succeeded; the migrations after it continue in a new transaction. A failure
// midway leaves the migrations before it applied and recorded, and it pending: its statements must be
// safe to run again (`IF NOT EXISTS` / `IF EXISTS`; enforced for CREATE INDEX CONCURRENTLY). A concurrent
// index build that fails leaves an INVALID index behind; the runner drops it right away (best effort)
// and, on the next run, drops an INVALID index of the name a `CREATE INDEX CONCURRENTLY` is about to
// build before building it, so a re-run rebuilds it instead of `IF NOT EXISTS` skipping it.
//
// The lock is taken with pg_try_advisory_(xact_)lock, retried every LOCK_RETRY_MS, never by waiting
// inside PostgreSQL: a concurrent index build waits for every transaction whose snapshot is older than
// its own, and a process blocked in pg_advisory_lock keeps one open until it gets the lock, which the
// build's process holds — a deadlock. A polling process holds no snapshot between its tries.
import fs from "node:fs";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import type { Db, Queryable } from "./db.ts";

const MIGRATIONS_DIR = path.join(path.dirname(fileURLToPath(import.meta.url)), "migrations");
const LOCK_KEY = 7_221_001;
const LOCK_RETRY_MS = 100;

/** First line of a migration that runs outside a transaction (for CREATE INDEX CONCURRENTLY). */
export const NO_TRANSACTION_HEADER = "-- valueverse: no-transaction";

export interface Migration {
  version: number;
  name: string;
  sql: string;
}

export function listMigrations(dir = MIGRATIONS_DIR): Migration[] {
  return fs
    .readdirSync(dir)
    .filter((f) => /^\d{4}_[a-z0-9_]+\.sql$/.test(f))
    .sort()
    .map((f) => ({ version: Number(f.slice(0, 4)), name: f.slice(5, -4), sql: fs.readFileSync(path.join(dir, f), "utf8") }));
}

/** True when the migration's first line is NO_TRANSACTION_HEADER. */
export function isNoTransaction(m: Migration): boolean {
  return m.sql.split("\n", 1)[0]!.trim() === NO_TRANSACTION_HEADER;
}

const CONCURRENTLY = /^(?:CREATE\s+(?:UNIQUE\s+)?INDEX|DROP\s+INDEX|REINDEX\s+\w+)\s+CONCURRENTLY\b/i;
const CREATE_CONCURRENTLY = /^CREATE\s+(?:UNIQUE\s+)?INDEX\s+CONCURRENTLY\s+(IF\s+NOT\s+EXISTS\s+)?("(?:[^"]|"")+"|[A-Za-z_][\w$]*)/i;

/** Refuses, before anything runs, a migration the runner cannot apply safely. */
function check(m: Migration): void {
  const label = `migration ${String(m.version).padStart(4, "0")}_${m.name}`;
  const noTx = isNoTransaction(m);
  for (const statement of splitStatements(m.sql)) {
    if (!noTx && CONCURRENTLY.test(statement)) {
      throw new Error(`${label}: a CONCURRENTLY statement cannot run in a transaction; start the file with "${NO_TRANSACTION_HEADER}"`);
    }
    const create = CREATE_CONCURRENTLY.exec(statement);
    if (noTx && create && !create[1]) {
      throw new Error(`${label}: CREATE INDEX CONCURRENTLY needs IF NOT EXISTS (a re-run after a failure must skip what was built)`);
    }
  }
}

// Serialises migrate() calls on one handle within a process (PGlite's single connection would let two
// calls share the session lock).
const running = new WeakMap<Db, Promise<unknown>>();

/** Applies pending migrations; returns the versions applied now (by this call). */
export async function migrate(db: Db, migrations = listMigrations()): Promise<number[]> {
  for (const m of migrations) check(m);
  const before = running.get(db) ?? Promise.resolve();
  const run = before.catch(() => {}).then(() => migrateLocked(db, migrations));
  running.set(db, run);
  return run;
}

async function migrateLocked(db: Db, migrations: Migration[]): Promise<number[]> {
  const applied: number[] = [];
  for (;;) {
    // Transactional migrations, up to the first pending no-transaction one (returned).
    const step = await db.transaction(async (tx) => {
      const locked = await tx.query<{ ok: boolean }>("SELECT pg_try_advisory_xact_lock($1) AS ok", [LOCK_KEY]);
      if (!locked.rows[0]?.ok) return { locked: false as const };
      await tx.query(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version int PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())",
      );
      const done = await appliedVersions(tx);
      for (const m of migrations) {
        if (done.has(m.version)) continue;
        if (isNoTransaction(m)) return { locked: true as const, next: m };
        // Statements run one by one: the extended protocol takes a single statement per call.
        for (const statement of splitStatements(m.sql)) await tx.query(statement);
        await tx.query("INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", [m.version, m.name]);
        applied.push(m.version);
      }
      return { locked: true as const, next: null };
    });
    if (!step.locked) {
      await sleep(LOCK_RETRY_MS);
      continue;
    }
    if (step.next === null) return applied;
    if (await applyOutsideTransaction(db, migrations, step.next)) applied.push(step.next.version);
  }
}

async function appliedVersions(q: Queryable): Promise<Set<number>> {
  return new Set((await q.query<{ version: number }>("SELECT version FROM schema_migrations")).rows.map((r) => Number(r.version)));
}

/**
 * Runs `m` statement by statement on one connection holding the migrations lock at session level,
 * then records it. False when, once the lock is held, it is no longer the first pending migration
 * (another process applied it, or what precedes it, meanwhile): the caller looks again.
 */
async function applyOutsideTransaction(db: Db, migrations: Migration[], m: Migration): Promise<boolean> {
  if (db.session === undefined) throw new Error(`migration ${m.version}_${m.name} runs outside a transaction: this database handle cannot hold a session`);
  return db.session(async (conn) => {
    for (;;) {
      const locked = await conn.query<{ ok: boolean }>("SELECT pg_try_advisory_lock($1) AS ok", [LOCK_KEY]);
      if (locked.rows[0]?.ok) break;
      await sleep(LOCK_RETRY_MS);
    }
    let failed = true;
    try {
      const done = await appliedVersions(conn);
      const first = migrations.find((x) => !done.has(x.version));
      if (first !== m) {
        failed = false;
        return false;
      }
      for (const statement of splitStatements(m.sql)) {
        const create = CREATE_CONCURRENTLY.exec(statement);
        if (create) await dropIfInvalid(conn, create[2]!);
        try {
          await conn.query(statement);
        } catch (err) {
          if (create) await dropIfInvalid(conn, create[2]!).catch(() => {});
          throw err;
        }
      }
      await conn.query("INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", [m.version, m.name]);
      failed = false;
      return true;
    } finally {
      // After a failure the first error is the one reported; session() then closes the connection.
      const unlock = conn.query("SELECT pg_advisory_unlock($1)", [LOCK_KEY]);
      if (failed) await unlock.catch(() => {});
      else await unlock;
    }
  });
}

/** Drops the index `name` (as written in the SQL) when it exists and is INVALID (a failed concurrent build). */
async function dropIfInvalid(conn: Queryable, name: string): Promise<void> {
  const { rows } = await conn.query<{ invalid: boolean }>(
    "SELECT NOT i.indisvalid AS invalid FROM pg_index i WHERE i.indexrelid = to_regclass($1)",
    [name],
  );
  if (rows[0]?.invalid) await conn.query(`DROP INDEX CONCURRENTLY IF EXISTS ${name}`);
}

/** Splits on semicolons at line ends outside dollar-quoted bodies; comments are dropped. */
export function splitStatements(sql: string): string[] {
  const out: string[] = [];
  let current = "";
  let inDollar = false;
  for (const line of sql.split("\n")) {
    const trimmed = line.trim();
    if (!inDollar && (trimmed.startsWith("--") || trimmed === "")) continue;
    const dollars = line.match(/\$\$/g)?.length ?? 0;
    if (dollars % 2 === 1) inDollar = !inDollar;
    current += line + "\n";
    if (!inDollar && trimmed.endsWith(";")) {
      out.push(current.trim());
      current = "";
    }
  }
  if (current.trim()) out.push(current.trim());
  return out;
}
