// Checks, straight in the database and through the events API, that acknowledged events are stored
// exactly once, unchanged, with hourly rollups that agree with the raw events.
import crypto from "node:crypto";
import { isDeepStrictEqual } from "node:util";
import type { Db } from "../../src/db/db.ts";
import { call, mapConcurrent } from "./http.ts";
import { identityOf, timestampMicros, type EventPayload } from "./load.ts";

export interface Expectations {
  apiKey: string;
  /** Identities that got a 2xx: each must be stored exactly once, with this payload. */
  acked: Map<string, EventPayload>;
  /** Every identity ever sent (acknowledged or not): nothing else may be stored. */
  attempted: Map<string, EventPayload>;
}

export interface DbCheck {
  orgId: number;
  eventRows: number;
  identityRows: number;
  rollupRows: number;
  rollupSum: number;
  /** Identities stored at most once... */
  storedIdentities: number;
  /** ...of which acknowledged, and of which sent without a 2xx (in flight at the crash). */
  storedAcked: number;
  storedUnacked: number;
  /** The identities stored without a 2xx. */
  storedUnackedIds: string[];
  /** Identities stored more than once (acknowledged or not), acknowledged ones not stored: both must be 0. */
  duplicated: number;
  missing: number;
  problems: string[];
}

const MAX_PROBLEMS = 50;

interface EventRow {
  sub: string;
  tx: string;
  code: string;
  ts_us: string;
  properties: Record<string, unknown> | null;
  amount: string | null;
}

/** Every check on the stored data of the organization of `apiKey`; `problems` lists what is wrong. */
export async function checkDatabase(db: Db, x: Expectations): Promise<DbCheck> {
  const problems: string[] = [];
  const problem = (p: string) => {
    if (problems.length < MAX_PROBLEMS) problems.push(p);
  };
  const keyHash = crypto.createHash("sha256").update(x.apiKey).digest("hex");
  const org = await db.query<{ org_id: number }>("SELECT org_id FROM api_keys WHERE key_hash = $1", [keyHash]);
  if (org.rows.length !== 1) throw new Error(`expected one organization for the API key, found ${org.rows.length}`);
  const orgId = Number(org.rows[0]!.org_id);

  const events = (
    await db.query<EventRow>(
      `SELECT external_subscription_id AS sub, transaction_id AS tx, code,
              (extract(epoch FROM ts) * 1000000)::int8::text AS ts_us, properties, precise_total_amount_cents::text AS amount
         FROM events WHERE org_id = $1`,
      [orgId],
    )
  ).rows;
  // The identity digests are the server's business; what must hold is one identity row per stored
  // event, locating it (same time).
  const identities = (
    await db.query<{ ts_us: string }>(
      `SELECT (extract(epoch FROM ts) * 1000000)::int8::text AS ts_us FROM event_identities WHERE org_id = $1`,
      [orgId],
    )
  ).rows;
  const rollups = (
    await db.query<{ sub: string; code: string; hour_s: string; n: string }>(
      // Summed per (subscription, code, hour): the server may split a counter over several rows.
      `SELECT external_subscription_id AS sub, code, extract(epoch FROM hour)::int8::text AS hour_s, sum(events_count)::text AS n
         FROM event_counts_hourly WHERE org_id = $1 GROUP BY 1, 2, 3`,
      [orgId],
    )
  ).rows;

  // events: one row per identity, each one sent by us.
  const byIdentity = new Map<string, EventRow[]>();
  for (const row of events) {
    const id = identityOf({ external_subscription_id: row.sub, transaction_id: row.tx });
    const list = byIdentity.get(id);
    if (list) list.push(row);
    else byIdentity.set(id, [row]);
  }
  let duplicated = 0;
  for (const [id, rows] of byIdentity) {
    if (rows.length > 1) {
      duplicated++;
      problem(`stored ${rows.length} times: ${JSON.stringify(id)}`);
    }
    if (!x.attempted.has(id)) problem(`stored but never sent: ${JSON.stringify(id)}`);
  }

  // event_identities: one row per stored identity; as multisets, the times of the identity rows
  // and of the stored events are the same.
  const located = new Map<string, number>();
  for (const r of identities) located.set(r.ts_us, (located.get(r.ts_us) ?? 0) + 1);
  for (const rows of byIdentity.values()) {
    const k = rows[0]!.ts_us;
    const n = located.get(k) ?? 0;
    if (n === 0) problem(`event without an identity row: ${JSON.stringify(rows[0])}`);
    else located.set(k, n - 1);
  }
  for (const [k, n] of located) if (n > 0) problem(`${n} identity row(s) at ${k} without a stored event`);
  if (identities.length !== byIdentity.size) {
    problem(`event_identities has ${identities.length} rows for ${byIdentity.size} stored identities (${events.length} event rows)`);
  }

  // Every acknowledged event: stored once, as sent (a conflicting payload never overwrote it).
  let storedAcked = 0;
  let missing = 0;
  for (const [id, sent] of x.acked) {
    const rows = byIdentity.get(id) ?? [];
    if (rows.length === 0) {
      missing++;
      problem(`acknowledged but not stored: ${JSON.stringify(id)}`);
      continue;
    }
    storedAcked++;
    const row = rows[0]!;
    const want = {
      code: sent.code,
      ts_us: String(timestampMicros(sent.timestamp)),
      properties: sent.properties,
      amount: sent.precise_total_amount_cents === undefined ? null : Number(sent.precise_total_amount_cents),
    };
    const got = { code: row.code, ts_us: row.ts_us, properties: row.properties ?? {}, amount: row.amount === null ? null : Number(row.amount) };
    if (!isDeepStrictEqual(got, want)) problem(`stored payload differs for ${JSON.stringify(id)}: ${JSON.stringify(got)} != ${JSON.stringify(want)}`);
  }

  // Hourly rollups: the same counts as the raw events, hour by hour.
  const expectedRollups = new Map<string, number>();
  for (const row of events) {
    const hour = Math.floor(Number(row.ts_us) / 3_600_000_000) * 3600;
    const k = `${row.sub}\u0000${row.code}\u0000${hour}`;
    expectedRollups.set(k, (expectedRollups.get(k) ?? 0) + 1);
  }
  let rollupSum = 0;
  for (const r of rollups) {
    const n = Number(r.n);
    rollupSum += n;
    const k = `${r.sub}\u0000${r.code}\u0000${r.hour_s}`;
    const want = expectedRollups.get(k) ?? 0;
    if (n !== want) problem(`rollup ${JSON.stringify(k)} counts ${n}, the events table has ${want}`);
    expectedRollups.delete(k);
  }
  for (const [k, n] of expectedRollups) problem(`no rollup row for ${JSON.stringify(k)} (${n} events)`);
  if (rollupSum !== events.length) problem(`rollups sum to ${rollupSum}, the events table has ${events.length} rows`);

  return {
    orgId,
    eventRows: events.length,
    identityRows: identities.length,
    rollupRows: rollups.length,
    rollupSum,
    storedIdentities: byIdentity.size,
    storedAcked,
    storedUnacked: byIdentity.size - storedAcked,
    storedUnackedIds: [...byIdentity.keys()].filter((id) => !x.acked.has(id)),
    duplicated,
    missing,
    problems,
  };
}

export interface ApiCheck {
  checked: number;
  totalCount: number;
  problems: string[];
}

/**
 * Through the API: GET /api/v1/events/:transaction_id (scoped to the subscription) answers every
 * acknowledged event as sent, and the list's meta.total_count is the number of stored events.
 */
export async function checkViaApi(url: string, apiKey: string, acked: Map<string, EventPayload>, concurrency = 16): Promise<ApiCheck> {
  const problems: string[] = [];
  const problem = (p: string) => {
    if (problems.length < MAX_PROBLEMS) problems.push(p);
  };
  await mapConcurrent([...acked.values()], concurrency, async (sent) => {
    const path = `/api/v1/events/${encodeURIComponent(sent.transaction_id)}?external_subscription_id=${encodeURIComponent(sent.external_subscription_id)}`;
    const r = await call<{ event?: Record<string, unknown> }>(url, "GET", path, { apiKey });
    const e = r.body?.event;
    if (r.status !== 200 || !e) return problem(`GET ${path}: ${r.status} ${JSON.stringify(r.body).slice(0, 200)}`);
    const got = { transaction_id: e.transaction_id, external_subscription_id: e.external_subscription_id, code: e.code, ms: Date.parse(String(e.timestamp)), properties: e.properties };
    const want = {
      transaction_id: sent.transaction_id,
      external_subscription_id: sent.external_subscription_id,
      code: sent.code,
      ms: Math.floor(timestampMicros(sent.timestamp) / 1000),
      properties: sent.properties,
    };
    if (!isDeepStrictEqual(got, want)) problem(`GET ${path}: ${JSON.stringify(got)} != ${JSON.stringify(want)}`);
  });
  const list = await call<{ meta?: { total_count?: number } }>(url, "GET", "/api/v1/events?per_page=1", { apiKey });
  if (list.status !== 200) problem(`GET /api/v1/events: ${list.status}`);
  return { checked: acked.size, totalCount: Number(list.body?.meta?.total_count ?? -1), problems };
}
