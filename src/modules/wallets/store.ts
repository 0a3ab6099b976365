// SQL for wallets and wallet transactions. Every statement is scoped by org_id.
import type { Queryable } from "../../db/db.ts";
import { Decimal } from "../../shared/money.ts";
import type { Balance } from "../invoicing/index.ts";
import type { WalletPatch } from "./core/wallet.ts";
import type { RuleInterval, RuleMethod, RuleTrigger } from "./core/rules.ts";

export interface Wallet {
  readonly id: number;
  readonly orgId: number;
  readonly lagoId: string;
  readonly customerId: number;
  readonly customerLagoId: string;
  readonly externalCustomerId: string;
  readonly status: "active" | "terminated";
  readonly name: string | null;
  readonly code: string | null;
  readonly priority: number;
  readonly currency: string;
  readonly rateAmount: Decimal;
  readonly balanceCents: bigint;
  readonly consumedAmountCents: bigint;
  readonly invoiceRequiresSuccessfulPayment: boolean;
  readonly expirationAt: Date | null;
  readonly lastBalanceSyncAt: Date | null;
  readonly lastConsumedCreditAt: Date | null;
  readonly terminatedAt: Date | null;
  readonly createdAt: Date;
  /** Its live recurring top-up rules, when read for rendering (`withRules`). */
  readonly rules?: readonly RuleRecord[];
}

interface WalletRow {
  id: string;
  org_id: number;
  lago_id: string;
  customer_id: string;
  customer_lago_id: string;
  external_customer_id: string;
  status: "active" | "terminated";
  name: string | null;
  code: string | null;
  priority: number;
  currency: string;
  rate_amount: string;
  balance_cents: string;
  consumed_amount_cents: string;
  invoice_requires_successful_payment: boolean;
  expiration_at: Date | null;
  last_balance_sync_at: Date | null;
  last_consumed_credit_at: Date | null;
  terminated_at: Date | null;
  created_at: Date;
}

const date = (v: Date | null) => (v === null ? null : new Date(v));

const toWallet = (r: WalletRow): Wallet => ({
  id: Number(r.id),
  orgId: Number(r.org_id),
  lagoId: r.lago_id,
  customerId: Number(r.customer_id),
  customerLagoId: r.customer_lago_id,
  externalCustomerId: r.external_customer_id,
  status: r.status,
  name: r.name,
  code: r.code,
  priority: Number(r.priority),
  currency: r.currency,
  rateAmount: new Decimal(r.rate_amount),
  balanceCents: BigInt(r.balance_cents),
  consumedAmountCents: BigInt(r.consumed_amount_cents),
  invoiceRequiresSuccessfulPayment: r.invoice_requires_successful_payment,
  expirationAt: date(r.expiration_at),
  lastBalanceSyncAt: date(r.last_balance_sync_at),
  lastConsumedCreditAt: date(r.last_consumed_credit_at),
  terminatedAt: date(r.terminated_at),
  createdAt: new Date(r.created_at),
});

const WALLET_SELECT = `
SELECT w.id, w.org_id, w.lago_id::text AS lago_id, w.customer_id, c.lago_id::text AS customer_lago_id, c.external_id AS external_customer_id,
       w.status, w.name, w.code, w.priority, w.currency, w.rate_amount::text AS rate_amount, w.balance_cents, w.consumed_amount_cents,
       w.invoice_requires_successful_payment, w.expiration_at, w.last_balance_sync_at, w.last_consumed_credit_at, w.terminated_at, w.created_at
  FROM wallets w JOIN customers c ON c.org_id = w.org_id AND c.id = w.customer_id`;

export async function insertWallet(
  q: Queryable,
  w: { orgId: number; lagoId: string; customerId: number; name: string | null; code: string | null; priority: number; currency: string; rateAmount: Decimal; expirationAt: Date | null; invoiceRequiresSuccessfulPayment: boolean; now: Date },
): Promise<number> {
  const { rows } = await q.query<{ id: string }>(
    `INSERT INTO wallets (org_id, lago_id, customer_id, status, name, code, priority, currency, rate_amount, invoice_requires_successful_payment,
                          expiration_at, created_at, updated_at)
     VALUES ($1, $2, $3, 'active', $4, $5, $6, $7, $8::numeric, $9, $10, $11, $11) RETURNING id`,
    [w.orgId, w.lagoId, w.customerId, w.name, w.code, w.priority, w.currency, w.rateAmount.toString(), w.invoiceRequiresSuccessfulPayment, w.expirationAt, w.now],
  );
  return Number(rows[0]!.id);
}

export async function walletById(q: Queryable, orgId: number, id: number, forUpdate = false): Promise<Wallet | null> {
  const { rows } = await q.query<WalletRow>(`${WALLET_SELECT} WHERE w.org_id = $1 AND w.id = $2${forUpdate ? " FOR UPDATE OF w" : ""}`, [orgId, id]);
  return rows[0] === undefined ? null : toWallet(rows[0]);
}

export async function walletByLagoId(q: Queryable, orgId: number, lagoId: string, forUpdate = false): Promise<Wallet | null> {
  const { rows } = await q.query<WalletRow>(`${WALLET_SELECT} WHERE w.org_id = $1 AND w.lago_id = $2::uuid${forUpdate ? " FOR UPDATE OF w" : ""}`, [orgId, lagoId]);
  return rows[0] === undefined ? null : toWallet(rows[0]);
}

export async function listWallets(q: Queryable, orgId: number, externalCustomerId: string | undefined, limit: number, offset: number): Promise<{ wallets: Wallet[]; total: number }> {
  const params: unknown[] = [orgId];
  let where = "w.org_id = $1";
  if (externalCustomerId !== undefined) {
    params.push(externalCustomerId);
    where += ` AND c.external_id = $2 AND c.deleted_at IS NULL`;
  }
  const { rows } = await q.query<WalletRow>(
    `${WALLET_SELECT} WHERE ${where} ORDER BY w.created_at DESC, w.id DESC LIMIT $${params.length + 1} OFFSET $${params.length + 2}`,
    [...params, limit, offset],
  );
  const count = await q.query<{ n: string }>(`SELECT count(*)::text AS n FROM wallets w JOIN customers c ON c.org_id = w.org_id AND c.id = w.customer_id WHERE ${where}`, params);
  return { wallets: rows.map(toWallet), total: Number(count.rows[0]?.n ?? 0) };
}

export async function updateWallet(q: Queryable, orgId: number, id: number, p: WalletPatch, now: Date): Promise<void> {
  const sets: string[] = [];
  const params: unknown[] = [orgId, id, now];
  const set = (column: string, value: unknown) => {
    params.push(value);
    sets.push(`${column} = $${params.length}`);
  };
  if (p.name !== undefined) set("name", p.name);
  if (p.code !== undefined) set("code", p.code);
  if (p.priority !== undefined) set("priority", p.priority);
  if (p.expirationAt !== undefined) set("expiration_at", p.expirationAt);
  if (p.invoiceRequiresSuccessfulPayment !== undefined) set("invoice_requires_successful_payment", p.invoiceRequiresSuccessfulPayment);
  await q.query(`UPDATE wallets SET ${[...sets, "updated_at = $3"].join(", ")} WHERE org_id = $1 AND id = $2`, params);
}

export async function terminateWallet(q: Queryable, orgId: number, id: number, now: Date): Promise<void> {
  await q.query("UPDATE wallets SET status = 'terminated', terminated_at = $3, updated_at = $3 WHERE org_id = $1 AND id = $2 AND status = 'active'", [orgId, id, now]);
}

/** Adds (or, negative, removes) minor units to the balance; a top-up also stamps the sync time. */
export async function moveBalance(q: Queryable, orgId: number, id: number, deltaCents: bigint, consumed: boolean, now: Date): Promise<void> {
  await q.query(
    `UPDATE wallets SET balance_cents = balance_cents + $3::int8,
            consumed_amount_cents = consumed_amount_cents + CASE WHEN $4 THEN -$3::int8 ELSE 0 END,
            last_consumed_credit_at = CASE WHEN $4 THEN $5 ELSE last_consumed_credit_at END,
            last_balance_sync_at = CASE WHEN $4 THEN last_balance_sync_at ELSE $5 END, updated_at = $5
      WHERE org_id = $1 AND id = $2`,
    [orgId, id, deltaCents.toString(), consumed, now],
  );
}

/** Organizations with active wallets that have an expiration date. */
export async function organizationsWithExpiringWallets(q: Queryable): Promise<number[]> {
  const { rows } = await q.query<{ org_id: number }>("SELECT DISTINCT org_id FROM wallets WHERE status = 'active' AND expiration_at IS NOT NULL ORDER BY org_id");
  return rows.map((r) => Number(r.org_id));
}

/** Active wallets whose expiration_at is past by `now`. */
export async function expiredWallets(q: Queryable, orgId: number, now: Date): Promise<number[]> {
  const { rows } = await q.query<{ id: string }>(
    "SELECT id FROM wallets WHERE org_id = $1 AND status = 'active' AND expiration_at IS NOT NULL AND expiration_at <= $2 ORDER BY expiration_at, id",
    [orgId, now],
  );
  return rows.map((r) => Number(r.id));
}

/** Active, unexpired wallets of the customer in `currency` with a balance, in drawing order, locked. */
export async function drawable(q: Queryable, orgId: number, customerId: number, currency: string, now: Date): Promise<Balance[]> {
  const { rows } = await q.query<{ id: string; balance_cents: string }>(
    `SELECT id, balance_cents FROM wallets
      WHERE org_id = $1 AND customer_id = $2 AND currency = $3 AND status = 'active' AND balance_cents > 0
        AND (expiration_at IS NULL OR expiration_at > $4)
      ORDER BY priority, created_at, id FOR UPDATE`,
    [orgId, customerId, currency, now],
  );
  return rows.map((r) => ({ id: Number(r.id), balanceCents: BigInt(r.balance_cents) }));
}

// ---- transactions ----------------------------------------------------------------------------------

export async function setTransactionInvoice(q: Queryable, orgId: number, id: number, invoiceId: number): Promise<void> {
  await q.query("UPDATE wallet_transactions SET invoice_id = $3 WHERE org_id = $1 AND id = $2", [orgId, id, invoiceId]);
}

// A purchase of credits waiting for its credit invoice to be paid.
const PENDING_PURCHASE = "t.status = 'pending' AND t.transaction_type = 'inbound' AND t.transaction_status = 'purchased'";

/** Purchases waiting for this invoice's payment, locked. */
export async function pendingPurchasesOfInvoice(q: Queryable, orgId: number, invoiceId: number): Promise<{ id: number; walletId: number; amountCents: bigint }[]> {
  const { rows } = await q.query<{ id: string; wallet_id: string; amount_cents: string }>(
    `SELECT t.id, t.wallet_id, t.amount_cents FROM wallet_transactions t WHERE t.org_id = $1 AND t.invoice_id = $2 AND ${PENDING_PURCHASE} ORDER BY t.id FOR UPDATE`,
    [orgId, invoiceId],
  );
  return rows.map((r) => ({ id: Number(r.id), walletId: Number(r.wallet_id), amountCents: BigInt(r.amount_cents) }));
}

/**
 * Locks the credit invoices of the wallet's purchases still waiting for payment (invoice before
 * wallet: the order a payment takes them in, invoice then its purchases' wallet).
 */
export async function lockPendingPurchaseInvoices(q: Queryable, orgId: number, walletId: number): Promise<void> {
  await q.query(
    `SELECT i.id FROM invoices i
      WHERE i.org_id = $1 AND i.id IN (SELECT t.invoice_id FROM wallet_transactions t WHERE t.org_id = $1 AND t.wallet_id = $2 AND ${PENDING_PURCHASE})
      ORDER BY i.id FOR UPDATE OF i`,
    [orgId, walletId],
  );
}

/** The wallet's purchases still waiting for payment, with their credit invoice. */
export async function pendingPurchasesOfWallet(q: Queryable, orgId: number, walletId: number): Promise<{ id: number; invoiceLagoId: string | null }[]> {
  const { rows } = await q.query<{ id: string; invoice_lago_id: string | null }>(
    `SELECT t.id, i.lago_id::text AS invoice_lago_id FROM wallet_transactions t LEFT JOIN invoices i ON i.org_id = t.org_id AND i.id = t.invoice_id
      WHERE t.org_id = $1 AND t.wallet_id = $2 AND ${PENDING_PURCHASE} ORDER BY t.id`,
    [orgId, walletId],
  );
  return rows.map((r) => ({ id: Number(r.id), invoiceLagoId: r.invoice_lago_id }));
}

/** A pending transaction's outcome: its credits count (settled) or never will (failed). */
export async function closePending(q: Queryable, orgId: number, id: number, status: "settled" | "failed", now: Date): Promise<boolean> {
  const { rowCount } = await q.query(
    `UPDATE wallet_transactions SET status = $3, settled_at = CASE WHEN $3 = 'settled' THEN $4::timestamptz END,
            failed_at = CASE WHEN $3 = 'failed' THEN $4::timestamptz END, updated_at = $4
      WHERE org_id = $1 AND id = $2 AND status = 'pending'`,
    [orgId, id, status, now],
  );
  return rowCount > 0;
}

/**
 * The credits a credit invoice bought and that its wallet still holds (the wallet locked with
 * `lock`): what was purchased less what its credit notes voided already, at most the wallet's
 * balance. Null when the invoice bought no credits that count (none, or still waiting for payment,
 * or failed).
 */
export async function heldPurchase(
  q: Queryable,
  orgId: number,
  invoiceId: number,
  lock: boolean,
): Promise<{ walletId: number; walletActive: boolean; heldCents: bigint } | null> {
  const { rows } = await q.query<{ wallet_id: string; purchased: string }>(
    `SELECT wallet_id, sum(amount_cents)::text AS purchased FROM wallet_transactions
      WHERE org_id = $1 AND invoice_id = $2 AND transaction_type = 'inbound' AND transaction_status = 'purchased' AND status = 'settled'
      GROUP BY wallet_id ORDER BY wallet_id LIMIT 1`,
    [orgId, invoiceId],
  );
  const r = rows[0];
  if (r === undefined) return null;
  const wallet = await walletById(q, orgId, Number(r.wallet_id), lock);
  if (wallet === null) return null;
  const voided = await q.query<{ n: string }>(
    `SELECT coalesce(sum(t.amount_cents), 0)::text AS n FROM wallet_transactions t
       JOIN credit_notes cn ON cn.org_id = t.org_id AND cn.id = t.credit_note_id
      WHERE t.org_id = $1 AND t.wallet_id = $2 AND cn.invoice_id = $3 AND t.transaction_type = 'outbound' AND t.transaction_status = 'voided'`,
    [orgId, wallet.id, invoiceId],
  );
  const left = BigInt(r.purchased) - BigInt(voided.rows[0]?.n ?? "0");
  const held = left < wallet.balanceCents ? left : wallet.balanceCents;
  return { walletId: wallet.id, walletActive: wallet.status === "active", heldCents: held > 0n ? held : 0n };
}

export interface WalletTransaction {
  readonly id: number;
  readonly lagoId: string;
  readonly walletLagoId: string;
  readonly invoiceLagoId: string | null;
  readonly creditNoteLagoId: string | null;
  readonly status: "pending" | "settled" | "failed";
  readonly source: "manual" | "interval" | "threshold";
  readonly transactionStatus: "purchased" | "granted" | "voided" | "invoiced";
  readonly transactionType: "inbound" | "outbound";
  readonly amountCents: bigint;
  readonly creditAmount: Decimal;
  readonly currency: string;
  readonly name: string | null;
  readonly invoiceRequiresSuccessfulPayment: boolean;
  readonly metadata: readonly { key: string; value: string }[];
  readonly settledAt: Date | null;
  readonly failedAt: Date | null;
  readonly createdAt: Date;
}

export interface NewTransaction {
  readonly lagoId: string;
  readonly walletId: number;
  readonly invoiceId: number | null;
  readonly status: WalletTransaction["status"];
  readonly transactionStatus: WalletTransaction["transactionStatus"];
  readonly transactionType: WalletTransaction["transactionType"];
  readonly amountCents: bigint;
  readonly creditAmount: Decimal;
  readonly name: string | null;
  readonly invoiceRequiresSuccessfulPayment: boolean;
  readonly metadata: readonly { key: string; value: string }[];
  /** What made it: a request (`manual`, the default) or a recurring rule. */
  readonly source?: WalletTransaction["source"];
  /** The credit note it was made for (credits of a refunded purchase voided). */
  readonly creditNoteId?: number | null;
}

export async function insertTransaction(q: Queryable, orgId: number, t: NewTransaction, now: Date): Promise<number> {
  const { rows } = await q.query<{ id: string }>(
    `INSERT INTO wallet_transactions (org_id, lago_id, wallet_id, invoice_id, status, transaction_status, transaction_type, amount_cents, credit_amount,
                                      name, invoice_requires_successful_payment, metadata, settled_at, created_at, updated_at, source, credit_note_id)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8::int8, $9::numeric, $10, $11, $12::jsonb, CASE WHEN $5 = 'settled' THEN $13::timestamptz END, $13, $13, $14, $15)
     RETURNING id`,
    [orgId, t.lagoId, t.walletId, t.invoiceId, t.status, t.transactionStatus, t.transactionType, t.amountCents.toString(), t.creditAmount.toString(), t.name,
     t.invoiceRequiresSuccessfulPayment, JSON.stringify(t.metadata), now, t.source ?? "manual", t.creditNoteId ?? null],
  );
  return Number(rows[0]!.id);
}

interface TransactionRow {
  id: string;
  lago_id: string;
  wallet_lago_id: string;
  invoice_lago_id: string | null;
  credit_note_lago_id: string | null;
  status: WalletTransaction["status"];
  source: WalletTransaction["source"];
  transaction_status: WalletTransaction["transactionStatus"];
  transaction_type: WalletTransaction["transactionType"];
  amount_cents: string;
  credit_amount: string;
  currency: string;
  name: string | null;
  invoice_requires_successful_payment: boolean;
  metadata: { key: string; value: string }[] | string;
  settled_at: Date | null;
  failed_at: Date | null;
  created_at: Date;
}

const TRANSACTION_SELECT = `
SELECT t.id, t.lago_id::text AS lago_id, w.lago_id::text AS wallet_lago_id, i.lago_id::text AS invoice_lago_id, cn.lago_id::text AS credit_note_lago_id,
       t.status, t.source, t.transaction_status, t.transaction_type, t.amount_cents, t.credit_amount::text AS credit_amount, w.currency, t.name,
       t.invoice_requires_successful_payment, t.metadata, t.settled_at, t.failed_at, t.created_at
  FROM wallet_transactions t
  JOIN wallets w ON w.org_id = t.org_id AND w.id = t.wallet_id
  LEFT JOIN invoices i ON i.org_id = t.org_id AND i.id = t.invoice_id
  LEFT JOIN credit_notes cn ON cn.org_id = t.org_id AND cn.id = t.credit_note_id`;

const toTransaction = (r: TransactionRow): WalletTransaction => ({
  id: Number(r.id),
  lagoId: r.lago_id,
  walletLagoId: r.wallet_lago_id,
  invoiceLagoId: r.invoice_lago_id,
  creditNoteLagoId: r.credit_note_lago_id,
  status: r.status,
  source: r.source,
  transactionStatus: r.transaction_status,
  transactionType: r.transaction_type,
  amountCents: BigInt(r.amount_cents),
  creditAmount: new Decimal(r.credit_amount),
  currency: r.currency,
  name: r.name,
  invoiceRequiresSuccessfulPayment: r.invoice_requires_successful_payment,
  metadata: typeof r.metadata === "string" ? JSON.parse(r.metadata) : r.metadata,
  settledAt: date(r.settled_at),
  failedAt: date(r.failed_at),
  createdAt: new Date(r.created_at),
});

export async function transactionById(q: Queryable, orgId: number, id: number): Promise<WalletTransaction | null> {
  const { rows } = await q.query<TransactionRow>(`${TRANSACTION_SELECT} WHERE t.org_id = $1 AND t.id = $2`, [orgId, id]);
  return rows[0] === undefined ? null : toTransaction(rows[0]);
}

export async function transactionByLagoId(q: Queryable, orgId: number, lagoId: string): Promise<WalletTransaction | null> {
  const { rows } = await q.query<TransactionRow>(`${TRANSACTION_SELECT} WHERE t.org_id = $1 AND t.lago_id = $2::uuid`, [orgId, lagoId]);
  return rows[0] === undefined ? null : toTransaction(rows[0]);
}

export interface TransactionFilter {
  readonly status?: string;
  readonly transactionStatus?: string;
  readonly transactionType?: string;
}

export async function listTransactions(
  q: Queryable,
  orgId: number,
  walletId: number,
  f: TransactionFilter,
  limit: number,
  offset: number,
): Promise<{ items: WalletTransaction[]; total: number }> {
  const where = ["t.org_id = $1", "t.wallet_id = $2"];
  const params: unknown[] = [orgId, walletId];
  const add = (column: string, v: string | undefined) => {
    if (v === undefined) return;
    params.push(v);
    where.push(`${column} = $${params.length}`);
  };
  add("t.status", f.status);
  add("t.transaction_status", f.transactionStatus);
  add("t.transaction_type", f.transactionType);
  const filter = where.join(" AND ");
  const { rows } = await q.query<TransactionRow>(
    `${TRANSACTION_SELECT} WHERE ${filter} ORDER BY t.created_at DESC, t.id DESC LIMIT $${params.length + 1} OFFSET $${params.length + 2}`,
    [...params, limit, offset],
  );
  const count = await q.query<{ n: string }>(`SELECT count(*)::text AS n FROM wallet_transactions t WHERE ${filter}`, params);
  return { items: rows.map(toTransaction), total: Number(count.rows[0]?.n ?? 0) };
}

// ---- recurring top-up rules ---------------------------------------------------------------------------

/** A stored rule: what was written (RuleWrite, declared below) and its identity and state. */
export interface RuleRecord extends RuleWrite {
  readonly id: number;
  readonly orgId: number;
  readonly lagoId: string;
  readonly walletId: number;
  readonly status: "active" | "terminated";
  readonly armed: boolean;
  readonly createdAt: Date;
}

interface RuleRow {
  id: string;
  org_id: number;
  lago_id: string;
  wallet_id: string;
  status: RuleRecord["status"];
  trigger: RuleTrigger;
  method: RuleMethod;
  interval: RuleInterval | null;
  threshold_credits: string | null;
  threshold_cents: string | null;
  paid_credits: string;
  granted_credits: string;
  target_ongoing_balance: string | null;
  grants_target_top_up: boolean | null;
  started_at: Date | null;
  anchor_at: Date;
  expiration_at: Date | null;
  invoice_requires_successful_payment: boolean;
  transaction_metadata: { key: string; value: string }[] | string;
  transaction_name: string | null;
  next_due_at: Date | null;
  occurrences_done: number;
  armed: boolean;
  created_at: Date;
}

const RULE_COLUMNS = `r.id, r.org_id, r.lago_id::text AS lago_id, r.wallet_id, r.status, r.trigger, r.method, r.interval,
  r.threshold_credits::text AS threshold_credits, r.threshold_cents::text AS threshold_cents, r.paid_credits::text AS paid_credits,
  r.granted_credits::text AS granted_credits, r.target_ongoing_balance::text AS target_ongoing_balance, r.grants_target_top_up, r.started_at,
  r.anchor_at, r.expiration_at, r.invoice_requires_successful_payment, r.transaction_metadata, r.transaction_name, r.next_due_at,
  r.occurrences_done, r.armed, r.created_at`;

const decimalOrNull = (v: string | null) => (v === null ? null : new Decimal(v));

const toRule = (r: RuleRow): RuleRecord => ({
  id: Number(r.id),
  orgId: Number(r.org_id),
  lagoId: r.lago_id,
  walletId: Number(r.wallet_id),
  status: r.status,
  trigger: r.trigger,
  method: r.method,
  interval: r.interval,
  thresholdCredits: decimalOrNull(r.threshold_credits),
  thresholdCents: r.threshold_cents === null ? null : BigInt(r.threshold_cents),
  paidCredits: new Decimal(r.paid_credits),
  grantedCredits: new Decimal(r.granted_credits),
  targetOngoingBalance: decimalOrNull(r.target_ongoing_balance),
  grantsTargetTopUp: r.grants_target_top_up,
  startedAt: date(r.started_at),
  anchorAt: new Date(r.anchor_at),
  expirationAt: date(r.expiration_at),
  invoiceRequiresSuccessfulPayment: r.invoice_requires_successful_payment,
  transactionMetadata: typeof r.transaction_metadata === "string" ? JSON.parse(r.transaction_metadata) : r.transaction_metadata,
  transactionName: r.transaction_name,
  nextDueAt: date(r.next_due_at),
  occurrencesDone: Number(r.occurrences_done),
  armed: r.armed,
  createdAt: new Date(r.created_at),
});

/** The wallets with their live rules (for rendering). */
export async function withRules(q: Queryable, orgId: number, wallets: readonly Wallet[]): Promise<Wallet[]> {
  if (wallets.length === 0) return [];
  const { rows } = await q.query<RuleRow>(
    `SELECT ${RULE_COLUMNS} FROM wallet_recurring_rules r WHERE r.org_id = $1 AND r.wallet_id = ANY($2::bigint[]) AND r.status = 'active' ORDER BY r.created_at, r.id`,
    [orgId, wallets.map((w) => String(w.id))],
  );
  const byWallet = new Map<number, RuleRecord[]>();
  for (const r of rows.map(toRule)) (byWallet.get(r.walletId) ?? byWallet.set(r.walletId, []).get(r.walletId)!).push(r);
  return wallets.map((w) => ({ ...w, rules: byWallet.get(w.id) ?? [] }));
}

export async function activeRulesOf(q: Queryable, orgId: number, walletId: number): Promise<RuleRecord[]> {
  const { rows } = await q.query<RuleRow>(
    `SELECT ${RULE_COLUMNS} FROM wallet_recurring_rules r WHERE r.org_id = $1 AND r.wallet_id = $2 AND r.status = 'active' ORDER BY r.created_at, r.id FOR UPDATE`,
    [orgId, walletId],
  );
  return rows.map(toRule);
}

export async function ruleById(q: Queryable, orgId: number, id: number, forUpdate = false): Promise<RuleRecord | null> {
  const { rows } = await q.query<RuleRow>(`SELECT ${RULE_COLUMNS} FROM wallet_recurring_rules r WHERE r.org_id = $1 AND r.id = $2${forUpdate ? " FOR UPDATE" : ""}`, [
    orgId,
    id,
  ]);
  return rows[0] === undefined ? null : toRule(rows[0]);
}

export interface RuleWrite {
  readonly trigger: RuleTrigger;
  readonly method: RuleMethod;
  readonly interval: RuleInterval | null;
  readonly thresholdCredits: Decimal | null;
  readonly thresholdCents: bigint | null;
  readonly paidCredits: Decimal;
  readonly grantedCredits: Decimal;
  readonly targetOngoingBalance: Decimal | null;
  readonly grantsTargetTopUp: boolean | null;
  readonly startedAt: Date | null;
  readonly anchorAt: Date;
  readonly expirationAt: Date | null;
  readonly invoiceRequiresSuccessfulPayment: boolean;
  readonly transactionMetadata: readonly { key: string; value: string }[];
  readonly transactionName: string | null;
  readonly nextDueAt: Date | null;
  readonly occurrencesDone: number;
}

const ruleValues = (w: RuleWrite) => [
  w.trigger,
  w.method,
  w.interval,
  w.thresholdCredits?.toString() ?? null,
  w.thresholdCents?.toString() ?? null,
  w.paidCredits.toString(),
  w.grantedCredits.toString(),
  w.targetOngoingBalance?.toString() ?? null,
  w.grantsTargetTopUp,
  w.startedAt,
  w.anchorAt,
  w.expirationAt,
  w.invoiceRequiresSuccessfulPayment,
  JSON.stringify(w.transactionMetadata),
  w.transactionName,
  w.nextDueAt,
  w.occurrencesDone,
];

export async function insertRule(q: Queryable, orgId: number, walletId: number, lagoId: string, w: RuleWrite, now: Date): Promise<void> {
  await q.query(
    `INSERT INTO wallet_recurring_rules (trigger, method, interval, threshold_credits, threshold_cents, paid_credits, granted_credits, target_ongoing_balance,
                                         grants_target_top_up, started_at, anchor_at, expiration_at, invoice_requires_successful_payment,
                                         transaction_metadata, transaction_name, next_due_at, occurrences_done, org_id, wallet_id, lago_id, status,
                                         armed, created_at, updated_at)
     VALUES ($1, $2, $3, $4::numeric, $5::int8, $6::numeric, $7::numeric, $8::numeric, $9, $10, $11, $12, $13, $14::jsonb, $15, $16, $17,
             $18, $19, $20, 'active', true, $21, $21)`,
    [...ruleValues(w), orgId, walletId, lagoId, now],
  );
}

/** Replaces a rule's definition; a changed threshold arms it again. */
export async function updateRule(q: Queryable, orgId: number, id: number, w: RuleWrite, now: Date): Promise<void> {
  await q.query(
    `UPDATE wallet_recurring_rules SET trigger = $1, method = $2, interval = $3, threshold_credits = $4::numeric, armed = armed OR threshold_cents IS DISTINCT FROM $5::int8,
            threshold_cents = $5::int8, paid_credits = $6::numeric, granted_credits = $7::numeric, target_ongoing_balance = $8::numeric,
            grants_target_top_up = $9, started_at = $10, anchor_at = $11, expiration_at = $12, invoice_requires_successful_payment = $13,
            transaction_metadata = $14::jsonb, transaction_name = $15, next_due_at = $16, occurrences_done = $17, updated_at = $20
      WHERE org_id = $18 AND id = $19`,
    [...ruleValues(w), orgId, id, now],
  );
}

export async function terminateRules(q: Queryable, orgId: number, ids: readonly number[], now: Date): Promise<void> {
  if (ids.length === 0) return;
  await q.query(
    "UPDATE wallet_recurring_rules SET status = 'terminated', terminated_at = $3, next_due_at = NULL, updated_at = $3 WHERE org_id = $1 AND id = ANY($2::bigint[]) AND status = 'active'",
    [orgId, ids.map(String), now],
  );
}

/** Rules past their expiration_at, and rules of wallets no longer active, end. */
export async function endExpiredRules(q: Queryable, orgId: number, now: Date): Promise<void> {
  await q.query(
    `UPDATE wallet_recurring_rules r SET status = 'terminated', terminated_at = $2, next_due_at = NULL, updated_at = $2
      WHERE r.org_id = $1 AND r.status = 'active'
        AND (r.expiration_at <= $2 OR EXISTS (SELECT 1 FROM wallets w WHERE w.org_id = r.org_id AND w.id = r.wallet_id AND (w.status <> 'active' OR w.expiration_at <= $2)))`,
    [orgId, now],
  );
}

/** Organizations with live rules. */
export async function organizationsWithRules(q: Queryable): Promise<number[]> {
  const { rows } = await q.query<{ org_id: number }>("SELECT DISTINCT org_id FROM wallet_recurring_rules WHERE status = 'active' ORDER BY org_id");
  return rows.map((r) => Number(r.org_id));
}

/** Interval rules with an anniversary due by `now`. */
export async function dueIntervalRules(q: Queryable, orgId: number, now: Date): Promise<{ id: number; walletId: number }[]> {
  const { rows } = await q.query<{ id: string; wallet_id: string }>(
    "SELECT id, wallet_id FROM wallet_recurring_rules WHERE org_id = $1 AND status = 'active' AND next_due_at IS NOT NULL AND next_due_at <= $2 ORDER BY next_due_at, id",
    [orgId, now],
  );
  return rows.map((r) => ({ id: Number(r.id), walletId: Number(r.wallet_id) }));
}

// The balance a rule compares: the wallet's, plus credits bought and awaiting their invoice's
// payment (not voided), so a purchase on its way is not bought again.
const EFFECTIVE_BALANCE = `w.balance_cents + COALESCE((SELECT sum(t.amount_cents) FROM wallet_transactions t
    LEFT JOIN invoices i ON i.org_id = t.org_id AND i.id = t.invoice_id
   WHERE t.org_id = w.org_id AND t.wallet_id = w.id AND t.status = 'pending' AND t.transaction_type = 'inbound'
     AND (i.id IS NULL OR i.status <> 'voided')), 0)`;

export async function effectiveBalance(q: Queryable, orgId: number, walletId: number): Promise<bigint> {
  const { rows } = await q.query<{ n: string }>(`SELECT (${EFFECTIVE_BALANCE})::text AS n FROM wallets w WHERE w.org_id = $1 AND w.id = $2`, [orgId, walletId]);
  return BigInt(rows[0]?.n ?? "0");
}

/** Threshold rules seen above their threshold are armed again; answers the armed ones now at or below it. */
export async function thresholdRulesToFire(q: Queryable, orgId: number): Promise<{ id: number; walletId: number }[]> {
  await q.query(
    `UPDATE wallet_recurring_rules r SET armed = true
      FROM wallets w WHERE w.org_id = r.org_id AND w.id = r.wallet_id AND r.org_id = $1 AND r.status = 'active' AND r.trigger = 'threshold'
        AND NOT r.armed AND (${EFFECTIVE_BALANCE}) > r.threshold_cents`,
    [orgId],
  );
  const { rows } = await q.query<{ id: string; wallet_id: string }>(
    `SELECT r.id, r.wallet_id FROM wallet_recurring_rules r JOIN wallets w ON w.org_id = r.org_id AND w.id = r.wallet_id
      WHERE r.org_id = $1 AND r.status = 'active' AND r.trigger = 'threshold' AND r.armed AND w.status = 'active'
        AND (${EFFECTIVE_BALANCE}) <= r.threshold_cents
      ORDER BY r.id`,
    [orgId],
  );
  return rows.map((r) => ({ id: Number(r.id), walletId: Number(r.wallet_id) }));
}

/** Arms the wallet's threshold rules whose threshold its balance is now above (after a top-up). */
export async function rearmThresholdRules(q: Queryable, orgId: number, walletId: number): Promise<void> {
  await q.query(
    `UPDATE wallet_recurring_rules r SET armed = true
      FROM wallets w WHERE w.org_id = r.org_id AND w.id = r.wallet_id AND r.org_id = $1 AND r.wallet_id = $2 AND r.status = 'active'
        AND r.trigger = 'threshold' AND NOT r.armed AND (${EFFECTIVE_BALANCE}) > r.threshold_cents`,
    [orgId, walletId],
  );
}

/** Records one top-up of a rule (an anniversary or a crossing); false when it was recorded before. */
export async function recordRuleTopUp(q: Queryable, orgId: number, ruleId: number, occurrence: string, dueAt: Date, now: Date): Promise<boolean> {
  const { rowCount } = await q.query(
    "INSERT INTO wallet_rule_top_ups (org_id, rule_id, occurrence, due_at, created_at) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (rule_id, occurrence) DO NOTHING",
    [orgId, ruleId, occurrence, dueAt, now],
  );
  return rowCount > 0;
}

export async function setRuleTopUpAmounts(q: Queryable, ruleId: number, occurrence: string, paidCents: bigint, grantedCents: bigint): Promise<void> {
  await q.query("UPDATE wallet_rule_top_ups SET paid_cents = $3, granted_cents = $4 WHERE rule_id = $1 AND occurrence = $2", [
    ruleId,
    occurrence,
    paidCents.toString(),
    grantedCents.toString(),
  ]);
}

export async function ruleCrossings(q: Queryable, ruleId: number): Promise<number> {
  const { rows } = await q.query<{ n: string }>("SELECT count(*)::text AS n FROM wallet_rule_top_ups WHERE rule_id = $1", [ruleId]);
  return Number(rows[0]?.n ?? 0);
}

export async function setIntervalProgress(q: Queryable, orgId: number, ruleId: number, done: number, nextDueAt: Date | null, now: Date): Promise<void> {
  await q.query("UPDATE wallet_recurring_rules SET occurrences_done = $3, next_due_at = $4, updated_at = $5 WHERE org_id = $1 AND id = $2", [
    orgId,
    ruleId,
    done,
    nextDueAt,
    now,
  ]);
}

export async function disarm(q: Queryable, orgId: number, ruleId: number, now: Date): Promise<void> {
  await q.query("UPDATE wallet_recurring_rules SET armed = false, updated_at = $3 WHERE org_id = $1 AND id = $2", [orgId, ruleId, now]);
}
