// Add-ons as Lago defines them: a named amount sold once, by code, in one currency, with its own
// taxes; one-off invoices bill them (their amount, units and taxes overridable per fee). Pure.
import { type Checked, ErrorSink, Fields } from "../../catalog/index.ts";
import { isCurrency } from "../../../shared/money.ts";

export interface AddOn {
  readonly id: number;
  readonly orgId: number;
  readonly lagoId: string;
  readonly code: string;
  readonly name: string;
  readonly invoiceDisplayName: string | null;
  readonly description: string | null;
  /** Minor units, excluding taxes. */
  readonly amountCents: bigint;
  readonly amountCurrency: string;
  readonly taxCodes: readonly string[];
  readonly createdAt: Date;
}

export interface AddOnDraft {
  readonly code: string;
  readonly name: string;
  readonly invoiceDisplayName: string | null;
  readonly description: string | null;
  readonly amountCents: bigint;
  readonly amountCurrency: string;
  readonly taxCodes: readonly string[];
}

/** A create (`current` null) or an update applying the fields sent onto `current`. */
export function checkAddOn(raw: unknown, current: AddOnDraft | null): Checked<AddOnDraft> {
  const sink = new ErrorSink();
  const f = new Fields(raw, sink);
  const updating = current !== null;
  const name = f.take(updating, "name", () => f.requiredText("name"), current?.name ?? "");
  const code = f.take(updating, "code", () => f.requiredText("code"), current?.code ?? "");
  const invoiceDisplayName = f.take(updating, "invoice_display_name", () => f.optionalText("invoice_display_name", 255), current?.invoiceDisplayName ?? null);
  const description = f.take(updating, "description", () => f.optionalText("description"), current?.description ?? null);
  let amountCents = current?.amountCents ?? 0n;
  if (!updating || f.has("amount_cents")) {
    if (f.obj["amount_cents"] === undefined || f.obj["amount_cents"] === null) f.fail("amount_cents", "value_is_mandatory");
    else amountCents = f.cents("amount_cents") ?? amountCents;
  }
  let amountCurrency = current?.amountCurrency ?? "";
  if (!updating || f.has("amount_currency")) {
    const v = f.obj["amount_currency"];
    if (v === undefined || v === null || v === "") f.fail("amount_currency", "value_is_mandatory");
    else if (!isCurrency(v)) f.fail("amount_currency", "value_is_invalid");
    else amountCurrency = v;
  }
  const taxCodes = f.take(updating, "tax_codes", () => f.stringList("tax_codes") ?? [], current?.taxCodes ?? []);
  return sink.result({ code, name, invoiceDisplayName, description, amountCents, amountCurrency, taxCodes });
}

export const draftOfAddOn = (a: AddOn): AddOnDraft => ({
  code: a.code,
  name: a.name,
  invoiceDisplayName: a.invoiceDisplayName,
  description: a.description,
  amountCents: a.amountCents,
  amountCurrency: a.amountCurrency,
  taxCodes: a.taxCodes,
});
