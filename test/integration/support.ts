// Shared helpers of the integration suites: requests through `inject`, unique ids, row counts.
import type { LightMyRequestResponse } from "fastify";
import type { Db } from "../../src/db/db.ts";
import type { TestApp } from "../helpers/app.ts";
import { T0 } from "../helpers/app.ts";

export { T0 };
export const T0_S = T0 / 1000;

let seq = 0;
/** An id no other test of the run uses. */
export const uid = (prefix: string) => `${prefix}-${process.pid}-${++seq}-${Math.random().toString(36).slice(2, 8)}`;

export const bearer = (key: string) => ({ authorization: `Bearer ${key}` });

export interface EventInput {
  transaction_id?: unknown;
  external_subscription_id?: unknown;
  code?: unknown;
  timestamp?: unknown;
  properties?: unknown;
  precise_total_amount_cents?: unknown;
  [k: string]: unknown;
}

export function client(t: TestApp, key = t.apiKey) {
  const headers = bearer(key);
  return {
    postEvent: (event: unknown) => t.app.http.inject({ method: "POST", url: "/api/v1/events", headers, payload: { event } }),
    postBatch: (events: unknown) => t.app.http.inject({ method: "POST", url: "/api/v1/events/batch", headers, payload: { events } }),
    list: (query = "") => t.app.http.inject({ method: "GET", url: `/api/v1/events${query ? `?${query}` : ""}`, headers }),
    get: (transactionId: string, query = "") =>
      t.app.http.inject({ method: "GET", url: `/api/v1/events/${encodeURIComponent(transactionId)}${query ? `?${query}` : ""}`, headers }),
  };
}

export const json = <T = any>(r: LightMyRequestResponse): T => JSON.parse(r.body) as T;

export async function scalar(db: Db, sql: string, params: unknown[] = []): Promise<number> {
  const { rows } = await db.query<{ n: string | number }>(sql, params);
  return Number(rows[0]?.n ?? 0);
}

/** Rows in the three ingest tables (for before/after comparisons inside one sequential file). */
export async function tableCounts(db: Db): Promise<{ events: number; identities: number; rollup: number }> {
  const { rows } = await db.query<{ events: string; identities: string; rollup: string }>(
    `SELECT (SELECT count(*) FROM events)::text AS events,
            (SELECT count(*) FROM event_identities)::text AS identities,
            (SELECT coalesce(sum(events_count), 0) FROM event_counts_hourly)::text AS rollup`,
  );
  const r = rows[0]!;
  return { events: Number(r.events), identities: Number(r.identities), rollup: Number(r.rollup) };
}

/** Stored events of one subscription, in a fixed order. */
export async function storedEvents(db: Db, externalSubscriptionId: string) {
  const { rows } = await db.query<{ transaction_id: string; code: string; properties: unknown; amount: string | null; ts: string }>(
    `SELECT transaction_id, code, properties, precise_total_amount_cents::text AS amount, ts::text AS ts
       FROM events WHERE external_subscription_id = $1 ORDER BY transaction_id, ts`,
    [externalSubscriptionId],
  );
  return rows;
}

/** Sum of hourly rollup counts for one subscription (optionally one code). */
export function rollupCount(db: Db, externalSubscriptionId: string, code?: string): Promise<number> {
  return code === undefined
    ? scalar(db, "SELECT coalesce(sum(events_count), 0)::text AS n FROM event_counts_hourly WHERE external_subscription_id = $1", [externalSubscriptionId])
    : scalar(db, "SELECT coalesce(sum(events_count), 0)::text AS n FROM event_counts_hourly WHERE external_subscription_id = $1 AND code = $2", [
        externalSubscriptionId,
        code,
      ]);
}

/** The Prometheus exposition as `name{labels}` -> value, labels sorted by name. */
export function parseMetrics(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) continue;
    const labels = (m[2] ?? "")
      .split(/,(?=[a-zA-Z_]\w*=")/)
      .filter(Boolean)
      .sort()
      .join(",");
    out.set(labels ? `${m[1]}{${labels}}` : m[1]!, Number(m[3]));
  }
  return out;
}

/** Polls `check` (no timing assertion: only gives the other side time to get there). */
export async function waitFor(check: () => Promise<boolean> | boolean, what: string, timeoutMs = 20_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/**
 * Runs `statement` (a lock) in a transaction of its own and keeps that transaction open until
 * released. On PostgreSQL other sessions wait for what it locks; on PGlite (one connection) every
 * other statement waits for the transaction to end.
 */
export async function holdTransaction(db: Db, statement: string, params: unknown[] = []): Promise<{ release: () => Promise<void> }> {
  let release!: () => void;
  const released = new Promise<void>((r) => (release = r));
  let held!: () => void;
  const isHeld = new Promise<void>((r) => (held = r));
  const done = db.transaction(async (tx) => {
    await tx.query(statement, params);
    held();
    await released;
  });
  await Promise.race([isHeld, done]);
  return {
    async release() {
      release();
      await done;
    },
  };
}
