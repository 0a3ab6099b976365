import pg from "pg";
import type { Db, PoolStats, Queryable, QueryOptions, QueryResult } from "./db.ts";

export interface PostgresOptions {
  url: string;
  size: number;
  maxOverflow: number;
  timeoutMs: number;
  recycleMs: number;
  applicationName?: string;
  /** Client-side limits (a replica that stops answering is given up on): connecting, and one query. */
  connectTimeoutMs?: number;
  queryTimeoutMs?: number;
}

// int8 and numeric stay strings (exact); timestamps stay Date. Money never passes through a float.
pg.types.setTypeParser(20, (v) => v);
pg.types.setTypeParser(1700, (v) => v);

export function openPostgres(opts: PostgresOptions): Db {
  // The brief's pool: `size` connections kept, up to `maxOverflow` more under burst; overflow
  // connections close after a short idle time, every connection is recycled after `recycleMs`.
  const pool = new pg.Pool({
    connectionString: opts.url,
    max: opts.size + opts.maxOverflow,
    min: Math.min(opts.size, 2),
    idleTimeoutMillis: 10_000,
    connectionTimeoutMillis: opts.connectTimeoutMs ?? opts.timeoutMs,
    ...(opts.queryTimeoutMs !== undefined ? { query_timeout: opts.queryTimeoutMs } : {}),
    maxLifetimeSeconds: Math.max(1, Math.round(opts.recycleMs / 1000)),
    application_name: opts.applicationName ?? "valueverse",
    options: "-c TimeZone=UTC",
  });
  // An idle client losing its connection must not crash the process; the pool replaces it.
  pool.on("error", () => {});

  const wrap = (q: pg.Pool | pg.PoolClient): Queryable => ({
    async query<T>(sql: string, params?: unknown[], opts?: QueryOptions): Promise<QueryResult<T>> {
      const r = opts?.prepare
        ? await q.query({ name: opts.prepare, text: sql, values: params as unknown[] | undefined })
        : await q.query(sql, params as unknown[] | undefined);
      return { rows: r.rows as T[], rowCount: r.rowCount ?? 0 };
    },
  });

  const db: Db = {
    kind: "postgres",
    ...wrap(pool),
    async transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T> {
      const client = await pool.connect();
      try {
        await client.query("BEGIN");
        const result = await fn(wrap(client));
        await client.query("COMMIT");
        return result;
      } catch (err) {
        await client.query("ROLLBACK").catch(() => {});
        throw err;
      } finally {
        client.release();
      }
    },
    async exec(sql: string) {
      await pool.query(sql);
    },
    async session<T>(fn: (conn: Queryable) => Promise<T>): Promise<T> {
      const client = await pool.connect();
      let failed = false;
      try {
        return await fn(wrap(client));
      } catch (err) {
        failed = true;
        throw err;
      } finally {
        // A failed session's connection is closed: a session lock or setting it left dies with it.
        client.release(failed);
      }
    },
    poolStats(): PoolStats {
      return { total: pool.totalCount, idle: pool.idleCount, waiting: pool.waitingCount, max: opts.size + opts.maxOverflow };
    },
    async close() {
      await pool.end();
    },
  };
  return db;
}
