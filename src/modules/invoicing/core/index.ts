// Invoicing core: which billing instants of a subscription are due and what each bills, fees from
// usage and plan with day-count proration, rounding once per fee, totals that are never negative,
// issuing dates, grace periods and numbering, Lago's JSON. Pure: no IO, no clock.
export * from "./types.ts";
export * from "./due.ts";
export * from "./fees.ts";
export * from "./commitments.ts";
export * from "./totals.ts";
export * from "./issuing.ts";
export * from "./query.ts";
export * from "./records.ts";
export * from "./json.ts";
export * from "./progressive.ts";
