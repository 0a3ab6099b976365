import crypto from "node:crypto";
import type { Db, Queryable } from "../../db/db.ts";
import { sqlState } from "../../db/db.ts";
import type { Clock } from "../../shared/clock.ts";
import { AppError, notFound, validationFailed } from "../../shared/errors.ts";
import { Decimal, fromCents } from "../../shared/money.ts";
import type { Customer } from "../customers/index.ts";
import { Bucketer, resolveFilter, type SubscriptionUsage, type UsageSubscription, type UsageWindow } from "../metering/index.ts";
import type { Subscription, SubscriptionView } from "../subscriptions/index.ts";
import { type EventRow } from "../ingest/index.ts";
import { type Tax, taxesForFee } from "../taxes/index.ts";
import type { InvoiceAdjustments, InvoiceRef } from "./adjustments.ts";
import type { CouponTerms } from "../coupons/core/apply.ts";
import {
  type BillingInstant,
  type BillingPeriodRecord,
  type BillingTerms,
  type AppliedTaxRecord,
  type CreditRecord,
  type FeeDraft,
  type InvoiceComputation,
  type InvoiceTotals,
  type BillableFee,
  type FeeRecord,
  type InvoiceListQuery,
  type InvoiceRecord,
  chargeFees,
  describeInstant,
  documentNumberPrefix,
  draftNumber,
  dueInstants,
  graceEndsAt,
  initialPaymentStatus,
  computeInvoice,
  invoiceNumber,
  invoiceTotals,
  issuingDateOf,
  linkTrueUps,
  paymentDueDate,
  subscriptionFee,
  unusedAdvanceCredit,
  withTrueUps,
  crossedThresholds,
  type ThresholdCrossing,
} from "./core/index.ts";
import { BatchBilling } from "./batch.ts";
import { advanceFeeEvents, carriedOverAdvanceFees, inheritAdvanceUnits, lockAdvanceHandover } from "./advance.ts";
import { arrearsCharges, withoutAdvanceCharges } from "./core/advance.ts";
import { issueLateCredits, lateAdjustmentsOf } from "./late_events.ts";
import { checkVoidOptions } from "../credit_notes/core/void.ts";
import type { FeeAppliedTax } from "./core/records.ts";
import { regroupedTaxLines } from "./core/regroup.ts";
import * as store from "./store.ts";
import { commitmentFeeOf } from "./minimums.ts";
import {
  appliedThresholds,
  currentChargeSpan,
  insertAppliedThresholds,
  progressivelyBilled,
  thresholdCandidates,
  thresholdsOf,
} from "./progressive.ts";

/** Runs in the transaction that issues a progressive billing invoice, once per threshold crossed (webhooks). */
export type ThresholdListener = (tx: Queryable, view: SubscriptionView, crossing: ThresholdCrossing, invoiceId: number) => Promise<unknown>;

/** A hook run inside an invoicing transaction, with the invoice's internal id. */
export type InvoiceListener = (tx: Queryable, orgId: number, invoiceId: number) => Promise<void>;

/** An InvoiceListener's batched form: the same work for several invoices of one transaction (the billing job's batches). */
export type InvoicesListener = (tx: Queryable, orgId: number, invoiceIds: readonly number[]) => Promise<void>;

/** What invoicing needs of the modules around it (their services in production). */
export interface InvoicingDeps {
  readonly customers: {
    findById(orgId: number, id: number, q?: Queryable): Promise<Customer | null>;
    /** With `getByIds` and `usageMany`: the billing job bills plain periodic invoices in batches (batch.ts). */
    findByIds?(orgId: number, ids: readonly number[], q?: Queryable): Promise<Customer[]>;
  };
  readonly subscriptions: {
    getById(orgId: number, subscriptionId: number): Promise<Subscription | null>;
    getByIds?(orgId: number, subscriptionIds: readonly number[]): Promise<Subscription[]>;
    getViewById(orgId: number, subscriptionId: number): Promise<SubscriptionView | null>;
    settleOrganization(orgId: number, at: Date): Promise<void>;
  };
  readonly metering: {
    usage(orgId: number, sub: UsageSubscription, window: UsageWindow, billableMetricCode?: string, q?: Queryable): Promise<SubscriptionUsage>;
    usageMany?(orgId: number, subs: readonly UsageSubscription[], window: UsageWindow, q?: Queryable): Promise<Map<string, SubscriptionUsage>>;
  };
  /** Taxes, coupons, credit notes and prepaid credits; without them invoices carry none. */
  readonly adjustments?: InvoiceAdjustments;
}

export interface InvoicingOptions {
  newId?: () => string;
  /**
   * Fault injection for tests: runs inside an invoice's transaction once the invoice and its
   * billing period are written, before its fees. Throwing rolls the whole invoice back.
   */
  beforeFees?: (invoiceLagoId: string) => void | Promise<void>;
  /** At most this many billing instants per subscription and run (a long-stopped job catches up over runs). */
  maxInstantsPerRun?: number;
  /** Subscriptions the job bills at once on PostgreSQL (default 4; the embedded database: 1). */
  billingConcurrency?: number;
  /**
   * Subscriptions per transaction on the billing job's batch path for plain periodic invoices
   * (batch.ts; default 500, 0: every subscription on its own). Off while `beforeFees` is set.
   */
  billingBatchSize?: number;
  /** Fault injection for tests: runs in a batch's transaction once its invoices and billing instants are written. */
  beforeBatchFees?: (invoiceLagoIds: readonly string[]) => void | Promise<void>;
  /** A subscription or draft the job could not bill or finalize (it is retried by the next run). */
  onError?: (err: unknown, context: Record<string, unknown>) => void;
}

export interface BillingRunSummary {
  organizations: number;
  subscriptions: number;
  invoicesIssued: number;
  invoicesFinalized: number;
  failures: number;
}

/** An invoice with what its detailed view shows. */
export interface InvoiceDetails {
  readonly invoice: InvoiceRecord;
  readonly customer: Customer;
  readonly fees: readonly FeeRecord[];
  readonly billingPeriods: readonly BillingPeriodRecord[];
  readonly subscriptions: readonly SubscriptionView[];
  readonly appliedTaxes: readonly AppliedTaxRecord[];
  readonly credits: readonly CreditRecord[];
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const DAY_MS = 86_400_000;
// Billing of one subscription runs one transaction at a time: (namespace, hash of org and subscription).
const BILLING_LOCK_NAMESPACE = 7_221_006;
// What a customer's finalizations draw on (coupons, credit notes, wallets) is taken one at a time:
// (namespace, hash of org and customer), always after any subscription or invoice lock.
const CUSTOMER_BALANCE_LOCK_NAMESPACE = 7_221_009;

const notVoidable = () => new AppError("not_allowed", "not_voidable", "only a finalized invoice that is not paid can be voided");

/**
 * Turns closed billing periods into invoices. The billing job finds every subscription with a
 * billing instant due and not yet invoiced (`dueInstants`), and issues one invoice per instant in
 * a transaction that also records the instant as billed (unique per subscription in the database):
 * repeated, concurrent or crashed runs never bill an instant twice. Terminations and upgrades are
 * billed inside the transaction that ends the subscription (`onSubscriptionTransition`). Drafts
 * wait out the grace period, then the job refreshes and finalizes them.
 */
export class InvoicingService {
  private readonly newId: () => string;
  private readonly maxInstants: number;
  /** Where GET /invoices reads: a read replica when configured (may lag), else the primary. */
  private reads: Queryable | null = null;
  private readonly finalizedListeners: { one: InvoiceListener; many?: InvoicesListener }[] = [];
  private readonly batch: BatchBilling | null;
  private readonly voidedListeners: InvoiceListener[] = [];
  private readonly voidedViewListeners: ((tx: Queryable, details: InvoiceDetails) => Promise<unknown>)[] = [];
  private readonly thresholdListeners: ThresholdListener[] = [];
  private readonly beforeBillingListeners: ((orgId: number) => Promise<unknown>)[] = [];
  private readonly oneOffListeners: ((tx: Queryable, details: InvoiceDetails) => Promise<unknown>)[] = [];

  constructor(
    private readonly db: Db,
    private readonly clock: Clock,
    private readonly deps: InvoicingDeps,
    private readonly options: InvoicingOptions = {},
  ) {
    this.newId = options.newId ?? (() => crypto.randomUUID());
    this.maxInstants = options.maxInstantsPerRun ?? 500;
    const batchSize = options.beforeFees === undefined ? (options.billingBatchSize ?? 500) : 0;
    this.batch =
      batchSize > 0
        ? new BatchBilling(
            {
              db,
              deps,
              newId: this.newId,
              finalizedListeners: this.finalizedListeners,
              ...(options.beforeBatchFees !== undefined ? { beforeBatchFees: options.beforeBatchFees } : {}),
              ...(options.onError !== undefined ? { onError: options.onError } : {}),
            },
            batchSize,
          )
        : null;
  }

  private now(orgId: number): Date {
    return new Date(this.clock.now(orgId));
  }

  /**
   * Runs in the transaction that finalizes an invoice, once its totals are saved (payments: its
   * charge falls due). `many`, when given, does the same for a batch's invoices at once.
   */
  onFinalized(listener: InvoiceListener, many?: InvoicesListener): void {
    this.finalizedListeners.push(many === undefined ? { one: listener } : { one: listener, many });
  }

  /** Runs in the transaction that voids an invoice (payments: collection stops); throwing refuses the void. */
  onVoided(listener: InvoiceListener): void {
    this.voidedListeners.push(listener);
  }

  /** Runs in the transaction that voids an invoice, after the `onVoided` hooks, with the invoice as voided (webhooks). */
  onVoidedView(listener: (tx: Queryable, details: InvoiceDetails) => Promise<unknown>): void {
    this.voidedViewListeners.push(listener);
  }

  /** An invoice read in the caller's transaction (payments render their webhooks with it). */
  findIn(q: Queryable, orgId: number, lagoId: string): Promise<InvoiceRecord | null> {
    return store.invoiceByLagoId(q, orgId, lagoId);
  }

  // ---------------------------------------------------------------------------------------------
  // The billing job

  /**
   * Bills every due billing instant of every organization (or one), then finalizes the drafts
   * whose grace period has ended. Each organization at its own "now" (test clocks). Idempotent.
   */
  async runBillingJob(opts: { orgId?: number } = {}): Promise<BillingRunSummary> {
    const summary: BillingRunSummary = { organizations: 0, subscriptions: 0, invoicesIssued: 0, invoicesFinalized: 0, failures: 0 };
    const orgIds = opts.orgId !== undefined ? [opts.orgId] : await store.organizations(this.db);
    for (const orgId of orgIds) {
      summary.organizations += 1;
      const now = this.now(orgId);
      // Events of charges paid in advance still queued are billed first (advance.ts): the units
      // carried into the next period, or handed to a plan that takes over now, include them.
      for (const listener of this.beforeBillingListeners) {
        try {
          await listener(orgId);
        } catch (err) {
          this.options.onError?.(err, { orgId, step: "before_billing" });
        }
      }
      // Endings and switches due by now first (they bill their own final invoices as they apply).
      await this.deps.subscriptions.settleOrganization(orgId, now);
      const all = await store.billingCandidates(this.db, orgId);
      summary.subscriptions += all.length;
      // Plain periodic invoices in batches first; what they leave is billed one subscription at a time.
      const candidates = this.batch === null ? all : await this.batch.bill(orgId, all, now, summary);
      // Several subscriptions at once on PostgreSQL, each in its own transaction (they meet only on
      // the organization's invoice sequence); one at a time on the single-connection embedded database.
      const lanes = this.db.kind === "postgres" ? Math.max(1, this.options.billingConcurrency ?? 4) : 1;
      let next = 0;
      const lane = async () => {
        while (next < candidates.length) {
          const { id: subscriptionId, lastBilledAt } = candidates[next++]!;
          try {
            // Awaited first: `+= await` would add to a total read before another lane's update.
            const issued = await this.billSubscription(orgId, subscriptionId, now, lastBilledAt);
            summary.invoicesIssued += issued;
          } catch (err) {
            summary.failures += 1;
            this.options.onError?.(err, { orgId, subscriptionId });
          }
        }
      };
      await Promise.all(Array.from({ length: Math.min(lanes, candidates.length) }, lane));
      summary.invoicesIssued += await this.billUsageThresholds(orgId, now, summary);
      for (const lagoId of await store.draftsDue(this.db, orgId, now)) {
        try {
          await this.finalize(orgId, lagoId);
          summary.invoicesFinalized += 1;
        } catch (err) {
          // Finalized (or voided) meanwhile by a request or another run.
          if (err instanceof AppError && err.category === "not_found") continue;
          summary.failures += 1;
          this.options.onError?.(err, { orgId, invoice: lagoId });
        }
      }
    }
    return summary;
  }

  /**
   * Issues the invoices of one subscription's instants due by `now`; answers how many.
   * `lastBilledAt`: what the caller read as billed so far, to skip the transaction when nothing
   * more is due (the transaction reads it again under its lock).
   */
  async billSubscription(orgId: number, subscriptionId: number, now = this.now(orgId), lastBilledAt?: Date | null): Promise<number> {
    const sub = await this.deps.subscriptions.getById(orgId, subscriptionId);
    const terms = sub === null ? null : termsOf(sub);
    if (sub === null || terms === null) return 0;
    if (lastBilledAt !== undefined && dueInstants(terms, lastBilledAt, now, 1).length === 0) return 0;
    try {
      return await this.db.transaction((tx) => this.billDue(tx, sub, now));
    } catch (err) {
      // Another process billed the same instant between our check and insert: it is billed.
      if (sqlState(err) === "23505") return 0;
      throw err;
    }
  }

  /**
   * subscriptions.onTransition: a subscription that ends (DELETE, upgrade, ending_at, downgrade
   * switch, customer deletion) is billed to its end inside the transaction that ends it, so the
   * final invoice exists when the request answers and never without the termination. One that
   * starts on a plan paid in advance is billed its first period the same way.
   */
  readonly onSubscriptionTransition = async (tx: Queryable, transition: "started" | "terminated", view: SubscriptionView): Promise<void> => {
    const sub = view.subscription;
    // A plan change hands the advance queue's units over: under the queue's lock, taken before the
    // old subscription's final invoice (the advance worker's lock order; advance.ts).
    await lockAdvanceHandover(tx, transition, sub);
    // An upgrade or downgrade: the old plan's recurring advance units (sums, seats) move to the new
    // plan's charges (advance.ts). A downgrade's are not paid for the new plan's first period:
    // billed now, on its price, on an invoice of the new subscription.
    if (transition === "started" && sub.previousId !== null) {
      const { carriedIn } = await inheritAdvanceUnits(tx, sub, this.now(sub.orgId), this.newId);
      if (carriedIn.length > 0) {
        const customer = await this.deps.customers.findById(sub.orgId, sub.customerId, tx);
        if (customer === null) throw new Error(`customer ${sub.customerId} of subscription ${sub.lagoId} is missing`);
        await this.issueAdvanceInvoice(tx, customer, sub, carriedIn, this.now(sub.orgId));
      }
    }
    // A start in arrears has nothing due before its first period ends: left to the job.
    if (transition === "started" && !sub.plan.payInAdvance) return;
    await this.billDue(tx, sub, this.now(sub.orgId));
  };

  /** Bills, in `tx`, every instant of `sub` due by `now` and not yet billed. */
  private async billDue(tx: Queryable, sub: Subscription, now: Date): Promise<number> {
    const terms = termsOf(sub);
    // Pure check first: most started subscriptions have nothing due (no lock, no query).
    if (terms === null || dueInstants(terms, null, now, 1).length === 0) return 0;
    await tx.query("SELECT pg_advisory_xact_lock($1::int, hashtext($2::text))", [BILLING_LOCK_NAMESPACE, `${sub.orgId}:${sub.id}`]);
    // Read under the lock: what a concurrent run billed is seen here.
    const last = await store.lastBilledAt(tx, sub.orgId, sub.id);
    const instants = dueInstants(terms, last, now, this.maxInstants);
    if (instants.length === 0) return 0;
    const customer = await this.deps.customers.findById(sub.orgId, sub.customerId, tx);
    if (customer === null) throw new Error(`customer ${sub.customerId} of subscription ${sub.lagoId} is missing`);
    const org = await store.organizationBilling(tx, sub.orgId);
    for (const instant of instants) await this.issue(tx, sub, terms, customer, org, instant, now);
    return instants.length;
  }

  private async issue(
    tx: Queryable,
    sub: Subscription,
    terms: BillingTerms,
    customer: Customer,
    org: { name: string; publicId: string; graceDays: number },
    instant: BillingInstant,
    now: Date,
  ): Promise<void> {
    const orgId = sub.orgId;
    const fees = await this.feesOf(tx, sub, terms, instant);
    const unused = instant.unused === null ? null : await this.unusedCreditOf(tx, sub, terms, instant.unused);
    const unusedCredit = unused?.amountCents ?? 0n;
    // The credit note for the unused advance fee comes first, so this final invoice may draw on it.
    if (unused !== null && unused.amountCents > 0n) {
      await this.deps.adjustments?.creditUnusedAdvanceFee(tx, {
        orgId,
        customerId: sub.customerId,
        feeId: unused.feeId,
        invoiceId: unused.invoiceId,
        amountCents: unused.amountCents,
        reason: terms.endedBy === "upgrade" ? "order_change" : "order_cancellation",
        now,
      });
    }
    const issuingDate = issuingDateOf(instant.at, sub.timezone);
    const graceDays = customer.attributes.billing_configuration.invoice_grace_period ?? org.graceDays;
    const graceUntil = graceEndsAt(issuingDate, graceDays, sub.timezone);
    const netPaymentTerm = customer.attributes.net_payment_term ?? 0;
    const prefix = documentNumberPrefix(org.name, org.publicId);
    const lagoId = this.newId();
    const invoiceId = await store.insertInvoice(tx, {
      orgId,
      lagoId,
      customerId: sub.customerId,
      invoiceType: "subscription",
      number: draftNumber(prefix),
      issuingDate,
      paymentDueDate: paymentDueDate(issuingDate, netPaymentTerm),
      netPaymentTerm,
      currency: sub.plan.amountCurrency,
      graceUntil,
      now,
    });
    await store.insertBillingPeriod(tx, {
      orgId,
      invoiceId,
      subscriptionId: sub.id,
      reason: instant.reason,
      billedAt: instant.at,
      feeFrom: instant.fee?.from ?? null,
      feeTo: instant.fee?.to ?? null,
      chargesFrom: instant.charges?.from ?? null,
      chargesTo: chargesLastInstant(instant),
      unusedAdvanceCreditCents: unusedCredit,
      now,
    });
    await this.options.beforeFees?.(lagoId);
    // Caught up after its grace period already ended (a stopped job): issued final at once.
    const final = graceUntil === null || graceUntil.getTime() <= now.getTime();
    const ref: InvoiceRef = { orgId, id: invoiceId, lagoId, customerId: sub.customerId, currency: sub.plan.amountCurrency };
    const credit = instant.charges === null ? 0n : await progressivelyBilled(tx, orgId, sub.id, instant.charges.period.start);
    const totals = await this.writeFees(tx, ref, customer, [{ sub, fees }], final, now, credit);
    if (final) {
      await this.finalizeIn(tx, { orgId, invoiceId, customerId: sub.customerId, prefix, issuingDate, netPaymentTerm, totals, now });
    }
  }

  /**
   * Writes an invoice's fees with their deductions and its totals, in Lago's order: coupons, taxes,
   * credit notes, prepaid credits. A draft shows its coupons and taxes as they would apply now and
   * uses nothing up; `final` takes what it uses (coupons, credit notes, wallets) under the
   * customer's lock, in this transaction.
   */
  private async writeFees(
    tx: Queryable,
    invoice: InvoiceRef,
    customer: Customer,
    groups: readonly { sub: Subscription | null; fees: readonly FeeDraft[] }[],
    final: boolean,
    now: Date,
    progressiveCreditCents = 0n,
  ): Promise<InvoiceTotals> {
    const { orgId, customerId, currency } = invoice;
    const adj = this.deps.adjustments;
    let lateNotes: (() => Promise<void>)[] = [];
    if (final && adj !== undefined) {
      // Late events that lowered an earlier period: its credit notes first (they lock that period's
      // invoice, so before the customer's lock, as voiding takes them), so this invoice draws on them.
      // Their webhooks once this invoice is written: they show the adjustment fee and what was drawn.
      lateNotes = await issueLateCredits(tx, adj, invoice, groups, now);
      await tx.query("SELECT pg_advisory_xact_lock($1::int, hashtext($2::text))", [CUSTOMER_BALANCE_LOCK_NAMESPACE, `${orgId}:${customerId}`]);
    }
    const taxes: ReadonlyMap<string, Tax> = adj === undefined ? new Map() : await adj.taxes(tx, orgId);
    const billable = billableFees(groups, customer, taxes);
    const result = computeInvoice({
      fees: billable,
      coupons: adj === undefined ? [] : await adj.coupons(tx, orgId, customerId, currency, now),
      creditNotes: final && adj !== undefined ? await adj.creditNotes(tx, orgId, customerId, currency) : [],
      wallets: final && adj !== undefined ? await adj.wallets(tx, orgId, customerId, currency, now) : [],
      progressiveCreditCents,
    });
    let position = 0;
    for (const { sub, fees } of groups) {
      const at = position;
      await store.insertFees(
        tx,
        orgId,
        invoice.id,
        sub?.id ?? null,
        currency,
        fees.map((draft, i) => ({ lagoId: draft.lagoId ?? this.newId(), draft, deductions: result.fees[at + i]!, newId: this.newId })),
        at,
        now,
      );
      position += fees.length;
    }
    await store.replaceAppliedTaxes(tx, orgId, invoice.id, result.appliedTaxes.map((line) => ({ lagoId: this.newId(), line })), currency, now);
    await store.replaceCredits(
      tx,
      orgId,
      invoice.id,
      [
        ...result.couponCredits.map((c) => ({ lagoId: this.newId(), appliedCouponId: c.appliedCouponId, creditNoteId: null, amountCents: c.amountCents, beforeTaxes: true })),
        ...result.creditNoteCredits.map((c) => ({ lagoId: this.newId(), appliedCouponId: null, creditNoteId: c.id, amountCents: c.amountCents, beforeTaxes: false })),
      ],
      currency,
      now,
    );
    await store.saveTotals(tx, orgId, invoice.id, result.totals, "pending", now);
    if (final && adj !== undefined) await adj.consume(tx, invoice, result, now);
    for (const announce of lateNotes) await announce();
    return result.totals;
  }

  private async finalizeIn(
    tx: Queryable,
    f: { orgId: number; invoiceId: number; customerId: number; prefix: string; issuingDate: string; netPaymentTerm: number; totals: InvoiceTotals; now: Date; paid?: boolean },
  ): Promise<void> {
    const organizationSequentialId = await store.nextSequence(tx, f.orgId, 0);
    const sequentialId = await store.nextSequence(tx, f.orgId, f.customerId);
    await store.markFinalized(tx, f.orgId, f.invoiceId, {
      number: invoiceNumber(f.prefix, organizationSequentialId),
      organizationSequentialId,
      sequentialId,
      issuingDate: f.issuingDate,
      paymentDueDate: paymentDueDate(f.issuingDate, f.netPaymentTerm),
      now: f.now,
    });
    const totals = f.totals;
    await store.saveTotals(tx, f.orgId, f.invoiceId, totals, f.paid === true ? "succeeded" : initialPaymentStatus(totals.totalAmountCents), f.now);
    for (const listener of this.finalizedListeners) await listener.one(tx, f.orgId, f.invoiceId);
  }

  /** The fees of a billing instant: its subscription fee, then its usage fees in Lago's order. */
  private async feesOf(q: Queryable, sub: Subscription, terms: BillingTerms, instant: BillingInstant): Promise<FeeDraft[]> {
    const plan = sub.plan;
    const currency = plan.amountCurrency;
    const fees: FeeDraft[] = [];
    if (instant.fee !== null) fees.push(subscriptionFee(plan, sub.lagoId, instant.fee, terms, currency));
    if (instant.charges !== null) {
      const c = instant.charges;
      const window: UsageWindow = { period: c.period, from: c.from, to: c.to, issuingDate: issuingDateOf(c.period.end, sub.timezone) };
      const usage = await this.deps.metering.usage(sub.orgId, sub, window, undefined, q);
      // Advance charges were billed as their events arrived (advance.ts).
      const charges = arrearsCharges(usage.charges);
      fees.push(...linkTrueUps(withTrueUps(charges, chargeFees(charges, c, currency), c, terms, currency), this.newId));
      // Advance charges on recurring sums: the units carried into the next period, billed now (advance.ts).
      fees.push(...(await carriedOverAdvanceFees(q, sub, c, instant.at, this.newId)));
    }
    const commitment = await commitmentFeeOf(q, sub, terms, instant, fees);
    if (commitment !== null) fees.push(commitment);
    // Events stored since the subscription's earlier periods were invoiced (late_events.ts).
    fees.push(...(await lateAdjustmentsOf(q, sub, terms, instant.at, async (w) => withoutAdvanceCharges(await this.deps.metering.usage(sub.orgId, sub, w, undefined, q)))).fees);
    return fees;
  }

  /** What the unused days of the period's advance fee are worth, and which fee paid them. */
  private async unusedCreditOf(
    q: Queryable,
    sub: Subscription,
    terms: BillingTerms,
    unused: NonNullable<BillingInstant["unused"]>,
  ): Promise<{ amountCents: bigint; feeId: number; invoiceId: number } | null> {
    const paid = await store.paidAdvanceFee(q, sub.orgId, sub.id, unused.period.start, unused.period.end);
    if (paid === null) return null;
    const currency = sub.plan.amountCurrency;
    const planAmount = fromCents(paid.planAmountCents ?? sub.plan.amountCents, currency);
    const amountCents = unusedAdvanceCredit(planAmount, unused, terms.endedBy, terms.trialEndsAt, paid.amountCents, currency);
    return { amountCents, feeId: paid.feeId, invoiceId: paid.invoiceId };
  }

  // ---------------------------------------------------------------------------------------------
  // Progressive billing (progressive.ts, core/progressive.ts)

  /** Runs in the transaction of a progressive billing invoice, for each threshold it was issued for. */
  /** Runs at the start of each organization's billing job run, before transitions settle and periods close (advance.ts: the queue). */
  onBeforeBilling(listener: (orgId: number) => Promise<unknown>): void {
    this.beforeBillingListeners.push(listener);
  }

  onUsageThresholdReached(listener: ThresholdListener): void {
    this.thresholdListeners.push(listener);
  }

  /** The pass over the organization's subscriptions with usage thresholds; answers the invoices issued. */
  private async billUsageThresholds(orgId: number, now: Date, summary: BillingRunSummary): Promise<number> {
    let issued = 0;
    for (const id of await thresholdCandidates(this.db, orgId)) {
      try {
        issued += await this.billThresholdsOf(orgId, id, now);
      } catch (err) {
        // Another run recorded the same crossing first: it is billed.
        if (sqlState(err) === "23505") continue;
        summary.failures += 1;
        this.options.onError?.(err, { orgId, subscriptionId: id, pass: "usage_thresholds" });
      }
    }
    return issued;
  }

  /**
   * One subscription: its current period's usage so far against its thresholds. A crossing issues a
   * `progressive_billing` invoice for that usage, less what the period's earlier progressive
   * invoices billed; finalized at once, with no grace period (Lago).
   */
  async billThresholdsOf(orgId: number, subscriptionId: number, now = this.now(orgId)): Promise<number> {
    const sub = await this.deps.subscriptions.getById(orgId, subscriptionId);
    const terms = sub === null || sub.status !== "active" ? null : termsOf(sub);
    const thresholds = sub === null ? [] : thresholdsOf(sub);
    if (sub === null || terms === null || thresholds.length === 0) return 0;
    const span = currentChargeSpan(terms, now);
    if (span === null) return 0;
    // Read before the transaction (the embedded database has one connection); for the webhook.
    const view = this.thresholdListeners.length > 0 ? await this.deps.subscriptions.getViewById(orgId, sub.id) : null;
    return this.db.transaction(async (tx) => {
      await tx.query("SELECT pg_advisory_xact_lock($1::int, hashtext($2::text))", [BILLING_LOCK_NAMESPACE, `${orgId}:${sub.id}`]);
      const currency = sub.plan.amountCurrency;
      const window: UsageWindow = { period: span.period, from: span.from, to: span.to, issuingDate: issuingDateOf(span.period.end, sub.timezone) };
      const usage = await this.deps.metering.usage(orgId, sub, window, undefined, tx);
      // Only charges in arrears count (Lago): advance charges are paid as they happen.
      const fees = chargeFees(usage.charges.filter((c) => !c.charge.payInAdvance), span, currency);
      const usageCents = fees.reduce((a, f) => a + f.amountCents, 0n);
      const crossings = crossedThresholds(thresholds, usageCents, await appliedThresholds(tx, orgId, sub.id, span.period.start));
      if (crossings.length === 0) return 0;
      const customer = await this.deps.customers.findById(orgId, sub.customerId, tx);
      if (customer === null) throw new Error(`customer ${sub.customerId} of subscription ${sub.lagoId} is missing`);
      const org = await store.organizationBilling(tx, orgId);
      const issuingDate = issuingDateOf(now, sub.timezone);
      const netPaymentTerm = customer.attributes.net_payment_term ?? 0;
      const prefix = documentNumberPrefix(org.name, org.publicId);
      const lagoId = this.newId();
      const invoiceId = await store.insertInvoice(tx, {
        orgId,
        lagoId,
        customerId: sub.customerId,
        invoiceType: "progressive_billing",
        number: draftNumber(prefix),
        issuingDate,
        paymentDueDate: paymentDueDate(issuingDate, netPaymentTerm),
        netPaymentTerm,
        currency,
        graceUntil: null,
        now,
      });
      const credit = await progressivelyBilled(tx, orgId, sub.id, span.period.start);
      await insertAppliedThresholds(tx, orgId, sub.id, invoiceId, span.period.start, crossings, thresholds, usageCents, now);
      const ref: InvoiceRef = { orgId, id: invoiceId, lagoId, customerId: sub.customerId, currency };
      const totals = await this.writeFees(tx, ref, customer, [{ sub, fees }], true, now, credit);
      await this.finalizeIn(tx, { orgId, invoiceId, customerId: sub.customerId, prefix, issuingDate, netPaymentTerm, totals, now });
      if (view !== null) for (const crossing of crossings) for (const listener of this.thresholdListeners) await listener(tx, view, crossing, invoiceId);
      return 1;
    });
  }

  // ---------------------------------------------------------------------------------------------
  // API

  /** Lists read from `reads` (src/db/replica.ts); the billing job, invoices by id and fees, from the primary. */
  readFrom(reads: Queryable): void {
    this.reads = reads;
  }

  async list(
    orgId: number,
    query: InvoiceListQuery,
  ): Promise<{ items: { invoice: InvoiceRecord; customer: Customer; appliedTaxes: AppliedTaxRecord[] }[]; total: number }> {
    const reads = this.reads ?? this.db;
    const { items, total } = await store.listInvoices(reads, orgId, query);
    const customers = new Map<number, Customer>();
    const taxes = await store.appliedTaxesOf(reads, orgId, items.map((i) => i.id));
    const out: { invoice: InvoiceRecord; customer: Customer; appliedTaxes: AppliedTaxRecord[] }[] = [];
    for (const invoice of items) {
      let customer = customers.get(invoice.customerId);
      if (customer === undefined) {
        customer = (await this.deps.customers.findById(orgId, invoice.customerId, reads))!;
        customers.set(invoice.customerId, customer);
      }
      out.push({ invoice, customer, appliedTaxes: taxes.filter((t) => t.invoiceId === invoice.id) });
    }
    return { items: out, total };
  }

  /** GET /invoices/:lago_id. */
  async get(orgId: number, lagoId: string): Promise<InvoiceDetails> {
    return this.details(orgId, await this.find(orgId, lagoId));
  }

  /** The invoice with its seller's name, for the PDF document (drafts included). */
  async document(orgId: number, lagoId: string): Promise<{ details: InvoiceDetails; sellerName: string }> {
    const details = await this.get(orgId, lagoId);
    const org = await store.organizationBilling(this.db, orgId);
    return { details, sellerName: org.name };
  }

  /**
   * PUT /invoices/:lago_id/finalize: a draft is refreshed (late events in its grace period count)
   * and finalized now, numbered, its issuing date moved to today. Lago answers 404 for an invoice
   * that is not a draft.
   */
  async finalize(orgId: number, lagoId: string): Promise<InvoiceDetails> {
    const draft = await this.find(orgId, lagoId);
    if (draft.status !== "draft") throw notFound("invoice", lagoId);
    const subs = await this.subscriptionsOf(orgId, draft);
    await this.db.transaction(async (tx) => {
      const locked = await store.invoiceByLagoId(tx, orgId, lagoId, true);
      if (locked === null || locked.status !== "draft") throw notFound("invoice", lagoId);
      const now = this.now(orgId);
      const customer = (await this.deps.customers.findById(orgId, locked.customerId, tx))!;
      const totals = await this.recompute(tx, locked, customer, subs, now, true);
      const org = await store.organizationBilling(tx, orgId);
      const timezone = subs[0]?.sub.timezone ?? customer.attributes.timezone ?? "UTC";
      const today = issuingDateOf(now, timezone);
      await this.finalizeIn(tx, {
        orgId,
        invoiceId: locked.id,
        customerId: locked.customerId,
        prefix: documentNumberPrefix(org.name, org.publicId),
        issuingDate: today > locked.issuingDate ? today : locked.issuingDate,
        netPaymentTerm: locked.netPaymentTerm,
        totals,
        now,
      });
    });
    return this.get(orgId, lagoId);
  }

  /** POST/PUT /invoices/:lago_id/refresh: a draft's fees computed again; other invoices answer as they are. */
  async refresh(orgId: number, lagoId: string): Promise<InvoiceDetails> {
    const invoice = await this.find(orgId, lagoId);
    if (invoice.status === "draft") {
      const subs = await this.subscriptionsOf(orgId, invoice);
      await this.db.transaction(async (tx) => {
        const locked = await store.invoiceByLagoId(tx, orgId, lagoId, true);
        if (locked === null || locked.status !== "draft") return;
        const customer = (await this.deps.customers.findById(orgId, locked.customerId, tx))!;
        await this.recompute(tx, locked, customer, subs, this.now(orgId), false);
      });
    }
    return this.get(orgId, lagoId);
  }

  /**
   * POST /invoices/:lago_id/void: Lago's rule — only a finalized invoice whose payment has not
   * succeeded (405 `not_voidable` otherwise), unless `generate_credit_note` is true: then a paid
   * invoice is voided too and credited (credit_notes' creditVoidedInvoice; `credit_amount` and
   * `refund_amount` split it). Either way what the invoice used comes back: its coupons, the
   * credit notes it drew on and its prepaid credits. Its billing periods stay billed.
   */
  async void(orgId: number, lagoId: string, body: unknown): Promise<InvoiceDetails> {
    const checked = checkVoidOptions(body);
    if (!checked.ok) throw validationFailed(checked.errors, "the void options are invalid");
    const opts = checked.value;
    await this.find(orgId, lagoId);
    // What the voided-invoice hooks show, read before the transaction (subscription views read
    // through the pool; the embedded database has one connection); voiding changes only its status.
    const shown = this.voidedViewListeners.length > 0 ? await this.get(orgId, lagoId) : null;
    await this.db.transaction(async (tx) => {
      const locked = await store.invoiceByLagoId(tx, orgId, lagoId, true);
      if (locked === null) throw notFound("invoice", lagoId);
      if (locked.status !== "finalized" || (locked.paymentStatus === "succeeded" && !opts.generateCreditNote)) throw notVoidable();
      const now = this.now(orgId);
      const adj = this.deps.adjustments;
      const ref: InvoiceRef = { orgId, id: locked.id, lagoId, customerId: locked.customerId, currency: locked.currency };
      // What is given back is what finalizations draw on: under the customer's lock.
      if (adj !== undefined) await tx.query("SELECT pg_advisory_xact_lock($1::int, hashtext($2::text))", [CUSTOMER_BALANCE_LOCK_NAMESPACE, `${orgId}:${locked.customerId}`]);
      if (opts.generateCreditNote) {
        if (adj?.creditVoided === undefined) throw validationFailed({ generate_credit_note: ["credit_notes_are_not_available"] }, "credit notes are not available");
        await adj.creditVoided(tx, ref, { creditAmountCents: opts.creditAmountCents, refundAmountCents: opts.refundAmountCents }, now);
      }
      await store.markVoided(tx, orgId, locked.id, now);
      await adj?.restoreVoided?.(tx, ref, now);
      for (const listener of this.voidedListeners) await listener(tx, orgId, locked.id);
      if (shown !== null) {
        const details: InvoiceDetails = { ...shown, invoice: (await store.invoiceByLagoId(tx, orgId, lagoId))! };
        for (const listener of this.voidedViewListeners) await listener(tx, details);
      }
    });
    return this.get(orgId, lagoId);
  }

  /**
   * A wallet's credit invoice voided in the caller's transaction (wallets: a wallet that ends takes
   * its unpaid purchases with it), as POST /invoices/:lago_id/void without a credit note: its hooks
   * run (the purchase fails, collection stops, invoice.voided). False, nothing changed, when it is
   * not a finalized, unpaid credit invoice; a payment attempt in flight refuses it (405, onVoided).
   * No customer lock: a credit invoice draws on no balance, so voiding it gives nothing back.
   */
  async voidCreditInvoiceIn(tx: Queryable, orgId: number, lagoId: string): Promise<boolean> {
    const locked = await store.invoiceByLagoId(tx, orgId, lagoId, true);
    if (locked === null || locked.invoiceType !== "credit" || locked.status !== "finalized" || locked.paymentStatus === "succeeded") return false;
    const now = this.now(orgId);
    await store.markVoided(tx, orgId, locked.id, now);
    await this.deps.adjustments?.restoreVoided?.(tx, { orgId, id: locked.id, lagoId, customerId: locked.customerId, currency: locked.currency }, now);
    for (const listener of this.voidedListeners) await listener(tx, orgId, locked.id);
    if (this.voidedViewListeners.length > 0) {
      // A credit invoice bills no subscription: its details read through `tx` alone.
      const details = await this.details(orgId, (await store.invoiceByLagoId(tx, orgId, lagoId))!, tx);
      for (const listener of this.voidedViewListeners) await listener(tx, details);
    }
    return true;
  }

  /** Runs in the transaction that issues a one-off invoice, with the invoice as issued (webhooks). */
  onOneOffIssued(listener: (tx: Queryable, details: InvoiceDetails) => Promise<unknown>): void {
    this.oneOffListeners.push(listener);
  }

  /**
   * POST /invoices (Lago's one-off invoice, oneoff.ts builds the fees): issued finalized at once,
   * numbered in the organization's sequence, its totals through the same deductions as every
   * invoice (coupons, taxes, credit notes, prepaid credits); collected like the others.
   */
  async issueOneOff(orgId: number, customer: Customer, currency: string, timezone: string, fees: readonly FeeDraft[]): Promise<InvoiceDetails> {
    const lagoId = this.newId();
    await this.db.transaction(async (tx) => {
      const now = this.now(orgId);
      const { invoiceId, prefix, issuingDate, netPaymentTerm } = await this.openInvoice(tx, customer, lagoId, "one_off", currency, timezone, now);
      const ref: InvoiceRef = { orgId, id: invoiceId, lagoId, customerId: customer.id, currency };
      const totals = await this.writeFees(tx, ref, customer, [{ sub: null, fees }], true, now);
      await this.finalizeIn(tx, { orgId, invoiceId, customerId: customer.id, prefix, issuingDate, netPaymentTerm, totals, now });
      if (this.oneOffListeners.length > 0) {
        const details = await this.details(orgId, (await store.invoiceByLagoId(tx, orgId, lagoId))!, tx);
        for (const listener of this.oneOffListeners) await listener(tx, details);
      }
    });
    return this.get(orgId, lagoId);
  }

  /** Inserts an invoice issued now outside any billing period (one-off, credit), still a draft for finalizeIn. */
  private async openInvoice(
    tx: Queryable,
    customer: Customer,
    lagoId: string,
    invoiceType: "one_off" | "credit" | "subscription" | "advance_charges",
    currency: string,
    timezone: string,
    now: Date,
  ): Promise<{ invoiceId: number; prefix: string; issuingDate: string; netPaymentTerm: number }> {
    const org = await store.organizationBilling(tx, customer.orgId);
    const issuingDate = issuingDateOf(now, timezone);
    const netPaymentTerm = customer.attributes.net_payment_term ?? 0;
    const prefix = documentNumberPrefix(org.name, org.publicId);
    const invoiceId = await store.insertInvoice(tx, {
      orgId: customer.orgId,
      lagoId,
      customerId: customer.id,
      invoiceType,
      number: draftNumber(prefix),
      issuingDate,
      paymentDueDate: paymentDueDate(issuingDate, netPaymentTerm),
      netPaymentTerm,
      currency,
      graceUntil: null,
      now,
    });
    return { invoiceId, prefix, issuingDate, netPaymentTerm };
  }

  /**
   * The invoice of the fees advance charges billed for one event (advance.ts; Lago issues one per
   * event): issued finalized at once in the caller's transaction, through the same deductions as
   * every invoice, numbered in the organization's sequence and collected like the others.
   */
  async issueAdvanceInvoice(tx: Queryable, customer: Customer, sub: Subscription, fees: readonly FeeDraft[], now: Date): Promise<InvoiceDetails> {
    const lagoId = this.newId();
    const currency = sub.plan.amountCurrency;
    const { invoiceId, prefix, issuingDate, netPaymentTerm } = await this.openInvoice(tx, customer, lagoId, "subscription", currency, sub.timezone, now);
    const ref: InvoiceRef = { orgId: sub.orgId, id: invoiceId, lagoId, customerId: customer.id, currency };
    const totals = await this.writeFees(tx, ref, customer, [{ sub, fees }], true, now);
    await this.finalizeIn(tx, { orgId: sub.orgId, invoiceId, customerId: customer.id, prefix, issuingDate, netPaymentTerm, totals, now });
    return this.details(sub.orgId, (await store.invoiceByLagoId(tx, sub.orgId, lagoId))!, tx);
  }

  /**
   * The fees of a non-invoiceable charge paid in advance (advance.ts): stored without an invoice,
   * with the taxes they bear (Lago: the fee alone and its fee.created webhook); nothing is deducted
   * or collected. Answers them as stored.
   */
  async recordFeesWithoutInvoice(tx: Queryable, customer: Customer, sub: Subscription, fees: readonly FeeDraft[], now: Date): Promise<FeeRecord[]> {
    const deductions = await this.feeTaxes(tx, customer, sub, fees);
    const rows = fees.map((draft, i) => ({ lagoId: draft.lagoId ?? this.newId(), draft, deductions: deductions[i]!, newId: this.newId }));
    await store.insertFeesMany(tx, sub.orgId, [{ invoiceId: null, subscriptionId: sub.id, currency: sub.plan.amountCurrency, fees: rows, firstPosition: 0 }], now);
    const ids = rows.map((r) => r.lagoId);
    await tx.query("UPDATE fees SET customer_id = $2, payment_status = 'pending' WHERE org_id = $1 AND lago_id = ANY($3::uuid[])", [sub.orgId, customer.id, ids]);
    const out: FeeRecord[] = [];
    for (const id of ids) out.push((await store.feeByLagoId(tx, sub.orgId, id))!);
    return out;
  }

  /** The taxes each of a subscription's fees bears on its own (no coupons or credits): fees without an invoice, estimates. */
  async feeTaxes(q: Queryable, customer: Customer, sub: Subscription, fees: readonly FeeDraft[]): Promise<InvoiceComputation["fees"]> {
    const adj = this.deps.adjustments;
    const taxes: ReadonlyMap<string, Tax> = adj === undefined ? new Map() : await adj.taxes(q, sub.orgId);
    return computeInvoice({ fees: billableFees([{ sub, fees }], customer, taxes), progressiveCreditCents: 0n }).fees;
  }

  /**
   * An invoice computed and never stored (POST /invoices/preview, preview.ts): each subscription's
   * fees at its billing instant, read as the billing job reads them (usage, advance carry-overs,
   * commitments, late events), less what the period's progressive billing invoices billed; then
   * coupons (the customer's applied ones, then `extraCoupons`), taxes, credit notes and prepaid
   * credits as they stand now. Nothing is drawn, locked or written. A customer or subscription that
   * is not stored has id 0.
   */
  async previewInvoice(
    customer: Customer,
    currency: string,
    items: readonly { sub: Subscription; terms: BillingTerms; instant: BillingInstant }[],
    extraCoupons: readonly CouponTerms[],
    now: Date,
  ): Promise<{ groups: { sub: Subscription; fees: FeeDraft[] }[]; computation: InvoiceComputation }> {
    const q = this.db;
    const orgId = customer.orgId;
    const groups: { sub: Subscription; fees: FeeDraft[] }[] = [];
    let credit = 0n;
    for (const { sub, terms, instant } of items) {
      groups.push({ sub, fees: await this.feesOf(q, sub, terms, instant) });
      if (instant.charges !== null && sub.id > 0) credit += await progressivelyBilled(q, orgId, sub.id, instant.charges.period.start);
    }
    const adj = this.deps.adjustments;
    const stored = adj !== undefined && customer.id > 0;
    const taxes: ReadonlyMap<string, Tax> = adj === undefined ? new Map() : await adj.taxes(q, orgId);
    const computation = computeInvoice({
      fees: billableFees(groups, customer, taxes),
      coupons: [...(stored ? await adj.coupons(q, orgId, customer.id, currency, now) : []), ...extraCoupons],
      creditNotes: stored ? await adj.creditNotes(q, orgId, customer.id, currency) : [],
      wallets: stored ? await adj.wallets(q, orgId, customer.id, currency, now) : [],
      progressiveCreditCents: credit,
    });
    return { groups, computation };
  }

  /**
   * Lago's `regroup_paid_fees: "invoice"` (advance.ts): paid fees of non-invoiceable advance charges
   * gathered on one `advance_charges` invoice, issued finalized and already paid (nothing is
   * collected), its totals those of the fees as they were billed (taxes included).
   */
  async issuePaidFeesInvoice(tx: Queryable, customer: Customer, currency: string, feeIds: readonly number[], now: Date): Promise<InvoiceDetails> {
    const orgId = customer.orgId;
    const lagoId = this.newId();
    const timezone = customer.attributes.timezone ?? "UTC";
    const { invoiceId, prefix, issuingDate, netPaymentTerm } = await this.openInvoice(tx, customer, lagoId, "advance_charges", currency, timezone, now);
    const { rows } = await tx.query<{ amount_cents: string; taxes_amount_cents: string; precise_coupons_amount_cents: string; applied_taxes: FeeAppliedTax[] | string }>(
      `UPDATE fees f SET invoice_id = $2, position = p.n - 1, updated_at = $4
         FROM unnest($3::bigint[]) WITH ORDINALITY AS p(id, n)
        WHERE f.org_id = $1 AND f.id = p.id AND f.invoice_id IS NULL
       RETURNING f.amount_cents, f.taxes_amount_cents, f.precise_coupons_amount_cents::text AS precise_coupons_amount_cents, f.applied_taxes`,
      [orgId, invoiceId, feeIds.map(String), now],
    );
    const taxesCents = rows.reduce((a, r) => a + BigInt(r.taxes_amount_cents), 0n);
    const totals = invoiceTotals(rows.map((r) => BigInt(r.amount_cents)), { taxesCents });
    // Its taxes broken down as other invoices show them: the fees' own, added up per tax.
    const lines = regroupedTaxLines(
      rows.map((r) => ({
        baseCents: new Decimal(r.amount_cents).minus(r.precise_coupons_amount_cents),
        taxesAmountCents: BigInt(r.taxes_amount_cents),
        lines: (typeof r.applied_taxes === "string" ? (JSON.parse(r.applied_taxes) as FeeAppliedTax[]) : (r.applied_taxes ?? [])).map((t) => ({
          tax: { lagoTaxId: t.lago_tax_id, code: t.tax_code, name: t.tax_name, description: t.tax_description, rate: new Decimal(t.tax_rate) },
          preciseAmountCents: new Decimal(t.precise_amount_cents),
        })),
      })),
    );
    await store.insertRegroupedTaxes(tx, orgId, invoiceId, currency, lines.map((line) => ({ lagoId: this.newId(), line })), now);
    await this.finalizeIn(tx, { orgId, invoiceId, customerId: customer.id, prefix, issuingDate, netPaymentTerm, totals, now, paid: true });
    return this.details(orgId, (await store.invoiceByLagoId(tx, orgId, lagoId))!, tx);
  }

  /**
   * A wallet's purchase of credits (Lago's credit invoice): its one `credit` fee, issued finalized in
   * the caller's transaction and collected like any invoice. No coupons, taxes, credit notes or
   * prepaid credits apply: the credits are taxed on the invoices they pay.
   */
  async issueCreditInvoice(
    tx: Queryable,
    customer: Customer,
    currency: string,
    fee: FeeDraft,
    now: Date,
  ): Promise<{ id: number; lagoId: string }> {
    const orgId = customer.orgId;
    const lagoId = this.newId();
    const { invoiceId, prefix, issuingDate, netPaymentTerm } = await this.openInvoice(
      tx,
      customer,
      lagoId,
      "credit",
      currency,
      customer.attributes.timezone ?? "UTC",
      now,
    );
    await store.insertFees(tx, orgId, invoiceId, null, currency, [{ lagoId: this.newId(), draft: fee }], 0, now);
    const totals = invoiceTotals([fee.amountCents]);
    await store.saveTotals(tx, orgId, invoiceId, totals, "pending", now);
    await this.finalizeIn(tx, { orgId, invoiceId, customerId: customer.id, prefix, issuingDate, netPaymentTerm, totals, now });
    return { id: invoiceId, lagoId };
  }

  /** A fee read in the caller's transaction (credit notes render their items with it). */
  feeIn(q: Queryable, orgId: number, lagoId: string): Promise<FeeRecord | null> {
    return store.feeByLagoId(q, orgId, lagoId);
  }

  /** GET /fees/:lago_id. */
  async getFee(orgId: number, lagoId: string): Promise<FeeRecord> {
    const fee = UUID.test(lagoId) ? await store.feeByLagoId(this.db, orgId, lagoId) : null;
    if (fee === null) throw notFound("fee", lagoId);
    return fee;
  }

  /**
   * GET /fees/:lago_id/events: the events that made a usage fee — the subscription's events of the
   * charge's metric in the fee's window, in the fee's bucket (its filter, or none of the charge's
   * filters for the default bucket) — oldest first. A subscription fee has none.
   */
  async feeEvents(orgId: number, lagoId: string, page: number, perPage: number): Promise<{ fee: FeeRecord; events: EventRow[]; total: number }> {
    const fee = await this.getFee(orgId, lagoId);
    const advance = page === 1 ? await advanceFeeEvents(this.db, orgId, fee.id) : null;
    if (advance !== null) return { fee, events: advance, total: advance.length };
    if (fee.bucket === null || fee.usageFrom === null || fee.usageTo === null || fee.externalSubscriptionId === null) {
      return { fee, events: [], total: 0 };
    }
    const scope: store.FeeEventScope = {
      orgId,
      metricId: fee.bucket.metricId,
      externalSubscriptionId: fee.externalSubscriptionId,
      from: fee.usageFrom,
      to: fee.usageTo,
      groupedBy: fee.item.groupedBy ?? null,
      // An adjustment fee is traced to the late events only.
      createdAfter: fee.lateAdjustment?.eventsAfter ?? null,
    };
    let dims: string[] | null = null;
    if (fee.bucket.filters.length > 0) {
      const bucketer = new Bucketer(fee.bucket.filters.map((values) => resolveFilter(values, [])));
      const index = fee.bucket.index;
      dims = (await store.feeEventDims(this.db, scope)).filter((d) => bucketer.bucket(d) === index);
    }
    const { rows, total } = await store.feeEvents(this.db, scope, dims, page, perPage);
    return { fee, events: rows, total };
  }

  // ---------------------------------------------------------------------------------------------
  // Internals

  private async find(orgId: number, lagoId: string): Promise<InvoiceRecord> {
    const invoice = UUID.test(lagoId) ? await store.invoiceByLagoId(this.db, orgId, lagoId) : null;
    if (invoice === null) throw notFound("invoice", lagoId);
    return invoice;
  }

  private async details(orgId: number, invoice: InvoiceRecord, q: Queryable = this.db): Promise<InvoiceDetails> {
    // Concurrently on the pool; one after another on a transaction's client (node-postgres refuses
    // overlapping queries on one client from pg 9).
    const reads = [
      () => store.feesOf(q, orgId, [invoice.id]),
      () => store.billingPeriodsOf(q, orgId, [invoice.id]),
      () => this.deps.customers.findById(orgId, invoice.customerId, q),
      () => store.appliedTaxesOf(q, orgId, [invoice.id]),
      () => store.creditsOf(q, orgId, [invoice.id]),
    ] as const;
    let results: unknown[];
    if (q === this.db) results = await Promise.all(reads.map((read) => read()));
    else {
      results = [];
      for (const read of reads) results.push(await read());
    }
    const [fees, billingPeriods, customer, appliedTaxes, credits] = results as [
      Awaited<ReturnType<(typeof reads)[0]>>,
      Awaited<ReturnType<(typeof reads)[1]>>,
      Awaited<ReturnType<(typeof reads)[2]>>,
      Awaited<ReturnType<(typeof reads)[3]>>,
      Awaited<ReturnType<(typeof reads)[4]>>,
    ];
    const views: SubscriptionView[] = [];
    for (const id of new Set(billingPeriods.map((p) => p.subscriptionId))) {
      const view = await this.deps.subscriptions.getViewById(orgId, id);
      if (view !== null) views.push(view);
    }
    return { invoice, customer: customer!, fees, billingPeriods, subscriptions: views, appliedTaxes, credits };
  }

  /** The subscriptions a draft bills, read before its transaction (the embedded database has one connection). */
  private async subscriptionsOf(orgId: number, invoice: InvoiceRecord): Promise<{ period: BillingPeriodRecord; sub: Subscription }[]> {
    const out: { period: BillingPeriodRecord; sub: Subscription }[] = [];
    for (const period of await store.billingPeriodsOf(this.db, orgId, [invoice.id])) {
      const sub = await this.deps.subscriptions.getById(orgId, period.subscriptionId);
      if (sub !== null) out.push({ period, sub });
    }
    return out;
  }

  /**
   * A draft's fees computed again from its billing instants (usage, coupons and taxes as they are
   * now), totals with them; `final`: for its finalization (what it uses is taken).
   */
  private async recompute(
    tx: Queryable,
    invoice: InvoiceRecord,
    customer: Customer,
    subs: readonly { period: BillingPeriodRecord; sub: Subscription }[],
    now: Date,
    final: boolean,
  ): Promise<InvoiceTotals> {
    await store.deleteFees(tx, invoice.orgId, invoice.id);
    const groups: { sub: Subscription; fees: FeeDraft[] }[] = [];
    let credit = 0n;
    for (const { period, sub } of subs) {
      const terms = termsOf(sub);
      const instant = terms === null ? null : describeInstant(terms, period.billedAt);
      groups.push({ sub, fees: terms === null || instant === null ? [] : await this.feesOf(tx, sub, terms, instant) });
      if (instant?.charges != null) credit += await progressivelyBilled(tx, invoice.orgId, sub.id, instant.charges.period.start);
    }
    const ref: InvoiceRef = { orgId: invoice.orgId, id: invoice.id, lagoId: invoice.lagoId, customerId: invoice.customerId, currency: invoice.currency };
    return this.writeFees(tx, ref, customer, groups, final, now, credit);
  }
}

/** An invoice's fees as its deductions see them: amount, codes coupons match, the taxes each bears (also batch.ts). */
export function billableFees(
  groups: readonly { sub: Subscription | null; fees: readonly FeeDraft[] }[],
  customer: Customer,
  taxes: ReadonlyMap<string, Tax>,
): BillableFee[] {
  return groups.flatMap(({ sub, fees }) =>
    fees.map((f) => ({
      amountCents: f.amountCents,
      planCode: sub?.plan.code ?? null,
      metricCode: f.feeType === "charge" ? f.item.code : null,
      taxes: taxesForFee(
        {
          // An add-on fee (one-off invoice): its own codes, else the add-on's, else the customer's.
          charge:
            f.addOn !== undefined
              ? f.addOn.taxCodes
              : f.feeType === "commitment"
                ? (sub?.plan.minimumCommitment?.taxCodes ?? [])
                : f.charge === null || sub === null
                  ? []
                  : (sub.plan.charges.find((c) => c.id === f.charge!.id)?.taxCodes ?? []),
          plan: sub?.plan.taxCodes ?? [],
          customer: customer.attributes.tax_codes,
        },
        taxes,
      ),
    })),
  );
}

/** The last instant of an instant's charge period (Lago's charges_to_datetime). */
export function chargesLastInstant(instant: BillingInstant): Date | null {
  const c = instant.charges;
  if (c === null) return null;
  return c.to.getTime() === c.period.end.getTime() ? c.period.to : c.to;
}

/**
 * A subscription's billing terms; null until it has started. The trial counts from the first start
 * of the external_id (a plan change keeps the trial clock running). A terminated subscription
 * followed by another (upgrade, or a downgrade taking over) hands its last day to the next plan.
 */
export function termsOf(sub: Subscription): BillingTerms | null {
  if (sub.startedAt === null) return null;
  const plan = sub.plan;
  const trialDays = plan.trialPeriod ?? 0;
  const trialFrom = sub.initialStartedAt ?? sub.startedAt;
  const followed = sub.next !== null && (sub.next.status === "active" || sub.next.status === "terminated");
  return {
    subscriptionAt: sub.subscriptionAt,
    startedAt: sub.startedAt,
    terminatedAt: sub.status === "terminated" ? sub.terminatedAt : null,
    endedBy: followed ? "upgrade" : "termination",
    billingTime: sub.billingTime,
    timezone: sub.timezone,
    interval: plan.interval,
    payInAdvance: plan.payInAdvance,
    billChargesMonthly: plan.billChargesMonthly === true,
    trialEndsAt: trialDays > 0 ? new Date(trialFrom.getTime() + Math.round(trialDays * DAY_MS)) : null,
  };
}
