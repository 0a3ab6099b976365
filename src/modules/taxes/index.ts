// Taxes: Lago's /taxes (a percentage by code, optionally the organization's default), the tax
// hierarchy a fee follows (charge > plan > customer > organization) and the tax arithmetic of fees
// and invoices.
export { TaxService } from "./service.ts";
export { registerTaxRoutes, taxJson, bodyOf, pageOf } from "./http.ts";
export {
  checkTax,
  feeTaxes,
  invoiceTaxes,
  rateNumber,
  roundCents,
  taxesForFee,
  usageTaxes,
  type FeeTaxLine,
  type FeeTaxes,
  type InvoiceTaxLine,
  type Tax,
  type TaxDraft,
  type TaxLevels,
} from "./core/tax.ts";
