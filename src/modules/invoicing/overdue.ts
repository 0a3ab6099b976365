// Overdue invoices (Lago's `payment_overdue` and `invoice.payment_overdue`). A finalized invoice
// whose payment has not succeeded becomes overdue once its payment_due_date has passed: the due
// date is a day of the customer's calendar (the issuing day in the customer's timezone plus the net
// payment term), so the invoice is overdue from the start of the next day there, by the
// organization's clock (its test clock when frozen). The pass marks such invoices set-based, a
// batch per transaction, and writes the webhook of each invoice it marked in that transaction; a
// successful payment or a void clears the flag (payments/store.ts, store.markVoided).
import type { Db, Queryable } from "../../db/db.ts";
import type { Clock } from "../../shared/clock.ts";
import { type Customer, customerJson } from "../customers/index.ts";
import type { EnqueueWebhook } from "../webhooks/index.ts";
import { addDays, issuingDateOf } from "./core/issuing.ts";
import { invoiceJson } from "./core/json.ts";
import * as store from "./store.ts";

export interface OverdueDeps {
  readonly db: Db;
  readonly clock: Clock;
  readonly customers: { findByIds(orgId: number, ids: readonly number[], q?: Queryable): Promise<Customer[]> };
  readonly enqueueWebhook: EnqueueWebhook;
}

export interface OverdueRun {
  readonly organizations: number;
  /** Invoices marked overdue (one `invoice.payment_overdue` each). */
  readonly marked: number;
  /** Organizations whose pass failed (retried by the next run). */
  readonly errors: unknown[];
}

/** Invoices marked per transaction: bounds a transaction's locks and webhooks. */
const BATCH = 500;

/**
 * Marks overdue what has fallen due unpaid by each organization's clock (one organization, or
 * every one with an unpaid invoice). Idempotent: an invoice is marked, and its webhook written,
 * once, however many passes run at once.
 */
export async function markOverdueInvoices(deps: OverdueDeps, opts: { orgId?: number; batchSize?: number } = {}): Promise<OverdueRun> {
  const orgIds = opts.orgId !== undefined ? [opts.orgId] : await store.organizationsWithUnpaidInvoices(deps.db);
  const errors: unknown[] = [];
  let marked = 0;
  for (const orgId of orgIds) {
    try {
      marked += await markOrganization(deps, orgId, opts.batchSize ?? BATCH);
    } catch (err) {
      errors.push(err);
    }
  }
  return { organizations: orgIds.length, marked, errors };
}

async function markOrganization(deps: OverdueDeps, orgId: number, batchSize: number): Promise<number> {
  const now = new Date(deps.clock.now(orgId));
  // No timezone's today is later than the UTC day after today's: a cheap bound for the candidates.
  const latest = addDays(issuingDateOf(now, "UTC"), 1);
  const todays: { timezone: string; today: string }[] = [];
  for (const timezone of await store.overdueCandidateTimezones(deps.db, orgId, latest)) {
    try {
      todays.push({ timezone, today: issuingDateOf(now, timezone) });
    } catch {
      // A timezone the runtime does not know: nothing of this customer was issued either.
    }
  }
  if (todays.length === 0) return 0;
  let marked = 0;
  for (;;) {
    const n = await deps.db.transaction(async (tx) => {
      const invoices = await store.markOverdue(tx, orgId, todays, now, batchSize);
      if (invoices.length === 0) return 0;
      const customers = new Map(
        (await deps.customers.findByIds(orgId, [...new Set(invoices.map((i) => i.customerId))], tx)).map((c) => [c.id, c] as const),
      );
      for (const invoice of invoices) {
        const customer = customers.get(invoice.customerId);
        const object = invoiceJson(invoice, { customer: customer === undefined ? null : customerJson(customer) });
        await deps.enqueueWebhook(tx, orgId, "invoice.payment_overdue", "invoice", object);
      }
      return invoices.length;
    });
    marked += n;
    if (n < batchSize) return marked;
  }
}
