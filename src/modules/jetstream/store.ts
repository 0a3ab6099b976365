// SQL of rejected events (migration 0011): recorded by the ingest worker, read by the API, always
// scoped by organization.
import type { Queryable } from "../../db/db.ts";

export type RejectionReason = "value_already_exist" | "invalid";
export const REJECTION_REASONS: readonly RejectionReason[] = ["value_already_exist", "invalid"];

export interface NewRejectedEvent {
  orgId: number;
  lagoId: string;
  keyDigest: string;
  payloadHash: number;
  transactionId: string;
  subscriptionId: string;
  code: string;
  reason: RejectionReason;
  message: string;
  /** Lago's event JSON, serialized. */
  event: string;
  streamSequence: number | null;
  receivedAt: Date;
  createdAt: Date;
}

export interface RejectedEventRow {
  lago_id: string;
  key_digest: string;
  transaction_id: string;
  external_subscription_id: string;
  code: string;
  reason: RejectionReason;
  message: string;
  event: string;
  stream_sequence: string | null;
  received_at: Date;
  created_at: Date;
}

/** Inserts the rejection unless this identity and payload is already recorded; true when inserted. */
export async function insertRejected(tx: Queryable, r: NewRejectedEvent): Promise<boolean> {
  const { rowCount } = await tx.query(
    `INSERT INTO rejected_events (org_id, lago_id, key_digest, payload_hash, transaction_id, external_subscription_id, code,
                                  reason, message, event, stream_sequence, received_at, created_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
     ON CONFLICT (org_id, key_digest, payload_hash) DO NOTHING`,
    [r.orgId, r.lagoId, r.keyDigest, r.payloadHash, r.transactionId, r.subscriptionId, r.code, r.reason, r.message, r.event,
      r.streamSequence, r.receivedAt, r.createdAt],
  );
  return rowCount > 0;
}

export interface RejectedFilters {
  limit: number;
  offset: number;
  externalSubscriptionId?: string;
  transactionId?: string;
  reason?: RejectionReason;
}

export async function listRejected(q: Queryable, orgId: number, f: RejectedFilters): Promise<{ rows: RejectedEventRow[]; total: number }> {
  const where = ["org_id = $1"];
  const params: unknown[] = [orgId];
  if (f.externalSubscriptionId !== undefined) where.push(`external_subscription_id = $${params.push(f.externalSubscriptionId)}`);
  if (f.transactionId !== undefined) where.push(`transaction_id = $${params.push(f.transactionId)}`);
  if (f.reason !== undefined) where.push(`reason = $${params.push(f.reason)}`);
  const cond = where.join(" AND ");
  const [rows, count] = await Promise.all([
    q.query<RejectedEventRow>(
      `SELECT lago_id::text AS lago_id, key_digest::text AS key_digest, transaction_id, external_subscription_id, code, reason, message,
              event, stream_sequence::text AS stream_sequence, received_at, created_at
         FROM rejected_events WHERE ${cond} ORDER BY created_at DESC, id DESC LIMIT ${f.limit} OFFSET ${f.offset}`,
      params,
    ),
    q.query<{ n: string }>(`SELECT count(*)::text AS n FROM rejected_events WHERE ${cond}`, params),
  ]);
  return { rows: rows.rows, total: Number(count.rows[0]?.n ?? 0) };
}

/** Deletes up to `limit` rejected events recorded before `before`; answers how many went. */
export async function deleteRejectedBefore(q: Queryable, before: Date, limit: number): Promise<number> {
  const { rowCount } = await q.query(
    "DELETE FROM rejected_events WHERE id IN (SELECT id FROM rejected_events WHERE created_at < $1 ORDER BY id LIMIT $2)",
    [before.toISOString(), limit],
  );
  return rowCount ?? 0;
}

export async function countRejected(q: Queryable): Promise<Record<RejectionReason, number>> {
  const { rows } = await q.query<{ reason: RejectionReason; n: string }>("SELECT reason, count(*)::text AS n FROM rejected_events GROUP BY reason");
  const out: Record<RejectionReason, number> = { value_already_exist: 0, invalid: 0 };
  for (const r of rows) out[r.reason] = Number(r.n);
  return out;
}
