import crypto from "node:crypto";
import type { Db, Queryable } from "../../db/db.ts";
import { sqlState } from "../../db/db.ts";
import type { Clock } from "../../shared/clock.ts";
import { Decimal } from "../../shared/money.ts";
import { notFound, validationFailed } from "../../shared/errors.ts";
import type { Customer } from "../customers/index.ts";
import type { Balance, FeeDraft } from "../invoicing/index.ts";
import { type TakeBack, type TopUpDraft, centsToCredits, checkTopUp, checkWalletCreate, checkWalletUpdate, creditsToCents, purchaseFee, takeBack } from "./core/wallet.ts";
import { type RuleDraft, occurrenceAt, occurrencesBehind, occurrencesDue, topUpCredits } from "./core/rules.ts";
import { walletJson, walletTransactionJson } from "./json.ts";
import * as store from "./store.ts";

const MAX_CENTS = BigInt(Number.MAX_SAFE_INTEGER);
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Writes a webhook in the caller's transaction (the outbox). */
export type WalletWebhook = (
  tx: Queryable,
  orgId: number,
  type:
    | "wallet.created"
    | "wallet.updated"
    | "wallet.terminated"
    | "wallet.depleted_ongoing_balance"
    | "wallet_transaction.created"
    | "wallet_transaction.updated",
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
  /**
   * Issues a purchase's credit invoice (without it, purchased credits are settled at once) and voids
   * it, unpaid, when its wallet ends (false: not a finalized, unpaid credit invoice).
   */
  readonly invoices?: {
    issueCreditInvoice(tx: Queryable, customer: Customer, currency: string, fee: FeeDraft, now: Date): Promise<{ id: number; lagoId: string }>;
    voidCreditInvoiceIn(tx: Queryable, orgId: number, lagoId: string): Promise<boolean>;
  };
}

/**
 * Wallets (Lago's /wallets and /wallet_transactions): prepaid credits a customer's invoices draw on
 * after taxes and credit notes. Granted credits count at once; paid credits are billed on a credit
 * invoice and count once it is paid (`settlePurchases`, the invoice-paid hook).
 *
 * Rule for purchases of a wallet that ends (expiry or DELETE): nothing is ever paid into a wallet
 * that can no longer be drawn on. When it ends, its purchases still waiting for payment fail and
 * their credit invoices are voided in the same transaction (`endPurchases`); a payment that still
 * arrives for a purchase of an ended wallet (terminated, or past its expiration_at before the pass
 * ended it) grants nothing, the purchase fails and the paid invoice stays refundable in full
 * through a credit note (it bought no credits to take back).
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
        await this.applyRules(tx, (await store.walletById(tx, orgId, id))!, d.rules, now);
        const wallet = (await store.withRules(tx, orgId, [(await store.walletById(tx, orgId, id))!]))[0]!;
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
        return (await store.withRules(tx, orgId, [(await store.walletById(tx, orgId, id))!]))[0]!;
      });
    } catch (err) {
      if (sqlState(err) === "23505") throw validationFailed({ code: ["value_already_exist"] }, "the wallet is invalid");
      throw err;
    }
  }

  async get(orgId: number, lagoId: string): Promise<store.Wallet> {
    const wallet = UUID.test(lagoId) ? await store.walletByLagoId(this.db, orgId, lagoId) : null;
    if (wallet === null) throw notFound("wallet", lagoId);
    return (await store.withRules(this.db, orgId, [wallet]))[0]!;
  }

  async list(orgId: number, externalCustomerId: string | undefined, page: number, perPage: number): Promise<{ wallets: store.Wallet[]; total: number }> {
    const { wallets, total } = await store.listWallets(this.db, orgId, externalCustomerId, perPage, (page - 1) * perPage);
    return { wallets: await store.withRules(this.db, orgId, wallets), total };
  }

  async update(orgId: number, lagoId: string, input: unknown): Promise<store.Wallet> {
    const checked = checkWalletUpdate(input, this.now(orgId));
    if (!checked.ok) throw validationFailed(checked.errors, "the wallet is invalid");
    try {
      return await this.db.transaction(async (tx) => {
        const wallet = UUID.test(lagoId) ? await store.walletByLagoId(tx, orgId, lagoId, true) : null;
        if (wallet === null) throw notFound("wallet", lagoId);
        const now = this.now(orgId);
        await store.updateWallet(tx, orgId, wallet.id, checked.value, now);
        if (checked.value.rules !== undefined) {
          if (wallet.status !== "active") throw validationFailed({ recurring_transaction_rules: ["wallet_is_terminated"] }, "the wallet is terminated");
          await this.applyRules(tx, wallet, checked.value.rules, now);
        }
        const updated = (await store.withRules(tx, orgId, [(await store.walletById(tx, orgId, wallet.id))!]))[0]!;
        await this.deps.webhook?.(tx, orgId, "wallet.updated", "wallet", walletJson(updated));
        return updated;
      });
    } catch (err) {
      if (sqlState(err) === "23505") throw validationFailed({ code: ["value_already_exist"] }, "the wallet is invalid");
      throw err;
    }
  }

  /**
   * DELETE /wallets/:lago_id: the wallet stops being drawn on; what is left is lost (Lago); its
   * unpaid purchases end with it (`endPurchases`; 405 while a payment attempt for one is in flight).
   */
  async terminate(orgId: number, lagoId: string): Promise<store.Wallet> {
    return this.db.transaction(async (tx) => {
      const found = UUID.test(lagoId) ? await store.walletByLagoId(tx, orgId, lagoId) : null;
      if (found === null) throw notFound("wallet", lagoId);
      await store.lockPendingPurchaseInvoices(tx, orgId, found.id);
      const wallet = (await store.walletById(tx, orgId, found.id, true))!;
      if (wallet.status === "terminated") return wallet;
      const now = this.now(orgId);
      await this.endPurchases(tx, wallet, now);
      await store.terminateWallet(tx, orgId, wallet.id, now);
      await store.terminateRules(tx, orgId, (await store.activeRulesOf(tx, orgId, wallet.id)).map((r) => r.id), now);
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
      const now = this.now(orgId);
      // Past its expiration_at it is ended by the next pass: no credits go into it meanwhile.
      if (wallet.status !== "active" || (wallet.expirationAt !== null && wallet.expirationAt.getTime() <= now.getTime())) {
        throw validationFailed({ wallet_id: ["wallet_is_terminated"] }, "the wallet is terminated");
      }
      return this.topUpIn(tx, wallet, checked.value, now);
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

  // ---- recurring top-up rules ----------------------------------------------------------------------

  /**
   * The wallet's rules become `drafts` (Lago: one with a known lago_id is changed, one without is
   * new, the others end). An interval rule keeps its progress unless its start or interval changes;
   * then anniversaries up to today (its day included) are behind it.
   */
  private async applyRules(tx: Queryable, wallet: store.Wallet, drafts: readonly RuleDraft[], now: Date): Promise<void> {
    // Amounts stay exact JSON numbers once converted at the wallet's rate (as top-ups do).
    const tooBig: Record<string, string[]> = {};
    drafts.forEach((d, i) => {
      const fields = { threshold_credits: d.thresholdCredits, paid_credits: d.paidCredits, granted_credits: d.grantedCredits, target_ongoing_balance: d.targetOngoingBalance };
      for (const [name, credits] of Object.entries(fields)) {
        if (credits !== null && creditsToCents(credits, wallet.rateAmount, wallet.currency) > MAX_CENTS) tooBig[`recurring_transaction_rules[${i}].${name}`] = ["value_is_out_of_range"];
      }
    });
    if (Object.keys(tooBig).length > 0) throw validationFailed(tooBig, "the wallet is invalid");
    const existing = await store.activeRulesOf(tx, wallet.orgId, wallet.id);
    const kept = new Set<number>();
    for (const d of drafts) {
      const match = d.lagoId === null ? undefined : existing.find((r) => r.lagoId === d.lagoId);
      const anchorAt = d.startedAt ?? wallet.createdAt;
      const sameSchedule = match !== undefined && match.interval === d.interval && match.anchorAt.getTime() === anchorAt.getTime();
      let occurrencesDone = 0;
      let nextDueAt: Date | null = null;
      if (d.interval !== null) {
        occurrencesDone = sameSchedule ? match!.occurrencesDone : occurrencesBehind(anchorAt, d.interval, now);
        nextDueAt = occurrenceAt(anchorAt, d.interval, occurrencesDone + 1);
      }
      const write: store.RuleWrite = {
        ...d,
        thresholdCents: d.thresholdCredits === null ? null : creditsToCents(d.thresholdCredits, wallet.rateAmount, wallet.currency),
        anchorAt,
        nextDueAt,
        occurrencesDone,
      };
      if (match !== undefined) {
        kept.add(match.id);
        await store.updateRule(tx, wallet.orgId, match.id, write, now);
      } else await store.insertRule(tx, wallet.orgId, wallet.id, this.newId(), write, now);
    }
    await store.terminateRules(tx, wallet.orgId, existing.filter((r) => !kept.has(r.id)).map((r) => r.id), now);
  }

  /**
   * The wallets past their expiration_at, then the recurring top-ups that fell due, by each
   * organization's clock (run with the billing job: every minute with the scheduler, on test clock
   * moves, `valueverse bill`). Each anniversary of an interval rule and each crossing of a threshold
   * rule tops up once, recorded with the top-up in one transaction (wallet_rule_top_ups); a rule
   * whose top-up fails is tried again next run.
   */
  async runRecurringRules(opts: { orgId?: number } = {}): Promise<{ topUps: number; expired: number; errors: unknown[] }> {
    const errors: unknown[] = [];
    const expired = await this.expireWallets(opts, errors);
    const orgs = opts.orgId !== undefined ? [opts.orgId] : await store.organizationsWithRules(this.db);
    let topUps = 0;
    for (const orgId of orgs) {
      const now = this.now(orgId);
      await store.endExpiredRules(this.db, orgId, now);
      const due = [
        ...(await store.dueIntervalRules(this.db, orgId, now)).map((r) => ({ ...r, kind: "interval" as const })),
        ...(await store.thresholdRulesToFire(this.db, orgId)).map((r) => ({ ...r, kind: "threshold" as const })),
      ];
      for (const r of due) {
        try {
          topUps += await this.db.transaction((tx) => (r.kind === "interval" ? this.runIntervalRule(tx, orgId, r, now) : this.runThresholdRule(tx, orgId, r, now)));
        } catch (err) {
          errors.push(err);
        }
      }
    }
    return { topUps, expired, errors };
  }

  /**
   * Wallets whose expiration_at has passed by the organization's clock end (Lago): what is left of
   * the balance leaves it as an outbound, settled `voided` transaction, its unpaid purchases end
   * (`endPurchases`), the wallet is terminated and its rules end, each wallet in one transaction
   * (webhooks `wallet_transaction.created`, `wallet.terminated`). Invoices stop drawing on a wallet at its expiration_at whether or not
   * this has run yet (`drawable`). Answers how many wallets ended; a failure is retried next run.
   */
  private async expireWallets(opts: { orgId?: number }, errors: unknown[]): Promise<number> {
    const orgs = opts.orgId !== undefined ? [opts.orgId] : await store.organizationsWithExpiringWallets(this.db);
    let expired = 0;
    for (const orgId of orgs) {
      const now = this.now(orgId);
      for (const id of await store.expiredWallets(this.db, orgId, now)) {
        try {
          expired += await this.db.transaction((tx) => this.expireWallet(tx, orgId, id, now));
        } catch (err) {
          errors.push(err);
        }
      }
    }
    return expired;
  }

  private async expireWallet(tx: Queryable, orgId: number, id: number, now: Date): Promise<number> {
    await store.lockPendingPurchaseInvoices(tx, orgId, id);
    const wallet = await store.walletById(tx, orgId, id, true);
    // Terminated, or given a later expiration, since it was listed.
    if (wallet === null || wallet.status !== "active" || wallet.expirationAt === null || wallet.expirationAt.getTime() > now.getTime()) return 0;
    await this.endPurchases(tx, wallet, now);
    if (wallet.balanceCents > 0n) {
      const transactionId = await store.insertTransaction(
        tx,
        orgId,
        {
          lagoId: this.newId(),
          walletId: wallet.id,
          invoiceId: null,
          status: "settled",
          transactionStatus: "voided",
          transactionType: "outbound",
          amountCents: wallet.balanceCents,
          creditAmount: centsToCredits(wallet.balanceCents, wallet.rateAmount, wallet.currency),
          name: "Credits expired",
          invoiceRequiresSuccessfulPayment: false,
          metadata: [],
        },
        now,
      );
      await store.moveBalance(tx, orgId, wallet.id, -wallet.balanceCents, false, now);
      await this.deps.webhook?.(tx, orgId, "wallet_transaction.created", "wallet_transaction", walletTransactionJson((await store.transactionById(tx, orgId, transactionId))!));
    }
    await store.terminateWallet(tx, orgId, wallet.id, now);
    await store.terminateRules(tx, orgId, (await store.activeRulesOf(tx, orgId, wallet.id)).map((r) => r.id), now);
    await this.deps.webhook?.(tx, orgId, "wallet.terminated", "wallet", walletJson((await store.walletById(tx, orgId, wallet.id))!));
    return 1;
  }

  private async lockedRule(tx: Queryable, orgId: number, r: { id: number; walletId: number }, now: Date) {
    // Wallet first, then rule: the order top-ups, draws and updates take them in.
    const wallet = await store.walletById(tx, orgId, r.walletId, true);
    const rule = await store.ruleById(tx, orgId, r.id, true);
    if (wallet === null || rule === null || rule.status !== "active" || wallet.status !== "active") return null;
    if (wallet.expirationAt !== null && wallet.expirationAt.getTime() <= now.getTime()) return null;
    return { wallet, rule };
  }

  private async runRuleTopUp(tx: Queryable, wallet: store.Wallet, rule: store.RuleRecord, occurrence: string, now: Date): Promise<number> {
    const balance = await store.effectiveBalance(tx, wallet.orgId, wallet.id);
    const credits = topUpCredits(rule, balance, wallet.rateAmount, wallet.currency);
    if (credits.paid.lte(0) && credits.granted.lte(0)) return 0;
    const current = (await store.walletById(tx, wallet.orgId, wallet.id))!;
    const made = await this.topUpIn(
      tx,
      current,
      {
        walletLagoId: wallet.lagoId,
        paidCredits: credits.paid,
        grantedCredits: credits.granted,
        voidedCredits: new Decimal(0),
        name: rule.transactionName,
        invoiceRequiresSuccessfulPayment: rule.invoiceRequiresSuccessfulPayment,
        metadata: rule.transactionMetadata,
      },
      now,
      rule.trigger,
    );
    const cents = (status: string) => made.filter((t) => t.transactionStatus === status).reduce((a, t) => a + t.amountCents, 0n);
    await store.setRuleTopUpAmounts(tx, rule.id, occurrence, cents("purchased"), cents("granted"));
    return made.length > 0 ? 1 : 0;
  }

  private async runIntervalRule(tx: Queryable, orgId: number, r: { id: number; walletId: number }, now: Date): Promise<number> {
    const locked = await this.lockedRule(tx, orgId, r, now);
    if (locked === null || locked.rule.interval === null) return 0;
    const { wallet, rule } = locked;
    const interval = rule.interval!;
    const ks = occurrencesDue(rule.anchorAt, interval, rule.occurrencesDone, now);
    if (ks.length === 0) return 0;
    let made = 0;
    for (const k of ks) {
      const occurrence = `interval:${k}`;
      if (!(await store.recordRuleTopUp(tx, orgId, rule.id, occurrence, occurrenceAt(rule.anchorAt, interval, k), now))) continue;
      made += await this.runRuleTopUp(tx, wallet, rule, occurrence, now);
    }
    const last = ks[ks.length - 1]!;
    await store.setIntervalProgress(tx, orgId, rule.id, last, occurrenceAt(rule.anchorAt, interval, last + 1), now);
    return made;
  }

  private async runThresholdRule(tx: Queryable, orgId: number, r: { id: number; walletId: number }, now: Date): Promise<number> {
    const locked = await this.lockedRule(tx, orgId, r, now);
    if (locked === null || !locked.rule.armed || locked.rule.thresholdCents === null) return 0;
    const { wallet, rule } = locked;
    if ((await store.effectiveBalance(tx, orgId, wallet.id)) > rule.thresholdCents!) return 0;
    const occurrence = `threshold:${(await store.ruleCrossings(tx, rule.id)) + 1}`;
    if (!(await store.recordRuleTopUp(tx, orgId, rule.id, occurrence, now, now))) return 0;
    // Disarmed before the top-up: credits that lift the balance above the threshold arm it again.
    await store.disarm(tx, orgId, rule.id, now);
    return this.runRuleTopUp(tx, wallet, rule, occurrence, now);
  }

  // ---- for invoices ------------------------------------------------------------------------------

  /**
   * The invoice-paid hook (the invoice locked): purchases billed on this invoice are settled and
   * their credits count, unless their wallet has ended (terminated, or past its expiration_at): then
   * the purchase fails and grants nothing, and the paid invoice stays refundable in full through a
   * credit note (`creditedPurchase` answers `none`: it bought no credits to take back).
   */
  async settlePurchases(tx: Queryable, orgId: number, invoiceId: number): Promise<void> {
    const now = this.now(orgId);
    for (const p of await store.pendingPurchasesOfInvoice(tx, orgId, invoiceId)) {
      const wallet = await store.walletById(tx, orgId, p.walletId, true);
      const ended = wallet === null || wallet.status !== "active" || (wallet.expirationAt !== null && wallet.expirationAt.getTime() <= now.getTime());
      await store.closePending(tx, orgId, p.id, ended ? "failed" : "settled", now);
      if (!ended) await store.moveBalance(tx, orgId, p.walletId, p.amountCents, false, now);
      await this.deps.webhook?.(tx, orgId, "wallet_transaction.updated", "wallet_transaction", walletTransactionJson((await store.transactionById(tx, orgId, p.id))!));
    }
  }

  /**
   * A wallet that ends takes its unpaid purchases with it: each one's credit invoice is voided (the
   * purchase fails, its payment is no longer collected, invoice.voided) and the purchase is failed
   * (also when its invoice could not be voided: it was not finalized). A payment attempt in flight
   * refuses the void (405) and with it the end: DELETE answers 405, the expiry pass tries again on
   * its next run. Runs with the purchases' invoices locked, then the wallet (a payment's order).
   */
  private async endPurchases(tx: Queryable, wallet: store.Wallet, now: Date): Promise<void> {
    for (const p of await store.pendingPurchasesOfWallet(tx, wallet.orgId, wallet.id)) {
      if (p.invoiceLagoId !== null) await this.deps.invoices?.voidCreditInvoiceIn(tx, wallet.orgId, p.invoiceLagoId);
      if (await store.closePending(tx, wallet.orgId, p.id, "failed", now)) {
        await this.deps.webhook?.(tx, wallet.orgId, "wallet_transaction.updated", "wallet_transaction", walletTransactionJson((await store.transactionById(tx, wallet.orgId, p.id))!));
      }
    }
  }

  /**
   * What a credit note crediting or refunding `amountCents` of a paid credit invoice's purchase may
   * do (`takeBack`, the one rule for creating and estimating notes), and what the wallet still holds
   * of the purchase (null: it bought no credits that count). With `lock`, the wallet stays locked
   * until the caller's transaction ends.
   */
  async creditedPurchase(
    q: Queryable,
    orgId: number,
    invoiceId: number,
    amountCents: bigint,
    lock = false,
  ): Promise<{ outcome: TakeBack; walletId: number | null; heldCents: bigint | null }> {
    const held = await store.heldPurchase(q, orgId, invoiceId, lock);
    return { outcome: takeBack(held, amountCents), walletId: held?.walletId ?? null, heldCents: held?.heldCents ?? null };
  }

  /**
   * A credit note (credit or refund) on a paid credit invoice takes back what it credits of the
   * credits bought (Lago voids them in the wallet): an outbound, settled `voided` transaction linked
   * to the note and the credit invoice, in the note's transaction. `none` when the invoice bought no
   * credits that count (unpaid: its purchase fails when it is voided; paid after its wallet ended:
   * the purchase failed, the note refunds it in full); nothing moves when the wallet is terminated
   * or holds less of them than asked.
   */
  async voidCreditedPurchase(
    tx: Queryable,
    orgId: number,
    invoiceId: number,
    creditNoteId: number,
    amountCents: bigint,
    now: Date,
  ): Promise<Exclude<TakeBack, "take"> | "voided"> {
    const { outcome, walletId } = await this.creditedPurchase(tx, orgId, invoiceId, amountCents, true);
    if (outcome !== "take") return outcome;
    const wallet = (await store.walletById(tx, orgId, walletId!))!;
    const id = await store.insertTransaction(
      tx,
      orgId,
      {
        lagoId: this.newId(),
        walletId: wallet.id,
        invoiceId,
        status: "settled",
        transactionStatus: "voided",
        transactionType: "outbound",
        amountCents,
        creditAmount: centsToCredits(amountCents, wallet.rateAmount, wallet.currency),
        name: null,
        invoiceRequiresSuccessfulPayment: false,
        metadata: [],
        creditNoteId,
      },
      now,
    );
    await store.moveBalance(tx, orgId, wallet.id, -amountCents, false, now);
    await this.deps.webhook?.(tx, orgId, "wallet_transaction.created", "wallet_transaction", walletTransactionJson((await store.transactionById(tx, orgId, id))!));
    await this.announceDepleted(tx, wallet, wallet.balanceCents, wallet.balanceCents - amountCents);
    return "voided";
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
      await this.announceDepleted(q, wallet, wallet.balanceCents, wallet.balanceCents - d.amountCents);
    }
  }

  /**
   * Lago's wallet.depleted_ongoing_balance, when a draw or a void takes a wallet's balance from above
   * zero to zero (the ongoing balance is the balance here): once per emptying, again only after
   * credits came in and went. Not for a wallet that ends (expiration, termination).
   */
  private async announceDepleted(q: Queryable, wallet: store.Wallet, beforeCents: bigint, afterCents: bigint): Promise<void> {
    if (beforeCents <= 0n || afterCents > 0n || this.deps.webhook === undefined) return;
    const current = (await store.withRules(q, wallet.orgId, [(await store.walletById(q, wallet.orgId, wallet.id))!]))[0]!;
    await this.deps.webhook(q, wallet.orgId, "wallet.depleted_ongoing_balance", "wallet", walletJson(current));
  }

  private async topUpIn(tx: Queryable, wallet: store.Wallet, d: TopUpDraft, now: Date, source: store.WalletTransaction["source"] = "manual"): Promise<store.WalletTransaction[]> {
    const out: store.WalletTransaction[] = [];
    const requires = d.invoiceRequiresSuccessfulPayment ?? wallet.invoiceRequiresSuccessfulPayment;
    const moves: { credits: Decimal; status: "purchased" | "granted" | "voided" }[] = [
      { credits: d.paidCredits, status: "purchased" },
      { credits: d.grantedCredits, status: "granted" },
      { credits: d.voidedCredits, status: "voided" },
    ];
    let balance = wallet.balanceCents;
    let beforeVoid = balance;
    for (const m of moves) {
      if (m.credits.lte(0)) continue;
      const cents = creditsToCents(m.credits, wallet.rateAmount, wallet.currency);
      const field = m.status === "purchased" ? "paid_credits" : m.status === "granted" ? "granted_credits" : "voided_credits";
      // Amounts stay exact JSON numbers (Lago's clients read cents as numbers).
      if (cents > MAX_CENTS || balance + cents > MAX_CENTS) throw validationFailed({ [field]: ["value_is_out_of_range"] }, "too many credits");
      const outbound = m.status === "voided";
      if (outbound) beforeVoid = balance;
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
          source,
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
    // A threshold rule fires once per crossing: credits coming in make the next crossing count.
    if (out.length > 0) await store.rearmThresholdRules(tx, wallet.orgId, wallet.id);
    if (d.voidedCredits.gt(0)) await this.announceDepleted(tx, wallet, beforeVoid, balance);
    return out;
  }
}
