// SQL for credit note refunds (credit_note_refunds) and the sandbox provider's refund ledger
// (sandbox_refunds). Every statement is scoped by org_id.
import type { Queryable } from "../../db/db.ts";
import { claimDueIds, organizationsWithDue, releaseClaimOf, type Claim } from "./store.ts";

export interface RefundRecord {
  readonly id: number;
  readonly orgId: number;
  readonly lagoId: string;
  readonly creditNoteId: number;
  readonly creditNoteLagoId: string;
  readonly customerId: number;
  readonly paymentId: number;
  readonly provider: string;
  readonly paymentMethod: string;
  readonly providerPaymentId: string;
  readonly amountCents: bigint;
  readonly currency: string;
  readonly status: "pending" | "succeeded" | "failed";
  readonly attempts: number;
  readonly idempotencyKey: string;
  readonly keySeq: number;
  readonly nextAttemptAt: Date | null;
  readonly leaseUntil: Date | null;
  readonly providerRefundId: string | null;
  readonly lastOutcome: "succeeded" | "declined" | "transient_failure" | "timeout" | null;
  readonly lastErrorCode: string | null;
  readonly lastErrorMessage: string | null;
}

interface RefundRow {
  id: string;
  org_id: number;
  lago_id: string;
  credit_note_id: string;
  credit_note_lago_id: string;
  customer_id: string;
  payment_id: string;
  provider: string;
  payment_method: string;
  provider_payment_id: string;
  amount_cents: string;
  currency: string;
  status: RefundRecord["status"];
  attempts: number;
  idempotency_key: string;
  key_seq: number;
  next_attempt_at: Date | null;
  lease_until: Date | null;
  provider_refund_id: string | null;
  last_outcome: RefundRecord["lastOutcome"];
  last_error_code: string | null;
  last_error_message: string | null;
}

const REFUND_SELECT = `
SELECT r.id, r.org_id, r.lago_id::text AS lago_id, r.credit_note_id, cn.lago_id::text AS credit_note_lago_id, cn.customer_id, r.payment_id, r.provider,
       r.payment_method, r.provider_payment_id, r.amount_cents, r.currency, r.status, r.attempts, r.idempotency_key, r.key_seq, r.next_attempt_at,
       r.lease_until, r.provider_refund_id, r.last_outcome, r.last_error_code, r.last_error_message
  FROM credit_note_refunds r JOIN credit_notes cn ON cn.org_id = r.org_id AND cn.id = r.credit_note_id`;

const toRefund = (r: RefundRow): RefundRecord => ({
  id: Number(r.id),
  orgId: Number(r.org_id),
  lagoId: r.lago_id,
  creditNoteId: Number(r.credit_note_id),
  creditNoteLagoId: r.credit_note_lago_id,
  customerId: Number(r.customer_id),
  paymentId: Number(r.payment_id),
  provider: r.provider,
  paymentMethod: r.payment_method,
  providerPaymentId: r.provider_payment_id,
  amountCents: BigInt(r.amount_cents),
  currency: r.currency,
  status: r.status,
  attempts: Number(r.attempts),
  idempotencyKey: r.idempotency_key,
  keySeq: Number(r.key_seq),
  nextAttemptAt: r.next_attempt_at === null ? null : new Date(r.next_attempt_at),
  leaseUntil: r.lease_until === null ? null : new Date(r.lease_until),
  providerRefundId: r.provider_refund_id,
  lastOutcome: r.last_outcome,
  lastErrorCode: r.last_error_code,
  lastErrorMessage: r.last_error_message,
});

/** The charge a refund pays back: the invoice's succeeded provider payment, if it has one. */
export async function refundableCharge(
  q: Queryable,
  orgId: number,
  invoiceId: number,
): Promise<{ id: number; provider: string; paymentMethod: string; providerPaymentId: string; currency: string } | null> {
  const { rows } = await q.query<{ id: string; provider: string; provider_customer_id: string; provider_payment_id: string; currency: string }>(
    `SELECT id, provider, provider_customer_id, provider_payment_id, currency FROM payments
      WHERE org_id = $1 AND invoice_id = $2 AND status = 'succeeded' AND provider_payment_id IS NOT NULL ORDER BY id LIMIT 1`,
    [orgId, invoiceId],
  );
  const r = rows[0];
  return r === undefined ? null : { id: Number(r.id), provider: r.provider, paymentMethod: r.provider_customer_id, providerPaymentId: r.provider_payment_id, currency: r.currency };
}

export async function insertRefund(
  q: Queryable,
  r: {
    orgId: number;
    lagoId: string;
    creditNoteId: number;
    paymentId: number;
    provider: string;
    paymentMethod: string;
    providerPaymentId: string;
    amountCents: bigint;
    currency: string;
    idempotencyKey: string;
    now: Date;
  },
): Promise<boolean> {
  const { rows } = await q.query(
    `INSERT INTO credit_note_refunds (org_id, lago_id, credit_note_id, payment_id, provider, payment_method, provider_payment_id, amount_cents, currency,
                                      status, idempotency_key, next_attempt_at, created_at, updated_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'pending', $10, $11, $11, $11)
     ON CONFLICT (credit_note_id) DO NOTHING RETURNING id`,
    [r.orgId, r.lagoId, r.creditNoteId, r.paymentId, r.provider, r.paymentMethod, r.providerPaymentId, r.amountCents.toString(), r.currency, r.idempotencyKey, r.now],
  );
  return rows.length > 0;
}

export async function refundOfNote(q: Queryable, orgId: number, creditNoteId: number): Promise<RefundRecord | null> {
  const { rows } = await q.query<RefundRow>(`${REFUND_SELECT} WHERE r.org_id = $1 AND r.credit_note_id = $2`, [orgId, creditNoteId]);
  return rows[0] === undefined ? null : toRefund(rows[0]);
}

/** Organizations with refunds due (or claims expired), with the earliest due time. */
export const organizationsWithDueRefunds = (q: Queryable): Promise<{ orgId: number; earliest: Date }[]> => organizationsWithDue(q, "credit_note_refunds");

/** Claims up to `limit` due refunds for `leaseId` until `leaseUntil` (wall clock); another worker skips them. */
export async function claimDueRefunds(q: Queryable, c: Claim): Promise<RefundRecord[]> {
  const ids = await claimDueIds(q, "credit_note_refunds", c);
  if (ids.length === 0) return [];
  const claimed = await q.query<RefundRow>(`${REFUND_SELECT} WHERE r.org_id = $1 AND r.id = ANY($2::bigint[]) ORDER BY r.id`, [c.orgId, ids]);
  return claimed.rows.map(toRefund);
}

export const releaseRefundClaim = (q: Queryable, id: number, leaseId: string): Promise<void> => releaseClaimOf(q, "credit_note_refunds", id, leaseId);

/** The refund locked for recording an attempt, if `leaseId` still holds it. */
export async function lockClaimedRefund(tx: Queryable, orgId: number, id: number, leaseId: string): Promise<RefundRecord | null> {
  const locked = await tx.query("SELECT 1 FROM credit_note_refunds WHERE org_id = $1 AND id = $2 AND lease_id = $3 FOR UPDATE", [orgId, id, leaseId]);
  if (locked.rows.length === 0) return null;
  const { rows } = await tx.query<RefundRow>(`${REFUND_SELECT} WHERE r.org_id = $1 AND r.id = $2`, [orgId, id]);
  return rows[0] === undefined ? null : toRefund(rows[0]);
}

export async function updateRefund(
  tx: Queryable,
  orgId: number,
  id: number,
  u: {
    status: RefundRecord["status"];
    attempts: number;
    idempotencyKey: string;
    keySeq: number;
    nextAttemptAt: Date | null;
    providerRefundId: string | null;
    lastOutcome: NonNullable<RefundRecord["lastOutcome"]>;
    lastErrorCode: string | null;
    lastErrorMessage: string | null;
    now: Date;
  },
): Promise<void> {
  await tx.query(
    `UPDATE credit_note_refunds SET status = $3, attempts = $4, idempotency_key = $5, key_seq = $6, next_attempt_at = $7, provider_refund_id = $8,
            last_outcome = $9, last_error_code = $10, last_error_message = $11, lease_id = NULL, lease_until = NULL,
            succeeded_at = CASE WHEN $3 = 'succeeded' THEN $12::timestamptz ELSE succeeded_at END,
            failed_at = CASE WHEN $3 = 'failed' THEN $12::timestamptz ELSE failed_at END, updated_at = $12
      WHERE org_id = $1 AND id = $2`,
    [orgId, id, u.status, u.attempts, u.idempotencyKey, u.keySeq, u.nextAttemptAt, u.providerRefundId, u.lastOutcome, u.lastErrorCode, u.lastErrorMessage, u.now],
  );
}

export async function setNoteRefundStatus(tx: Queryable, orgId: number, creditNoteId: number, status: "succeeded" | "failed", now: Date): Promise<void> {
  await tx.query("UPDATE credit_notes SET refund_status = $3, updated_at = $4 WHERE org_id = $1 AND id = $2", [orgId, creditNoteId, status, now]);
}

/** The refund's customer, for the refund failure webhook. */
export async function refundCustomer(q: Queryable, orgId: number, customerId: number): Promise<{ lagoId: string; externalId: string } | null> {
  const { rows } = await q.query<{ lago_id: string; external_id: string }>("SELECT lago_id::text AS lago_id, external_id FROM customers WHERE org_id = $1 AND id = $2", [
    orgId,
    customerId,
  ]);
  return rows[0] === undefined ? null : { lagoId: rows[0].lago_id, externalId: rows[0].external_id };
}

// ---- the sandbox's refund ledger ---------------------------------------------------------------

export interface SandboxRefund {
  readonly idempotencyKey: string;
  readonly providerRefundId: string;
  readonly providerPaymentId: string;
  readonly paymentMethod: string;
  /** The credit note refunded (its lago_id). */
  readonly reference: string;
  readonly amountCents: bigint;
  readonly currency: string;
  readonly outcome: "succeeded" | "declined" | "transient_failure";
  readonly errorCode: string | null;
  readonly createdAt: Date;
}

interface SandboxRefundRow {
  idempotency_key: string;
  provider_refund_id: string;
  provider_payment_id: string;
  payment_method: string;
  reference: string;
  amount_cents: string;
  currency: string;
  outcome: SandboxRefund["outcome"];
  error_code: string | null;
  created_at: Date;
}

const SANDBOX_REFUND_COLUMNS = "idempotency_key, provider_refund_id, provider_payment_id, payment_method, reference, amount_cents, currency, outcome, error_code, created_at";

const toSandboxRefund = (r: SandboxRefundRow): SandboxRefund => ({
  idempotencyKey: r.idempotency_key,
  providerRefundId: r.provider_refund_id,
  providerPaymentId: r.provider_payment_id,
  paymentMethod: r.payment_method,
  reference: r.reference,
  amountCents: BigInt(r.amount_cents),
  currency: r.currency,
  outcome: r.outcome,
  errorCode: r.error_code,
  createdAt: new Date(r.created_at),
});

/** Records a refund under its key; a key recorded before answers the earlier row (a concurrent request lost the race). */
export async function insertSandboxRefund(q: Queryable, orgId: number, r: SandboxRefund): Promise<SandboxRefund> {
  const { rows } = await q.query<SandboxRefundRow>(
    `INSERT INTO sandbox_refunds (org_id, ${SANDBOX_REFUND_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
     ON CONFLICT (org_id, idempotency_key) DO NOTHING RETURNING ${SANDBOX_REFUND_COLUMNS}`,
    [orgId, r.idempotencyKey, r.providerRefundId, r.providerPaymentId, r.paymentMethod, r.reference, r.amountCents.toString(), r.currency, r.outcome, r.errorCode, r.createdAt],
  );
  if (rows[0] !== undefined) return toSandboxRefund(rows[0]);
  return (await sandboxRefundByKey(q, orgId, r.idempotencyKey))!;
}

export async function sandboxRefundByKey(q: Queryable, orgId: number, key: string): Promise<SandboxRefund | null> {
  const { rows } = await q.query<SandboxRefundRow>(`SELECT ${SANDBOX_REFUND_COLUMNS} FROM sandbox_refunds WHERE org_id = $1 AND idempotency_key = $2`, [orgId, key]);
  return rows[0] === undefined ? null : toSandboxRefund(rows[0]);
}

/** The sandbox's refund ledger for one credit note, oldest first. */
export async function sandboxRefunds(q: Queryable, orgId: number, reference: string): Promise<SandboxRefund[]> {
  const { rows } = await q.query<SandboxRefundRow>(
    `SELECT ${SANDBOX_REFUND_COLUMNS} FROM sandbox_refunds WHERE org_id = $1 AND reference = $2 ORDER BY created_at, provider_refund_id`,
    [orgId, reference],
  );
  return rows.map(toSandboxRefund);
}
