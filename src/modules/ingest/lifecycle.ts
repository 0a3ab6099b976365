// Data lifecycle of raw events (RETENTION_DAYS): monthly partitions dropped once every
// organization's clock has them past retention (their identities with them, rollups kept), and
// partitions past 7 days "slimmed" (hot-data index dropped, query index compacted; slimOldPartitions).
import type { Db, Queryable } from "../../db/db.ts";
import { partitionBounds, type Partitions } from "./store.ts";

const DAY_MS = 86_400_000;
/** A partition whose upper bound is this far behind the earliest clock loses its hot-data index. */
export const SLIM_AFTER_MS = 7 * DAY_MS;
/** Same key as partition creation (Partitions.create): creating, dropping and slimming never race. */
const PARTITION_LOCK = 7221002;

/** The wall clock; frozen test clocks are read from `test_clocks` (every process's, authoritative). */
export interface ClockView {
  now(): number;
}

export interface EventPartition {
  name: string;
  month: string;
  fromMs: number;
  toMs: number;
}

/** The monthly partitions of `events` that exist, oldest first. */
export async function listPartitions(q: Queryable): Promise<EventPartition[]> {
  const { rows } = await q.query<{ name: string }>(
    `SELECT c.relname AS name FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
      WHERE i.inhparent = 'events'::regclass`,
  );
  const out: EventPartition[] = [];
  for (const { name } of rows) {
    const m = /^events_p(\d{4}_\d{2})$/.exec(name);
    if (!m) continue;
    const b = partitionBounds(m[1]!);
    out.push({ name, month: m[1]!, fromMs: Date.parse(b.from), toMs: Date.parse(b.to) });
  }
  return out.sort((a, b) => a.fromMs - b.fromMs);
}

/**
 * The earliest "now" of any organization: the wall clock, or an earlier frozen test clock. Rows
 * of test_clocks count even when test clocks are off now (conservative: they keep data longer).
 */
export async function earliestNow(q: Queryable, clock: ClockView): Promise<number> {
  const { rows } = await q.query<{ min: Date | null }>("SELECT min(frozen_at) AS min FROM test_clocks");
  const frozen = rows[0]?.min ?? null;
  const wall = clock.now();
  return frozen === null ? wall : Math.min(wall, new Date(frozen).getTime());
}

export interface DropResult {
  /** Partitions dropped (names), oldest first. */
  dropped: string[];
  /** event_identities rows deleted with them. */
  identitiesDeleted: number;
}

/**
 * Drops the partitions whose whole month is older than `retentionDays` by every organization's
 * clock (upper bound <= earliest now - retention: ingest rejects every event they could hold),
 * never with retentionDays = 0. Each drop is one transaction, under the partition lock and a
 * SHARE lock on test_clocks (no clock moves while it decides), that also deletes the identities
 * with `ts` before the partition's upper bound, so identity covers exactly the events kept.
 * Rollup tables are kept. `partitions` (this process's cache) forgets the dropped months, so an
 * event for one (a test clock frozen into the past later) re-creates its partition.
 */
export async function dropExpiredPartitions(
  db: Db,
  clock: ClockView,
  retentionDays: number,
  partitions?: Pick<Partitions, "forget">,
): Promise<DropResult> {
  const result: DropResult = { dropped: [], identitiesDeleted: 0 };
  if (!(retentionDays > 0)) return result;
  const retentionMs = retentionDays * DAY_MS;
  const candidates = (await listPartitions(db)).filter((p) => p.toMs <= clock.now() - retentionMs);
  for (const p of candidates) {
    const deleted = await db.transaction(async (tx) => {
      await tx.query("SELECT pg_advisory_xact_lock($1)", [PARTITION_LOCK]);
      await tx.query("LOCK TABLE test_clocks IN SHARE MODE");
      const cutoff = (await earliestNow(tx, clock)) - retentionMs;
      if (p.toMs > cutoff) return null;
      const exists = await tx.query("SELECT 1 FROM pg_class WHERE relname = $1 AND relkind = 'r'", [p.name]);
      if (exists.rowCount === 0) return null;
      const ids = await tx.query("DELETE FROM event_identities WHERE ts < $1", [new Date(p.toMs).toISOString()]);
      await tx.query(`DROP TABLE ${p.name}`);
      return ids.rowCount;
    });
    if (deleted === null) continue;
    partitions?.forget(p.month);
    result.dropped.push(p.name);
    result.identitiesDeleted += deleted;
  }
  return result;
}

/**
 * Slims the partitions whose upper bound is more than 7 days before the earliest organization
 * clock (late events still go in; they are rare): drops the hot-data `<partition>_recent_idx`
 * (org, time) index, and replaces the query index `<partition>_main_idx` (org, code, subscription,
 * time) by a deduplicated `<partition>_sub_idx` (org, code, subscription) btree, packed full
 * (fillfactor 100), and `<partition>_ts_brin` on time: reads of one subscription (and code) over a
 * time range combine the two, at a few bytes per event instead of ~70. One transaction per
 * partition; the index build blocks writes to that partition only. Returns the `_recent_idx`
 * indexes dropped.
 */
export async function slimOldPartitions(db: Db, clock: ClockView): Promise<string[]> {
  const dropped: string[] = [];
  const limit = (await earliestNow(db, clock)) - SLIM_AFTER_MS;
  for (const p of await listPartitions(db)) {
    if (p.toMs >= limit) continue;
    await db.transaction(async (tx) => {
      await tx.query("SELECT pg_advisory_xact_lock($1)", [PARTITION_LOCK]);
      if (p.toMs >= (await earliestNow(tx, clock)) - SLIM_AFTER_MS) return;
      const { rows } = await tx.query<{ name: string }>("SELECT relname AS name FROM pg_class WHERE relkind = 'i' AND relname = ANY($1::text[])", [
        [`${p.name}_recent_idx`, `${p.name}_main_idx`],
      ]);
      const present = new Set(rows.map((r) => r.name));
      if (present.has(`${p.name}_recent_idx`)) {
        await tx.query(`DROP INDEX ${p.name}_recent_idx`);
        dropped.push(`${p.name}_recent_idx`);
      }
      if (present.has(`${p.name}_main_idx`)) {
        await tx.query(
          `CREATE INDEX ${p.name}_sub_idx ON ${p.name} (org_id, code, external_subscription_id) WITH (fillfactor = 100, deduplicate_items = on)`,
        );
        await tx.query(`CREATE INDEX ${p.name}_ts_brin ON ${p.name} USING brin (ts)`);
        await tx.query(`DROP INDEX ${p.name}_main_idx`);
      }
    });
  }
  return dropped.sort();
}

export interface LifecycleResult extends DropResult {
  slimmed: string[];
}

/** One lifecycle pass (at start and hourly in the server): partitions ahead, drops, slimming. */
export async function runLifecycle(
  db: Db,
  clock: ClockView,
  retentionDays: number,
  partitions: Pick<Partitions, "forget" | "ensureAround">,
): Promise<LifecycleResult> {
  await partitions.ensureAround(clock.now());
  const dropped = await dropExpiredPartitions(db, clock, retentionDays, partitions);
  const slimmed = await slimOldPartitions(db, clock);
  return { ...dropped, slimmed };
}
