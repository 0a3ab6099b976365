import crypto from "node:crypto";
import type { Db, Queryable } from "../../db/db.ts";
import type { Clock } from "../../shared/clock.ts";
import { AppError, type FieldErrors, notFound, validationFailed } from "../../shared/errors.ts";
import { type Customer, applicableTimezone } from "../customers/index.ts";
import { type Balance, type FeeRecord, type UnusedAdvanceFee, issuingDateOf } from "../invoicing/index.ts";
import { type CreditNoteAmounts, type CreditNoteRequest, type CreditableFee, checkCreditNote, creditNoteAmounts, splitTotal } from "./core/credit_note.ts";
import { type VoidOptions, afterItems, itemsForTotal, remainingItems, voidSplit } from "./core/void.ts";
import * as store from "./store.ts";

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export interface CreditNoteDeps {
  readonly customers: { findById(orgId: number, id: number, q?: Queryable): Promise<Customer | null> };
  readonly fees: { feeIn(q: Queryable, orgId: number, lagoId: string): Promise<FeeRecord | null> };
  /**
   * Wallets: a note on a paid credit invoice takes what it credits of the credits bought out of the
   * wallet (`none`: the invoice bought none that count, e.g. paid after its wallet ended, so the
   * note is issued with nothing to take back); nothing moves when it cannot.
   */
  readonly prepaidCredits?: {
    voidCreditedPurchase(
      tx: Queryable,
      orgId: number,
      invoiceId: number,
      creditNoteId: number,
      amountCents: bigint,
      now: Date,
    ): Promise<"voided" | "none" | "wallet_terminated" | "insufficient_credits">;
    /**
     * The same rule without taking anything (estimates): what a note for `amountCents` of the
     * purchase would do, and what the wallet still holds of it (null: no credits that count).
     */
    creditedPurchase(
      q: Queryable,
      orgId: number,
      invoiceId: number,
      amountCents: bigint,
    ): Promise<{ outcome: "take" | "none" | "wallet_terminated" | "insufficient_credits"; heldCents: bigint | null }>;
  };
}

/** Why a note on a credit invoice could not take its credits back, as the request's fields. */
type CreditsErrors = (reason: "wallet_terminated" | "insufficient_credits") => FieldErrors;

/** For POST /credit_notes and its estimate: a terminated wallet is the invoice's fault, missing credits the items'. */
const itemsCreditsErrors =
  (req: CreditNoteRequest): CreditsErrors =>
  (reason) =>
    reason === "wallet_terminated"
      ? { invoice_id: ["wallet_is_terminated"] }
      : Object.fromEntries(req.items.map((_, i) => [`items[${i}].amount_cents`, ["higher_than_wallet_balance"]]));

const creditsRefused = (reason: "wallet_terminated" | "insufficient_credits", errors: CreditsErrors | undefined) =>
  validationFailed(
    errors?.(reason) ?? { invoice_id: [reason === "wallet_terminated" ? "wallet_is_terminated" : "higher_than_wallet_balance"] },
    reason === "wallet_terminated" ? "the credits were bought for a terminated wallet" : "the wallet no longer holds the credits this note takes back",
  );

/** What a note with these items takes back of a purchase of credits (no taxes nor coupons apply to it). */
const purchaseCents = (amounts: CreditNoteAmounts) => amounts.items.reduce((a, it) => a + it.amountCents, 0n);

/** Runs in the transaction that creates a credit note (webhooks). */
export type CreditNoteListener = (tx: Queryable, note: store.CreditNoteRecord) => Promise<unknown>;

/** A credit note with what its JSON shows. */
export interface CreditNoteView {
  readonly note: store.CreditNoteRecord;
  readonly customer: Customer;
  readonly fees: ReadonlyMap<string, FeeRecord>;
}

const invalidStatus = () => new AppError("not_allowed", "invalid_type_or_status", "credit notes are issued on finalized invoices only");
const unpaidCreditInvoice = () => new AppError("not_allowed", "invalid_type_or_status", "credit notes are issued on a purchase of prepaid credits once it is paid");

/**
 * Credit notes (Lago's /credit_notes): on a finalized invoice, items credit its fees; the credit part
 * is drawn on by the customer's next invoices (oldest note first), the refund part is recorded for
 * a payment provider to execute. Terminations and upgrades issue one for the unused part of a
 * subscription fee paid in advance. On a paid purchase of prepaid credits (a credit invoice), a
 * note takes what it credits of those credits back out of the wallet.
 */
export class CreditNoteService {
  private readonly createdListeners: CreditNoteListener[] = [];

  constructor(
    private readonly db: Db,
    private readonly clock: Clock,
    private readonly deps: CreditNoteDeps,
    private readonly newId: () => string = () => crypto.randomUUID(),
  ) {}

  private now(orgId: number): Date {
    return new Date(this.clock.now(orgId));
  }

  onCreated(listener: CreditNoteListener): void {
    this.createdListeners.push(listener);
  }

  /** POST /credit_notes. */
  async create(orgId: number, input: unknown): Promise<CreditNoteView> {
    const checked = checkCreditNote(input);
    if (!checked.ok) throw validationFailed(checked.errors, "the credit note is invalid");
    const req = checked.value;
    const id = await this.db.transaction(async (tx) => {
      const invoice = await store.invoiceForCredit(tx, orgId, { lagoId: req.invoiceLagoId }, true);
      if (invoice === null) throw notFound("invoice", req.invoiceLagoId);
      if (invoice.status !== "finalized") throw invalidStatus();
      // Lago: a purchase of credits is credited or refunded once paid (its credits are then in the wallet).
      if (invoice.invoiceType === "credit" && invoice.paymentStatus !== "succeeded") throw unpaidCreditInvoice();
      const items = await this.itemsOf(tx, orgId, invoice.id, req);
      const amounts = creditNoteAmounts(items);
      const split = splitTotal(amounts.totalAmountCents, req.creditAmountCents, req.refundAmountCents, store.refundableOf(invoice));
      if (!split.ok) throw validationFailed(split.errors, "the credit note's amounts do not add up");
      const creditsErrors = itemsCreditsErrors(req);
      return this.insert(tx, orgId, invoice, { reason: req.reason, description: req.description, amounts, credit: split.credit, refund: split.refund, automatic: false, creditsErrors });
    });
    return this.view(orgId, (await store.noteById(this.db, orgId, id))!);
  }

  /**
   * POST /credit_notes/estimate: the amounts a credit note with these items would have. On a paid
   * purchase of credits it follows the rule creating the note follows (the same 422 when the wallet
   * is terminated or no longer holds what the items take back), and neither maximum exceeds what
   * the wallet still holds of the purchase.
   */
  async estimate(orgId: number, input: unknown) {
    const checked = checkCreditNote(input, true);
    if (!checked.ok) throw validationFailed(checked.errors, "the credit note is invalid");
    const req = checked.value;
    const invoice = await store.invoiceForCredit(this.db, orgId, { lagoId: req.invoiceLagoId });
    if (invoice === null) throw notFound("invoice", req.invoiceLagoId);
    if (invoice.status !== "finalized") throw invalidStatus();
    if (invoice.invoiceType === "credit" && invoice.paymentStatus !== "succeeded") throw unpaidCreditInvoice();
    const amounts = creditNoteAmounts(await this.itemsOf(this.db, orgId, invoice.id, req));
    let maxCreditableCents = amounts.totalAmountCents;
    if (invoice.invoiceType === "credit" && this.deps.prepaidCredits !== undefined) {
      const { outcome, heldCents } = await this.deps.prepaidCredits.creditedPurchase(this.db, orgId, invoice.id, purchaseCents(amounts));
      if (outcome === "wallet_terminated" || outcome === "insufficient_credits") throw creditsRefused(outcome, itemsCreditsErrors(req));
      if (heldCents !== null && heldCents < maxCreditableCents) maxCreditableCents = heldCents;
    }
    const refundable = store.refundableOf(invoice);
    return { invoice, amounts, maxCreditableCents, maxRefundableCents: refundable < maxCreditableCents ? refundable : maxCreditableCents };
  }

  async get(orgId: number, lagoId: string): Promise<CreditNoteView> {
    const note = UUID.test(lagoId) ? await store.noteByLagoId(this.db, orgId, lagoId) : null;
    if (note === null) throw notFound("credit_note", lagoId);
    return this.view(orgId, note);
  }

  async list(orgId: number, filter: { externalCustomerId?: string }, page: number, perPage: number): Promise<{ items: CreditNoteView[]; total: number }> {
    const { notes, total } = await store.listNotes(this.db, orgId, filter, perPage, (page - 1) * perPage);
    const items: CreditNoteView[] = [];
    for (const note of notes) items.push(await this.view(orgId, note));
    return { items, total };
  }

  /** PUT /credit_notes/:id/void: what is left of the credit can no longer be used (405 when nothing is left). */
  async void(orgId: number, lagoId: string): Promise<CreditNoteView> {
    if (!UUID.test(lagoId)) throw notFound("credit_note", lagoId);
    await this.db.transaction(async (tx) => {
      const note = await store.noteByLagoId(tx, orgId, lagoId, true);
      if (note === null) throw notFound("credit_note", lagoId);
      if (note.creditStatus !== "available" || note.balanceAmountCents === 0n) {
        throw new AppError("not_allowed", "no_voidable_amount", "the credit note has no credit left to void");
      }
      await store.voidNote(tx, orgId, note.id, this.now(orgId));
    });
    return this.get(orgId, lagoId);
  }

  /** PUT /credit_notes/:id: the refund's status (a payment provider's outcome). */
  async update(orgId: number, lagoId: string, input: unknown): Promise<CreditNoteView> {
    const raw = (input ?? {}) as Record<string, unknown>;
    const status = raw["refund_status"];
    const errors: FieldErrors = {};
    if (status !== "pending" && status !== "succeeded" && status !== "failed") errors["refund_status"] = ["value_is_invalid"];
    if (Object.keys(errors).length > 0) throw validationFailed(errors, "the credit note is invalid");
    if (!UUID.test(lagoId)) throw notFound("credit_note", lagoId);
    await this.db.transaction(async (tx) => {
      const note = await store.noteByLagoId(tx, orgId, lagoId, true);
      if (note === null) throw notFound("credit_note", lagoId);
      if (note.refundAmountCents === 0n) throw validationFailed({ refund_status: ["no_refund_on_credit_note"] }, "the credit note refunds nothing");
      // The provider is paying it back: a status set by hand would race the refund (and a refund
      // marked done by hand must not be made again by the provider).
      if (await store.providerRefundPending(tx, orgId, note.id)) {
        throw new AppError("not_allowed", "refund_in_progress", "the payment provider is processing this credit note's refund");
      }
      await store.setRefundStatus(tx, orgId, note.id, status as string, this.now(orgId));
    });
    return this.get(orgId, lagoId);
  }

  // ---- for invoices ------------------------------------------------------------------------------

  balances(q: Queryable, orgId: number, customerId: number, currency: string): Promise<Balance[]> {
    return store.availableBalances(q, orgId, customerId, currency);
  }

  async draw(q: Queryable, orgId: number, credits: readonly { id: number; amountCents: bigint }[], now: Date): Promise<void> {
    for (const c of credits) await store.draw(q, orgId, c.id, c.amountCents, now);
  }

  /**
   * The credit note of a termination or upgrade: the unused part of the subscription fee paid in
   * advance, with its taxes, all credited (Lago's CreditNotes::CreateFromTermination). Nothing when
   * the fee's invoice was voided or the fee is already fully credited.
   */
  async creditUnusedAdvanceFee(tx: Queryable, u: UnusedAdvanceFee): Promise<void> {
    const invoice = await store.invoiceForCredit(tx, u.orgId, { id: u.invoiceId }, true);
    if (invoice === null || invoice.status === "voided") return;
    const fees = await store.creditableFees(tx, u.orgId, invoice.id);
    const fee = [...fees.values()].find((f) => f.id === u.feeId);
    if (fee === undefined) return;
    const left = fee.amountCents - fee.creditedCents;
    const amount = u.amountCents < left ? u.amountCents : left;
    if (amount <= 0n) return;
    const amounts = creditNoteAmounts([{ fee, amountCents: amount }]);
    await this.insert(tx, u.orgId, invoice, {
      reason: u.reason,
      description: null,
      amounts,
      credit: amounts.totalAmountCents,
      refund: 0n,
      automatic: true,
      now: u.now,
    });
  }

  /**
   * POST /invoices/:id/void with `generate_credit_note`, in the voiding transaction (before the
   * invoice is marked voided): what is left of its fees is credited over two notes (core/void.ts).
   * The first, for `credit_amount` + `refund_amount` (nothing said: what the customer paid on the
   * invoice, credited), keeps its credit for the next invoices and pays its refund back through
   * the provider; the second, for the rest, is voided at once. What the invoice drew on credit notes
   * and wallets is given back separately, so the first note never exceeds the invoice's total less
   * earlier credit notes. Validation errors name the field (422).
   */
  async creditVoidedInvoice(tx: Queryable, orgId: number, invoiceId: number, o: Pick<VoidOptions, "creditAmountCents" | "refundAmountCents">, now: Date): Promise<void> {
    const invoice = await store.invoiceForCredit(tx, orgId, { id: invoiceId }, true);
    if (invoice === null) return;
    const fees = [...(await store.creditableFees(tx, orgId, invoice.id)).values()];
    const left = remainingItems(fees);
    const creditable = left.length === 0 ? 0n : creditNoteAmounts(left).totalAmountCents;
    const owed = invoice.totalAmountCents - invoice.creditedTotalCents;
    const max = owed < 0n ? 0n : owed < creditable ? owed : creditable;
    const split = voidSplit(o, max, store.refundableOf(invoice));
    if (!split.ok) throw validationFailed(split.errors, "the voided invoice's credit note amounts do not add up");
    const description = `Invoice ${invoice.number} voided`;
    // A paid purchase of credits voided: the credits it bought leave the wallet (both notes).
    const creditsErrors: CreditsErrors = (reason) => ({ generate_credit_note: [reason === "wallet_terminated" ? "wallet_is_terminated" : "higher_than_wallet_balance"] });
    let rest = fees;
    const wanted = split.credit + split.refund;
    if (wanted > 0n) {
      const items = itemsForTotal(fees, wanted);
      if (items.length > 0) {
        const amounts = creditNoteAmounts(items);
        // Rounding may leave the note a cent under what was asked: the credit part gives it up.
        const refund = split.refund < amounts.totalAmountCents ? split.refund : amounts.totalAmountCents;
        await this.insert(tx, orgId, invoice, { reason: "other", description, amounts, credit: amounts.totalAmountCents - refund, refund, automatic: false, now, creditsErrors });
        rest = afterItems(fees, items);
      }
    }
    const remainder = remainingItems(rest);
    if (remainder.length > 0) {
      const amounts = creditNoteAmounts(remainder);
      if (amounts.totalAmountCents > 0n) {
        await this.insert(tx, orgId, invoice, { reason: "other", description, amounts, credit: amounts.totalAmountCents, refund: 0n, automatic: false, now, voided: true, creditsErrors });
      }
    }
  }

  /** For a voided invoice (in its transaction): the credit it drew on credit notes comes back to them. */
  async restoreFromVoided(q: Queryable, orgId: number, invoiceId: number, now: Date): Promise<number> {
    let restored = 0;
    for (const c of await store.creditNoteCreditsOfInvoice(q, orgId, invoiceId)) {
      if (await store.recredit(q, orgId, c.creditNoteId, c.amountCents, now)) restored += 1;
    }
    return restored;
  }

  /**
   * Late events lowered what an invoiced fee is worth: a credit note on the fee's invoice for the
   * difference (with the fee's taxes), all credited, drawn on by the customer's next invoices like
   * any credit note. Answers the note and what it credits excluding taxes (capped at what is left of
   * the fee), or null when nothing can be credited (the invoice voided, the fee credited already).
   * Its listeners (`credit_note.created`) run when the caller calls `announce`, once the note is
   * linked to the late events and the adjustment fee is written, so the webhook shows
   * `late_events` as GET /credit_notes/:id does.
   */
  async creditLateEvents(
    tx: Queryable,
    orgId: number,
    feeId: number,
    amountCents: bigint,
    now: Date,
  ): Promise<{ creditNoteId: number; amountCents: bigint; announce: () => Promise<void> } | null> {
    const invoiceId = await store.invoiceIdOfFee(tx, orgId, feeId);
    const invoice = invoiceId === null ? null : await store.invoiceForCredit(tx, orgId, { id: invoiceId }, true);
    if (invoice === null || invoice.status !== "finalized") return null;
    const fee = [...(await store.creditableFees(tx, orgId, invoice.id)).values()].find((f) => f.id === feeId);
    if (fee === undefined) return null;
    const left = fee.amountCents - fee.creditedCents;
    const amount = amountCents < left ? amountCents : left;
    if (amount <= 0n) return null;
    const amounts = creditNoteAmounts([{ fee, amountCents: amount }]);
    const id = await this.insert(tx, orgId, invoice, {
      reason: "other",
      description: "Late events lowered the amount billed",
      amounts,
      credit: amounts.totalAmountCents,
      refund: 0n,
      automatic: true,
      now,
      deferListeners: true,
    });
    return { creditNoteId: id, amountCents: amount, announce: () => this.announce(tx, orgId, id) };
  }

  // ---- internals ---------------------------------------------------------------------------------

  private async itemsOf(q: Queryable, orgId: number, invoiceId: number, req: CreditNoteRequest): Promise<{ fee: CreditableFee; amountCents: bigint }[]> {
    const fees = await store.creditableFees(q, orgId, invoiceId);
    const errors: FieldErrors = {};
    const items: { fee: CreditableFee; amountCents: bigint }[] = [];
    req.items.forEach((item, i) => {
      const fee = fees.get(item.feeLagoId);
      if (fee === undefined) errors[`items[${i}].fee_id`] = ["fee_not_found"];
      else if (item.amountCents > fee.amountCents - fee.creditedCents) errors[`items[${i}].amount_cents`] = ["higher_than_remaining_fee_amount"];
      else items.push({ fee, amountCents: item.amountCents });
    });
    if (Object.keys(errors).length > 0) throw validationFailed(errors, "the credit note's items are invalid");
    return items;
  }

  private async insert(
    tx: Queryable,
    orgId: number,
    invoice: store.CreditedInvoice,
    n: {
      reason: store.CreditNoteRecord["reason"];
      description: string | null;
      amounts: ReturnType<typeof creditNoteAmounts>;
      credit: bigint;
      refund: bigint;
      automatic: boolean;
      now?: Date;
      /** Voided as it is created (the rest of a voided invoice): its listeners see it voided. */
      voided?: boolean;
      /** Its listeners run later, when the caller calls `announce` (what the note links to is written after it). */
      deferListeners?: boolean;
      /** On a credit invoice: the request's fields at fault when its credits cannot be taken back (422). */
      creditsErrors?: CreditsErrors;
    },
  ): Promise<number> {
    const now = n.now ?? this.now(orgId);
    const customer = await this.deps.customers.findById(orgId, invoice.customerId, tx);
    const sequentialId = await store.nextSequentialId(tx, orgId, invoice.id);
    const id = await store.insertCreditNote(tx, {
      orgId,
      lagoId: this.newId(),
      invoice,
      sequentialId,
      number: `${invoice.number}-CN${sequentialId}`,
      issuingDate: issuingDateOf(now, customer === null ? "UTC" : applicableTimezone(customer)),
      reason: n.reason,
      description: n.description,
      amounts: n.amounts,
      creditAmountCents: n.credit,
      refundAmountCents: n.refund,
      automatic: n.automatic,
      newId: this.newId,
      now,
    });
    if (n.voided === true) await store.voidNote(tx, orgId, id, now);
    if (invoice.invoiceType === "credit" && this.deps.prepaidCredits !== undefined) {
      // What the note credits of the purchase leaves the wallet.
      const outcome = await this.deps.prepaidCredits.voidCreditedPurchase(tx, orgId, invoice.id, id, purchaseCents(n.amounts), now);
      if (outcome === "wallet_terminated" || outcome === "insufficient_credits") throw creditsRefused(outcome, n.creditsErrors);
    }
    if (n.deferListeners !== true) await this.announce(tx, orgId, id);
    return id;
  }

  /** The created note's listeners (webhooks, refunds), with the note as it stands in `tx`. */
  private async announce(tx: Queryable, orgId: number, id: number): Promise<void> {
    const note = (await store.noteById(tx, orgId, id))!;
    for (const listener of this.createdListeners) await listener(tx, note);
  }

  /** The note with its customer and fees, read through `q` (the caller's transaction, for webhooks). */
  async view(orgId: number, note: store.CreditNoteRecord, q: Queryable = this.db): Promise<CreditNoteView> {
    const customer = (await this.deps.customers.findById(orgId, note.customerId, q))!;
    const fees = new Map<string, FeeRecord>();
    for (const item of note.items) {
      const fee = fees.has(item.feeLagoId) ? null : await this.deps.fees.feeIn(q, orgId, item.feeLagoId);
      if (fee !== null) fees.set(item.feeLagoId, fee);
    }
    return { note, customer, fees };
  }
}
