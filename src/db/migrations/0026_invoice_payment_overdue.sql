-- Overdue invoices (Lago's `payment_overdue`). A finalized invoice whose payment has not succeeded
-- is marked overdue once its payment_due_date has passed, by the organization's clock, in the
-- customer's calendar (the one its issuing date and due date were counted in). The flag is set
-- once, in the transaction that writes the `invoice.payment_overdue` webhook, and cleared when the
-- payment succeeds or the invoice is voided.
ALTER TABLE invoices ADD COLUMN payment_overdue boolean NOT NULL DEFAULT false;

-- What the overdue pass looks at: unpaid finalized invoices not marked yet, by due date.
CREATE INDEX invoices_overdue_candidates_idx ON invoices (org_id, payment_due_date)
  WHERE status = 'finalized' AND payment_status <> 'succeeded' AND NOT payment_overdue;
