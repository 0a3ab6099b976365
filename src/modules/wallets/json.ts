// Lago's WalletObject and WalletTransactionObject.
import { Decimal } from "../../shared/money.ts";
import { centsToAmount, centsToCredits } from "./core/wallet.ts";
import type { RuleRecord, Wallet, WalletTransaction } from "./store.ts";

const iso = (d: Date | null) => (d === null ? null : d.toISOString().replace(/\.\d{3}Z$/, "Z"));
// Credits are shown to 5 decimals (Lago stores them so); money amounts are exact.
const credits = (cents: bigint, w: Pick<Wallet, "rateAmount" | "currency">) => centsToCredits(cents, w.rateAmount, w.currency).toDecimalPlaces(5).toString();

export function walletJson(w: Wallet) {
  return {
    lago_id: w.lagoId,
    lago_customer_id: w.customerLagoId,
    external_customer_id: w.externalCustomerId,
    status: w.status,
    currency: w.currency,
    name: w.name,
    code: w.code,
    priority: w.priority,
    rate_amount: w.rateAmount.toString(),
    credits_balance: credits(w.balanceCents, w),
    balance_cents: Number(w.balanceCents),
    consumed_credits: credits(w.consumedAmountCents, w),
    // Ours: the same consumption in minor units.
    consumed_amount_cents: Number(w.consumedAmountCents),
    created_at: iso(w.createdAt),
    expiration_at: iso(w.expirationAt),
    last_balance_sync_at: iso(w.lastBalanceSyncAt),
    last_consumed_credit_at: iso(w.lastConsumedCreditAt),
    terminated_at: iso(w.terminatedAt),
    invoice_requires_successful_payment: w.invoiceRequiresSuccessfulPayment,
    applies_to: { fee_types: [] as string[], billable_metric_codes: [] as string[] },
    recurring_transaction_rules: (w.rules ?? []).map(ruleJson),
    // Current usage is not reserved against the balance: the ongoing balance is the balance.
    ongoing_balance_cents: Number(w.balanceCents),
    ongoing_usage_balance_cents: 0,
    credits_ongoing_balance: credits(w.balanceCents, w),
    credits_ongoing_usage_balance: "0",
    paid_top_up_min_amount_cents: null,
    paid_top_up_max_amount_cents: null,
    metadata: [] as unknown[],
  };
}

export function walletTransactionJson(t: WalletTransaction) {
  return {
    lago_id: t.lagoId,
    lago_wallet_id: t.walletLagoId,
    lago_invoice_id: t.invoiceLagoId,
    lago_credit_note_id: t.creditNoteLagoId,
    lago_voided_invoice_id: null,
    status: t.status,
    source: t.source,
    transaction_status: t.transactionStatus,
    transaction_type: t.transactionType,
    amount: centsToAmount(t.amountCents, t.currency),
    // Ours: the same in minor units.
    amount_cents: Number(t.amountCents),
    credit_amount: t.creditAmount.toDecimalPlaces(5).toString(),
    invoice_requires_successful_payment: t.invoiceRequiresSuccessfulPayment,
    metadata: t.metadata.map((m) => ({ key: m.key, value: m.value })),
    remaining_amount_cents: null,
    remaining_credit_amount: null,
    priority: 50,
    settled_at: iso(t.settledAt),
    failed_at: iso(t.failedAt),
    created_at: iso(t.createdAt),
    name: t.name,
    payment_method: { payment_method_type: "provider", payment_method_id: null },
  };
}

/** Lago's WalletRecurringTransactionRule. */
export function ruleJson(r: RuleRecord) {
  return {
    lago_id: r.lagoId,
    trigger: r.trigger,
    method: r.method,
    interval: r.interval,
    status: r.status,
    threshold_credits: (r.thresholdCredits ?? new Decimal(0)).toString(),
    paid_credits: r.paidCredits.toString(),
    granted_credits: r.grantedCredits.toString(),
    grants_target_top_up: r.grantsTargetTopUp,
    started_at: iso(r.startedAt),
    target_ongoing_balance: r.targetOngoingBalance === null ? null : r.targetOngoingBalance.toString(),
    created_at: iso(r.createdAt),
    expiration_at: iso(r.expirationAt),
    invoice_requires_successful_payment: r.invoiceRequiresSuccessfulPayment,
    transaction_metadata: r.transactionMetadata.map((m) => ({ key: m.key, value: m.value })),
    transaction_name: r.transactionName,
    ignore_paid_top_up_limits: false,
    // Ours: when an interval rule tops up next (null for a threshold rule).
    next_top_up_at: iso(r.nextDueAt),
  };
}
