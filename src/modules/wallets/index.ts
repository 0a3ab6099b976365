// Wallets: Lago's /wallets and /wallet_transactions (prepaid credits bought or granted at a rate),
// drawn on by finalized invoices after credit notes, each draw an outbound transaction; after each
// billing job (`runRecurringRules`) expired wallets end and recurring top-up rules run.
export { WalletService, type WalletDeps, type WalletWebhook } from "./service.ts";
export { registerWalletRoutes } from "./http.ts";
export { ruleJson, walletJson, walletTransactionJson } from "./json.ts";
export { centsToCredits, checkTopUp, checkWalletCreate, creditsToCents } from "./core/wallet.ts";
export type { Wallet, WalletTransaction } from "./store.ts";
