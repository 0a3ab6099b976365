// Pricing: turns a charge's model and properties into a validated Price and rates usage into an exact
// amount with invoice lines. Pure; other modules import it from here.
export * from "./core/index.ts";
