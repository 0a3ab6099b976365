import crypto from "node:crypto";
import type { Db, Queryable } from "../../db/db.ts";
import { sqlState } from "../../db/db.ts";
import type { Clock } from "../../shared/clock.ts";
import { Decimal } from "../../shared/money.ts";
import { notFound, validationFailed } from "../../shared/errors.ts";
import type { Customer } from "../customers/index.ts";
import type { Balance, FeeDraft } from "../invoicing/index.ts";
import { type TopUpDraft, centsToCredits, checkTopUp, checkWalletCreate, checkWalletUpdate, creditsToCents, purchaseFee } from "./core/wallet.ts";
import { walletJson, walletTransactionJson } from "./json.ts";
import * as store from "./store.ts";

const MAX_CENTS = BigInt(Number.MAX_SAFE_INTEGER);
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Writes a webhook in the caller's transaction (the outbox). */
export type WalletWebhook = (
  tx: Queryable,
  orgId: number,
  type: "wallet.created" | "wallet.updated" | "wallet.terminated" | "wallet_transaction.created" | "wallet_transaction.updated",
  objectType: string,
  object: unknown,
) => Promise<unknown>;

export interface WalletDeps {
  readonly customers: {
    findByExternalId(orgId: number, externalId: string, q?: Queryable): Promise<Customer | null>;
    ensureCurrency(tx: Queryable, customer: Customer, currency: string): Promise<Customer>;
    findById(orgId: number, id: number, q?: Queryable): Promise<Customer | null>;
  };
  readonly webhook?: WalletWebhook;
  /** Issues a purchase's credit invoice; without it, purchased credits are settled at once. */
  readonly invoices?: { issueCreditInvoice(tx: Queryable, customer: Customer, currency: string, fee: FeeDraft, now: Date): Promise<{ id: number; lagoId: string }> };
}

/**
 * Wallets (Lago's /wallets and /wallet_transactions): prepaid credits a customer's invoices draw on
 * after taxes and credit notes. Granted credits count at once; paid credits are billed on a credit
 * invoice and count once it is paid (`settlePurchases`, the invoice-paid hook).
 */
export class WalletService {
  constructor(
    private readonly db: Db,
    private readonly clock: Clock,
    private readonly deps: WalletDeps,
    private readonly newId: () => string = () => crypto.randomUUID(),
  ) {}

  private now(orgId: number): Date {
    return new Date(this.clock.now(orgId));
  }

  /** POST /wallets (or /customers/:external_id/wallets): the wallet, then its first paid and granted credits. */
  async create(orgId: number, input: unknown, externalCustomerId?: string): Promise<store.Wallet> {
    const now = this.now(orgId);
    const checked = checkWalletCreate(input, now, externalCustomerId);
    if (!checked.ok) throw validationFailed(checked.errors, "the wallet is invalid");
    const d = checked.value;
    try {
      return await this.db.transaction(async (tx) => {
        const customer = await this.deps.customers.findByExternalId(orgId, d.externalCustomerId, tx);
        if (customer === null) throw notFound("customer", d.externalCustomerId);
        await this.deps.customers.ensureCurrency(tx, customer, d.currency);
        const id = await store.insertWallet(tx, {
          orgId,
          lagoId: this.newId(),
          customerId: customer.id,
          name: d.name,
          code: d.code,
          priority: d.priority,
          currency: d.currency,
          rateAmount: d.rateAmount,
          expirationAt: d.expirationAt,
          invoiceRequiresSuccessfulPayment: d.invoiceRequiresSuccessfulPayment,
          now,
        });
        const wallet = (await store.walletById(tx, orgId, id))!;
        await this.deps.webhook?.(tx, orgId, "wallet.created", "wallet", walletJson(wallet));
        await this.topUpIn(tx, wallet, {
          walletLagoId: wallet.lagoId,
          paidCredits: d.paidCredits,
          grantedCredits: d.grantedCredits,
          voidedCredits: new Decimal(0),
          name: d.transactionName,
          invoiceRequiresSuccessfulPayment: d.invoiceRequiresSuccessfulPayment,
          metadata: [],
        }, now);
        return (await store.walletById(tx, orgId, id))!;
      });
    } catch (err) {
      if (sqlState(err) === "23505") throw validationFailed({ code: ["value_already_exist"] }, "the wallet is invalid");
      throw err;
    }
  }

  async get(orgId: number, lagoId: string): Promise<store.Wallet> {
    const wallet = UUID.test(lagoId) ? await store.walletByLagoId(this.db, orgId, lagoId) : null;
    if (wallet === null) throw notFound("wallet", lagoId);
    return wallet;
  }

  list(orgId: number, externalCustomerId: string | undefined, page: number, perPage: number): Promise<{ wallets: store.Wallet[]; total: number }> {
    return store.listWallets(this.db, orgId, externalCustomerId, perPage, (page - 1) * perPage);
  }

  async update(orgId: number, lagoId: string, input: unknown): Promise<store.Wallet> {
    const checked = checkWalletUpdate(input, this.now(orgId));
    if (!checked.ok) throw validationFailed(checked.errors, "the wallet is invalid");
    try {
      return await this.db.transaction(async (tx) => {
        const wallet = UUID.test(lagoId) ? await store.walletByLagoId(tx, orgId, lagoId, true) : null;
        if (wallet === null) throw notFound("wallet", lagoId);
        await store.updateWallet(tx, orgId, wallet.id, checked.value, this.now(orgId));
        const updated = (await store.walletById(tx, orgId, wallet.id))!;
        await this.deps.webhook?.(tx, orgId, "wallet.updated", "wallet", walletJson(updated));
        return updated;
      });
    } catch (err) {
      if (sqlState(err) === "23505") throw validationFailed({ code: ["value_already_exist"] }, "the wallet is invalid");
      throw err;
    }
  }

  /** DELETE /wallets/:lago_id: the wallet stops being drawn on; what is left is lost (Lago). */
  async terminate(orgId: number, lagoId: string): Promise<store.Wallet> {
    return this.db.transaction(async (tx) => {
      const wallet = UUID.test(lagoId) ? await store.walletByLagoId(tx, orgId, lagoId, true) : null;
      if (wallet === null) throw notFound("wallet", lagoId);
      if (wallet.status === "terminated") return wallet;
      await store.terminateWallet(tx, orgId, wallet.id, this.now(orgId));
      const ended = (await store.walletById(tx, orgId, wallet.id))!;
      await this.deps.webhook?.(tx, orgId, "wallet.terminated", "wallet", walletJson(ended));
      return ended;
    });
  }

  /** POST /wallet_transactions: paid and granted credits in, voided credits out; one transaction each. */
  async topUp(orgId: number, input: unknown): Promise<store.WalletTransaction[]> {
    const checked = checkTopUp(input);
    if (!checked.ok) throw validationFailed(checked.errors, "the wallet transaction is invalid");
    return this.db.transaction(async (tx) => {
      const wallet = await store.walletByLagoId(tx, orgId, checked.value.walletLagoId, true);
      if (wallet === null) throw notFound("wallet", checked.value.walletLagoId);
      if (wallet.status !== "active") throw validationFailed({ wallet_id: ["wallet_is_terminated"] }, "the wallet is terminated");
      return this.topUpIn(tx, wallet, checked.value, this.now(orgId));
    });
  }

  async transactions(orgId: number, walletLagoId: string, filter: store.TransactionFilter, page: number, perPage: number) {
    const wallet = await this.get(orgId, walletLagoId);
    return store.listTransactions(this.db, orgId, wallet.id, filter, perPage, (page - 1) * perPage);
  }

  async transaction(orgId: number, lagoId: string): Promise<store.WalletTransaction> {
    const t = UUID.test(lagoId) ? await store.transactionByLagoId(this.db, orgId, lagoId) : null;
    if (t === null) throw notFound("wallet_transaction", lagoId);
    return t;
  }

  // ---- for invoices ------------------------------------------------------------------------------

  /** The invoice-paid hook: purchases billed on this invoice are settled and their credits count. */
  async settlePurchases(tx: Queryable, orgId: number, invoiceId: number): Promise<void> {
    const now = this.now(orgId);
    for (const p of await store.settlePurchases(tx, orgId, invoiceId, now)) {
      await store.moveBalance(tx, orgId, p.walletId, p.amountCents, false, now);
      await this.deps.webhook?.(tx, orgId, "wallet_transaction.updated", "wallet_transaction", walletTransactionJson((await store.transactionById(tx, orgId, p.id))!));
    }
  }

  drawable(q: Queryable, orgId: number, customerId: number, currency: string, now: Date): Promise<Balance[]> {
    return store.drawable(q, orgId, customerId, currency, now);
  }

  /** What a finalized invoice took of each wallet: an outbound, settled transaction each. */
  async draw(q: Queryable, orgId: number, invoiceId: number, debits: readonly { id: number; amountCents: bigint }[], now: Date): Promise<void> {
    for (const d of debits) {
      const wallet = (await store.walletById(q, orgId, d.id))!;
      const id = await store.insertTransaction(
        q,
        orgId,
        {
          lagoId: this.newId(),
          walletId: wallet.id,
          invoiceId,
          status: "settled",
          transactionStatus: "invoiced",
          transactionType: "outbound",
          amountCents: d.amountCents,
          creditAmount: centsToCredits(d.amountCents, wallet.rateAmount, wallet.currency),
          name: null,
          invoiceRequiresSuccessfulPayment: false,
          metadata: [],
        },
        now,
      );
      await store.moveBalance(q, orgId, wallet.id, -d.amountCents, true, now);
      await this.deps.webhook?.(q, orgId, "wallet_transaction.created", "wallet_transaction", walletTransactionJson((await store.transactionById(q, orgId, id))!));
    }
  }

  private async topUpIn(tx: Queryable, wallet: store.Wallet, d: TopUpDraft, now: Date): Promise<store.WalletTransaction[]> {
    const out: store.WalletTransaction[] = [];
    const requires = d.invoiceRequiresSuccessfulPayment ?? wallet.invoiceRequiresSuccessfulPayment;
    const moves: { credits: Decimal; status: "purchased" | "granted" | "voided" }[] = [
      { credits: d.paidCredits, status: "purchased" },
      { credits: d.grantedCredits, status: "granted" },
      { credits: d.voidedCredits, status: "voided" },
    ];
    let balance = wallet.balanceCents;
    for (const m of moves) {
      if (m.credits.lte(0)) continue;
      const cents = creditsToCents(m.credits, wallet.rateAmount, wallet.currency);
      const field = m.status === "purchased" ? "paid_credits" : m.status === "granted" ? "granted_credits" : "voided_credits";
      // Amounts stay exact JSON numbers (Lago's clients read cents as numbers).
      if (cents > MAX_CENTS || balance + cents > MAX_CENTS) throw validationFailed({ [field]: ["value_is_out_of_range"] }, "too many credits");
      const outbound = m.status === "voided";
      if (outbound && cents > balance) throw validationFailed({ voided_credits: ["insufficient_credits"] }, "the wallet does not hold that many credits");
      // A purchase waits for its credit invoice to be paid (when invoices are wired).
      const billed = m.status === "purchased" && this.deps.invoices !== undefined;
      if (!billed) balance += outbound ? -cents : cents;
      const lagoId = this.newId();
      const id = await store.insertTransaction(
        tx,
        wallet.orgId,
        {
          lagoId,
          walletId: wallet.id,
          invoiceId: null,
          status: billed ? "pending" : "settled",
          transactionStatus: m.status,
          transactionType: outbound ? "outbound" : "inbound",
          amountCents: cents,
          creditAmount: m.credits,
          name: d.name,
          invoiceRequiresSuccessfulPayment: m.status === "purchased" ? requires : false,
          metadata: d.metadata,
        },
        now,
      );
      if (billed) {
        const customer = (await this.deps.customers.findById(wallet.orgId, wallet.customerId, tx))!;
        const fee = purchaseFee({ credits: m.credits, rateAmount: wallet.rateAmount, currency: wallet.currency, transactionLagoId: lagoId, walletName: wallet.name, name: d.name, at: now });
        const invoice = await this.deps.invoices!.issueCreditInvoice(tx, customer, wallet.currency, fee, now);
        await store.setTransactionInvoice(tx, wallet.orgId, id, invoice.id);
      } else await store.moveBalance(tx, wallet.orgId, wallet.id, outbound ? -cents : cents, false, now);
      const t = (await store.transactionById(tx, wallet.orgId, id))!;
      await this.deps.webhook?.(tx, wallet.orgId, "wallet_transaction.created", "wallet_transaction", walletTransactionJson(t));
      out.push(t);
    }
    return out;
  }
}
