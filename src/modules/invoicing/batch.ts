// The billing job's fast path: many subscriptions' periodic invoices in one transaction. A batch
// reads the subscriptions, their customers and their usage (one statement per metric), computes
// fees and totals with the same pure code as the per-subscription path, reserves the
// organization's invoice numbers with one counter bump, and writes invoices, billing instants,
// fees and applied taxes with multi-row statements. Only plain periodic invoices go this way
// (core/batch.ts `batchable`, then `needsOneByOne` under the batch's locks); everything else —
// coupons, wallets, credit notes, commitments, thresholds, late events, advance fees,
// terminations — is left to `billSubscription`. Exactly once still rests on the unique billing
// instant per subscription: a batch that meets one billed meanwhile rolls back whole and its
// subscriptions go the per-subscription way.
import type { Db, Queryable } from "../../db/db.ts";
import { sqlState } from "../../db/db.ts";
import type { Customer } from "../customers/index.ts";
import { type SubscriptionUsage, type UsageWindow, batchableCharge } from "../metering/index.ts";
import type { Subscription } from "../subscriptions/index.ts";
import type { Tax } from "../taxes/index.ts";
import { batchable } from "./core/batch.ts";
import {
  type BillingInstant,
  type BillingTerms,
  type FeeDraft,
  chargeFees,
  computeInvoice,
  documentNumberPrefix,
  draftNumber,
  dueInstants,
  graceEndsAt,
  initialPaymentStatus,
  invoiceNumber,
  issuingDateOf,
  linkTrueUps,
  paymentDueDate,
  subscriptionFee,
  withTrueUps,
} from "./core/index.ts";
import { CUTOFF_MARGIN_MS, LATE_PERIODS } from "./late_events.ts";
import type { BillingRunSummary, InvoiceListener, InvoicesListener, InvoicingDeps } from "./service.ts";
import { billableFees, chargesLastInstant, termsOf } from "./service.ts";
import * as store from "./store.ts";
import { arrearsCharges } from "./core/advance.ts";
import * as batchStore from "./batch_store.ts";

/** What a batch needs of the invoicing service. */
export interface BatchContext {
  readonly db: Db;
  readonly deps: InvoicingDeps;
  readonly newId: () => string;
  readonly finalizedListeners: readonly { readonly one: InvoiceListener; readonly many?: InvoicesListener }[];
  /** Fault injection for tests: runs in a batch's transaction once its invoices and billing instants are written. */
  readonly beforeBatchFees?: (invoiceLagoIds: readonly string[]) => void | Promise<void>;
  readonly onError?: (err: unknown, context: Record<string, unknown>) => void;
}

export interface Candidate {
  readonly id: number;
  readonly lastBilledAt: Date | null;
}

interface Planned {
  readonly candidate: Candidate;
  readonly sub: Subscription;
  readonly terms: BillingTerms;
  readonly instant: BillingInstant;
}

// Billing of one subscription runs one transaction at a time; the same lock as service.ts.
const BILLING_LOCK_NAMESPACE = 7_221_006;

export class BatchBilling {
  constructor(
    private readonly ctx: BatchContext,
    /** Subscriptions per transaction. */
    private readonly size: number,
  ) {}

  /**
   * Bills, batch by batch, the candidates whose only due instant is a plain periodic one; answers
   * the candidates left to the per-subscription path (those with nothing due are dropped).
   */
  async bill(orgId: number, candidates: readonly Candidate[], now: Date, summary: BillingRunSummary): Promise<Candidate[]> {
    const getByIds = this.ctx.deps.subscriptions.getByIds?.bind(this.ctx.deps.subscriptions);
    if (getByIds === undefined || this.ctx.deps.customers.findByIds === undefined || this.ctx.deps.metering.usageMany === undefined) {
      return [...candidates];
    }
    const rest: Candidate[] = [];
    const chunks: Candidate[][] = [];
    for (let start = 0; start < candidates.length; start += this.size) chunks.push(candidates.slice(start, start + this.size));
    const billChunk = async (chunk: readonly Candidate[]) => {
      const subs = new Map((await getByIds(orgId, chunk.map((c) => c.id))).map((s) => [s.id, s]));
      const planned: Planned[] = [];
      for (const candidate of chunk) {
        const sub = subs.get(candidate.id);
        const terms = sub === undefined ? null : termsOf(sub);
        if (sub === undefined || terms === null) {
          rest.push(candidate);
          continue;
        }
        const due = dueInstants(terms, candidate.lastBilledAt, now, 2);
        if (due.length === 0) continue;
        if (due.length === 1 && batchable(sub, terms, due[0]!, batchableCharge)) planned.push({ candidate, sub, terms, instant: due[0]! });
        else rest.push(candidate);
      }
      if (planned.length === 0) return;
      try {
        const { issued, left } = await this.ctx.db.transaction((tx) => this.billBatch(tx, orgId, planned, now));
        summary.invoicesIssued += issued;
        rest.push(...left);
      } catch (err) {
        // A unique billing instant taken meanwhile (another run), or anything else: nothing of the
        // batch was written; each subscription is billed on its own, which settles or isolates it.
        if (sqlState(err) !== "23505") this.ctx.onError?.(err, { orgId, batch: planned.length, fallback: "per_subscription" });
        rest.push(...planned.map((p) => p.candidate));
      }
    };
    // Two batches at once on PostgreSQL: one is computed while the other is written (they meet only
    // on the organization's invoice counter, taken last); one at a time on the embedded database.
    let next = 0;
    const lane = async () => {
      while (next < chunks.length) await billChunk(chunks[next++]!);
    };
    await Promise.all(Array.from({ length: Math.min(this.ctx.db.kind === "postgres" ? 2 : 1, chunks.length) }, lane));
    return rest;
  }

  private async billBatch(tx: Queryable, orgId: number, batch: readonly Planned[], now: Date): Promise<{ issued: number; left: Candidate[] }> {
    const { deps, newId } = this.ctx;
    const left: Candidate[] = [];
    await batchStore.lockSubscriptions(tx, BILLING_LOCK_NAMESPACE, batch.map((p) => `${orgId}:${p.sub.id}`));
    // Read under the locks: what a concurrent run billed is seen here.
    const last = await batchStore.lastBilledAt(tx, orgId, batch.map((p) => p.sub.id));
    const oneByOne = await batchStore.needsOneByOne(tx, orgId, {
      subscriptions: batch.map((p) => ({ id: p.sub.id, customerId: p.sub.customerId, externalId: p.sub.externalId, at: p.instant.at })),
      codes: [...new Set(batch.flatMap((p) => p.sub.plan.charges.map((c) => c.metric.code)))],
      latePeriods: LATE_PERIODS,
      marginMs: CUTOFF_MARGIN_MS,
    });
    const customers = new Map((await deps.customers.findByIds!(orgId, [...new Set(batch.map((p) => p.sub.customerId))], tx)).map((c) => [c.id, c]));
    const ready: (Planned & { customer: Customer })[] = [];
    for (const p of batch) {
      const billed = last.get(p.sub.id) ?? null;
      // Unchanged since the candidates were read: the same instant is due.
      const due = (billed?.getTime() ?? null) === (p.candidate.lastBilledAt?.getTime() ?? null) ? [p.instant] : dueInstants(p.terms, billed, now, 2);
      if (due.length === 0) continue;
      const customer = customers.get(p.sub.customerId);
      if (due.length !== 1 || due[0]!.at.getTime() !== p.instant.at.getTime() || oneByOne.has(p.sub.id) || customer === undefined) {
        left.push(p.candidate);
        continue;
      }
      ready.push({ ...p, customer });
    }
    if (ready.length === 0) return { issued: 0, left };

    const org = await store.organizationBilling(tx, orgId);
    const prefix = documentNumberPrefix(org.name, org.publicId);
    const adj = deps.adjustments;
    const taxes: ReadonlyMap<string, Tax> = adj === undefined ? new Map() : await adj.taxes(tx, orgId);
    const usage = await this.usageOf(tx, orgId, ready);

    const invoices = ready.map((p) => {
      const { sub, terms, instant, customer } = p;
      const currency = sub.plan.amountCurrency;
      const fees: FeeDraft[] = [];
      if (instant.fee !== null) fees.push(subscriptionFee(sub.plan, sub.lagoId, instant.fee, terms, currency));
      if (instant.charges !== null) {
        // Advance charges were billed as their events arrived (advance.ts).
        const charges = arrearsCharges(usage.get(sub.id)!.charges);
        fees.push(...linkTrueUps(withTrueUps(charges, chargeFees(charges, instant.charges, currency), instant.charges, terms, currency), newId));
      }
      const result = computeInvoice({ fees: billableFees([{ sub, fees }], customer, taxes), progressiveCreditCents: 0n });
      const issuingDate = issuingDateOf(instant.at, sub.timezone);
      const graceDays = customer.attributes.billing_configuration.invoice_grace_period ?? org.graceDays;
      const graceUntil = graceEndsAt(issuingDate, graceDays, sub.timezone);
      const netPaymentTerm = customer.attributes.net_payment_term ?? 0;
      return {
        ...p,
        lagoId: newId(),
        fees,
        result,
        issuingDate,
        graceUntil,
        netPaymentTerm,
        final: graceUntil === null || graceUntil.getTime() <= now.getTime(),
      };
    });

    // Written as drafts; numbered and finalized at the end (the organization's counter row stays
    // locked from its bump to the commit, so the bump comes last).
    const ids = await batchStore.insertInvoices(
      tx,
      orgId,
      invoices.map((i) => ({
        lagoId: i.lagoId,
        customerId: i.sub.customerId,
        number: draftNumber(prefix),
        organizationSequentialId: null,
        sequentialId: null,
        status: "draft",
        paymentStatus: i.final ? initialPaymentStatus(i.result.totals.totalAmountCents) : "pending",
        issuingDate: i.issuingDate,
        paymentDueDate: paymentDueDate(i.issuingDate, i.netPaymentTerm),
        netPaymentTerm: i.netPaymentTerm,
        currency: i.sub.plan.amountCurrency,
        totals: i.result.totals,
        graceUntil: i.final ? null : i.graceUntil,
        finalizedAt: null,
      })),
      now,
    );
    await batchStore.insertBillingPeriods(
      tx,
      orgId,
      invoices.map((i) => ({
        invoiceId: ids.get(i.lagoId)!,
        subscriptionId: i.sub.id,
        reason: i.instant.reason,
        billedAt: i.instant.at,
        feeFrom: i.instant.fee?.from ?? null,
        feeTo: i.instant.fee?.to ?? null,
        chargesFrom: i.instant.charges?.from ?? null,
        chargesTo: chargesLastInstant(i.instant),
      })),
      now,
    );
    await this.ctx.beforeBatchFees?.(invoices.map((i) => i.lagoId));
    await store.insertFeesMany(
      tx,
      orgId,
      invoices.map((i) => ({
        invoiceId: ids.get(i.lagoId)!,
        subscriptionId: i.sub.id,
        currency: i.sub.plan.amountCurrency,
        fees: i.fees.map((draft, k) => ({ lagoId: draft.lagoId ?? newId(), draft, deductions: i.result.fees[k]!, newId })),
        firstPosition: 0,
      })),
      now,
    );
    await store.insertAppliedTaxesMany(
      tx,
      orgId,
      invoices.map((i) => ({ invoiceId: ids.get(i.lagoId)!, currency: i.sub.plan.amountCurrency, lines: i.result.appliedTaxes.map((line) => ({ lagoId: newId(), line })) })),
      now,
    );
    const finals = invoices.filter((i) => i.final);
    const finalIds = finals.map((i) => ids.get(i.lagoId)!);
    if (finals.length > 0) {
      const firstNumber = await batchStore.reserveSequence(tx, orgId, 0, finals.length);
      const perCustomer = await batchStore.reserveCustomerSequences(tx, orgId, finals.map((i) => i.sub.customerId));
      await batchStore.finalizeInvoices(
        tx,
        orgId,
        finals.map((i, k) => ({
          id: finalIds[k]!,
          number: invoiceNumber(prefix, firstNumber + k),
          organizationSequentialId: firstNumber + k,
          sequentialId: perCustomer.next(i.sub.customerId),
        })),
        now,
      );
    }
    for (const listener of this.ctx.finalizedListeners) {
      if (listener.many !== undefined) await listener.many(tx, orgId, finalIds);
      else for (const id of finalIds) await listener.one(tx, orgId, id);
    }
    return { issued: invoices.length, left };
  }

  /** Each subscription's usage for its instant's charges, one read per metric and window. */
  private async usageOf(tx: Queryable, orgId: number, ready: readonly Planned[]): Promise<Map<number, SubscriptionUsage>> {
    const windows = new Map<string, { window: UsageWindow; subs: Subscription[] }>();
    for (const { sub, instant } of ready) {
      const c = instant.charges;
      if (c === null) continue;
      const window: UsageWindow = { period: c.period, from: c.from, to: c.to, issuingDate: issuingDateOf(c.period.end, sub.timezone) };
      const key = `${c.period.timezone}|${c.period.fromDate}|${c.period.toDate}|${c.period.start.getTime()}|${c.period.end.getTime()}|${c.from.getTime()}|${c.to.getTime()}|${window.issuingDate}`;
      const group = windows.get(key) ?? { window, subs: [] };
      group.subs.push(sub);
      windows.set(key, group);
    }
    const out = new Map<number, SubscriptionUsage>();
    for (const { window, subs } of windows.values()) {
      const usage = await this.ctx.deps.metering.usageMany!(orgId, subs, window, tx);
      for (const sub of subs) out.set(sub.id, usage.get(sub.externalId)!);
    }
    return out;
  }
}
