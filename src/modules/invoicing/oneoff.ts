// One-off invoices (Lago's POST /api/v1/invoices): add-ons billed to a customer at once, one fee per
// line (`fee_type` add_on), each line's unit amount (default: the add-on's), units (default 1),
// description, display name and taxes (default: the add-on's) overridable.
import type { FastifyInstance } from "fastify";
import type { Queryable } from "../../db/db.ts";
import { AppError, type FieldErrors, notFound, validationFailed } from "../../shared/errors.ts";
import { Decimal, fromCents, isCurrency, parseMoney } from "../../shared/money.ts";
import type { AddOn } from "../add_ons/index.ts";
import { type Checked, ErrorSink, Fields } from "../catalog/index.ts";
import { type Customer, applicableTimezone } from "../customers/index.ts";
import { type FeeDraft, centsOf } from "./core/fees.ts";
import { invoiceDetailsJson } from "./http.ts";
import type { InvoiceDetails, InvoicingService } from "./service.ts";

export interface OneOffLine {
  readonly addOnCode: string;
  /** Minor units per unit; null: the add-on's amount. */
  readonly unitAmountCents: bigint | null;
  readonly units: Decimal;
  /** undefined: the add-on's description. */
  readonly description: string | null | undefined;
  readonly invoiceDisplayName: string | null;
  /** null: the add-on's taxes. */
  readonly taxCodes: readonly string[] | null;
  readonly from: Date | null;
  readonly to: Date | null;
}

export interface OneOffRequest {
  readonly externalCustomerId: string;
  readonly currency: string | null;
  readonly lines: readonly OneOffLine[];
}

const UNITS = /^[0-9]{1,20}(?:\.[0-9]{0,20})?$/;
const MAX_LINES = 500;

function readUnits(f: Fields): Decimal {
  const v = f.obj["units"];
  if (v === undefined || v === null) return new Decimal(1);
  const text = typeof v === "number" && Number.isFinite(v) && v >= 0 ? String(v) : v;
  if (typeof text !== "string" || !UNITS.test(text)) {
    f.fail("units", "value_is_invalid");
    return new Decimal(1);
  }
  return parseMoney(text.endsWith(".") ? text.slice(0, -1) : text) ?? new Decimal(1);
}

function readTime(f: Fields, key: string): Date | null {
  const v = f.obj[key];
  if (v === undefined || v === null) return null;
  const at = typeof v === "string" ? Date.parse(v) : NaN;
  if (Number.isNaN(at)) {
    f.fail(key, "invalid_date");
    return null;
  }
  return new Date(at);
}

/** The body of POST /invoices, every broken field named (`fees[1].units`). */
export function checkOneOffInvoice(raw: unknown): Checked<OneOffRequest> {
  const sink = new ErrorSink();
  const f = new Fields(raw, sink);
  const externalCustomerId = f.requiredText("external_customer_id") ?? "";
  let currency: string | null = null;
  const c = f.obj["currency"];
  if (c !== undefined && c !== null) {
    if (isCurrency(c)) currency = c;
    else f.fail("currency", "value_is_invalid");
  }
  const lines: OneOffLine[] = [];
  const fees = f.array("fees");
  if (fees === undefined || fees === null || fees.length === 0) f.fail("fees", "no_fees");
  else if (fees.length > MAX_LINES) f.fail("fees", "too_many_fees");
  else {
    fees.forEach((rawLine, i) => {
      const l = new Fields(rawLine, sink, `fees[${i}].`);
      if (typeof rawLine !== "object" || rawLine === null || Array.isArray(rawLine)) {
        sink.add(`fees[${i}]`, "value_is_invalid");
        return;
      }
      const addOnCode = l.requiredText("add_on_code") ?? "";
      const unitAmountCents = l.cents("unit_amount_cents") ?? null;
      const units = readUnits(l);
      const description = l.optionalText("description");
      const invoiceDisplayName = l.optionalText("invoice_display_name", 255) ?? null;
      const taxCodes = l.stringList("tax_codes");
      const from = readTime(l, "from_datetime");
      const to = readTime(l, "to_datetime");
      if (from !== null && to !== null && to.getTime() < from.getTime()) l.fail("to_datetime", "invalid_date");
      lines.push({ addOnCode, unitAmountCents, units, description, invoiceDisplayName, taxCodes: taxCodes === undefined ? null : (taxCodes ?? []), from, to });
    });
  }
  return sink.result({ externalCustomerId, currency, lines });
}

/** The fee of one line: units × unit amount, rounded half-up once to the currency's minor unit. */
export function addOnFee(addOn: AddOn, line: OneOffLine, currency: string, now: Date): FeeDraft {
  const unitCents = line.unitAmountCents ?? addOn.amountCents;
  const unit = fromCents(unitCents, currency);
  const precise = unit.times(line.units);
  return {
    feeType: "add_on",
    charge: null,
    chargeFilterId: null,
    from: line.from ?? now,
    to: line.to ?? line.from ?? now,
    usage: null,
    units: line.units,
    totalAggregatedUnits: line.units,
    eventsCount: 0,
    preciseAmount: precise,
    amountCents: centsOf(precise, currency),
    preciseUnitAmount: unit,
    unitAmountCents: unitCents,
    payInAdvance: false,
    invoiceable: true,
    item: {
      type: "add_on",
      code: addOn.code,
      name: addOn.name,
      description: addOn.description,
      invoiceDisplayName: line.invoiceDisplayName ?? addOn.invoiceDisplayName ?? addOn.name,
      filterInvoiceDisplayName: null,
      filters: null,
      lagoItemId: addOn.lagoId,
      itemType: "AddOn",
    },
    amountDetails: {},
    addOn: { taxCodes: line.taxCodes ?? addOn.taxCodes, description: line.description === undefined ? addOn.description : line.description },
  };
}

export interface OneOffDeps {
  readonly invoicing: InvoicingService;
  readonly customers: { findByExternalId(orgId: number, externalId: string): Promise<Customer | null> };
  readonly addOns: { byCodes(orgId: number, codes: readonly string[]): Promise<ReadonlyMap<string, AddOn>> };
  readonly taxes: { checkCodes(q: Queryable, orgId: number, fields: ReadonlyMap<string, readonly string[]>): Promise<void> };
  readonly db: Queryable;
  readonly now: (orgId: number) => Date;
}

/** POST /invoices: validates, resolves the customer, add-ons and taxes, and issues the invoice. */
export async function createOneOffInvoice(deps: OneOffDeps, orgId: number, body: unknown): Promise<InvoiceDetails> {
  const checked = checkOneOffInvoice((body as Record<string, unknown> | null)?.["invoice"]);
  if (!checked.ok) throw validationFailed(checked.errors, "the invoice is invalid");
  const req = checked.value;
  const customer = await deps.customers.findByExternalId(orgId, req.externalCustomerId);
  if (customer === null) throw notFound("customer", req.externalCustomerId);
  const addOns = await deps.addOns.byCodes(orgId, [...new Set(req.lines.map((l) => l.addOnCode))]);
  const missing = req.lines.find((l) => !addOns.has(l.addOnCode));
  if (missing !== undefined) throw notFound("add_on", missing.addOnCode);
  const currency = req.currency ?? customer.attributes.currency ?? addOns.get(req.lines[0]!.addOnCode)!.amountCurrency;
  const errors: FieldErrors = {};
  if (customer.attributes.currency !== null && customer.attributes.currency !== currency) errors["currency"] = ["currencies_does_not_match"];
  if (Object.keys(errors).length > 0) throw validationFailed(errors, "the invoice is invalid");
  const taxFields = new Map<string, readonly string[]>();
  req.lines.forEach((l, i) => {
    if (l.taxCodes !== null && l.taxCodes.length > 0) taxFields.set(`fees[${i}].tax_codes`, l.taxCodes);
  });
  await deps.taxes.checkCodes(deps.db, orgId, taxFields);
  const now = deps.now(orgId);
  const fees = req.lines.map((l) => addOnFee(addOns.get(l.addOnCode)!, l, currency, now));
  return deps.invoicing.issueOneOff(orgId, customer, currency, applicableTimezone(customer), fees);
}

export function registerOneOffInvoiceRoute(app: FastifyInstance, deps: OneOffDeps): void {
  app.post("/api/v1/invoices", async (request) => {
    const body = request.body as Record<string, unknown> | null;
    if (body === null || typeof body !== "object" || typeof body["invoice"] !== "object" || body["invoice"] === null) {
      throw new AppError("bad_request", "missing_parameter", 'the request body must be {"invoice": {...}}', { invoice: ["value_is_mandatory"] });
    }
    return { invoice: invoiceDetailsJson(await createOneOffInvoice(deps, request.orgId, body)) };
  });
}
