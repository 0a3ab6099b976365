import crypto from "node:crypto";
import type { Db, Queryable } from "../../db/db.ts";
import type { Clock } from "../../shared/clock.ts";
import { AppError, notFound, validationFailed } from "../../shared/errors.ts";
import { customerJson, type Customer } from "../customers/index.ts";
import { invoiceJson, type InvoiceDetails, type InvoiceRecord } from "../invoicing/index.ts";
import type { EnqueueWebhook } from "../webhooks/index.ts";
import {
  afterAttempt,
  idempotencyKeyOf,
  invoicePaymentErrorJson,
  isUuid,
  paymentJson,
  readInvoiceUpdate,
  type AttemptRecord,
  type ChargeResult,
  type PaymentListQuery,
  type PaymentProvider,
  type PaymentRecord,
} from "./core/index.ts";
import { manuallyPaidCents } from "./manual.ts";
import * as store from "./store.ts";

/** What payments need of the modules around them (their services in production). */
export interface PaymentsDeps {
  readonly customers: { findById(orgId: number, id: number, q?: Queryable): Promise<Customer | null> };
  readonly invoicing: {
    /** The invoice read in the caller's transaction. */
    findIn(q: Queryable, orgId: number, lagoId: string): Promise<InvoiceRecord | null>;
    get(orgId: number, lagoId: string): Promise<InvoiceDetails>;
  };
  readonly enqueueWebhook: EnqueueWebhook;
}

export interface PaymentsOptions {
  /** PAYMENT_RETRY_SCHEDULE: the waits after the 1st, 2nd, … failed attempt (timeouts and transient failures). */
  retryScheduleMs: readonly number[];
  newId?: () => string;
}

/** An invoice whose payment_status became `succeeded` (the first time only). */
export interface PaidInvoice {
  readonly orgId: number;
  readonly invoiceId: number;
  readonly lagoId: string;
  readonly customerId: number;
  readonly invoiceType: string;
  readonly currency: string;
  readonly totalAmountCents: bigint;
  /** `provider`: charged; `manual`: PUT /invoices/:id; `nothing_due`: finalized with a zero total. */
  readonly via: "provider" | "manual" | "nothing_due";
}

/** Runs in the transaction that marks the invoice paid: query through `tx` only; throwing rolls it back. */
export type InvoicePaidListener = (tx: Queryable, invoice: PaidInvoice) => Promise<void>;

/** What the worker learned from one attempt. */
export interface AttemptReport {
  readonly result: ChargeResult;
  readonly startedAt: Date;
  readonly durationMs: number;
}

const processing = () =>
  new AppError("not_allowed", "payment_processor_is_currently_handling_payment", "a payment attempt for this invoice is in flight; try again in a moment");
const partlyPaid = () =>
  new AppError("not_allowed", "invalid_status", "part of this invoice was paid by hand (POST /payments); record the rest the same way");
const invalidStatus = () =>
  new AppError("not_allowed", "invalid_status", "payment is only collected for finalized invoices whose payment status is pending or failed");

/**
 * Collects finalized invoices. Finalizing an invoice writes its payment, due now, in the same
 * transaction (`collect`); the PaymentWorker attempts it after the commit and hands the provider's
 * answer to `recordAttempt`, which moves the payment and the invoice's payment_status along the
 * dunning schedule and writes Lago's webhooks in the same transaction. Manual marking
 * (PUT /invoices/:id), retry_payment and voiding stop or restart collection.
 */
export class PaymentsService {
  private readonly newId: () => string;
  private readonly providers = new Map<string, PaymentProvider>();
  private readonly paidListeners: InvoicePaidListener[] = [];
  private readonly dueListeners: (() => void)[] = [];

  constructor(
    private readonly db: Db,
    /** The organization's clock (test clocks): dunning follows it. */
    private readonly clock: Clock,
    /** The process's clock: claims on in-flight attempts expire by it. */
    private readonly wallClock: Clock,
    private readonly deps: PaymentsDeps,
    private readonly options: PaymentsOptions,
    providers: readonly PaymentProvider[],
  ) {
    this.newId = options.newId ?? (() => crypto.randomUUID());
    for (const p of providers) this.providers.set(p.code, p);
  }

  /** The provider a payment or a customer names, if this server has it. */
  provider(code: string | null | undefined): PaymentProvider | undefined {
    return code === null || code === undefined ? undefined : this.providers.get(code);
  }

  /**
   * The invoice-paid hook: `listener` runs once per invoice, in the transaction where its
   * payment_status first becomes `succeeded` (a charge, a manual PUT, or a zero total).
   */
  onInvoicePaid(listener: InvoicePaidListener): void {
    this.paidListeners.push(listener);
  }

  /** Called when a payment may have fallen due (the worker looks soon after the caller commits). */
  onPaymentDue(listener: () => void): void {
    this.dueListeners.push(listener);
  }

  private orgNow(orgId: number): Date {
    return new Date(this.clock.now(orgId));
  }

  private inFlight(p: PaymentRecord): boolean {
    return p.status === "pending" && p.leaseUntil !== null && p.leaseUntil.getTime() > this.wallClock.now();
  }

  // ---------------------------------------------------------------------------------------------
  // Invoicing's hooks (in its transactions)

  /**
   * invoicing.onFinalized: a finalized invoice with a total to pay, whose customer names a
   * provider this server has (billing_configuration.payment_provider_code), gets its payment,
   * due now. Others wait for a manual payment status (PUT /invoices/:id). An invoice with nothing
   * to pay is paid already (the invoice-paid hook fires). Other invoice kinds (wallet top-ups)
   * call this in the transaction that finalizes them.
   */
  readonly collect = async (tx: Queryable, orgId: number, invoiceId: number): Promise<void> => {
    const invoice = await store.invoiceToCollect(tx, orgId, invoiceId);
    if (invoice === null || invoice.status !== "finalized") return;
    const now = this.orgNow(orgId);
    if (invoice.paymentStatus === "succeeded") {
      await this.paid(tx, invoice, "nothing_due", now);
      return;
    }
    const provider = this.provider(invoice.providerCode);
    if (invoice.totalAmountCents <= 0n || provider === undefined) return;
    const lagoId = this.newId();
    const inserted = await store.insertPayment(tx, {
      orgId,
      lagoId,
      invoiceId,
      customerId: invoice.customerId,
      amountCents: invoice.totalAmountCents,
      currency: invoice.currency,
      provider: provider.code,
      providerCustomerId: invoice.providerCustomerId ?? "",
      idempotencyKey: idempotencyKeyOf(lagoId, 1),
      nextAttemptAt: now,
      now,
    });
    if (inserted) this.due();
  };

  /**
   * `collect` for a batch of invoices finalized in one transaction (the billing job's batches):
   * one read picks those `collect` has something to do for (paid already, or a total and a
   * provider), and `collect` handles each of them.
   */
  readonly collectMany = async (tx: Queryable, orgId: number, invoiceIds: readonly number[]): Promise<void> => {
    for (const id of await store.invoicesWithCollectionWork(tx, orgId, invoiceIds)) await this.collect(tx, orgId, id);
  };

  /** invoicing.onVoided: a voided invoice is not collected any more (405 while an attempt is in flight). */
  readonly stopCollecting = async (tx: Queryable, orgId: number, invoiceId: number): Promise<void> => {
    const payment = await store.paymentOfInvoice(tx, orgId, invoiceId, true);
    if (payment === null || payment.status !== "pending") return;
    if (this.inFlight(payment)) throw processing();
    await store.cancelPayment(tx, orgId, payment.id, this.orgNow(orgId));
  };

  // ---------------------------------------------------------------------------------------------
  // The worker's side

  /**
   * Records one attempt's answer for a payment the worker claimed with `leaseId`: the attempt, the
   * payment's next state (dunning), the invoice's payment_status and Lago's webhooks, in one
   * transaction. Answers false when the claim was lost (it expired and another worker took the
   * payment: that worker sends the same idempotency key, so nothing is charged twice).
   */
  async recordAttempt(claimed: PaymentRecord, leaseId: string, report: AttemptReport): Promise<boolean> {
    const orgId = claimed.orgId;
    return this.db.transaction(async (tx) => {
      // Invoice first, then payment: the order voiding and manual marking lock them in.
      const invoice = await store.payableInvoice(tx, orgId, { id: claimed.invoiceId }, true);
      const p = await store.lockClaimed(tx, orgId, claimed.id, leaseId);
      if (p === null || invoice === null) return false;
      const r = report.result;
      const now = this.orgNow(orgId);
      const attempt = p.attempts + 1;
      const roundAttempt = p.roundAttempts + 1;
      const providerPaymentId = r.providerPaymentId ?? p.providerPaymentId;
      const errorCode = r.outcome === "succeeded" ? null : r.errorCode;
      const errorMessage = r.outcome === "succeeded" ? null : r.message.slice(0, 500);
      await store.insertAttempt(tx, {
        orgId,
        paymentId: p.id,
        attempt,
        idempotencyKey: p.idempotencyKey,
        paymentMethod: p.providerCustomerId,
        outcome: r.outcome,
        providerPaymentId: r.providerPaymentId ?? null,
        errorCode,
        errorMessage,
        replayed: r.replayed === true,
        durationMs: report.durationMs,
        startedAt: report.startedAt,
      });
      const common = {
        attempts: attempt,
        roundAttempts: roundAttempt,
        providerPaymentId,
        provider: p.provider,
        providerCustomerId: p.providerCustomerId,
        lastOutcome: r.outcome,
        lastErrorCode: errorCode,
        lastErrorMessage: errorMessage,
        now,
      };
      if (p.status !== "pending") {
        // Collection was stopped (voided, or marked by hand) after this claim expired. The money
        // may still have moved: the payment says so; the invoice keeps what was decided for it.
        await store.updatePayment(tx, orgId, p.id, {
          ...common,
          status: r.outcome === "succeeded" ? "succeeded" : p.status,
          idempotencyKey: p.idempotencyKey,
          keySeq: p.keySeq,
          nextAttemptAt: null,
          succeededAt: r.outcome === "succeeded" ? now : p.succeededAt,
          failedAt: p.failedAt,
        });
        return true;
      }
      const verdict = afterAttempt(r.outcome, roundAttempt, this.options.retryScheduleMs, now.getTime());
      const rotate = verdict.status !== "succeeded" && verdict.newKey;
      const keySeq = rotate ? p.keySeq + 1 : p.keySeq;
      await store.updatePayment(tx, orgId, p.id, {
        ...common,
        status: verdict.status === "retrying" ? "pending" : verdict.status,
        idempotencyKey: rotate ? idempotencyKeyOf(p.lagoId, keySeq) : p.idempotencyKey,
        keySeq,
        nextAttemptAt: verdict.status === "retrying" ? new Date(verdict.nextAttemptAt) : null,
        succeededAt: verdict.status === "succeeded" ? now : null,
        failedAt: verdict.status === "failed" ? now : null,
      });
      if (r.outcome !== "succeeded") {
        const provider = this.provider(p.provider);
        await this.deps.enqueueWebhook(
          tx,
          orgId,
          "invoice.payment_failure",
          "payment_provider_invoice_payment_error",
          invoicePaymentErrorJson(p, { providerType: provider?.type ?? p.provider, errorCode: r.errorCode, message: r.message }),
        );
      }
      if (invoice.status !== "finalized") return true;
      if (verdict.status === "succeeded") {
        await this.setPaymentStatus(tx, invoice, "succeeded", now);
        await this.paid(tx, invoice, "provider", now);
      } else if (verdict.status === "failed") {
        await this.setPaymentStatus(tx, invoice, "failed", now);
      }
      return true;
    });
  }

  // ---------------------------------------------------------------------------------------------
  // API

  async list(orgId: number, query: PaymentListQuery): Promise<{ items: PaymentRecord[]; total: number }> {
    return store.listPayments(this.db, orgId, query);
  }

  async get(orgId: number, lagoId: string): Promise<{ payment: PaymentRecord; attempts: AttemptRecord[] }> {
    const payment = isUuid(lagoId) ? await store.paymentByLagoId(this.db, orgId, lagoId) : null;
    if (payment === null) throw notFound("payment", lagoId);
    return { payment, attempts: await store.attemptsOf(this.db, orgId, payment.id) };
  }

  /** Lago's PaymentObject for `p` (with its attempts when given). */
  render(p: PaymentRecord, attempts?: readonly AttemptRecord[]) {
    const providerType = this.provider(p.provider)?.type ?? p.provider;
    return paymentJson(p, { providerType, inFlight: this.inFlight(p), ...(attempts !== undefined ? { attempts } : {}) });
  }

  /**
   * POST /invoices/:lago_id/retry_payment: collection starts again now, with a fresh dunning
   * round — for a finalized invoice whose payment status is pending or failed, whose customer
   * names a provider. An attempt whose outcome is unknown (a timeout) is retried with its key.
   */
  async retryPayment(orgId: number, invoiceLagoId: string): Promise<void> {
    await this.findInvoice(orgId, invoiceLagoId);
    await this.db.transaction(async (tx) => {
      const invoice = await store.payableInvoice(tx, orgId, { lagoId: invoiceLagoId }, true);
      if (invoice === null) throw notFound("invoice", invoiceLagoId);
      if (invoice.status !== "finalized" || invoice.paymentStatus === "succeeded" || invoice.totalAmountCents <= 0n) throw invalidStatus();
      // Part of it was paid by hand: a charge of the total would take too much.
      if ((await manuallyPaidCents(tx, orgId, invoice.id)) > 0n) throw partlyPaid();
      const customer = await this.deps.customers.findById(orgId, invoice.customerId, tx);
      const billing = customer?.attributes.billing_configuration;
      const provider = this.provider(billing?.payment_provider_code);
      const payment = await store.paymentOfInvoice(tx, orgId, invoice.id, true);
      const now = this.orgNow(orgId);
      if (payment === null) {
        if (provider === undefined) throw noProvider(billing?.payment_provider_code);
        const lagoId = this.newId();
        await store.insertPayment(tx, {
          orgId,
          lagoId,
          invoiceId: invoice.id,
          customerId: invoice.customerId,
          amountCents: invoice.totalAmountCents,
          currency: invoice.currency,
          provider: provider.code,
          providerCustomerId: billing?.provider_customer_id ?? "",
          idempotencyKey: idempotencyKeyOf(lagoId, 1),
          nextAttemptAt: now,
          now,
        });
        return;
      }
      if (this.inFlight(payment)) throw processing();
      if (payment.status === "succeeded") throw invalidStatus();
      // The current key may have reached the provider (a timeout, or a worker that died holding
      // the payment): it is sent again unchanged, with the request it was sent with. A fresh key
      // takes the customer's payment method as it is now.
      const keySent = payment.lastOutcome === "timeout" || payment.leaseUntil !== null;
      const switchTo = keySent ? undefined : provider;
      if (!keySent && switchTo === undefined) throw noProvider(billing?.payment_provider_code);
      await store.updatePayment(tx, orgId, payment.id, {
        status: "pending",
        attempts: payment.attempts,
        roundAttempts: 0,
        idempotencyKey: payment.idempotencyKey,
        keySeq: payment.keySeq,
        nextAttemptAt: now,
        providerPaymentId: payment.providerPaymentId,
        provider: switchTo === undefined ? payment.provider : switchTo.code,
        providerCustomerId: switchTo === undefined ? payment.providerCustomerId : (billing?.provider_customer_id ?? ""),
        lastOutcome: payment.lastOutcome,
        lastErrorCode: payment.lastErrorCode,
        lastErrorMessage: payment.lastErrorMessage,
        succeededAt: null,
        failedAt: null,
        now,
      });
    });
    this.due();
  }

  /**
   * PUT /invoices/:lago_id (Lago's invoice update): sets the payment status by hand. Collection
   * under way stops; `succeeded` fires the invoice-paid hook. Lago's rules: a draft's payment
   * status does not change (405), a voided invoice is not updated (405).
   */
  async updateInvoice(orgId: number, invoiceLagoId: string, raw: unknown): Promise<InvoiceDetails> {
    const read = readInvoiceUpdate(raw);
    if (!read.ok) throw validationFailed(read.errors, "the invoice update is invalid");
    await this.findInvoice(orgId, invoiceLagoId);
    const wanted = read.value.paymentStatus;
    if (wanted !== undefined) {
      await this.db.transaction(async (tx) => {
        const invoice = await store.payableInvoice(tx, orgId, { lagoId: invoiceLagoId }, true);
        if (invoice === null) throw notFound("invoice", invoiceLagoId);
        if (invoice.status === "voided") throw new AppError("not_allowed", "invoice_voided", "a voided invoice cannot be updated");
        if (invoice.paymentStatus === wanted) return;
        if (invoice.status === "draft") {
          throw new AppError("not_allowed", "payment_status_update_on_draft_invoice", "a draft invoice's payment status cannot change");
        }
        const payment = await store.paymentOfInvoice(tx, orgId, invoice.id, true);
        if (payment !== null && this.inFlight(payment)) throw processing();
        const now = this.orgNow(orgId);
        if (payment !== null && payment.status === "pending") await store.cancelPayment(tx, orgId, payment.id, now);
        await this.setPaymentStatus(tx, invoice, wanted, now);
        if (wanted === "succeeded") await this.paid(tx, invoice, "manual", now);
      });
    }
    return this.deps.invoicing.get(orgId, invoiceLagoId);
  }

  /**
   * A manual payment (manual.ts), in the caller's transaction holding the invoice's lock: collection
   * under way stops (405 while an attempt is in flight: the provider may be charging); paid in full,
   * the invoice's payment_status becomes `succeeded` (its webhook) and the invoice-paid hook fires.
   */
  async recordManualPayment(tx: Queryable, invoice: store.PayableInvoice, paidInFull: boolean, now: Date): Promise<void> {
    const payment = await store.paymentOfInvoice(tx, invoice.orgId, invoice.id, true);
    if (payment !== null && this.inFlight(payment)) throw processing();
    if (payment !== null && payment.status === "pending") await store.cancelPayment(tx, invoice.orgId, payment.id, now);
    if (!paidInFull) return;
    await this.setPaymentStatus(tx, invoice, "succeeded", now);
    await this.paid(tx, invoice, "manual", now);
  }

  // ---------------------------------------------------------------------------------------------
  // Internals

  private async findInvoice(orgId: number, lagoId: string): Promise<void> {
    const found = isUuid(lagoId) ? await store.payableInvoice(this.db, orgId, { lagoId }) : null;
    if (found === null) throw notFound("invoice", lagoId);
  }

  /** Sets the invoice's payment_status and writes Lago's `invoice.payment_status_updated`. */
  private async setPaymentStatus(tx: Queryable, invoice: store.PayableInvoice, status: store.PayableInvoice["paymentStatus"], now: Date): Promise<void> {
    if (invoice.paymentStatus === status) return;
    await store.setInvoicePaymentStatus(tx, invoice.orgId, invoice.id, status, now);
    const record = await this.deps.invoicing.findIn(tx, invoice.orgId, invoice.lagoId);
    const customer = await this.deps.customers.findById(invoice.orgId, invoice.customerId, tx);
    if (record === null || customer === null) return;
    await this.deps.enqueueWebhook(tx, invoice.orgId, "invoice.payment_status_updated", "invoice", invoiceJson(record, { customer: customerJson(customer) }));
  }

  private async paid(tx: Queryable, invoice: store.PayableInvoice, via: PaidInvoice["via"], now: Date): Promise<void> {
    if (!(await store.markInvoicePaid(tx, invoice.orgId, invoice.id, via, now))) return;
    const paid: PaidInvoice = {
      orgId: invoice.orgId,
      invoiceId: invoice.id,
      lagoId: invoice.lagoId,
      customerId: invoice.customerId,
      invoiceType: invoice.invoiceType,
      currency: invoice.currency,
      totalAmountCents: invoice.totalAmountCents,
      via,
    };
    for (const listener of this.paidListeners) await listener(tx, paid);
  }

  private due(): void {
    for (const listener of this.dueListeners) listener();
  }
}

const noProvider = (code: string | null | undefined) =>
  new AppError(
    "not_allowed",
    "no_payment_provider",
    code ? `this server has no payment provider ${JSON.stringify(code)}` : "the customer has no billing_configuration.payment_provider_code",
  );
