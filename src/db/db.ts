// The database seam: one small interface over PostgreSQL (node-postgres pool) and embedded PGlite,
// so the same SQL and the same services run on both.
export interface QueryResult<T> {
  rows: T[];
  rowCount: number;
}

export interface QueryOptions {
  /** Name under which PostgreSQL keeps the statement parsed and planned (hot statements only). */
  prepare?: string;
}

export interface Queryable {
  query<T = Record<string, unknown>>(sql: string, params?: unknown[], opts?: QueryOptions): Promise<QueryResult<T>>;
}

export interface PoolStats {
  total: number;
  idle: number;
  waiting: number;
  max: number;
}

export interface Db extends Queryable {
  readonly kind: "postgres" | "pglite";
  /** Runs `fn` in one transaction: committed when it resolves, rolled back when it throws. */
  transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T>;
  /** Several statements with no parameters (migrations). */
  exec(sql: string): Promise<void>;
  /**
   * Runs `fn` on one connection held for its duration, outside any transaction (each statement
   * commits by itself), e.g. under a session-level advisory lock. `fn` leaves the connection as it
   * found it; when it throws, the connection is closed (PostgreSQL) so nothing it held outlives it.
   */
  session?<T>(fn: (conn: Queryable) => Promise<T>): Promise<T>;
  poolStats(): PoolStats;
  close(): Promise<void>;
}

/** PostgreSQL error codes the writer retries: the work is redone whole, nothing half-applied. */
export const RETRYABLE_SQLSTATES = new Set(["40001", "40P01"]);

export function sqlState(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === "string" ? code : undefined;
}

/** Class 22 (data exception) and 23 (integrity): the input is at fault, not the server. */
export function isDataError(err: unknown): boolean {
  const state = sqlState(err);
  return state !== undefined && (state.startsWith("22") || state.startsWith("23"));
}

/** Connection-level failures: the database is unreachable or went away. */
export function isUnavailable(err: unknown): boolean {
  const state = sqlState(err);
  if (state !== undefined) return state.startsWith("08") || state === "57P01" || state === "57P03" || state === "53300";
  const code = (err as { code?: unknown } | null)?.code;
  return code === "ECONNREFUSED" || code === "ECONNRESET" || code === "ETIMEDOUT" || code === "EPIPE";
}
