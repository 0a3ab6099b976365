import type { Db, PoolStats, Queryable, QueryOptions } from "./db.ts";
import { AppError } from "../shared/errors.ts";

/**
 * A Db whose connection arrives later: the server listens (and answers /health with 503) while the
 * embedded database opens and migrations run; services are wired up front against this handle.
 */
export class DeferredDb implements Db {
  private inner: Db | null = null;

  get kind(): Db["kind"] {
    return this.target().kind;
  }
  set(db: Db): void {
    this.inner = db;
  }
  get isSet(): boolean {
    return this.inner !== null;
  }
  private target(): Db {
    if (this.inner === null) throw new AppError("unavailable", "starting", "the server is starting", undefined, { "retry-after": "1" });
    return this.inner;
  }
  query<T>(sql: string, params?: unknown[], opts?: QueryOptions) {
    return this.target().query<T>(sql, params, opts);
  }
  transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T> {
    return this.target().transaction(fn);
  }
  exec(sql: string): Promise<void> {
    return this.target().exec(sql);
  }
  session<T>(fn: (conn: Queryable) => Promise<T>): Promise<T> {
    const target = this.target();
    if (target.session === undefined) throw new Error("this database handle cannot hold a session");
    return target.session(fn);
  }
  poolStats(): PoolStats {
    return this.inner ? this.inner.poolStats() : { total: 0, idle: 0, waiting: 0, max: 0 };
  }
  async close(): Promise<void> {
    await this.inner?.close();
  }
}
