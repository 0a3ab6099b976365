import fs from "node:fs";
import { PGlite } from "@electric-sql/pglite";
import type { Db, Queryable, QueryResult } from "./db.ts";

export interface PgliteOptions {
  /** Directory of the database files; undefined keeps the database in memory (tests). */
  dataDir?: string;
  /** A data directory dump (PGlite `dumpDataDir`) to start from instead of a fresh initdb. */
  loadDataDir?: Blob;
}

// PGlite parses int8 to bigint/number and numeric to string; normalise int8 to strings so both
// drivers hand the services the same shapes.
const parsers = { 20: (v: string) => v, 1700: (v: string) => v };

export async function openPglite(opts: PgliteOptions = {}): Promise<Db> {
  if (opts.dataDir) fs.mkdirSync(opts.dataDir, { recursive: true });
  const pglite = await PGlite.create({
    ...(opts.dataDir ? { dataDir: opts.dataDir } : {}),
    ...(opts.loadDataDir ? { loadDataDir: opts.loadDataDir } : {}),
    parsers,
  });
  await pglite.exec("SET TimeZone = 'UTC'");

  const wrap = (q: { query: PGlite["query"] }): Queryable => ({
    async query<T>(sql: string, params?: unknown[]): Promise<QueryResult<T>> {
      const r = await q.query<T>(sql, params);
      // PGlite reports affectedRows 0 for a SELECT; node-postgres counts the rows returned.
      return { rows: r.rows, rowCount: r.fields.length > 0 ? r.rows.length : (r.affectedRows ?? 0) };
    },
  });

  return {
    kind: "pglite",
    ...wrap(pglite),
    transaction: <T>(fn: (tx: Queryable) => Promise<T>) => pglite.transaction((tx) => fn(wrap(tx))),
    async exec(sql: string) {
      await pglite.exec(sql);
    },
    // One connection: the session is the database itself.
    session: <T>(fn: (conn: Queryable) => Promise<T>) => fn(wrap(pglite)),
    poolStats: () => ({ total: 1, idle: 1, waiting: 0, max: 1 }),
    async close() {
      await pglite.close();
    },
    // Exposed for the test template (dumpDataDir); not part of the Db contract.
    ...({ pglite } as object),
  };
}
