import crypto from "node:crypto";
import type { Db, Queryable } from "../../db/db.ts";
import { sqlState } from "../../db/db.ts";
import type { Clock } from "../../shared/clock.ts";
import { AppError, notFound, validationFailed } from "../../shared/errors.ts";
import { fromCents } from "../../shared/money.ts";
import type { Customer } from "../customers/index.ts";
import { Bucketer, resolveFilter, type SubscriptionUsage, type UsageSubscription, type UsageWindow } from "../metering/index.ts";
import type { Subscription, SubscriptionView } from "../subscriptions/index.ts";
import { type EventRow } from "../ingest/index.ts";
import {
  type BillingInstant,
  type BillingPeriodRecord,
  type BillingTerms,
  type FeeDraft,
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
  invoiceNumber,
  invoiceTotals,
  issuingDateOf,
  paymentDueDate,
  subscriptionFee,
  unusedAdvanceCredit,
} from "./core/index.ts";
import * as store from "./store.ts";

/** What invoicing needs of the modules around it (their services in production). */
export interface InvoicingDeps {
  readonly customers: { findById(orgId: number, id: number, q?: Queryable): Promise<Customer | null> };
  readonly subscriptions: {
    getById(orgId: number, subscriptionId: number): Promise<Subscription | null>;
    getViewById(orgId: number, subscriptionId: number): Promise<SubscriptionView | null>;
    settleOrganization(orgId: number, at: Date): Promise<void>;
  };
  readonly metering: {
    usage(orgId: number, sub: UsageSubscription, window: UsageWindow, billableMetricCode?: string, q?: Queryable): Promise<SubscriptionUsage>;
  };
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
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const DAY_MS = 86_400_000;
// Billing of one subscription runs one transaction at a time: (namespace, hash of org and subscription).
const BILLING_LOCK_NAMESPACE = 7_221_006;

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

  constructor(
    private readonly db: Db,
    private readonly clock: Clock,
    private readonly deps: InvoicingDeps,
    private readonly options: InvoicingOptions = {},
  ) {
    this.newId = options.newId ?? (() => crypto.randomUUID());
    this.maxInstants = options.maxInstantsPerRun ?? 500;
  }

  private now(orgId: number): Date {
    return new Date(this.clock.now(orgId));
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
      // Endings and switches due by now first (they bill their own final invoices as they apply).
      await this.deps.subscriptions.settleOrganization(orgId, now);
      for (const { id: subscriptionId, lastBilledAt } of await store.billingCandidates(this.db, orgId)) {
        summary.subscriptions += 1;
        try {
          summary.invoicesIssued += await this.billSubscription(orgId, subscriptionId, now, lastBilledAt);
        } catch (err) {
          summary.failures += 1;
          this.options.onError?.(err, { orgId, subscriptionId });
        }
      }
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
    const unusedCredit = instant.unused === null ? 0n : await this.unusedCreditOf(tx, sub, terms, instant.unused);
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
    await this.writeFees(tx, orgId, invoiceId, sub, fees, now);
    // Caught up after its grace period already ended (a stopped job): issued final at once.
    if (graceUntil === null || graceUntil.getTime() <= now.getTime()) {
      await this.finalizeIn(tx, { orgId, invoiceId, customerId: sub.customerId, prefix, issuingDate, netPaymentTerm, fees, now });
    }
  }

  private async writeFees(tx: Queryable, orgId: number, invoiceId: number, sub: Subscription, fees: readonly FeeDraft[], now: Date): Promise<void> {
    await store.insertFees(
      tx,
      orgId,
      invoiceId,
      sub.id,
      sub.plan.amountCurrency,
      fees.map((draft) => ({ lagoId: this.newId(), draft })),
      0,
      now,
    );
    const totals = invoiceTotals(fees.map((f) => f.amountCents));
    await store.saveTotals(tx, orgId, invoiceId, totals, "pending", now);
  }

  private async finalizeIn(
    tx: Queryable,
    f: { orgId: number; invoiceId: number; customerId: number; prefix: string; issuingDate: string; netPaymentTerm: number; fees: readonly FeeDraft[]; now: Date },
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
    const totals = invoiceTotals(f.fees.map((fee) => fee.amountCents));
    await store.saveTotals(tx, f.orgId, f.invoiceId, totals, initialPaymentStatus(totals.totalAmountCents), f.now);
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
      fees.push(...chargeFees(usage.charges, c, currency));
    }
    return fees;
  }

  private async unusedCreditOf(q: Queryable, sub: Subscription, terms: BillingTerms, unused: NonNullable<BillingInstant["unused"]>): Promise<bigint> {
    const paid = await store.paidAdvanceFee(q, sub.orgId, sub.id, unused.period.start, unused.period.end);
    if (paid === null) return 0n;
    const currency = sub.plan.amountCurrency;
    const planAmount = fromCents(paid.planAmountCents ?? sub.plan.amountCents, currency);
    return unusedAdvanceCredit(planAmount, unused, terms.endedBy, terms.trialEndsAt, paid.amountCents, currency);
  }

  // ---------------------------------------------------------------------------------------------
  // API

  async list(orgId: number, query: InvoiceListQuery): Promise<{ items: { invoice: InvoiceRecord; customer: Customer }[]; total: number }> {
    const { items, total } = await store.listInvoices(this.db, orgId, query);
    const customers = new Map<number, Customer>();
    const out: { invoice: InvoiceRecord; customer: Customer }[] = [];
    for (const invoice of items) {
      let customer = customers.get(invoice.customerId);
      if (customer === undefined) {
        customer = (await this.deps.customers.findById(orgId, invoice.customerId))!;
        customers.set(invoice.customerId, customer);
      }
      out.push({ invoice, customer });
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
      const fees = await this.recompute(tx, locked, subs, now);
      const org = await store.organizationBilling(tx, orgId);
      const customer = (await this.deps.customers.findById(orgId, locked.customerId, tx))!;
      const timezone = subs[0]?.sub.timezone ?? customer.attributes.timezone ?? "UTC";
      const today = issuingDateOf(now, timezone);
      await this.finalizeIn(tx, {
        orgId,
        invoiceId: locked.id,
        customerId: locked.customerId,
        prefix: documentNumberPrefix(org.name, org.publicId),
        issuingDate: today > locked.issuingDate ? today : locked.issuingDate,
        netPaymentTerm: locked.netPaymentTerm,
        fees,
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
        await this.recompute(tx, locked, subs, this.now(orgId));
      });
    }
    return this.get(orgId, lagoId);
  }

  /**
   * POST /invoices/:lago_id/void: Lago's rule — only a finalized invoice whose payment has not
   * succeeded (405 `not_voidable` otherwise). Its billing periods stay billed.
   */
  async void(orgId: number, lagoId: string, body: unknown): Promise<InvoiceDetails> {
    const params = (body ?? {}) as Record<string, unknown>;
    if (params["generate_credit_note"] === true) {
      throw validationFailed({ generate_credit_note: ["credit_notes_are_not_available_yet"] }, "voiding with a credit note is not available yet");
    }
    await this.find(orgId, lagoId);
    await this.db.transaction(async (tx) => {
      const locked = await store.invoiceByLagoId(tx, orgId, lagoId, true);
      if (locked === null) throw notFound("invoice", lagoId);
      if (locked.status !== "finalized" || locked.paymentStatus === "succeeded") throw notVoidable();
      await store.markVoided(tx, orgId, locked.id, this.now(orgId));
    });
    return this.get(orgId, lagoId);
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
    if (fee.bucket === null || fee.usageFrom === null || fee.usageTo === null || fee.externalSubscriptionId === null) {
      return { fee, events: [], total: 0 };
    }
    const scope: store.FeeEventScope = {
      orgId,
      metricId: fee.bucket.metricId,
      externalSubscriptionId: fee.externalSubscriptionId,
      from: fee.usageFrom,
      to: fee.usageTo,
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

  private async details(orgId: number, invoice: InvoiceRecord): Promise<InvoiceDetails> {
    const [fees, billingPeriods, customer] = await Promise.all([
      store.feesOf(this.db, orgId, [invoice.id]),
      store.billingPeriodsOf(this.db, orgId, [invoice.id]),
      this.deps.customers.findById(orgId, invoice.customerId),
    ]);
    const views: SubscriptionView[] = [];
    for (const id of new Set(billingPeriods.map((p) => p.subscriptionId))) {
      const view = await this.deps.subscriptions.getViewById(orgId, id);
      if (view !== null) views.push(view);
    }
    return { invoice, customer: customer!, fees, billingPeriods, subscriptions: views };
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

  /** A draft's fees computed again from its billing instants (usage as it is now), totals with them. */
  private async recompute(
    tx: Queryable,
    invoice: InvoiceRecord,
    subs: readonly { period: BillingPeriodRecord; sub: Subscription }[],
    now: Date,
  ): Promise<FeeDraft[]> {
    await store.deleteFees(tx, invoice.orgId, invoice.id);
    const all: FeeDraft[] = [];
    let position = 0;
    for (const { period, sub } of subs) {
      const terms = termsOf(sub);
      const instant = terms === null ? null : describeInstant(terms, period.billedAt);
      const fees = terms === null || instant === null ? [] : await this.feesOf(tx, sub, terms, instant);
      await store.insertFees(
        tx,
        invoice.orgId,
        invoice.id,
        sub.id,
        invoice.currency,
        fees.map((draft) => ({ lagoId: this.newId(), draft })),
        position,
        now,
      );
      position += fees.length;
      all.push(...fees);
    }
    await store.saveTotals(tx, invoice.orgId, invoice.id, invoiceTotals(all.map((f) => f.amountCents)), "pending", now);
    return all;
  }
}

/** The last instant of an instant's charge period (Lago's charges_to_datetime). */
function chargesLastInstant(instant: BillingInstant): Date | null {
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
