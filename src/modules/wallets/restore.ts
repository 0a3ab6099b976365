// Voiding an invoice gives back the prepaid credits it drew on (Lago: "prepaid credits used to pay
// the invoice will be refunded to the customer's balance"): one inbound, settled `granted`
// transaction per wallet, linked to the voided invoice (unique per wallet and invoice, so the credits
// come back once). A wallet terminated since gets nothing back.
import crypto from "node:crypto";
import type { Queryable } from "../../db/db.ts";
import { centsToCredits } from "./core/wallet.ts";
import { walletTransactionJson } from "./json.ts";
import type { WalletWebhook } from "./service.ts";
import * as store from "./store.ts";

export interface RestoredCredits {
  readonly walletId: number;
  readonly transactionId: number;
  readonly amountCents: bigint;
}

/** In the voiding transaction: the credits `invoiceId` took of each wallet, back in the wallet. */
export async function restoreWalletCredits(
  q: Queryable,
  orgId: number,
  invoiceId: number,
  now: Date,
  opts: { webhook?: WalletWebhook; newId?: () => string } = {},
): Promise<RestoredCredits[]> {
  const newId = opts.newId ?? (() => crypto.randomUUID());
  const { rows } = await q.query<{ wallet_id: string; amount_cents: string }>(
    `SELECT t.wallet_id, sum(t.amount_cents)::text AS amount_cents
       FROM wallet_transactions t JOIN wallets w ON w.org_id = t.org_id AND w.id = t.wallet_id
      WHERE t.org_id = $1 AND t.invoice_id = $2 AND t.transaction_type = 'outbound' AND t.transaction_status = 'invoiced' AND t.status = 'settled'
        AND w.status = 'active'
        AND NOT EXISTS (SELECT 1 FROM wallet_transactions r WHERE r.org_id = t.org_id AND r.wallet_id = t.wallet_id AND r.invoice_id = t.invoice_id
                          AND r.transaction_type = 'inbound' AND r.transaction_status = 'granted')
      GROUP BY t.wallet_id ORDER BY t.wallet_id`,
    [orgId, invoiceId],
  );
  const out: RestoredCredits[] = [];
  for (const r of rows) {
    const amountCents = BigInt(r.amount_cents);
    if (amountCents <= 0n) continue;
    const wallet = await store.walletById(q, orgId, Number(r.wallet_id));
    if (wallet === null) continue;
    const id = await store.insertTransaction(
      q,
      orgId,
      {
        lagoId: newId(),
        walletId: wallet.id,
        invoiceId,
        status: "settled",
        transactionStatus: "granted",
        transactionType: "inbound",
        amountCents,
        creditAmount: centsToCredits(amountCents, wallet.rateAmount, wallet.currency),
        name: "Credits restored from a voided invoice",
        invoiceRequiresSuccessfulPayment: false,
        metadata: [],
      },
      now,
    );
    // Consumed credits come back: the balance grows and what was consumed shrinks.
    await store.moveBalance(q, orgId, wallet.id, amountCents, true, now);
    await opts.webhook?.(q, orgId, "wallet_transaction.created", "wallet_transaction", walletTransactionJson((await store.transactionById(q, orgId, id))!));
    out.push({ walletId: wallet.id, transactionId: id, amountCents });
  }
  return out;
}

/**
 * In the voiding transaction of a wallet's credit invoice: the purchases still waiting for it to be
 * paid will never count; they are marked failed (Lago's failed wallet transaction). Answers how many.
 */
export async function failVoidedPurchases(q: Queryable, orgId: number, invoiceId: number, now: Date, opts: { webhook?: WalletWebhook } = {}): Promise<number> {
  const { rows } = await q.query<{ id: string }>(
    `UPDATE wallet_transactions SET status = 'failed', failed_at = $3, updated_at = $3
      WHERE org_id = $1 AND invoice_id = $2 AND status = 'pending' AND transaction_type = 'inbound' AND transaction_status = 'purchased'
      RETURNING id`,
    [orgId, invoiceId, now],
  );
  for (const r of rows) {
    await opts.webhook?.(q, orgId, "wallet_transaction.updated", "wallet_transaction", walletTransactionJson((await store.transactionById(q, orgId, Number(r.id)))!));
  }
  return rows.length;
}
