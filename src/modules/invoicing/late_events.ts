// Late events for periods already invoiced (core/adjustments_late.ts decides the amounts). When an
// invoice is finalized, the wall-clock time up to which stored events were counted is recorded
// (`recordUsageCutoff`). When a subscription's next instant is billed, its last LATE_PERIODS
// finalized periods are checked for events stored after that time with a timestamp in the period;
// a period that has some is priced again and the differences become adjustment fees on the new
// invoice (`lateAdjustmentFees`). A bucket now worth less shows as a zero-amount note on the new
// invoice and, when the new invoice is finalized, a credit note on the period's invoice for the
// difference (`issueLateCredits`), drawn on by the new invoice like any credit note.
import type { Queryable } from "../../db/db.ts";
import { Decimal } from "../../shared/money.ts";
import type { SubscriptionUsage, UsageWindow } from "../metering/index.ts";
import type { InvoiceAdjustments, InvoiceRef } from "./adjustments.ts";
import type { Subscription } from "../subscriptions/index.ts";
import { type LateAdjustments, billedBuckets, bucketKey, lateAdjustments } from "./core/adjustments_late.ts";
import { type BillingTerms, describeInstant } from "./core/due.ts";
import { type FeeDraft, chargeFees } from "./core/fees.ts";
import { issuingDateOf } from "./core/issuing.ts";

/** How many of a subscription's latest invoiced periods are checked for late events at each billing. */
export const LATE_PERIODS = 2;
/**
 * Events stored this long before a cutoff still trigger a check: an event whose batch was being
 * committed while the invoice was computed may carry an earlier created_at. A check that finds
 * nothing new costs a recomputation and bills nothing.
 */
export const CUTOFF_MARGIN_MS = 60_000;

/** onFinalized: the invoice counted the events stored up to `at` (wall clock, as events.created_at). */
export async function recordUsageCutoff(tx: Queryable, orgId: number, invoiceId: number, at: Date): Promise<void> {
  await tx.query(
    `INSERT INTO invoice_usage_cutoffs (org_id, invoice_id, events_before) VALUES ($1, $2, $3)
     ON CONFLICT (org_id, invoice_id) DO UPDATE SET events_before = excluded.events_before`,
    [orgId, invoiceId, at],
  );
}

/** `recordUsageCutoff` for several invoices finalized in one transaction (the billing job's batches). */
export async function recordUsageCutoffs(tx: Queryable, orgId: number, invoiceIds: readonly number[], at: Date): Promise<void> {
  if (invoiceIds.length === 0) return;
  await tx.query(
    `INSERT INTO invoice_usage_cutoffs (org_id, invoice_id, events_before) SELECT $1, i, $3 FROM unnest($2::bigint[]) AS i
     ON CONFLICT (org_id, invoice_id) DO UPDATE SET events_before = excluded.events_before`,
    [orgId, invoiceIds.map(String), at],
  );
}

interface Candidate {
  billedAt: Date;
  invoiceId: number;
  /** The latest cutoff of an invoice that accounted for the period (its own, or one that adjusted or credited it). */
  accountedUntil: Date;
}

/** The subscription's latest finalized periods billed before `before` that billed usage. */
async function candidates(q: Queryable, orgId: number, subscriptionId: number, before: Date): Promise<Candidate[]> {
  const { rows } = await q.query<{ billed_at: Date; invoice_id: string; accounted_until: Date }>(
    `SELECT b.billed_at, b.invoice_id,
            greatest(c.events_before,
                     (SELECT max(c2.events_before) FROM fees f
                        JOIN invoices i2 ON i2.org_id = f.org_id AND i2.id = f.invoice_id AND i2.status = 'finalized'
                        JOIN invoice_usage_cutoffs c2 ON c2.org_id = f.org_id AND c2.invoice_id = f.invoice_id
                       WHERE f.org_id = b.org_id AND f.subscription_id = b.subscription_id AND f.adjusts_billed_at = b.billed_at),
                     (SELECT max(c3.events_before) FROM late_event_credits l
                        JOIN fees f3 ON f3.org_id = l.org_id AND f3.id = l.fee_id
                        JOIN invoice_usage_cutoffs c3 ON c3.org_id = l.org_id AND c3.invoice_id = l.invoice_id
                       WHERE l.org_id = b.org_id AND f3.invoice_id = b.invoice_id)) AS accounted_until
       FROM invoice_subscriptions b
       JOIN invoices i ON i.org_id = b.org_id AND i.id = b.invoice_id AND i.status = 'finalized'
       JOIN invoice_usage_cutoffs c ON c.org_id = b.org_id AND c.invoice_id = b.invoice_id
      WHERE b.org_id = $1 AND b.subscription_id = $2 AND b.charges_from IS NOT NULL AND b.billed_at < $3
      ORDER BY b.billed_at DESC LIMIT $4`,
    [orgId, subscriptionId, before, LATE_PERIODS],
  );
  return rows.map((r) => ({ billedAt: new Date(r.billed_at), invoiceId: Number(r.invoice_id), accountedUntil: new Date(r.accounted_until) }));
}

async function hasLateEvents(q: Queryable, sub: Subscription, from: Date, to: Date, after: Date): Promise<boolean> {
  const codes = [...new Set(sub.plan.charges.map((c) => c.metric.code))];
  if (codes.length === 0) return false;
  const { rows } = await q.query<{ late: boolean }>(
    `SELECT EXISTS (SELECT 1 FROM events e WHERE e.org_id = $1 AND e.code = ANY($2::text[]) AND e.external_subscription_id = $3
                      AND e.ts >= $4 AND e.ts < $5 AND e.created_at > $6) AS late`,
    [sub.orgId, codes, sub.externalId, from, to, new Date(after.getTime() - CUTOFF_MARGIN_MS)],
  );
  return rows[0]?.late === true;
}

/** What was billed for the period of `invoiceId` at `billedAt`: its usage fees, adjustments (not voided), late-event credits. */
async function billedFor(q: Queryable, orgId: number, subscriptionId: number, c: Candidate, currency: string) {
  const { rows } = await q.query<{
    id: string;
    original: boolean;
    charge_id: string;
    bucket_index: number;
    grouped_by: Record<string, string | null> | string | null;
    units: string;
    events_count: string;
    precise_amount: string;
    amount_cents: string;
  }>(
    `SELECT f.id, f.adjusts_billed_at IS NULL AS original, f.charge_id, f.bucket_index, f.grouped_by, f.units::text AS units, f.events_count,
            f.precise_amount::text AS precise_amount, f.amount_cents
       FROM fees f JOIN invoices i ON i.org_id = f.org_id AND i.id = f.invoice_id
      WHERE f.org_id = $1 AND f.subscription_id = $2 AND f.fee_type = 'charge' AND f.charge_id IS NOT NULL AND f.bucket_index IS NOT NULL
        AND ((f.invoice_id = $3 AND f.adjusts_billed_at IS NULL) OR (f.adjusts_billed_at = $4 AND i.status <> 'voided'))`,
    [orgId, subscriptionId, c.invoiceId, c.billedAt],
  );
  const credits = await q.query<{ fee_id: string; amount_cents: string }>(
    `SELECT l.fee_id, l.amount_cents FROM late_event_credits l JOIN fees f ON f.org_id = l.org_id AND f.id = l.fee_id
      WHERE l.org_id = $1 AND f.invoice_id = $2`,
    [orgId, c.invoiceId],
  );
  return billedBuckets(
    rows.map((r) => ({
      key: bucketKey(Number(r.charge_id), Number(r.bucket_index), typeof r.grouped_by === "string" ? JSON.parse(r.grouped_by) : r.grouped_by),
      feeId: Number(r.id),
      original: r.original,
      units: new Decimal(r.units),
      eventsCount: Number(r.events_count),
      preciseAmount: new Decimal(r.precise_amount),
      amountCents: BigInt(r.amount_cents),
    })),
    credits.rows.map((r) => ({ feeId: Number(r.fee_id), amountCents: BigInt(r.amount_cents) })),
    currency,
  );
}

export type UsageOf = (window: UsageWindow) => Promise<SubscriptionUsage>;

/**
 * The adjustments late events make to the subscription's periods invoiced before `before` (the
 * instant being billed): adjustment fees for the new invoice, credits for lowered buckets.
 */
export async function lateAdjustmentsOf(q: Queryable, sub: Subscription, terms: BillingTerms, before: Date, usageOf: UsageOf): Promise<LateAdjustments> {
  const out: LateAdjustments = { fees: [], credits: [] };
  const currency = sub.plan.amountCurrency;
  for (const c of await candidates(q, sub.orgId, sub.id, before)) {
    const instant = describeInstant(terms, c.billedAt);
    const span = instant?.charges ?? null;
    if (span === null) continue;
    if (!(await hasLateEvents(q, sub, span.from, span.to, c.accountedUntil))) continue;
    const window: UsageWindow = { period: span.period, from: span.from, to: span.to, issuingDate: issuingDateOf(span.period.end, sub.timezone) };
    const recomputed = chargeFees((await usageOf(window)).charges, span, currency);
    const billed = await billedFor(q, sub.orgId, sub.id, c, currency);
    const found = lateAdjustments(recomputed, billed, { billedAt: c.billedAt, eventsAfter: c.accountedUntil }, currency);
    out.fees.push(...found.fees);
    out.credits.push(...found.credits);
  }
  return out;
}

/** The credits an invoice's adjustment fees owe back: per fee of an earlier period, what late events took off it. */
export function lateCreditsOf(fees: readonly FeeDraft[]): { feeId: number; amountCents: bigint }[] {
  const out: { feeId: number; amountCents: bigint }[] = [];
  for (const f of fees) {
    const due = (f.amountDetails as { late_events?: { credit_due_cents?: number } } | null | undefined)?.late_events?.credit_due_cents ?? 0;
    const feeId = f.lateAdjustment?.adjustedFeeId ?? null;
    if (feeId !== null && Number.isSafeInteger(due) && due > 0) out.push({ feeId, amountCents: BigInt(due) });
  }
  return out;
}

/**
 * When `invoice` is finalized (in its transaction, before the customer's lock is taken and its
 * credit notes are read): each credit its adjustment fees owe back becomes a credit note on the earlier
 * period's invoice, recorded once per fee and finalizing invoice with the note it was issued as.
 * Answers the notes' announcements: the caller runs them once the invoice's fees are written (the
 * notes' webhooks show the adjustment fee they are traced to).
 */
export async function issueLateCredits(
  tx: Queryable,
  adj: InvoiceAdjustments,
  invoice: InvoiceRef,
  groups: readonly { fees: readonly FeeDraft[] }[],
  now: Date,
): Promise<(() => Promise<void>)[]> {
  const announcements: (() => Promise<void>)[] = [];
  if (adj.creditLateEvents === undefined) return announcements;
  for (const c of lateCreditsOf(groups.flatMap((g) => g.fees))) {
    const seen = await tx.query("SELECT 1 FROM late_event_credits WHERE org_id = $1 AND fee_id = $2 AND invoice_id = $3", [invoice.orgId, c.feeId, invoice.id]);
    if (seen.rows.length > 0) continue;
    const note = await adj.creditLateEvents(tx, invoice.orgId, c.feeId, c.amountCents, now);
    if (note === null) continue;
    await tx.query(
      `INSERT INTO late_event_credits (org_id, fee_id, invoice_id, amount_cents, credit_note_id, created_at) VALUES ($1, $2, $3, $4, $5, $6)`,
      [invoice.orgId, c.feeId, invoice.id, note.amountCents.toString(), note.creditNoteId, now],
    );
    announcements.push(note.announce);
  }
  return announcements;
}
