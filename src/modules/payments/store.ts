// SQL for payments, their attempts and the invoice columns payments own (payment_status). Every
// statement a tenant's request reaches is scoped by org_id; only the worker's poll reads across
// organizations.
import type { Queryable } from "../../db/db.ts";
import type { AttemptRecord, ChargeOutcome, PaymentListQuery, PaymentRecord, PaymentRecordStatus } from "./core/index.ts";

interface PaymentRow {
  id: string;
  org_id: number;
  lago_id: string;
  invoice_id: string;
  invoice_lago_id: string;
  invoice_number: string;
  customer_id: string;
  customer_lago_id: string;
  external_customer_id: string;
  amount_cents: string;
  currency: string;
  provider: string;
  provider_customer_id: string;
  status: PaymentRecordStatus;
  attempts: number;
  round_attempts: number;
  idempotency_key: string;
  key_seq: number;
  next_attempt_at: Date | null;
  lease_until: Date | null;
  provider_payment_id: string | null;
  last_outcome: ChargeOutcome | null;
  last_error_code: string | null;
  last_error_message: string | null;
  succeeded_at: Date | null;
  failed_at: Date | null;
  created_at: Date;
  updated_at: Date;
}

const date = (v: Date | string | null): Date | null => (v === null ? null : new Date(v));

const PAYMENT_COLUMNS = `p.id, p.org_id, p.lago_id::text AS lago_id, p.invoice_id, i.lago_id::text AS invoice_lago_id, i.number AS invoice_number,
  p.customer_id, c.lago_id::text AS customer_lago_id, c.external_id AS external_customer_id, p.amount_cents::text AS amount_cents, p.currency,
  p.provider, p.provider_customer_id, p.status, p.attempts, p.round_attempts, p.idempotency_key, p.key_seq, p.next_attempt_at, p.lease_until,
  p.provider_payment_id, p.last_outcome, p.last_error_code, p.last_error_message, p.succeeded_at, p.failed_at, p.created_at, p.updated_at`;
const PAYMENT_FROM = "payments p JOIN invoices i ON i.id = p.invoice_id JOIN customers c ON c.id = p.customer_id";

function toPayment(r: PaymentRow): PaymentRecord {
  return {
    id: Number(r.id),
    orgId: Number(r.org_id),
    lagoId: r.lago_id,
    invoiceId: Number(r.invoice_id),
    invoiceLagoId: r.invoice_lago_id,
    invoiceNumber: r.invoice_number,
    customerId: Number(r.customer_id),
    customerLagoId: r.customer_lago_id,
    externalCustomerId: r.external_customer_id,
    amountCents: BigInt(r.amount_cents),
    currency: r.currency,
    provider: r.provider,
    providerCustomerId: r.provider_customer_id,
    status: r.status,
    attempts: Number(r.attempts),
    roundAttempts: Number(r.round_attempts),
    idempotencyKey: r.idempotency_key,
    keySeq: Number(r.key_seq),
    nextAttemptAt: date(r.next_attempt_at),
    leaseUntil: date(r.lease_until),
    providerPaymentId: r.provider_payment_id,
    lastOutcome: r.last_outcome,
    lastErrorCode: r.last_error_code,
    lastErrorMessage: r.last_error_message,
    succeededAt: date(r.succeeded_at),
    failedAt: date(r.failed_at),
    createdAt: new Date(r.created_at),
    updatedAt: new Date(r.updated_at),
  };
}

// ---- invoices (the columns payments read and own) -----------------------------------------------

export interface PayableInvoice {
  readonly id: number;
  readonly orgId: number;
  readonly lagoId: string;
  readonly customerId: number;
  readonly invoiceType: string;
  readonly status: string;
  readonly paymentStatus: "pending" | "succeeded" | "failed";
  readonly currency: string;
  readonly totalAmountCents: bigint;
}

export async function payableInvoice(q: Queryable, orgId: number, where: { id: number } | { lagoId: string }, forUpdate = false): Promise<PayableInvoice | null> {
  const byId = "id" in where;
  const { rows } = await q.query<{
    id: string;
    org_id: number;
    lago_id: string;
    customer_id: string;
    invoice_type: string;
    status: string;
    payment_status: PayableInvoice["paymentStatus"];
    currency: string;
    total_amount_cents: string;
  }>(
    `SELECT id, org_id, lago_id::text AS lago_id, customer_id, invoice_type, status, payment_status, currency, total_amount_cents::text AS total_amount_cents
       FROM invoices WHERE org_id = $1 AND ${byId ? "id = $2" : "lago_id = $2::uuid"}${forUpdate ? " FOR UPDATE" : ""}`,
    [orgId, byId ? where.id : where.lagoId],
  );
  const r = rows[0];
  if (r === undefined) return null;
  return {
    id: Number(r.id),
    orgId: Number(r.org_id),
    lagoId: r.lago_id,
    customerId: Number(r.customer_id),
    invoiceType: r.invoice_type,
    status: r.status,
    paymentStatus: r.payment_status,
    currency: r.currency,
    totalAmountCents: BigInt(r.total_amount_cents),
  };
}

/**
 * A just-finalized invoice with its customer's payment provider code and payment method, in one
 * read (the finalizing transaction is the billing job's hot path).
 */
/** Among finalized invoices, those `collect` acts on: paid already, or with a total and a customer naming a provider. */
export async function invoicesWithCollectionWork(tx: Queryable, orgId: number, invoiceIds: readonly number[]): Promise<number[]> {
  if (invoiceIds.length === 0) return [];
  const { rows } = await tx.query<{ id: string }>(
    `SELECT i.id FROM invoices i JOIN customers c ON c.id = i.customer_id AND c.org_id = i.org_id
      WHERE i.org_id = $1 AND i.id = ANY($2::bigint[]) AND i.status = 'finalized'
        AND (i.payment_status = 'succeeded' OR (i.total_amount_cents > 0 AND c.payment_provider_code IS NOT NULL))
      ORDER BY i.id`,
    [orgId, invoiceIds.map(String)],
  );
  return rows.map((r) => Number(r.id));
}

export async function invoiceToCollect(
  tx: Queryable,
  orgId: number,
  invoiceId: number,
): Promise<(PayableInvoice & { providerCode: string | null; providerCustomerId: string | null }) | null> {
  const { rows } = await tx.query<{
    lago_id: string;
    customer_id: string;
    invoice_type: string;
    status: string;
    payment_status: PayableInvoice["paymentStatus"];
    currency: string;
    total_amount_cents: string;
    payment_provider_code: string | null;
    provider_customer_id: string | null;
  }>(
    `SELECT i.lago_id::text AS lago_id, i.customer_id, i.invoice_type, i.status, i.payment_status, i.currency, i.total_amount_cents::text AS total_amount_cents,
            c.payment_provider_code, c.provider_customer_id
       FROM invoices i JOIN customers c ON c.id = i.customer_id AND c.org_id = i.org_id
      WHERE i.org_id = $1 AND i.id = $2`,
    [orgId, invoiceId],
  );
  const r = rows[0];
  if (r === undefined) return null;
  return {
    id: invoiceId,
    orgId,
    lagoId: r.lago_id,
    customerId: Number(r.customer_id),
    invoiceType: r.invoice_type,
    status: r.status,
    paymentStatus: r.payment_status,
    currency: r.currency,
    totalAmountCents: BigInt(r.total_amount_cents),
    providerCode: r.payment_provider_code,
    providerCustomerId: r.provider_customer_id,
  };
}

export async function setInvoicePaymentStatus(tx: Queryable, orgId: number, invoiceId: number, status: PayableInvoice["paymentStatus"], now: Date): Promise<void> {
  // A payment that succeeds ends the invoice's overdue state (Lago); a status set back to pending or
  // failed leaves it for the overdue pass to mark again.
  await tx.query(
    "UPDATE invoices SET payment_status = $3, payment_overdue = payment_overdue AND $3::text <> 'succeeded', updated_at = $4 WHERE org_id = $1 AND id = $2",
    [orgId, invoiceId, status, now],
  );
}

// ---- payments -----------------------------------------------------------------------------------

export interface NewPayment {
  readonly orgId: number;
  readonly lagoId: string;
  readonly invoiceId: number;
  readonly customerId: number;
  readonly amountCents: bigint;
  readonly currency: string;
  readonly provider: string;
  readonly providerCustomerId: string;
  readonly idempotencyKey: string;
  readonly nextAttemptAt: Date;
  readonly now: Date;
}

/** A payment due at `nextAttemptAt`; false when the invoice has one already (one per invoice). */
export async function insertPayment(tx: Queryable, p: NewPayment): Promise<boolean> {
  const { rowCount } = await tx.query(
    `INSERT INTO payments (org_id, lago_id, invoice_id, customer_id, amount_cents, currency, provider, provider_customer_id, status,
                           idempotency_key, next_attempt_at, created_at, updated_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'pending', $9, $10, $11, $11)
     ON CONFLICT (invoice_id) DO NOTHING`,
    [p.orgId, p.lagoId, p.invoiceId, p.customerId, p.amountCents.toString(), p.currency, p.provider, p.providerCustomerId, p.idempotencyKey, p.nextAttemptAt, p.now],
  );
  return rowCount > 0;
}

export async function paymentOfInvoice(q: Queryable, orgId: number, invoiceId: number, forUpdate = false): Promise<PaymentRecord | null> {
  const { rows } = await q.query<PaymentRow>(
    `SELECT ${PAYMENT_COLUMNS} FROM ${PAYMENT_FROM} WHERE p.org_id = $1 AND p.invoice_id = $2${forUpdate ? " FOR UPDATE OF p" : ""}`,
    [orgId, invoiceId],
  );
  return rows[0] === undefined ? null : toPayment(rows[0]);
}

export async function paymentByLagoId(q: Queryable, orgId: number, lagoId: string): Promise<PaymentRecord | null> {
  const { rows } = await q.query<PaymentRow>(`SELECT ${PAYMENT_COLUMNS} FROM ${PAYMENT_FROM} WHERE p.org_id = $1 AND p.lago_id = $2::uuid`, [orgId, lagoId]);
  return rows[0] === undefined ? null : toPayment(rows[0]);
}

export async function listPayments(q: Queryable, orgId: number, query: PaymentListQuery): Promise<{ items: PaymentRecord[]; total: number }> {
  const where = ["p.org_id = $1"];
  const params: unknown[] = [orgId];
  if (query.externalCustomerId !== undefined) {
    params.push(query.externalCustomerId);
    where.push(`c.external_id = $${params.length}`);
  }
  if (query.invoiceId !== undefined) {
    params.push(query.invoiceId);
    where.push(`i.lago_id = $${params.length}::uuid`);
  }
  const filter = where.join(" AND ");
  const page = await q.query<PaymentRow>(
    `SELECT ${PAYMENT_COLUMNS} FROM ${PAYMENT_FROM} WHERE ${filter}
      ORDER BY p.created_at DESC, p.id DESC LIMIT $${params.length + 1} OFFSET $${params.length + 2}`,
    [...params, query.perPage, (query.page - 1) * query.perPage],
  );
  const count = await q.query<{ n: string }>(`SELECT count(*)::text AS n FROM ${PAYMENT_FROM} WHERE ${filter}`, params);
  return { items: page.rows.map(toPayment), total: Number(count.rows[0]?.n ?? 0) };
}

interface AttemptRow {
  attempt: number;
  idempotency_key: string;
  payment_method: string;
  outcome: ChargeOutcome;
  provider_payment_id: string | null;
  error_code: string | null;
  error_message: string | null;
  replayed: boolean;
  duration_ms: number;
  started_at: Date;
}

export async function attemptsOf(q: Queryable, orgId: number, paymentId: number): Promise<AttemptRecord[]> {
  const { rows } = await q.query<AttemptRow>(
    `SELECT attempt, idempotency_key, payment_method, outcome, provider_payment_id, error_code, error_message, replayed, duration_ms, started_at
       FROM payment_attempts WHERE org_id = $1 AND payment_id = $2 ORDER BY attempt`,
    [orgId, paymentId],
  );
  return rows.map((r) => ({
    attempt: Number(r.attempt),
    idempotencyKey: r.idempotency_key,
    paymentMethod: r.payment_method,
    outcome: r.outcome,
    providerPaymentId: r.provider_payment_id,
    errorCode: r.error_code,
    errorMessage: r.error_message,
    replayed: r.replayed,
    durationMs: Number(r.duration_ms),
    startedAt: new Date(r.started_at),
  }));
}

// ---- the worker -----------------------------------------------------------------------------------

// Payments and credit note refunds (refunds_store.ts) are claimed alike: a row is due at
// next_attempt_at (the organization's clock) and held by lease_id until lease_until (the wall clock).
type LeasedTable = "payments" | "credit_note_refunds";

/** What one claim asks for: up to `limit` rows of `orgId` due by `orgNow`, held until `leaseUntil`. */
export interface Claim {
  readonly orgId: number;
  readonly orgNow: Date;
  readonly wallNow: Date;
  readonly leaseId: string;
  readonly leaseUntil: Date;
  readonly limit: number;
}

/** Organizations with a row due at some point (or a claim expired), and their earliest due time. */
export async function organizationsWithDue(q: Queryable, table: LeasedTable): Promise<{ orgId: number; earliest: Date }[]> {
  const { rows } = await q.query<{ org_id: number; earliest: Date }>(
    `SELECT org_id, min(next_attempt_at) AS earliest FROM ${table} WHERE next_attempt_at IS NOT NULL GROUP BY org_id ORDER BY org_id`,
  );
  return rows.map((r) => ({ orgId: Number(r.org_id), earliest: new Date(r.earliest) }));
}

/**
 * Claims up to `limit` of the organization's rows due by `orgNow` that no live claim holds
 * (`FOR UPDATE SKIP LOCKED`: processes share the work); answers their ids.
 */
export async function claimDueIds(q: Queryable, table: LeasedTable, c: Claim): Promise<string[]> {
  const { rows } = await q.query<{ id: string }>(
    `UPDATE ${table} SET lease_id = $4, lease_until = $5
      WHERE id IN (SELECT id FROM ${table}
                    WHERE org_id = $1 AND next_attempt_at IS NOT NULL AND next_attempt_at <= $2 AND (lease_until IS NULL OR lease_until <= $3)
                    ORDER BY next_attempt_at, id LIMIT $6 FOR UPDATE SKIP LOCKED)
      RETURNING id`,
    [c.orgId, c.orgNow, c.wallNow, c.leaseId, c.leaseUntil, c.limit],
  );
  return rows.map((r) => r.id);
}

/** Gives a claim back unused (shutdown): the row is due again at once. */
export async function releaseClaimOf(q: Queryable, table: LeasedTable, id: number, leaseId: string): Promise<void> {
  await q.query(`UPDATE ${table} SET lease_id = NULL, lease_until = NULL WHERE id = $1 AND lease_id = $2`, [id, leaseId]);
}

/** Organizations with a payment due at some point, and their earliest due time. */
export const organizationsWithDuePayments = (q: Queryable): Promise<{ orgId: number; earliest: Date }[]> => organizationsWithDue(q, "payments");

/** Claims due payments (see `claimDueIds`); the claim lasts until `leaseUntil`. */
export async function claimDue(q: Queryable, c: Claim): Promise<PaymentRecord[]> {
  const ids = await claimDueIds(q, "payments", c);
  if (ids.length === 0) return [];
  const claimed = await q.query<PaymentRow>(`SELECT ${PAYMENT_COLUMNS} FROM ${PAYMENT_FROM} WHERE p.org_id = $1 AND p.id = ANY($2::bigint[]) ORDER BY p.id`, [c.orgId, ids]);
  return claimed.rows.map(toPayment);
}

/** Gives a claim back unused (shutdown): the payment is due again at once, with the same key. */
export const releaseClaim = (q: Queryable, id: number, leaseId: string): Promise<void> => releaseClaimOf(q, "payments", id, leaseId);

/** The payment locked for recording an attempt, if `leaseId` still holds it. */
export async function lockClaimed(tx: Queryable, orgId: number, id: number, leaseId: string): Promise<PaymentRecord | null> {
  const { rows } = await tx.query<PaymentRow>(`SELECT ${PAYMENT_COLUMNS} FROM ${PAYMENT_FROM} WHERE p.org_id = $1 AND p.id = $2 AND p.lease_id = $3 FOR UPDATE OF p`, [
    orgId,
    id,
    leaseId,
  ]);
  return rows[0] === undefined ? null : toPayment(rows[0]);
}

export interface AttemptWrite {
  readonly orgId: number;
  readonly paymentId: number;
  readonly attempt: number;
  readonly idempotencyKey: string;
  readonly paymentMethod: string;
  readonly outcome: ChargeOutcome;
  readonly providerPaymentId: string | null;
  readonly errorCode: string | null;
  readonly errorMessage: string | null;
  readonly replayed: boolean;
  readonly durationMs: number;
  readonly startedAt: Date;
}

export async function insertAttempt(tx: Queryable, a: AttemptWrite): Promise<void> {
  await tx.query(
    `INSERT INTO payment_attempts (org_id, payment_id, attempt, idempotency_key, payment_method, outcome, provider_payment_id, error_code, error_message,
                                   replayed, duration_ms, started_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`,
    [a.orgId, a.paymentId, a.attempt, a.idempotencyKey, a.paymentMethod, a.outcome, a.providerPaymentId, a.errorCode, a.errorMessage, a.replayed, a.durationMs, a.startedAt],
  );
}

export interface PaymentUpdate {
  readonly status: PaymentRecordStatus;
  readonly attempts: number;
  readonly roundAttempts: number;
  readonly idempotencyKey: string;
  readonly keySeq: number;
  readonly nextAttemptAt: Date | null;
  readonly providerPaymentId: string | null;
  readonly provider: string;
  readonly providerCustomerId: string;
  readonly lastOutcome: ChargeOutcome | null;
  readonly lastErrorCode: string | null;
  readonly lastErrorMessage: string | null;
  readonly succeededAt: Date | null;
  readonly failedAt: Date | null;
  readonly now: Date;
}

/** Writes the payment's new state and drops any claim on it. */
export async function updatePayment(tx: Queryable, orgId: number, id: number, u: PaymentUpdate): Promise<void> {
  await tx.query(
    `UPDATE payments SET status = $3, attempts = $4, round_attempts = $5, idempotency_key = $6, key_seq = $7, next_attempt_at = $8,
            provider_payment_id = $9, provider_customer_id = $10, last_outcome = $11, last_error_code = $12, last_error_message = $13,
            succeeded_at = $14, failed_at = $15, updated_at = $16, provider = $17, lease_id = NULL, lease_until = NULL
      WHERE org_id = $1 AND id = $2`,
    [
      orgId,
      id,
      u.status,
      u.attempts,
      u.roundAttempts,
      u.idempotencyKey,
      u.keySeq,
      u.nextAttemptAt,
      u.providerPaymentId,
      u.providerCustomerId,
      u.lastOutcome,
      u.lastErrorCode,
      u.lastErrorMessage,
      u.succeededAt,
      u.failedAt,
      u.now,
      u.provider,
    ],
  );
}

/** Stops collection: nothing more is attempted (a claim in flight finds the payment canceled). */
export async function cancelPayment(tx: Queryable, orgId: number, id: number, now: Date): Promise<void> {
  await tx.query("UPDATE payments SET status = 'canceled', next_attempt_at = NULL, updated_at = $3 WHERE org_id = $1 AND id = $2 AND status = 'pending'", [
    orgId,
    id,
    now,
  ]);
}

/** Payments not yet paid nor given up (the gauge billing_payments_pending). */
export async function pendingCount(q: Queryable): Promise<number> {
  const { rows } = await q.query<{ n: string }>("SELECT count(*)::text AS n FROM payments WHERE status = 'pending'");
  return Number(rows[0]?.n ?? 0);
}

// ---- the sandbox provider's ledger ----------------------------------------------------------------

export interface SandboxCharge {
  readonly idempotencyKey: string;
  readonly providerPaymentId: string;
  readonly paymentMethod: string;
  readonly reference: string;
  readonly amountCents: bigint;
  readonly currency: string;
  readonly outcome: "succeeded" | "declined" | "transient_failure";
  readonly errorCode: string | null;
  readonly createdAt: Date;
}

interface SandboxRow {
  idempotency_key: string;
  provider_payment_id: string;
  payment_method: string;
  reference: string;
  amount_cents: string;
  currency: string;
  outcome: SandboxCharge["outcome"];
  error_code: string | null;
  created_at: Date;
}

const toSandboxCharge = (r: SandboxRow): SandboxCharge => ({
  idempotencyKey: r.idempotency_key,
  providerPaymentId: r.provider_payment_id,
  paymentMethod: r.payment_method,
  reference: r.reference,
  amountCents: BigInt(r.amount_cents),
  currency: r.currency,
  outcome: r.outcome,
  errorCode: r.error_code,
  createdAt: new Date(r.created_at),
});

const SANDBOX_COLUMNS = "idempotency_key, provider_payment_id, payment_method, reference, amount_cents::text AS amount_cents, currency, outcome, error_code, created_at";

/** Records the sandbox's answer to a new key; when the key is taken (a concurrent twin), answers the row kept. */
export async function insertSandboxCharge(q: Queryable, orgId: number, c: SandboxCharge): Promise<SandboxCharge> {
  const { rows } = await q.query<SandboxRow>(
    `INSERT INTO sandbox_charges (org_id, idempotency_key, provider_payment_id, payment_method, reference, amount_cents, currency, outcome, error_code, created_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
     ON CONFLICT (org_id, idempotency_key) DO NOTHING RETURNING ${SANDBOX_COLUMNS}`,
    [orgId, c.idempotencyKey, c.providerPaymentId, c.paymentMethod, c.reference, c.amountCents.toString(), c.currency, c.outcome, c.errorCode, c.createdAt],
  );
  if (rows[0] !== undefined) return toSandboxCharge(rows[0]);
  return (await sandboxChargeByKey(q, orgId, c.idempotencyKey))!;
}

export async function sandboxChargeByKey(q: Queryable, orgId: number, key: string): Promise<SandboxCharge | null> {
  const { rows } = await q.query<SandboxRow>(`SELECT ${SANDBOX_COLUMNS} FROM sandbox_charges WHERE org_id = $1 AND idempotency_key = $2`, [orgId, key]);
  return rows[0] === undefined ? null : toSandboxCharge(rows[0]);
}

/** The sandbox's ledger for one reference (an invoice), oldest first. */
export async function sandboxCharges(q: Queryable, orgId: number, reference: string): Promise<SandboxCharge[]> {
  const { rows } = await q.query<SandboxRow>(`SELECT ${SANDBOX_COLUMNS} FROM sandbox_charges WHERE org_id = $1 AND reference = $2 ORDER BY created_at, provider_payment_id`, [
    orgId,
    reference,
  ]);
  return rows.map(toSandboxCharge);
}

// ---- the invoice-paid hook ----------------------------------------------------------------------

/** Records that the invoice is paid; false when it was recorded before (the hook fires once). */
export async function markInvoicePaid(tx: Queryable, orgId: number, invoiceId: number, via: "provider" | "manual" | "nothing_due", now: Date): Promise<boolean> {
  const { rowCount } = await tx.query("INSERT INTO paid_invoices (invoice_id, org_id, via, paid_at) VALUES ($1, $2, $3, $4) ON CONFLICT (invoice_id) DO NOTHING", [
    invoiceId,
    orgId,
    via,
    now,
  ]);
  return rowCount > 0;
}
