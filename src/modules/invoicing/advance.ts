// Charges paid in advance: billed when their event arrives (Lago's pay_in_advance charges). The
// ingest statement queues each new event whose code feeds a metric with a live advance charge
// (advance_charge_events, migration 0016); this worker takes a subscription's queued events in
// arrival order and, for each advance charge of the subscription's plan on that metric, bills the
// fee core/advance.ts computes. An invoiceable charge's fees of one event make one invoice (Lago
// issues one per event), finalized at once and collected like any other. The arrears invoice of
// the period leaves advance charges out (service.ts, batch.ts); current usage still shows them.
// Prorated charges pay for the days left in the period; recurring sums and seats (recurring unique
// counts, advance_charge_seats) carry their units into the next period, billed on the periodic
// invoice (carriedOverAdvanceFees; core/advance_recurring.ts). The billing job and clock moves
// bill the queue first (billQueuedNow), so a carry-over or a plan change's hand-over includes every
// event queued by then; a plan change hands the units over under the queue's lock (inheritAdvanceUnits,
// lockAdvanceHandover), a downgrade's billed on the new plan for its first period.
import crypto from "node:crypto";
import type { FastifyInstance } from "fastify";
import client from "prom-client";
import type { Db, Queryable } from "../../db/db.ts";
import type { Clock } from "../../shared/clock.ts";
import { BackgroundLoop } from "../../shared/background_loop.ts";
import { AppError, notFound, validationFailed } from "../../shared/errors.ts";
import { Decimal, ZERO } from "../../shared/money.ts";
import type { Charge } from "../catalog/index.ts";
import type { Customer } from "../customers/index.ts";
import { METRIC_DIMS, eventColumns, propertiesProblem, type EventRow } from "../ingest/index.ts";
import { Bucketer, type UsageWindow, applyRounding, resolveFilter, usageWindowAt } from "../metering/index.ts";
import type { Subscription } from "../subscriptions/index.ts";
import { type AdvanceRunning, NO_ADVANCE_USAGE, advanceFee, advanceIncrement } from "./core/advance.ts";
import {
  type SeatsHeld,
  NO_SEATS,
  advanceProrationShare,
  billsSeats,
  carriedIntoNextPeriod,
  carriedOverAmount,
  carriesOverInAdvance,
  proratedInAdvance,
  seatChange,
  seatsCarriedIn,
} from "./core/advance_recurring.ts";
import { type FeeDraft, bucketFilters, centsOf, chargeItem } from "./core/fees.ts";
import { feeJson } from "./core/json.ts";
import type { FeeRecord } from "./core/records.ts";
import type { FeeDeductions } from "./core/totals.ts";
import { PAYMENT_STATUSES, type PaymentStatus } from "./core/types.ts";
import type { InvoiceDetails, InvoicingService } from "./service.ts";

export interface AdvanceBillingDeps {
  readonly db: Db;
  /** The organizations' clocks (test clocks): the invoice's issuing date. */
  readonly clock: Clock;
  readonly subscriptions: {
    getByExternalId(orgId: number, externalId: string, at?: Date): Promise<Subscription | null>;
    getById(orgId: number, subscriptionId: number): Promise<Subscription | null>;
  };
  readonly customers: { findById(orgId: number, id: number, q?: Queryable): Promise<Customer | null> };
  readonly invoicing: Pick<InvoicingService, "issueAdvanceInvoice" | "recordFeesWithoutInvoice" | "issuePaidFeesInvoice" | "feeTaxes">;
  /** Runs in the transaction that issued an advance invoice (webhooks: invoice.created). */
  readonly onInvoiceIssued?: (tx: Queryable, details: InvoiceDetails) => Promise<unknown>;
  /** Runs in the transaction that stored a non-invoiceable charge's fee (webhooks: fee.created). */
  readonly onFeeCreated?: (tx: Queryable, fee: FeeRecord) => Promise<unknown>;
  readonly newId?: () => string;
  /** How often the background loop looks for queued events (default 1 s). */
  readonly pollMs?: number;
  /** Subscriptions billed at once on PostgreSQL (default 4; the embedded database: 1). */
  readonly lanes?: number;
  readonly onError?: (err: unknown, context: Record<string, unknown>) => void;
}

export interface AdvanceRun {
  /** Queued events taken (billed, or skipped: no active subscription or advance charge took them). */
  events: number;
  skipped: number;
  fees: number;
  invoices: number;
}

/**
 * Queued events billed per transaction (one subscription's, in order). Small: an invoice numbered in
 * the transaction holds the organization's sequence until it commits, which other lanes wait on.
 */
const BATCH = 10;
/** Subscriptions billed at once on PostgreSQL. */
const LANES = 4;
const SUBSCRIPTIONS_PER_PASS = 1000;
/** Passes over the queue per run at most (a run ends even while ingest keeps queueing). */
const MAX_PASSES = 20;
/** A queued event that failed this many times is set aside (left pending with its error, not retried). */
const MAX_ATTEMPTS = 5;
/** Per-subscription lock of the advance queue: (namespace, hash of org and external subscription id). */
const ADVANCE_LOCK_NAMESPACE = 7_221_016;

interface QueuedEvent {
  id: number;
  orgId: number;
  lagoEventId: string;
  externalSubscriptionId: string;
  code: string;
  ts: Date;
  /** The timestamp as stored (microseconds; `ts` keeps milliseconds). */
  tsText: string;
  transactionId: string;
  properties: Record<string, unknown> | null;
  /** The metric's value of the event (metering_value), as text; null without one. */
  value: string | null;
  /** The raw property of the metric's field (unique counts). */
  raw: string | null;
  operationType: string | null;
  dims: string;
}

/**
 * Bills queued events of advance charges. Runs in this process never overlap; across processes a
 * subscription's queue is billed under a transaction lock, in arrival order, and the unique key of
 * advance_fees (charge, event) means no event is billed twice whatever crashes or retries.
 */
export class AdvanceBilling {
  private readonly loop: BackgroundLoop<AdvanceRun>;
  /** A kick asked for the run that is queued (not a poll): it need not look at the catalog again. */
  private kicked = false;
  /**
   * Whether any metric has an advance charge, as of the last poll. While none has, ingest commits
   * do not kick a run (nothing can be queued); the poll looks again every `pollMs`.
   */
  private advanceSold = true;
  private readonly newId: () => string;

  constructor(private readonly deps: AdvanceBillingDeps) {
    this.newId = deps.newId ?? (() => crypto.randomUUID());
    this.loop = new BackgroundLoop(() => this.background(), {
      pollMs: deps.pollMs ?? 1000,
      kickDelayMs: 10,
      coalesce: true,
      onError: (err) => deps.onError?.(err, {}),
    });
  }

  start(): void {
    this.loop.start();
  }

  /** Looks at the queue shortly (after an ingest commit in this process). */
  kick(): void {
    if (!this.advanceSold) return;
    this.kicked = true;
    this.loop.kick();
  }

  /** Stops the poll and kicks, lets the transaction in progress commit, and resolves when the run has ended. */
  stop(): Promise<void> {
    return this.loop.stop();
  }

  private get stopped(): boolean {
    return this.loop.signal.aborted;
  }

  /** A run of the loop: a poll first looks whether anything is sold in advance at all. */
  private async background(): Promise<AdvanceRun> {
    const poll = !this.kicked;
    this.kicked = false;
    if (poll) {
      const { rows } = await this.deps.db.query<{ sold: boolean }>(
        "SELECT EXISTS (SELECT 1 FROM billable_metrics WHERE has_advance_charges AND deleted_at IS NULL) AS sold",
      );
      this.advanceSold = rows[0]?.sold === true;
    }
    return this.runOnce(undefined);
  }

  /** Bills every queued event (of one organization, or all) and resolves when done. */
  runDue(opts: { orgId?: number } = {}): Promise<AdvanceRun> {
    return this.loop.serial(() => this.runOnce(opts.orgId));
  }

  /**
   * The billing job's first step (InvoicingService.beforeBilling): every event queued by now (of one
   * organization, or all) is billed before periods close and transitions settle, so the units
   * carried into the next period (and handed to a new plan) include them. Runs whether or not the
   * background loop does; no regrouping of paid fees.
   */
  billQueuedNow(opts: { orgId?: number } = {}): Promise<AdvanceRun> {
    return this.loop.serial(() => this.runOnce(opts.orgId, true));
  }

  private async runOnce(onlyOrg: number | undefined, force = false): Promise<AdvanceRun> {
    const run: AdvanceRun = { events: 0, skipped: 0, fees: 0, invoices: 0 };
    const stopped = () => !force && this.stopped;
    // Until the queue is empty (or holds only events that failed this run): a clock move's runDue
    // has billed everything queued by then when it resolves.
    const failed = new Set<string>();
    for (let pass = 0; pass < MAX_PASSES && !stopped(); pass++) {
      const { rows } = await this.deps.db.query<{ org_id: number; external_subscription_id: string }>(
        `SELECT DISTINCT org_id, external_subscription_id FROM advance_charge_events
          WHERE attempts < ${MAX_ATTEMPTS} AND ($1::int IS NULL OR org_id = $1) LIMIT ${SUBSCRIPTIONS_PER_PASS}`,
        [onlyOrg ?? null],
      );
      const todo = rows.filter((r) => !failed.has(`${r.org_id}:${r.external_subscription_id}`));
      if (todo.length === 0) break;
      // Several subscriptions at once on PostgreSQL (each under its own lock); one at a time on the
      // single-connection embedded database.
      let next = 0;
      const lane = async () => {
        while (next < todo.length && !stopped()) {
          const r = todo[next++]!;
          const orgId = Number(r.org_id);
          for (;;) {
            let taken: number;
            try {
              taken = await this.billQueued(orgId, r.external_subscription_id, run);
            } catch (err) {
              this.deps.onError?.(err, { orgId, externalSubscriptionId: r.external_subscription_id });
              await this.recordFailure(orgId, r.external_subscription_id, err);
              failed.add(`${r.org_id}:${r.external_subscription_id}`);
              break;
            }
            if (taken < BATCH) break;
          }
        }
      };
      const lanes = this.deps.db.kind === "postgres" ? Math.max(1, this.deps.lanes ?? LANES) : 1;
      await Promise.all(Array.from({ length: Math.min(lanes, todo.length) }, lane));
    }
    if (!force && !this.stopped) await this.regroupPaidFees(onlyOrg, run);
    return run;
  }

  /**
   * Lago's regroup_paid_fees "invoice": the paid fees of a non-invoiceable charge whose charge
   * period is over (at the organization's now) go on one `advance_charges` invoice per
   * subscription, already paid. Fees paid later go on a later one.
   */
  private async regroupPaidFees(onlyOrg: number | undefined, run: AdvanceRun): Promise<void> {
    const { rows } = await this.deps.db.query<{ id: string; org_id: number; subscription_id: string; customer_id: string; currency: string; to_datetime: Date }>(
      `SELECT f.id, f.org_id, f.subscription_id, f.customer_id, f.currency, f.to_datetime
         FROM fees f JOIN charges c ON c.org_id = f.org_id AND c.id = f.charge_id
        WHERE f.invoice_id IS NULL AND f.payment_status = 'succeeded' AND c.regroup_paid_fees = 'invoice'
          AND ($1::int IS NULL OR f.org_id = $1)
        ORDER BY f.org_id, f.subscription_id, f.id LIMIT 10000`,
      [onlyOrg ?? null],
    );
    const groups = new Map<string, { orgId: number; subscriptionId: number; customerId: number; currency: string; ids: number[] }>();
    for (const r of rows) {
      const orgId = Number(r.org_id);
      if (new Date(r.to_datetime).getTime() >= this.deps.clock.now(orgId)) continue;
      const key = `${orgId}:${r.subscription_id}:${r.currency}`;
      let g = groups.get(key);
      if (g === undefined) groups.set(key, (g = { orgId, subscriptionId: Number(r.subscription_id), customerId: Number(r.customer_id), currency: r.currency, ids: [] }));
      g.ids.push(Number(r.id));
    }
    for (const g of groups.values()) {
      try {
        const customer = await this.deps.customers.findById(g.orgId, g.customerId);
        if (customer === null) continue;
        const issued = await this.deps.db.transaction(async (tx) => {
          // The fees still unbilled and paid, locked: a concurrent worker or PUT /fees waits.
          const { rows: left } = await tx.query<{ id: string }>(
            `SELECT id FROM fees WHERE org_id = $1 AND id = ANY($2::bigint[]) AND invoice_id IS NULL AND payment_status = 'succeeded'
              ORDER BY id FOR UPDATE`,
            [g.orgId, g.ids.map(String)],
          );
          if (left.length === 0) return false;
          const details = await this.deps.invoicing.issuePaidFeesInvoice(tx, customer, g.currency, left.map((r) => Number(r.id)), new Date(this.deps.clock.now(g.orgId)));
          await this.deps.onInvoiceIssued?.(tx, details);
          return true;
        });
        if (issued) run.invoices += 1;
      } catch (err) {
        this.deps.onError?.(err, { orgId: g.orgId, subscriptionId: g.subscriptionId, pass: "regroup_paid_fees" });
      }
    }
  }

  /** The first pending event of the subscription failed: counted, so a poison event is set aside, not retried forever. */
  private async recordFailure(orgId: number, externalSubscriptionId: string, err: unknown): Promise<void> {
    await this.deps.db.query(
      `UPDATE advance_charge_events SET attempts = attempts + 1, last_error = $3
        WHERE id = (SELECT min(id) FROM advance_charge_events
                     WHERE org_id = $1 AND external_subscription_id = $2 AND attempts < ${MAX_ATTEMPTS})`,
      [orgId, externalSubscriptionId, String((err as Error)?.message ?? err).slice(0, 500)],
    );
  }

  /** One transaction: up to BATCH of the subscription's queued events, in arrival order. Answers how many. */
  private async billQueued(orgId: number, externalSubscriptionId: string, run: AdvanceRun): Promise<number> {
    // Read before the transaction (the embedded database has one connection; lookups use the pool).
    const peek = await readQueued(this.deps.db, orgId, externalSubscriptionId, false);
    if (peek.length === 0) return 0;
    const subs = new Map<string, Subscription | null>();
    for (const e of peek) {
      const key = String(e.ts.getTime());
      if (!subs.has(key)) subs.set(key, await this.subscriptionAt(orgId, externalSubscriptionId, e.ts));
    }
    const customers = new Map<number, Customer | null>();
    for (const sub of subs.values()) {
      if (sub !== null && !customers.has(sub.customerId)) customers.set(sub.customerId, await this.deps.customers.findById(orgId, sub.customerId));
    }
    const customerIds = [...customers.keys()].sort((a, b) => a - b).map(String);
    const counts = await this.deps.db.transaction(async (tx) => {
      // Lock order (no deadlock with a plan change, which row-locks the customer, then takes the
      // queue's lock in its hand-over): the customers' rows first — the key share every invoice and
      // fee row referencing them takes anyway, so waiting here for a plan change holds nothing it needs.
      if (customerIds.length > 0) {
        await tx.query("SELECT 1 FROM customers WHERE org_id = $1 AND id = ANY($2::bigint[]) ORDER BY id FOR KEY SHARE", [orgId, customerIds]);
      }
      await lockAdvanceQueue(tx, orgId, externalSubscriptionId);
      // Read again under the lock: another process may have billed some meanwhile.
      const queued = await readQueued(tx, orgId, externalSubscriptionId, true);
      // A plan change (or termination) committed since the peek: its hand-over took this lock
      // (lockAdvanceHandover), so what it wrote is read here, fresh.
      const ids = [...new Set([...subs.values()].flatMap((s) => (s === null ? [] : [String(s.id)])))];
      const ended = new Map<number, number | null>();
      if (ids.length > 0) {
        const { rows } = await tx.query<{ id: string; terminated_at: Date | null }>(
          "SELECT id, terminated_at FROM subscriptions WHERE org_id = $1 AND id = ANY($2::bigint[])",
          [orgId, ids],
        );
        for (const r of rows) ended.set(Number(r.id), r.terminated_at === null ? null : new Date(r.terminated_at).getTime());
      }
      const out = { events: 0, skipped: 0, fees: 0, invoices: 0 };
      for (const e of queued) {
        const key = String(e.ts.getTime());
        if (!subs.has(key)) break; // arrived after the peek: the next round takes it
        const sub = subs.get(key)!;
        // The peeked subscription ended since, before the event: the next round finds the one that took over.
        const end = sub === null ? null : (ended.get(sub.id) ?? null);
        if (sub !== null && end !== null && end <= e.ts.getTime() && sub.terminatedAt?.getTime() !== end) break;
        const customer = sub === null ? null : (customers.get(sub.customerId) ?? null);
        const billed = sub === null || customer === null ? null : await this.billEvent(tx, e, sub, customer);
        await tx.query("DELETE FROM advance_charge_events WHERE id = $1", [e.id]);
        out.events += 1;
        if (billed === null) out.skipped += 1;
        else {
          out.fees += billed.fees;
          out.invoices += billed.invoices;
        }
      }
      return out;
    });
    run.events += counts.events;
    run.skipped += counts.skipped;
    run.fees += counts.fees;
    run.invoices += counts.invoices;
    return counts.events;
  }

  /**
   * The subscription an event at `ts` belongs to. Read as stored when nothing is due for it by `ts`
   * (no ending, no downgrade taking over): looking it up through the subscriptions service would
   * first apply what is due by now — a downgrade switching at the period's end would then hand the
   * units over before this event of the old plan's last days is billed. Otherwise (something due
   * by `ts`, a start not applied yet) through the service, which applies it.
   */
  private async subscriptionAt(orgId: number, externalSubscriptionId: string, ts: Date): Promise<Subscription | null> {
    const { rows } = await this.deps.db.query<{ id: string }>(
      `SELECT s.id FROM subscriptions s
        WHERE s.org_id = $1 AND s.external_id = $2 AND s.status IN ('active', 'terminated')
          AND s.started_at <= $3 AND (s.terminated_at IS NULL OR s.terminated_at > $3)
          AND (s.status = 'terminated' OR s.ending_at IS NULL OR s.ending_at > $3)
          AND NOT EXISTS (SELECT 1 FROM subscriptions n WHERE n.org_id = s.org_id AND n.previous_subscription_id = s.id
                                                          AND n.status = 'pending' AND n.downgrade_at <= $3)
        ORDER BY s.started_at DESC LIMIT 1`,
      [orgId, externalSubscriptionId, ts],
    );
    const id = rows[0]?.id;
    if (id !== undefined) {
      const sub = await this.deps.subscriptions.getById(orgId, Number(id));
      if (sub !== null) return sub;
    }
    return this.deps.subscriptions.getByExternalId(orgId, externalSubscriptionId, ts);
  }

  /** The fees of one event for every advance charge of its metric; null when no advance charge takes it. */
  private async billEvent(tx: Queryable, e: QueuedEvent, sub: Subscription, customer: Customer): Promise<{ fees: number; invoices: number } | null> {
    const charges = sub.plan.charges.filter((c) => c.payInAdvance && c.metric.code === e.code);
    const window = usageWindowAt(sub, sub.plan, e.ts);
    if (charges.length === 0 || window === null) return null;
    const currency = sub.plan.amountCurrency;
    const now = new Date(this.deps.clock.now(e.orgId));
    const invoiceable: FeeDraft[] = [];
    const feeOnly: FeeDraft[] = [];
    for (const charge of charges) {
      const draft = await this.chargeFee(tx, e, sub, charge, window, currency, now);
      if (draft !== null) (charge.invoiceable ? invoiceable : feeOnly).push(draft);
    }
    // Lago's invoiceable: false — the fee alone, announced by fee.created (paid ones may be regrouped later: regroupPaidFees).
    if (feeOnly.length > 0) {
      for (const fee of await this.deps.invoicing.recordFeesWithoutInvoice(tx, customer, sub, feeOnly, now)) await this.deps.onFeeCreated?.(tx, fee);
    }
    let details: InvoiceDetails | null = null;
    if (invoiceable.length > 0) details = await this.deps.invoicing.issueAdvanceInvoice(tx, customer, sub, invoiceable, now);
    await tx.query(
      `UPDATE advance_fees a SET fee_id = f.id, invoice_id = f.invoice_id
         FROM fees f WHERE f.org_id = a.org_id AND f.lago_id = ANY($3::uuid[]) AND f.charge_id = a.charge_id
          AND a.org_id = $1 AND a.lago_event_id = $2::uuid`,
      [e.orgId, e.lagoEventId, [...invoiceable, ...feeOnly].map((d) => d.lagoId!)],
    );
    if (details !== null) await this.deps.onInvoiceIssued?.(tx, details);
    return { fees: invoiceable.length + feeOnly.length, invoices: details === null ? 0 : 1 };
  }

  /** One advance charge's fee for the event (null: nothing to bill), its running usage moved on. */
  private async chargeFee(
    tx: Queryable,
    e: QueuedEvent,
    sub: Subscription,
    charge: Charge,
    window: UsageWindow,
    currency: string,
    now: Date,
  ): Promise<FeeDraft | null> {
    // The unique key decides: an event a charge billed once is never billed again.
    const claimed = await tx.query(
      `INSERT INTO advance_fees (org_id, charge_id, lago_event_id, external_subscription_id, transaction_id, event_ts, created_at)
       VALUES ($1, $2, $3::uuid, $4, $5, $6, $7) ON CONFLICT DO NOTHING RETURNING 1`,
      [e.orgId, charge.id, e.lagoEventId, e.externalSubscriptionId, e.transactionId, e.tsText, now],
    );
    if (claimed.rows.length === 0) return null;
    const at = slotOf(charge, sub, window.period.start, e);
    if (billsSeats(charge)) return this.seatFee(tx, e, sub, charge, at, window, currency);
    let uniqueIsNew = false;
    if (charge.metric.aggregationType === "unique_count_agg" && e.raw !== null && e.operationType !== "remove") {
      const added = await tx.query(
        `INSERT INTO advance_charge_unique_values (org_id, charge_id, subscription_id, period_start, bucket_index, group_key, value)
         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING RETURNING 1`,
        [...at.key, e.raw],
      );
      uniqueIsNew = added.rows.length > 0;
    }
    const priced = await priceEvent(tx, charge, at, e, uniqueIsNew, window);
    if (priced === null) return null;
    const { increment, after, amount } = priced;
    await tx.query(
      `INSERT INTO advance_charge_usage (org_id, charge_id, subscription_id, period_start, bucket_index, group_key, units, events_count, amounts_total)
       VALUES ($1, $2, $3, $4, $5, $6, $7::numeric, $8, $9::numeric)
       ON CONFLICT (org_id, charge_id, subscription_id, period_start, bucket_index, group_key)
       DO UPDATE SET units = excluded.units, events_count = excluded.events_count, amounts_total = excluded.amounts_total`,
      [...at.key, after.units.toString(), after.eventsCount, after.amountsTotal.toString()],
    );
    // A recurring sum's later periods started from this one's units: a late event moves them too.
    if (carriesOverInAdvance(charge) && !increment.units.isZero()) {
      await tx.query(
        `UPDATE advance_charge_usage SET units = units + $7::numeric
          WHERE org_id = $1 AND charge_id = $2 AND subscription_id = $3 AND period_start > $4 AND bucket_index = $5 AND group_key = $6`,
        [...at.key, increment.units.toString()],
      );
    }
    // An event of a subscription whose plan changed since: the new plan's charge took these units
    // over (advance_charge_handovers; none otherwise). Read under the queue lock the hand-over takes.
    if (carriesOverInAdvance(charge) && !increment.units.isZero()) {
      await handOn(tx, seatSlot(at), { units: increment.units }, e);
    }
    // Lago issues nothing for an event that costs nothing (free units, a tier already paid).
    if (centsOf(amount, currency) === 0n) return null;
    return advanceDraft(this.newId(), charge, at, e.ts, window.from, window.period.to, increment.units, after.units, amount, currency);
  }

  /**
   * A seat charge's fee for the event: the add or remove moves the seats held (advance_charge_seats),
   * and only going above the most seats held in the period costs anything (core seatChange).
   */
  private async seatFee(
    tx: Queryable,
    e: QueuedEvent,
    sub: Subscription,
    charge: Charge,
    at: ChargeSlotOf,
    window: UsageWindow,
    currency: string,
  ): Promise<FeeDraft | null> {
    if (e.raw === null) return null;
    let change: -1 | 0 | 1;
    // Out of order (a late event): a remove stamped before the held value's add changes nothing; an
    // add stamped before a stored remove of the value changes nothing either (the value's holding
    // around that time is recorded already: adding it again would hold it on forever and bill it twice).
    if (e.operationType === "remove") {
      const removed = await tx.query(
        `UPDATE advance_charge_seats SET removed_at = $7
          WHERE org_id = $1 AND charge_id = $2 AND subscription_id = $3 AND bucket_index = $4 AND group_key = $5 AND value = $6 AND removed_at IS NULL
            AND added_at <= $7::timestamptz
          RETURNING 1`,
        [...seatSlot(at), e.raw, e.tsText],
      );
      change = removed.rows.length > 0 ? -1 : 0;
    } else {
      // A value already held is not added twice (the unique index of held seats).
      const added = await tx.query(
        `INSERT INTO advance_charge_seats (org_id, charge_id, subscription_id, bucket_index, group_key, charge_filter_id, grouped_by, value,
                                           external_subscription_id, added_transaction_id, added_at)
         SELECT $1, $2, $3, $4, $5, $6, $7::jsonb, $8, $9, $10, $11
          WHERE NOT EXISTS (SELECT 1 FROM advance_charge_seats
                             WHERE org_id = $1 AND charge_id = $2 AND subscription_id = $3 AND bucket_index = $4 AND group_key = $5 AND value = $8
                               AND removed_at > $11::timestamptz)
         ON CONFLICT DO NOTHING RETURNING 1`,
        [
          ...seatSlot(at),
          at.filter?.id ?? null,
          at.groupedBy === null ? null : JSON.stringify(at.groupedBy),
          e.raw,
          e.externalSubscriptionId,
          e.transactionId,
          e.tsText,
        ],
      );
      change = added.rows.length > 0 ? 1 : 0;
    }
    const before = await readSeats(tx, at.key);
    const { after, newlyPaid } = seatChange(before, change);
    await tx.query(
      `INSERT INTO advance_charge_usage (org_id, charge_id, subscription_id, period_start, bucket_index, group_key, units, events_count, paid_units)
       VALUES ($1, $2, $3, $4, $5, $6, $7::numeric, $8, $9::numeric)
       ON CONFLICT (org_id, charge_id, subscription_id, period_start, bucket_index, group_key)
       DO UPDATE SET units = excluded.units, events_count = excluded.events_count, paid_units = excluded.paid_units`,
      [...at.key, after.held.toString(), after.eventsCount, after.paid.toString()],
    );
    // A late event of a closed period: the later periods started from its seats; a seat added late
    // counts as paid there (it is billed in its own period, and carried from the next invoice on).
    if (change !== 0) {
      await tx.query(
        `UPDATE advance_charge_usage SET units = GREATEST(units + $7::numeric, 0), paid_units = GREATEST(coalesce(paid_units, units), units + $7::numeric)
          WHERE org_id = $1 AND charge_id = $2 AND subscription_id = $3 AND period_start > $4 AND bucket_index = $5 AND group_key = $6`,
        [...at.key, String(change)],
      );
      // A subscription whose plan changed since: the new plan's charge took these seats over (none otherwise).
      await handOn(tx, seatSlot(at), { seat: change, value: e.raw, groupedBy: at.groupedBy }, e);
    }
    const amount = seatAmount(charge, at, before, newlyPaid, window, e.ts);
    if (centsOf(amount, currency) === 0n) return null;
    return advanceDraft(this.newId(), charge, at, e.ts, window.from, window.period.to, newlyPaid, after.held, amount, currency);
  }

  /**
   * POST /api/v1/events/estimate_fees (Lago's): the fees the event would cost now, one per advance
   * charge of the subscription's plan on its metric, with their taxes; nothing is stored.
   */
  async estimate(orgId: number, input: { code: string; externalSubscriptionId: string; properties: Record<string, unknown> }): Promise<unknown[]> {
    const now = new Date(this.deps.clock.now(orgId));
    const sub = await this.deps.subscriptions.getByExternalId(orgId, input.externalSubscriptionId, now);
    if (sub === null) throw notFound("subscription", input.externalSubscriptionId);
    const props = JSON.stringify(input.properties);
    const { rows } = await this.deps.db.query<{ value: string | null; raw: string | null; operation_type: string | null; dims: string | null }>(
      `SELECT metering_value($2::jsonb, m.field_name)::text AS value, $2::jsonb ->> m.field_name AS raw,
              $2::jsonb ->> 'operation_type' AS operation_type, ${METRIC_DIMS("$2::jsonb", "m")} AS dims
         FROM billable_metrics m WHERE m.org_id = $1 AND m.code = $3 AND m.deleted_at IS NULL`,
      [orgId, props, input.code],
    );
    const facts = rows[0];
    if (facts === undefined) throw notFound("billable_metric", input.code);
    const customer = await this.deps.customers.findById(orgId, sub.customerId);
    const window = usageWindowAt(sub, sub.plan, now);
    if (customer === null || window === null) return [];
    const e = { ts: now, properties: input.properties, value: facts.value, raw: facts.raw, operationType: facts.operation_type, dims: facts.dims ?? "" };
    const currency = sub.plan.amountCurrency;
    const drafts: FeeDraft[] = [];
    for (const charge of sub.plan.charges.filter((c) => c.payInAdvance && c.metric.code === input.code)) {
      const at = slotOf(charge, sub, window.period.start, { orgId, ...e });
      if (billsSeats(charge)) {
        drafts.push(await this.estimateSeat(charge, at, e, window, now, currency));
        continue;
      }
      let uniqueIsNew = false;
      if (charge.metric.aggregationType === "unique_count_agg" && e.raw !== null && e.operationType !== "remove") {
        const seen = await this.deps.db.query(
          `SELECT 1 FROM advance_charge_unique_values
            WHERE org_id = $1 AND charge_id = $2 AND subscription_id = $3 AND period_start = $4 AND bucket_index = $5 AND group_key = $6 AND value = $7`,
          [...at.key, e.raw],
        );
        uniqueIsNew = seen.rows.length === 0;
      }
      const priced = await priceEvent(this.deps.db, charge, at, e, uniqueIsNew, window);
      const units = priced?.increment.units ?? ZERO;
      drafts.push(advanceDraft(null, charge, at, now, window.from, window.period.to, units, priced?.after.units ?? units, priced?.amount ?? ZERO, currency));
    }
    const taxes = await this.deps.invoicing.feeTaxes(this.deps.db, customer, sub, drafts);
    return drafts.map((d, i) => estimatedFeeJson(d, taxes[i]!, sub, customer, now));
  }

  /** What the event would cost a seat charge now, read only. */
  private async estimateSeat(
    charge: Charge,
    at: ChargeSlotOf,
    e: { raw: string | null; operationType: string | null },
    window: UsageWindow,
    now: Date,
    currency: string,
  ): Promise<FeeDraft> {
    let change: -1 | 0 | 1 = 0;
    if (e.raw !== null) {
      const held = await this.deps.db.query(
        `SELECT 1 FROM advance_charge_seats
          WHERE org_id = $1 AND charge_id = $2 AND subscription_id = $3 AND bucket_index = $4 AND group_key = $5 AND value = $6 AND removed_at IS NULL`,
        [...seatSlot(at), e.raw],
      );
      const isHeld = held.rows.length > 0;
      change = e.operationType === "remove" ? (isHeld ? -1 : 0) : isHeld ? 0 : 1;
    }
    const before = await readSeats(this.deps.db, at.key);
    const { after, newlyPaid } = seatChange(before, change);
    const amount = seatAmount(charge, at, before, newlyPaid, window, now);
    return advanceDraft(null, charge, at, now, window.from, window.period.to, newlyPaid, after.held, amount, currency);
  }
}

/** Where an event lands in a charge: its bucket (filter), price and group, and the key of the running usage there. */
interface ChargeSlotOf {
  readonly bucket: number;
  readonly filter: Charge["filters"][number] | null;
  readonly price: Charge["price"];
  readonly groupedBy: Record<string, string | null> | null;
  readonly key: readonly [number, number, number, Date, number, string];
}

function slotOf(charge: Charge, sub: Subscription, periodStart: Date, e: { orgId: number; dims: string; properties: Record<string, unknown> | null }): ChargeSlotOf {
  const bucket = new Bucketer(charge.filters.map((f) => resolveFilter(f.values, charge.metric.filters))).bucket(e.dims);
  const filter = bucket >= 0 ? charge.filters[bucket]! : null;
  const groupKeys = (filter === null ? charge.pricingGroupKeys : filter.pricingGroupKeys) ?? [];
  const groupedBy = groupKeys.length === 0 ? null : Object.fromEntries(groupKeys.map((k) => [k, propertyText(e.properties, k)]));
  const groupKey = groupedBy === null ? "" : JSON.stringify(groupKeys.map((k) => groupedBy[k]));
  return { bucket, filter, price: filter?.price ?? charge.price, groupedBy, key: [e.orgId, charge.id, sub.id, periodStart, bucket, groupKey] };
}

/**
 * An event of a subscription upgraded since moves the units of the charges that took its slot over
 * (advance_charge_handovers), and theirs in turn: a seat added or removed there too, or a sum's
 * units. Nothing is billed there: the seat or units were billed on the old subscription, and count
 * as paid in the new one's period (like a late seat), carried on its price from its next invoice.
 */
async function handOn(
  tx: Queryable,
  from: readonly [number, number, number, number, string],
  change: { seat: -1 | 1; value: string; groupedBy: Record<string, string | null> | null } | { units: Decimal },
  e: { externalSubscriptionId: string; transactionId: string; tsText: string },
): Promise<void> {
  const [orgId, chargeId, subscriptionId, bucket, groupKey] = from;
  const { rows } = await tx.query<{ to_charge_id: string; to_subscription_id: string; to_period_start: Date }>(
    `SELECT to_charge_id, to_subscription_id, to_period_start FROM advance_charge_handovers
      WHERE org_id = $1 AND from_charge_id = $2 AND from_subscription_id = $3`,
    [orgId, chargeId, subscriptionId],
  );
  for (const r of rows) {
    const to = [orgId, Number(r.to_charge_id), Number(r.to_subscription_id), bucket, groupKey] as const;
    let delta: Decimal;
    if ("seat" in change) {
      const moved =
        change.seat > 0
          ? await tx.query(
              `INSERT INTO advance_charge_seats (org_id, charge_id, subscription_id, bucket_index, group_key, charge_filter_id, grouped_by, value,
                                                 external_subscription_id, added_transaction_id, added_at)
               VALUES ($1, $2, $3, $4, $5,
                       CASE WHEN $4::int >= 0 THEN (SELECT id FROM charge_filters WHERE org_id = $1 AND charge_id = $2 AND deleted_at IS NULL
                                                      ORDER BY position, id OFFSET $4::int LIMIT 1) END,
                       $6::jsonb, $7, $8, $9, $10)
               ON CONFLICT DO NOTHING RETURNING 1`,
              [...to, change.groupedBy === null ? null : JSON.stringify(change.groupedBy), change.value, e.externalSubscriptionId, e.transactionId, e.tsText],
            )
          : await tx.query(
              `UPDATE advance_charge_seats SET removed_at = $7
                WHERE org_id = $1 AND charge_id = $2 AND subscription_id = $3 AND bucket_index = $4 AND group_key = $5 AND value = $6 AND removed_at IS NULL
                RETURNING 1`,
              [...to, change.value, e.tsText],
            );
      if (moved.rows.length === 0) continue;
      delta = new Decimal(change.seat);
    } else {
      delta = change.units;
    }
    const seats = "seat" in change;
    const updated = await tx.query(
      `UPDATE advance_charge_usage
          SET units = CASE WHEN $7::boolean THEN GREATEST(units + $6::numeric, 0) ELSE units + $6::numeric END,
              paid_units = CASE WHEN $7::boolean THEN GREATEST(coalesce(paid_units, units), units + $6::numeric) END
        WHERE org_id = $1 AND charge_id = $2 AND subscription_id = $3 AND bucket_index = $4 AND group_key = $5
        RETURNING 1`,
      [...to, delta.toString(), seats],
    );
    if (updated.rows.length === 0) {
      const units = seats ? Decimal.max(delta, ZERO) : delta;
      await tx.query(
        `INSERT INTO advance_charge_usage (org_id, charge_id, subscription_id, period_start, bucket_index, group_key, units, events_count, paid_units)
         VALUES ($1, $2, $3, $6, $4, $5, $7::numeric, 0, $8::numeric) ON CONFLICT DO NOTHING`,
        [...to, r.to_period_start, units.toString(), seats ? units.toString() : null],
      );
    }
    await handOn(tx, to, change, e);
  }
}

/** A slot's key without its period: seats are held across periods. */
function seatSlot(at: ChargeSlotOf): [number, number, number, number, string] {
  const [orgId, chargeId, subscriptionId, , bucket, groupKey] = at.key;
  return [orgId, chargeId, subscriptionId, bucket, groupKey];
}

/** The event's increment and fee over the running usage of its slot; null when the metric does not count it. */
async function priceEvent(
  q: Queryable,
  charge: Charge,
  at: ChargeSlotOf,
  e: { ts: Date; value: string | null; raw: string | null; operationType: string | null },
  uniqueIsNew: boolean,
  window: UsageWindow,
) {
  const metric = charge.metric;
  if (metric.aggregationType === "unique_count_agg" && e.raw === null) return null;
  const increment = advanceIncrement({
    aggregation: metric.aggregationType,
    value: e.value === null ? null : new Decimal(e.value),
    uniqueIsNew,
    removes: e.operationType === "remove",
  });
  if (increment === null) return null;
  const before = await readRunning(q, at.key, carriesOverInAdvance(charge));
  const fee = advanceFee(at.price, before, increment, (u) => applyRounding(u, metric.roundingFunction, metric.roundingPrecision));
  // Prorated: the units are paid for the days left in the period from the event's day.
  const amount = proratedInAdvance(charge) ? fee.amount.times(advanceProrationShare(window, e.ts)) : fee.amount;
  return { increment, after: fee.after, amount };
}

function advanceDraft(
  lagoId: string | null,
  charge: Charge,
  at: ChargeSlotOf,
  ts: Date,
  from: Date,
  to: Date,
  units: Decimal,
  totalUnits: Decimal,
  amount: Decimal,
  currency: string,
): FeeDraft {
  const unit = units.isZero() ? ZERO : amount.div(units);
  return {
    ...(lagoId === null ? {} : { lagoId }),
    feeType: "charge",
    charge: { id: charge.id, lagoId: charge.lagoId },
    chargeFilterId: at.filter?.id ?? null,
    from,
    to,
    // The event alone (GET /fees/:id/events lists it through advance_fees).
    usage: { from: ts, to: new Date(ts.getTime() + 1), bucket: { metricId: charge.metric.id, filters: bucketFilters(charge), index: at.bucket } },
    units,
    totalAggregatedUnits: totalUnits,
    eventsCount: 1,
    preciseAmount: amount,
    amountCents: centsOf(amount, currency),
    preciseUnitAmount: unit,
    unitAmountCents: centsOf(unit, currency),
    payInAdvance: true,
    invoiceable: charge.invoiceable,
    item: chargeItem(charge, at.filter, at.groupedBy),
    amountDetails: {},
  };
}

/** An estimated fee in Lago's FeeObject shape: not stored, so no lago_id and no invoice. */
function estimatedFeeJson(d: FeeDraft, deductions: FeeDeductions, sub: Subscription, customer: Customer, now: Date) {
  const record: FeeRecord = {
    id: 0,
    orgId: sub.orgId,
    lagoId: "",
    invoiceId: null,
    invoiceLagoId: null,
    invoiceStatus: null,
    paymentStatus: "pending",
    subscriptionId: sub.id,
    subscriptionLagoId: sub.lagoId,
    externalSubscriptionId: sub.externalId,
    customerLagoId: customer.lagoId,
    externalCustomerId: customer.externalId,
    feeType: d.feeType,
    chargeLagoId: d.charge?.lagoId ?? null,
    chargeFilterId: d.chargeFilterId,
    from: d.from,
    to: d.to,
    usageFrom: null,
    usageTo: null,
    bucket: null,
    units: d.units,
    totalAggregatedUnits: d.totalAggregatedUnits,
    eventsCount: d.eventsCount,
    currency: sub.plan.amountCurrency,
    preciseAmount: d.preciseAmount,
    amountCents: d.amountCents,
    preciseUnitAmount: d.preciseUnitAmount,
    unitAmountCents: d.unitAmountCents,
    taxesAmountCents: deductions.taxes.amountCents,
    taxesRate: deductions.taxes.rate,
    taxesPreciseAmountCents: deductions.taxes.preciseAmountCents,
    preciseCouponsAmountCents: ZERO,
    appliedTaxes: [],
    payInAdvance: true,
    invoiceable: d.invoiceable,
    item: d.item,
    amountDetails: d.amountDetails,
    description: null,
    lateAdjustment: null,
    createdAt: now,
  };
  return { ...feeJson(record), lago_id: null };
}

/** A property as SQL's `->>` renders it: strings as they are, other JSON values as JSON text, absent as null. */
function propertyText(props: Record<string, unknown> | null, key: string): string | null {
  const v = props?.[key];
  if (v === undefined || v === null) return null;
  return typeof v === "string" ? v : JSON.stringify(v);
}

/**
 * The slot's running usage in its period. `carried`: a period without a row yet starts from the
 * units of the slot's latest earlier period (a recurring sum carries them over), its counts from 0.
 */
async function readRunning(tx: Queryable, slot: readonly unknown[], carried: boolean): Promise<AdvanceRunning> {
  const { rows } = await tx.query<{ units: string; events_count: string; amounts_total: string; current: boolean }>(
    `SELECT units::text AS units, events_count, amounts_total::text AS amounts_total, period_start = $4 AS current FROM advance_charge_usage
      WHERE org_id = $1 AND charge_id = $2 AND subscription_id = $3 AND bucket_index = $5 AND group_key = $6
        AND ${carried ? "period_start <= $4" : "period_start = $4"}
      ORDER BY period_start DESC LIMIT 1`,
    [...slot],
  );
  const r = rows[0];
  if (r === undefined) return NO_ADVANCE_USAGE;
  if (!r.current) return { ...NO_ADVANCE_USAGE, units: new Decimal(r.units) };
  return { units: new Decimal(r.units), eventsCount: Number(r.events_count), amountsTotal: new Decimal(r.amounts_total) };
}

/**
 * A seat charge's count in the slot's period: its row, or before the period's first event the seats
 * held when the latest earlier period ended (carried over, already paid), or none.
 */
async function readSeats(q: Queryable, slot: readonly unknown[]): Promise<SeatsHeld> {
  const { rows } = await q.query<{ units: string; paid_units: string | null; events_count: string; current: boolean }>(
    `SELECT units::text AS units, paid_units::text AS paid_units, events_count, period_start = $4 AS current FROM advance_charge_usage
      WHERE org_id = $1 AND charge_id = $2 AND subscription_id = $3 AND bucket_index = $5 AND group_key = $6 AND period_start <= $4
      ORDER BY period_start DESC LIMIT 1`,
    [...slot],
  );
  const r = rows[0];
  if (r === undefined) return NO_SEATS;
  const held = new Decimal(r.units);
  if (!r.current) return seatsCarriedIn(held);
  return { held, paid: r.paid_units === null ? held : new Decimal(r.paid_units), eventsCount: Number(r.events_count) };
}

/** What the seats an event newly pays for cost: the price of the period's most seats with them less without, prorated from the event's day. */
function seatAmount(charge: Charge, at: ChargeSlotOf, before: SeatsHeld, newlyPaid: Decimal, window: UsageWindow, ts: Date): Decimal {
  if (newlyPaid.lte(0)) return ZERO;
  const metric = charge.metric;
  const fee = advanceFee(at.price, { units: before.paid, eventsCount: before.eventsCount, amountsTotal: ZERO }, { units: newlyPaid, amount: newlyPaid }, (u) =>
    applyRounding(u, metric.roundingFunction, metric.roundingPrecision),
  );
  return proratedInAdvance(charge) ? fee.amount.times(advanceProrationShare(window, ts)) : fee.amount;
}

/**
 * Lago: a charge paid in advance on a recurring metric bills, when a period starts, the units
 * carried over from the one before, on the subscription's periodic invoice (the one closing
 * `closed` at `at`). One fee per bucket and group that holds units, priced from nothing (the
 * period's own events are then priced on top of them, readRunning), prorated over the part of the
 * period the subscription covers when the charge is prorated. Nothing when the subscription does
 * not go on into the next period. Reads only: billing it again (a draft refreshed) answers the same.
 * Non-invoiceable charges are left out: their fees never go on invoices.
 */
export async function carriedOverAdvanceFees(
  q: Queryable,
  sub: Subscription,
  closed: { readonly period: { readonly start: Date } },
  at: Date,
  newId: () => string,
): Promise<FeeDraft[]> {
  const charges = sub.plan.charges.filter((c) => c.invoiceable && carriedIntoNextPeriod(c));
  if (charges.length === 0) return [];
  const next = usageWindowAt(sub, sub.plan, at);
  if (next === null || next.period.start.getTime() <= closed.period.start.getTime()) return [];
  // Each slot's units as the closed period left them: its latest row before the next period.
  const { rows } = await q.query<{ charge_id: string; bucket_index: number; group_key: string; units: string }>(
    `SELECT DISTINCT ON (charge_id, bucket_index, group_key) charge_id, bucket_index, group_key, units::text AS units
       FROM advance_charge_usage
      WHERE org_id = $1 AND subscription_id = $2 AND charge_id = ANY($3::bigint[]) AND period_start < $4
      ORDER BY charge_id, bucket_index, group_key, period_start DESC`,
    [sub.orgId, sub.id, charges.map((c) => String(c.id)), next.period.start],
  );
  return carriedFeeDrafts(charges, rows, next, sub.plan.amountCurrency, newId);
}

/** The fees of the units each slot of `rows` carries into the period of `next`, priced from nothing. */
function carriedFeeDrafts(
  charges: readonly Charge[],
  rows: readonly { charge_id: string; bucket_index: number; group_key: string; units: string }[],
  next: UsageWindow,
  currency: string,
  newId: () => string,
): FeeDraft[] {
  const fees: FeeDraft[] = [];
  for (const charge of charges) {
    const slots = rows
      .filter((r) => Number(r.charge_id) === charge.id)
      .sort((a, b) => a.bucket_index - b.bucket_index || (a.group_key < b.group_key ? -1 : a.group_key > b.group_key ? 1 : 0));
    for (const r of slots) {
      const bucket = Number(r.bucket_index);
      const filter = bucket >= 0 ? (charge.filters[bucket] ?? null) : null;
      // A filter removed since: its units have no price left to bill.
      if (bucket >= 0 && filter === null) continue;
      const groupKeys = (filter === null ? charge.pricingGroupKeys : filter.pricingGroupKeys) ?? [];
      const values = r.group_key === "" ? [] : (JSON.parse(r.group_key) as (string | null)[]);
      const groupedBy = groupKeys.length === 0 ? null : Object.fromEntries(groupKeys.map((k, i) => [k, values[i] ?? null]));
      const units = new Decimal(r.units);
      const metric = charge.metric;
      const amount = carriedOverAmount(filter?.price ?? charge.price, units, {
        prorated: proratedInAdvance(charge),
        window: next,
        round: (u) => applyRounding(u, metric.roundingFunction, metric.roundingPrecision),
      });
      if (centsOf(amount, currency) === 0n) continue;
      const unit = amount.div(units);
      fees.push({
        lagoId: newId(),
        feeType: "charge",
        charge: { id: charge.id, lagoId: charge.lagoId },
        chargeFilterId: filter?.id ?? null,
        from: next.from,
        to: next.period.to,
        // No events of their own: not a bucket's usage (late-event adjustments leave it alone).
        usage: null,
        units,
        totalAggregatedUnits: units,
        eventsCount: 0,
        preciseAmount: amount,
        amountCents: centsOf(amount, currency),
        preciseUnitAmount: unit,
        unitAmountCents: centsOf(unit, currency),
        payInAdvance: true,
        invoiceable: true,
        item: chargeItem(charge, filter, groupedBy),
        amountDetails: {},
      });
    }
  }
  return fees;
}

/**
 * The per-external_subscription_id lock of the advance queue: the worker bills a subscription's
 * queued events under it, and a plan change's hand-over (lockAdvanceHandover) takes it too, so one
 * never reads what the other is half-way through writing.
 */
export async function lockAdvanceQueue(q: Queryable, orgId: number, externalSubscriptionId: string): Promise<void> {
  await q.query("SELECT pg_advisory_xact_lock($1::int, hashtext($2::text))", [ADVANCE_LOCK_NAMESPACE, `${orgId}:${externalSubscriptionId}`]);
}

/**
 * A plan change's hand-over (upgrade, or a downgrade taking over) takes the advance queue's lock at
 * the first transition it announces — the old subscription's termination, before its final
 * invoice — so the lock order is the worker's: the advance lock, then the customer's balance lock
 * and the invoice sequences (which that final invoice takes). Taken again at the new
 * subscription's start (the same transaction holds it already). A termination with no successor
 * hands nothing over and takes nothing.
 */
export async function lockAdvanceHandover(q: Queryable, transition: "started" | "terminated", sub: Subscription): Promise<void> {
  if (transition === "started") {
    if (sub.previousId === null) return;
  } else {
    const { rows } = await q.query("SELECT 1 FROM subscriptions WHERE org_id = $1 AND previous_subscription_id = $2 AND status = 'active' LIMIT 1", [
      sub.orgId,
      sub.id,
    ]);
    if (rows.length === 0) return;
  }
  await lockAdvanceQueue(q, sub.orgId, sub.externalId);
}

/**
 * A plan change (a subscription started in place of one with the same external id): the units the
 * old subscription's recurring advance charges hold — a sum's running total, the seats held with
 * the events that added them — move to the new plan's advance charges on the same metric. Only
 * between charges that bucket and group alike (the same filters and pricing group keys, in order):
 * others start from nothing. Recurring values follow the external_subscription_id across plan
 * changes, as in Lago.
 * - An upgrade (mid-period): held and paid for the rest of the period (the old plan billed them in
 *   advance for all of it; billing them again on the new price would charge those days twice, with
 *   nothing to credit for usage paid in advance). The new plan's price applies to seats above what
 *   was paid, and to the units carried into the next period.
 * - A downgrade (the new plan starting when the old one's period ends): carried into the new plan's
 *   first period and not paid (the old subscription's final invoice bills nothing into a period it
 *   will not have): `carriedIn` are their fees on the new plan's price (prorated when its charge
 *   is), for the caller to bill when the new subscription starts.
 * The caller holds the advance queue's lock (lockAdvanceHandover).
 */
export async function inheritAdvanceUnits(
  q: Queryable,
  sub: Subscription,
  at: Date,
  newId: () => string,
): Promise<{ charges: number; carriedIn: FeeDraft[] }> {
  const none = { charges: 0, carriedIn: [] };
  if (sub.previousId === null) return none;
  const charges = sub.plan.charges.filter((c) => carriedIntoNextPeriod(c));
  if (charges.length === 0) return none;
  // The period the new subscription started in (a clock moved far past it: still that one).
  const window = usageWindowAt(sub, sub.plan, sub.startedAt ?? at);
  if (window === null) return none;
  const prev = await q.query<{ terminated_at: Date | null; plan_id: string }>("SELECT terminated_at, plan_id FROM subscriptions WHERE org_id = $1 AND id = $2", [
    sub.orgId,
    sub.previousId,
  ]);
  const ended = prev.rows[0]?.terminated_at ?? null;
  if (ended === null) return none;
  const endMs = new Date(ended).getTime();
  const startMs = window.period.start.getTime();
  if (endMs < startMs) return none;
  const downgrade = endMs === startMs;
  // Old and new charges on the same metric that bucket and group alike (one old charge per new one).
  const { rows: pairs } = await q.query<{ old_id: string; new_id: string }>(
    `WITH sig AS (
       SELECT c.id, c.plan_id, c.pay_in_advance, c.billable_metric_id, coalesce(c.properties -> 'pricing_group_keys', 'null'::jsonb) AS keys,
              (SELECT coalesce(jsonb_agg(jsonb_build_array(f.filter_values, coalesce(f.properties -> 'pricing_group_keys', 'null'::jsonb)) ORDER BY f.position, f.id), '[]'::jsonb)
                 FROM charge_filters f WHERE f.org_id = c.org_id AND f.charge_id = c.id AND f.deleted_at IS NULL) AS filters
         FROM charges c
        WHERE c.org_id = $1
          AND (c.id = ANY($3::bigint[]) OR c.plan_id = $4 OR c.id IN (SELECT charge_id FROM advance_charge_usage WHERE org_id = $1 AND subscription_id = $2)))
     SELECT DISTINCT ON (n.id) o.id AS old_id, n.id AS new_id
       FROM sig n JOIN sig o ON o.billable_metric_id = n.billable_metric_id AND o.keys = n.keys AND o.filters = n.filters AND o.id <> n.id
      WHERE n.id = ANY($3::bigint[])
        -- The old plan's advance charges (an event still queued bills them after the hand-over) and
        -- any charge the old subscription holds units of.
        AND ((o.plan_id = $4 AND o.pay_in_advance) OR o.id IN (SELECT charge_id FROM advance_charge_usage WHERE org_id = $1 AND subscription_id = $2))
      ORDER BY n.id, o.id`,
    [sub.orgId, sub.previousId, charges.map((c) => String(c.id)), prev.rows[0]!.plan_id],
  );
  for (const pair of pairs) {
    const charge = charges.find((c) => c.id === Number(pair.new_id))!;
    const seats = billsSeats(charge);
    await q.query(
      `INSERT INTO advance_charge_handovers (org_id, from_charge_id, from_subscription_id, to_charge_id, to_subscription_id, to_period_start)
       VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING`,
      [sub.orgId, pair.old_id, sub.previousId, pair.new_id, sub.id, window.period.start],
    );
    // Each slot's latest row: this period's (its counts and what it paid), or the units carried into it.
    await q.query(
      `INSERT INTO advance_charge_usage (org_id, charge_id, subscription_id, period_start, bucket_index, group_key, units, events_count, amounts_total, paid_units)
       SELECT org_id, $3, $4, $5, bucket_index, group_key, units,
              CASE WHEN period_start = $5 THEN events_count ELSE 0 END,
              CASE WHEN period_start = $5 THEN amounts_total ELSE 0 END,
              CASE WHEN NOT $6::boolean THEN NULL WHEN period_start = $5 THEN coalesce(paid_units, units) ELSE units END
         FROM (SELECT DISTINCT ON (bucket_index, group_key) * FROM advance_charge_usage
                WHERE org_id = $1 AND charge_id = $2 AND subscription_id = $7 AND period_start <= $5
                ORDER BY bucket_index, group_key, period_start DESC) latest
       ON CONFLICT DO NOTHING`,
      [sub.orgId, pair.old_id, pair.new_id, sub.id, window.period.start, seats, sub.previousId],
    );
    if (seats) {
      await q.query(
        `INSERT INTO advance_charge_seats (org_id, charge_id, subscription_id, bucket_index, group_key, charge_filter_id, grouped_by, value,
                                           external_subscription_id, added_transaction_id, added_at)
         SELECT org_id, $3, $4, bucket_index, group_key, CASE WHEN bucket_index >= 0 THEN ($5::bigint[])[bucket_index + 1] END, grouped_by, value,
                external_subscription_id, added_transaction_id, added_at
           FROM advance_charge_seats
          WHERE org_id = $1 AND charge_id = $2 AND subscription_id = $6 AND removed_at IS NULL
         ON CONFLICT DO NOTHING`,
        [sub.orgId, pair.old_id, pair.new_id, sub.id, charge.filters.map((f) => String(f.id)), sub.previousId],
      );
    }
  }
  if (!downgrade || pairs.length === 0) return { charges: pairs.length, carriedIn: [] };
  // A downgrade: the units carried in, billed on the new plan's price for its first period.
  const taken = charges.filter((c) => c.invoiceable && pairs.some((p) => Number(p.new_id) === c.id));
  const { rows } = await q.query<{ charge_id: string; bucket_index: number; group_key: string; units: string }>(
    `SELECT charge_id, bucket_index, group_key, units::text AS units FROM advance_charge_usage
      WHERE org_id = $1 AND subscription_id = $2 AND charge_id = ANY($3::bigint[]) AND period_start = $4`,
    [sub.orgId, sub.id, taken.map((c) => String(c.id)), window.period.start],
  );
  return { charges: pairs.length, carriedIn: carriedFeeDrafts(taken, rows, window, sub.plan.amountCurrency, newId) };
}

/** The subscription's pending events in arrival order, with their metric's value and dims computed as ingest does. */
async function readQueued(q: Queryable, orgId: number, externalSubscriptionId: string, lock: boolean): Promise<QueuedEvent[]> {
  const { rows } = await q.query<{
    id: string;
    lago_event_id: string;
    transaction_id: string;
    code: string;
    ts: Date;
    ts_text: string;
    properties: Record<string, unknown> | string | null;
    value: string | null;
    raw: string | null;
    operation_type: string | null;
    dims: string | null;
  }>(
    `SELECT x.id, x.lago_event_id::text AS lago_event_id, x.transaction_id, x.code, x.ts, x.ts::text AS ts_text, x.properties,
            metering_value(x.properties, m.field_name)::text AS value, x.properties ->> m.field_name AS raw,
            x.properties ->> 'operation_type' AS operation_type, ${METRIC_DIMS("x.properties", "m")} AS dims
       FROM (SELECT * FROM advance_charge_events
              WHERE org_id = $1 AND external_subscription_id = $2 AND attempts < ${MAX_ATTEMPTS}
              ORDER BY id LIMIT ${BATCH}${lock ? " FOR UPDATE" : ""}) x
       LEFT JOIN billable_metrics m ON m.org_id = x.org_id AND m.code = x.code AND m.deleted_at IS NULL
      ORDER BY x.id`,
    [orgId, externalSubscriptionId],
  );
  return rows.map((r) => ({
    id: Number(r.id),
    orgId,
    lagoEventId: r.lago_event_id,
    externalSubscriptionId,
    code: r.code,
    ts: new Date(r.ts),
    tsText: r.ts_text,
    transactionId: r.transaction_id,
    properties: typeof r.properties === "string" ? (JSON.parse(r.properties) as Record<string, unknown>) : r.properties,
    value: r.value,
    raw: r.raw,
    operationType: r.operation_type,
    dims: r.dims ?? "",
  }));
}

/**
 * The events behind an advance fee (GET /fees/:id/events): the event it billed; for a seat charge's
 * carried-over fee, the events that added the seats held when its period started (a recurring sum's
 * carried units have none listed: they are the sum of every earlier period's events). Null when the
 * fee is not an advance fee.
 */
export async function advanceFeeEvents(q: Queryable, orgId: number, feeId: number): Promise<EventRow[] | null> {
  const link = await q.query("SELECT 1 FROM advance_fees WHERE org_id = $1 AND fee_id = $2 LIMIT 1", [orgId, feeId]);
  if (link.rows.length === 0) return carriedSeatEvents(q, orgId, feeId);
  const { rows } = await q.query<EventRow>(
    `SELECT ${eventColumns("e")}
       FROM advance_fees a
       JOIN events e ON e.org_id = a.org_id AND e.external_subscription_id = a.external_subscription_id
                    AND e.transaction_id = a.transaction_id AND e.ts = a.event_ts
      WHERE a.org_id = $1 AND a.fee_id = $2`,
    [orgId, feeId],
  );
  return rows;
}

/** A carried-over fee (pay in advance, no events of its own) of a seat charge: the adds of the seats it billed; null for any other fee. */
async function carriedSeatEvents(q: Queryable, orgId: number, feeId: number): Promise<EventRow[] | null> {
  const { rows } = await q.query<{ ok: boolean }>(
    `SELECT EXISTS (SELECT 1 FROM advance_charge_seats s WHERE s.org_id = f.org_id AND s.charge_id = f.charge_id AND s.subscription_id = f.subscription_id) AS ok
       FROM fees f
      WHERE f.org_id = $1 AND f.id = $2 AND f.fee_type = 'charge' AND f.pay_in_advance AND f.usage_from IS NULL AND f.events_count = 0`,
    [orgId, feeId],
  );
  if (rows[0]?.ok !== true) return null;
  const events = await q.query<EventRow>(
    `SELECT ${eventColumns("e")}
       FROM fees f
       JOIN advance_charge_seats s ON s.org_id = f.org_id AND s.charge_id = f.charge_id AND s.subscription_id = f.subscription_id
                                  AND s.charge_filter_id IS NOT DISTINCT FROM f.charge_filter_id
                                  AND coalesce(s.grouped_by, 'null'::jsonb) = coalesce(f.grouped_by, 'null'::jsonb)
                                  AND s.added_at < f.from_datetime AND (s.removed_at IS NULL OR s.removed_at >= f.from_datetime)
       JOIN events e ON e.org_id = s.org_id AND e.external_subscription_id = s.external_subscription_id
                    AND e.transaction_id = s.added_transaction_id AND e.ts = s.added_at
      WHERE f.org_id = $1 AND f.id = $2
      ORDER BY s.added_at, s.id`,
    [orgId, feeId],
  );
  return events.rows;
}

/**
 * `billing_advance_queue_events`: events waiting for the advance-charge worker (`waiting`), and
 * those set aside after failing MAX_ATTEMPTS times (`set_aside`, for an operator to look at).
 */
export function registerAdvanceQueueGauge(registry: client.Registry, db: Queryable, ttlMs = 5_000): void {
  let cached: { at: number; waiting: number; setAside: number } | null = null;
  new client.Gauge({
    name: "billing_advance_queue_events",
    help: "Events of charges paid in advance not billed yet: waiting for the worker, or set aside after repeated failures",
    labelNames: ["state"],
    registers: [registry],
    // Every worker reads the same database: across workers the value is the same, not a sum.
    aggregator: "max",
    async collect() {
      try {
        if (cached === null || Date.now() - cached.at >= ttlMs) {
          const { rows } = await db.query<{ waiting: string; set_aside: string }>(
            `SELECT count(*) FILTER (WHERE attempts < ${MAX_ATTEMPTS}) AS waiting, count(*) FILTER (WHERE attempts >= ${MAX_ATTEMPTS}) AS set_aside
               FROM advance_charge_events`,
          );
          cached = { at: Date.now(), waiting: Number(rows[0]?.waiting ?? 0), setAside: Number(rows[0]?.set_aside ?? 0) };
        }
        this.set({ state: "waiting" }, cached.waiting);
        this.set({ state: "set_aside" }, cached.setAside);
      } catch {
        // The database is unreachable: the scrape still answers, without this gauge's samples.
      }
    },
  });
}

/**
 * PUT /api/v1/fees/:lago_id (Lago's update fee): the payment status of a fee billed without an
 * invoice (a non-invoiceable charge paid in advance); a fee on an invoice follows its invoice (405).
 */
export function registerAdvanceFeeRoutes(
  app: FastifyInstance,
  deps: { db: Queryable; clock: Clock; invoicing: Pick<InvoicingService, "getFee">; advance: Pick<AdvanceBilling, "estimate"> },
): void {
  // Lago's estimate for charges paid in advance: { fees: [...] } as the event would bill them now.
  app.post("/api/v1/events/estimate_fees", async (request) => {
    const body = request.body as Record<string, unknown> | null;
    const event = body !== null && typeof body === "object" ? body["event"] : undefined;
    if (event === null || typeof event !== "object" || Array.isArray(event)) {
      throw new AppError("bad_request", "missing_parameter", 'the request body must be {"event": {...}}', { event: ["value_is_mandatory"] });
    }
    const e = event as Record<string, unknown>;
    const errors: Record<string, string[]> = {};
    const text = (key: string) => {
      const v = e[key];
      if (typeof v === "string" && v !== "" && v.length <= 255 && !v.includes("\u0000")) return v;
      errors[key] = [v === undefined || v === null || v === "" ? "value_is_mandatory" : "value_is_invalid"];
      return "";
    };
    const code = text("code");
    const externalSubscriptionId = text("external_subscription_id");
    const props = e["properties"];
    if (props !== undefined && props !== null && (typeof props !== "object" || Array.isArray(props))) errors["properties"] = ["must_be_an_object"];
    else {
      // What POST /events would refuse (NUL, unpaired surrogates...) never reaches jsonb here either.
      const problem = propertiesProblem(props ?? {});
      if (problem !== null) errors["properties"] = [problem];
    }
    if (Object.keys(errors).length > 0) throw validationFailed(errors, "the event is invalid");
    const properties = (props ?? {}) as Record<string, unknown>;
    return { fees: await deps.advance.estimate(request.orgId, { code, externalSubscriptionId, properties }) };
  });

  app.put<{ Params: { lago_id: string } }>("/api/v1/fees/:lago_id", async (request) => {
    const body = request.body as Record<string, unknown> | null;
    const fee = body !== null && typeof body === "object" ? body["fee"] : undefined;
    if (fee === null || typeof fee !== "object" || Array.isArray(fee)) {
      throw new AppError("bad_request", "missing_parameter", 'the request body must be {"fee": {...}}', { fee: ["value_is_mandatory"] });
    }
    const status = (fee as Record<string, unknown>)["payment_status"];
    if (!(PAYMENT_STATUSES as readonly unknown[]).includes(status)) {
      throw validationFailed({ payment_status: [`must_be_one_of_${PAYMENT_STATUSES.join("_")}`] }, "the fee is invalid");
    }
    const found = await deps.invoicing.getFee(request.orgId, request.params.lago_id);
    if (found.invoiceId !== null) {
      throw new AppError("not_allowed", "fee_is_invoiced", "a fee on an invoice is paid with its invoice (PUT /api/v1/invoices/:lago_id)");
    }
    await deps.db.query("UPDATE fees SET payment_status = $3, updated_at = $4 WHERE org_id = $1 AND id = $2 AND invoice_id IS NULL", [
      request.orgId,
      found.id,
      status as PaymentStatus,
      new Date(deps.clock.now(request.orgId)),
    ]);
    return { fee: feeJson(await deps.invoicing.getFee(request.orgId, request.params.lago_id)) };
  });
}
