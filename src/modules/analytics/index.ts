// Analytics: Lago's revenue reports (/analytics/gross_revenue, invoice_collection, invoiced_usage,
// mrr, overdue_balance) — monthly series per currency from invoices, fees and credit notes — and
// /analytics/usage, billed usage per metric by day, week or month.
// Owns no table: it reads what invoicing, credit notes and payments wrote.
export { AnalyticsService } from "./service.ts";
export { registerAnalyticsRoutes } from "./http.ts";
