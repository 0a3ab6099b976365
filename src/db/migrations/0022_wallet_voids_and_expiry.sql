-- What the unique index of 0009 protects is one draw of a wallet per invoice: a finalized invoice
-- takes prepaid credits once (its outbound `invoiced` transaction). It also forbade any other
-- outbound transaction naming the invoice, so the credits a credit note takes back out of a paid
-- purchase (outbound `voided`, one per note, several per credit invoice) could not name the credit
-- invoice they were bought on. The index now covers draws only; those voids name their invoice.
DROP INDEX wallet_transactions_invoice_idx;
CREATE UNIQUE INDEX wallet_transactions_draw_idx ON wallet_transactions (org_id, wallet_id, invoice_id)
  WHERE transaction_type = 'outbound' AND transaction_status = 'invoiced';

-- Voids written before this migration name their note only: they get its invoice.
UPDATE wallet_transactions t SET invoice_id = cn.invoice_id
  FROM credit_notes cn
 WHERE cn.org_id = t.org_id AND cn.id = t.credit_note_id
   AND t.invoice_id IS NULL AND t.transaction_type = 'outbound' AND t.transaction_status = 'voided';

-- Wallets past their expiration_at are ended by the billing job's wallet pass (their balance
-- voided, the wallet terminated): it looks for them by organization.
CREATE INDEX wallets_expiring_idx ON wallets (org_id, expiration_at) WHERE status = 'active' AND expiration_at IS NOT NULL;
