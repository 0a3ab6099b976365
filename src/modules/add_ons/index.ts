// Add-ons: Lago's /add_ons (an amount sold once, by code, with its taxes), billed by one-off
// invoices (POST /api/v1/invoices, in invoicing).
export { AddOnService, type AddOnDeps } from "./service.ts";
export { addOnJson, registerAddOnRoutes } from "./http.ts";
export { checkAddOn, type AddOn, type AddOnDraft } from "./core/add_on.ts";
