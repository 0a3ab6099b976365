// Reads that may lag: list and usage queries go to a streaming replica (DATABASE_READ_URL) when one
// is configured and answering, to the primary otherwise. Writes, transactions and the reads that
// answer a caller's own write never come here: services keep using the primary `Db` for those.
import client from "prom-client";
import type { Db, Queryable, QueryOptions, QueryResult } from "./db.ts";
import { isUnavailable, sqlState } from "./db.ts";

export type ReplicaState = "none" | "up" | "down";

export interface ReplicaReadsOptions {
  /** While the replica is down, it is probed this often; reads go back to it once a probe answers. */
  retryMs: number;
  /** Called once per change of state (down: with the error that took it out). */
  onStateChange?: (state: "up" | "down", err?: unknown) => void;
  /** Called per query a replica is configured for: answered by it, or by the primary in its place. */
  onRead?: (answeredBy: "replica" | "primary_fallback") => void;
}

/** The replica could not answer at all (not: the query is wrong), so the primary is asked instead. */
export function isReplicaFailure(err: unknown): boolean {
  if (isUnavailable(err)) return true;
  const state = sqlState(err);
  if (state !== undefined && /^[0-9A-Z]{5}$/.test(state)) return state === "57P02"; // crash shutdown
  // node-postgres's own failures carry no SQLSTATE: pool and query timeouts, a dropped socket.
  const message = err instanceof Error ? err.message : String(err);
  return /timeout|Connection terminated|connection .*closed|Client has encountered a connection error|ECONNREFUSED|ECONNRESET|EHOSTUNREACH/i.test(message);
}

/**
 * The `Queryable` that services' lag-tolerant read paths use. Without a replica it is the primary.
 * With one, a query that fails because the replica is unreachable (connection refused or reset, a
 * timeout) is answered by the primary; the replica is then left alone (logged once) and probed every
 * `retryMs` until it answers, when reads return to it by themselves.
 */
export class ReplicaReads implements Queryable {
  private replica: Db | null = null;
  private down = false;
  private probeTimer: ReturnType<typeof setTimeout> | null = null;
  private closed = false;
  /** Queries answered by the replica and by the primary in its place; times it went down and came back. */
  readonly counts = { replica: 0, fallback: 0, down: 0, up: 0 };

  constructor(
    private readonly primary: Queryable,
    private readonly opts: ReplicaReadsOptions,
  ) {}

  /** Starts sending reads to `replica` (at start, once the configuration names one). */
  attach(replica: Db): void {
    this.replica = replica;
    this.down = false;
  }

  get state(): ReplicaState {
    return this.replica === null ? "none" : this.down ? "down" : "up";
  }

  async query<T = Record<string, unknown>>(sql: string, params?: unknown[], opts?: QueryOptions): Promise<QueryResult<T>> {
    const replica = this.replica;
    if (replica === null) return this.primary.query<T>(sql, params, opts);
    if (this.down) {
      this.counts.fallback++;
      this.opts.onRead?.("primary_fallback");
      return this.primary.query<T>(sql, params, opts);
    }
    try {
      const result = await replica.query<T>(sql, params, opts);
      this.counts.replica++;
      this.opts.onRead?.("replica");
      return result;
    } catch (err) {
      // 40001 on a standby: the query was cancelled by a conflict with recovery; the replica is fine.
      if (isReplicaFailure(err)) this.markDown(err);
      else if (sqlState(err) !== "40001") throw err;
      this.counts.fallback++;
      this.opts.onRead?.("primary_fallback");
      return this.primary.query<T>(sql, params, opts);
    }
  }

  private markDown(err: unknown): void {
    if (this.down || this.closed) return;
    this.down = true;
    this.counts.down++;
    this.opts.onStateChange?.("down", err);
    this.scheduleProbe();
  }

  private scheduleProbe(): void {
    if (this.closed || this.probeTimer !== null) return;
    this.probeTimer = setTimeout(() => {
      this.probeTimer = null;
      void this.probe();
    }, this.opts.retryMs);
    this.probeTimer.unref();
  }

  private async probe(): Promise<void> {
    const replica = this.replica;
    if (replica === null || this.closed) return;
    try {
      await replica.query("SELECT 1");
      if (this.closed) return;
      this.down = false;
      this.counts.up++;
      this.opts.onStateChange?.("up");
    } catch {
      this.scheduleProbe();
    }
  }

  poolStats() {
    return this.replica?.poolStats() ?? { total: 0, idle: 0, waiting: 0, max: 0 };
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.probeTimer !== null) clearTimeout(this.probeTimer);
    this.probeTimer = null;
    await this.replica?.close();
  }
}

/**
 * `db_read_replica_up` (1 while reads go to the replica; with several workers, the lowest) and
 * `db_read_replica_reads_total{answered_by}`; registered only when a replica is configured.
 */
export function replicaMetrics(registry: client.Registry, reads: () => ReplicaReads): Pick<ReplicaReadsOptions, "onRead"> {
  const total = new client.Counter({
    name: "db_read_replica_reads_total",
    help: "Lag-tolerant reads (lists, usage) by who answered: the replica, or the primary while the replica was unavailable",
    labelNames: ["answered_by"],
    registers: [registry],
  });
  new client.Gauge({
    name: "db_read_replica_up",
    help: "1 while list and usage reads go to the read replica (DATABASE_READ_URL), 0 while the primary answers them",
    registers: [registry],
    aggregator: "min",
    collect() {
      this.set(reads().state === "up" ? 1 : 0);
    },
  });
  return { onRead: (answeredBy) => total.inc({ answered_by: answeredBy }) };
}
