-- valueverse: no-transaction
-- Indexes for the analytics routes (src/modules/analytics/store.ts), built CONCURRENTLY so writes to
-- these tables go on while they build: this migration runs outside a transaction, statement by
-- statement (src/db/migrate.ts). Each statement must be safe to run again after a failure: IF NOT
-- EXISTS skips an index built by an earlier attempt, and the runner drops an INVALID one left by a
-- failed build before building it again.

-- gross_revenue: what each invoice's credit notes refunded (non-voided, with a refund), read from
-- the index alone instead of every credit note of the organization.
CREATE INDEX CONCURRENTLY IF NOT EXISTS credit_notes_refunds_idx ON credit_notes (org_id, invoice_id) INCLUDE (refund_amount_cents)
  WHERE voided_at IS NULL AND refund_amount_cents > 0;

-- gross_revenue: fees paid in advance that are on no invoice, by creation time.
CREATE INDEX CONCURRENTLY IF NOT EXISTS fees_advance_unbilled_created_idx ON fees (org_id, created_at)
  WHERE invoice_id IS NULL AND pay_in_advance;

-- overdue_balance: finalized invoices not paid (pending or failed), by due date.
CREATE INDEX CONCURRENTLY IF NOT EXISTS invoices_unpaid_due_idx ON invoices (org_id, payment_due_date)
  WHERE status = 'finalized' AND payment_status IN ('pending', 'failed');
