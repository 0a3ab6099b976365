// The minimum commitment of a closed plan period, read against what the period already billed:
// earlier invoices' subscription and usage fees from inside the period (a plan paid in advance
// billed its fee at the start; monthly charges of a yearly plan were billed month by month) plus
// the fees of the invoice being written. Voided invoices and progressive billing invoices (whose
// usage the period-end invoice bills again, crediting them) do not count.
import type { Queryable } from "../../db/db.ts";
import type { Subscription } from "../subscriptions/index.ts";
import {
  type BillingInstant,
  type BillingTerms,
  type FeeDraft,
  commitmentFee,
  commitmentSpanOf,
  countsTowardCommitment,
} from "./core/index.ts";

/** Minor units of subscription and charge fees of the subscription from inside [from, to) on earlier invoices. */
export async function billedInPeriod(q: Queryable, orgId: number, subscriptionId: number, from: Date, to: Date): Promise<bigint> {
  const { rows } = await q.query<{ cents: string | null }>(
    `SELECT sum(f.amount_cents)::text AS cents
       FROM fees f JOIN invoices i ON i.org_id = f.org_id AND i.id = f.invoice_id
      WHERE f.org_id = $1 AND f.subscription_id = $2 AND f.fee_type IN ('subscription', 'charge')
        AND f.from_datetime >= $3 AND f.from_datetime < $4
        AND i.status <> 'voided' AND i.invoice_type <> 'progressive_billing'`,
    [orgId, subscriptionId, from, to],
  );
  return BigInt(rows[0]?.cents ?? "0");
}

/** The commitment fee an instant's invoice carries (null: no commitment, not a period end, or reached). */
export async function commitmentFeeOf(
  q: Queryable,
  sub: Subscription,
  terms: BillingTerms,
  instant: BillingInstant,
  fees: readonly FeeDraft[],
): Promise<FeeDraft | null> {
  const commitment = sub.plan.minimumCommitment ?? null;
  if (commitment === null) return null;
  const span = commitmentSpanOf(terms, instant);
  if (span === null) return null;
  const here = fees.filter((f) => countsTowardCommitment(f, span.period)).reduce((s, f) => s + f.amountCents, 0n);
  const before = await billedInPeriod(q, sub.orgId, sub.id, span.period.start, span.period.end);
  return commitmentFee(commitment, span, here + before, sub.plan, sub.plan.amountCurrency);
}
