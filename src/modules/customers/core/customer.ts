// A customer as Lago's API defines it: the attributes a client may set, the validation of an upsert
// request (every broken field reported, named as the request names it) and the merge of a request
// into the stored customer. Pure: ids and "now" come from the caller.
import type { FieldErrors } from "../../../shared/errors.ts";
import { isCurrency } from "../../../shared/money.ts";
import { isTimezone } from "../../billing/core/index.ts";
import { isCountry } from "./countries.ts";

export const CUSTOMER_TYPES = ["company", "individual"] as const;
export const ACCOUNT_TYPES = ["customer", "partner"] as const;
export const FINALIZE_ZERO_AMOUNT_INVOICE = ["inherit", "skip", "finalize"] as const;
export const PAYMENT_PROVIDERS = ["stripe", "adyen", "cashfree", "flutterwave", "gocardless", "moneyhash"] as const;
export const ISSUING_DATE_ANCHORS = ["current_period_end", "next_period_start"] as const;
export const ISSUING_DATE_ADJUSTMENTS = ["align_with_finalization_date", "keep_anchor"] as const;

export type CustomerType = (typeof CUSTOMER_TYPES)[number];
export type AccountType = (typeof ACCOUNT_TYPES)[number];
export type FinalizeZeroAmountInvoice = (typeof FINALIZE_ZERO_AMOUNT_INVOICE)[number];
export type PaymentProvider = (typeof PAYMENT_PROVIDERS)[number];

/** Lago's limits: at most 5 metadata entries, keys up to 20 characters, values up to 100. */
export const METADATA_MAX_COUNT = 5;
export const METADATA_KEY_MAX = 20;
export const METADATA_VALUE_MAX = 100;
export const EXTERNAL_ID_MAX = 255;
export const TEXT_MAX = 255;
export const URL_MAX = 1024;

export interface Address {
  address_line1: string | null;
  address_line2: string | null;
  city: string | null;
  state: string | null;
  zipcode: string | null;
  country: string | null;
}

export interface BillingConfiguration {
  invoice_grace_period: number | null;
  payment_provider: PaymentProvider | null;
  payment_provider_code: string | null;
  provider_customer_id: string | null;
  document_locale: string | null;
  subscription_invoice_issuing_date_anchor: (typeof ISSUING_DATE_ANCHORS)[number] | null;
  subscription_invoice_issuing_date_adjustment: (typeof ISSUING_DATE_ADJUSTMENTS)[number] | null;
}

export interface CustomerMetadata {
  lago_id: string;
  key: string;
  value: string;
  display_in_invoice: boolean;
  /** ISO 8601. */
  created_at: string;
}

/** Everything a client may set on a customer, under Lago's field names. */
export interface CustomerAttributes {
  name: string | null;
  firstname: string | null;
  lastname: string | null;
  email: string | null;
  /** ISO 4217; null until set by the client (or, later, by a first subscription's plan). */
  currency: string | null;
  /** IANA timezone; null means the organization's (UTC). */
  timezone: string | null;
  country: string | null;
  address_line1: string | null;
  address_line2: string | null;
  city: string | null;
  state: string | null;
  zipcode: string | null;
  legal_name: string | null;
  legal_number: string | null;
  tax_identification_number: string | null;
  phone: string | null;
  url: string | null;
  logo_url: string | null;
  external_salesforce_id: string | null;
  customer_type: CustomerType | null;
  account_type: AccountType;
  net_payment_term: number | null;
  finalize_zero_amount_invoice: FinalizeZeroAmountInvoice;
  skip_invoice_custom_sections: boolean;
  shipping_address: Address;
  billing_configuration: BillingConfiguration;
  metadata: CustomerMetadata[];
  /** Placeholder until taxes exist: the codes as given. */
  tax_codes: string[];
}

/** A stored customer. */
export interface Customer {
  /** Internal key (other tables reference it). */
  id: number;
  orgId: number;
  lagoId: string;
  externalId: string;
  sequentialId: number;
  slug: string;
  attributes: CustomerAttributes;
  createdAt: Date;
  updatedAt: Date;
  deletedAt: Date | null;
  /** The taxes its `tax_codes` name, in their order, read with the customer (absent: none read). */
  taxes?: readonly CustomerTax[];
}

/** A tax as a customer shows it (Lago's TaxObject). */
export interface CustomerTax {
  readonly lago_id: string;
  readonly name: string;
  readonly code: string;
  readonly description: string | null;
  readonly rate: number;
  readonly applied_to_organization: boolean;
  readonly created_at: string;
}

/** The timezone billing periods of this customer follow (Lago's `applicable_timezone`). */
export const applicableTimezone = (c: Customer): string => c.attributes.timezone ?? "UTC";

export const EMPTY_ADDRESS: Address = { address_line1: null, address_line2: null, city: null, state: null, zipcode: null, country: null };

export const EMPTY_BILLING: BillingConfiguration = {
  invoice_grace_period: null,
  payment_provider: null,
  payment_provider_code: null,
  provider_customer_id: null,
  document_locale: null,
  subscription_invoice_issuing_date_anchor: null,
  subscription_invoice_issuing_date_adjustment: null,
};

/** A new customer before the request's fields are applied (Lago's column defaults). */
export const NEW_CUSTOMER: CustomerAttributes = {
  name: null,
  firstname: null,
  lastname: null,
  email: null,
  currency: null,
  timezone: null,
  country: null,
  address_line1: null,
  address_line2: null,
  city: null,
  state: null,
  zipcode: null,
  legal_name: null,
  legal_number: null,
  tax_identification_number: null,
  phone: null,
  url: null,
  logo_url: null,
  external_salesforce_id: null,
  customer_type: null,
  account_type: "customer",
  net_payment_term: null,
  finalize_zero_amount_invoice: "inherit",
  skip_invoice_custom_sections: false,
  shipping_address: EMPTY_ADDRESS,
  billing_configuration: EMPTY_BILLING,
  metadata: [],
  tax_codes: [],
};

export interface MetadataInput {
  /** The `lago_id` of an entry to update; absent or unknown: a new entry. */
  id: string | null;
  key: string;
  value: string;
  display_in_invoice: boolean;
}

type ScalarField = Exclude<keyof CustomerAttributes, "shipping_address" | "billing_configuration" | "metadata">;

/**
 * A validated upsert request. Only the fields the request carries are present: as in Lago, an
 * update changes those and leaves every other field as it was (an explicit null clears a field).
 */
export interface CustomerPatch {
  externalId: string;
  fields: Partial<Pick<CustomerAttributes, ScalarField>>;
  shippingAddress: Partial<Address>;
  billingConfiguration: Partial<BillingConfiguration>;
  /** Present: the complete new list (entries not named by `id` are removed, as Lago does). */
  metadata?: MetadataInput[];
}

export type ValidatedCustomer = { ok: true; patch: CustomerPatch } | { ok: false; errors: FieldErrors };

const has = (o: Record<string, unknown>, k: string) => Object.prototype.hasOwnProperty.call(o, k) && o[k] !== undefined;
const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === "object" && !Array.isArray(v);

// Free-text fields: any string up to the limit, or null.
const TEXT_FIELDS: ReadonlyArray<readonly [ScalarField, number]> = [
  ["name", TEXT_MAX],
  ["firstname", TEXT_MAX],
  ["lastname", TEXT_MAX],
  ["legal_name", TEXT_MAX],
  ["legal_number", TEXT_MAX],
  ["tax_identification_number", TEXT_MAX],
  ["phone", TEXT_MAX],
  ["url", URL_MAX],
  ["logo_url", URL_MAX],
  ["external_salesforce_id", TEXT_MAX],
];
// Address lines: as in Lago, an empty string is stored as null.
const ADDRESS_LINES = ["address_line1", "address_line2", "city", "state", "zipcode"] as const;

// Lago accepts one address or several separated by commas.
const EMAIL = /^[^@\s,]+@[^@\s,]+\.[^@\s,]+$/;
const languageNames = new Intl.DisplayNames(["en"], { type: "language", fallback: "none" });

/** A string PostgreSQL stores unchanged, at most `max` characters; the reason it is not, otherwise. */
function textProblem(value: string, max: number): string | null {
  if (value.length > max) return `value_is_too_long (max ${max} characters)`;
  if (value.includes("\u0000")) return "contains_nul_character";
  if (!value.isWellFormed()) return "invalid_unicode (unpaired surrogate)";
  return null;
}

/** Reads an optional text value: null clears; anything but a string is refused. */
function text(value: unknown, field: string, max: number, errors: FieldErrors): string | null | undefined {
  if (value === null) return null;
  if (typeof value !== "string") {
    errors[field] = ["must_be_a_string"];
    return undefined;
  }
  const problem = textProblem(value, max);
  if (problem !== null) {
    errors[field] = [problem];
    return undefined;
  }
  return value;
}

function oneOf<T extends string>(value: unknown, field: string, allowed: readonly T[], errors: FieldErrors, nullable = true): T | null | undefined {
  if (value === null && nullable) return null;
  if (typeof value === "string" && (allowed as readonly string[]).includes(value)) return value as T;
  errors[field] = ["value_is_invalid"];
  return undefined;
}

/** A whole number of days, at least 0 (Lago casts numeric strings too), or null. */
function days(value: unknown, field: string, errors: FieldErrors): number | null | undefined {
  if (value === null) return null;
  const n = typeof value === "string" && /^-?\d{1,9}$/.test(value.trim()) ? Number(value.trim()) : value;
  if (typeof n !== "number" || !Number.isSafeInteger(n)) {
    errors[field] = ["must_be_an_integer"];
    return undefined;
  }
  if (n < 0 || n > 100_000) {
    errors[field] = ["value_is_out_of_range"];
    return undefined;
  }
  return n;
}

/**
 * The IANA name as stored: the runtime's spelling when the input differs only in case
 * ("europe/paris"); aliases (Asia/Kolkata, which the runtime calls Asia/Calcutta) stay as given.
 */
export function normalizeTimezone(value: unknown): string | null {
  if (typeof value !== "string" || value.length > 64 || !isTimezone(value)) return null;
  const resolved = new Intl.DateTimeFormat("en-US", { timeZone: value }).resolvedOptions().timeZone;
  return resolved.toLowerCase() === value.toLowerCase() ? resolved : value;
}

function country(value: unknown, field: string, errors: FieldErrors): string | null | undefined {
  if (value === null || value === "") return null;
  if (typeof value !== "string") {
    errors[field] = ["must_be_a_string"];
    return undefined;
  }
  const code = value.toUpperCase();
  if (!isCountry(code)) {
    errors[field] = ["not_a_valid_country_code"];
    return undefined;
  }
  return code;
}

function address(raw: Record<string, unknown>, prefix: string, errors: FieldErrors): Partial<Address> {
  const out: Partial<Address> = {};
  for (const field of ADDRESS_LINES) {
    if (!has(raw, field)) continue;
    const v = text(raw[field], prefix + field, TEXT_MAX, errors);
    if (v !== undefined) out[field] = v === "" ? null : v;
  }
  if (has(raw, "country")) {
    const v = country(raw.country, prefix + "country", errors);
    if (v !== undefined) out.country = v;
  }
  return out;
}

function billing(raw: Record<string, unknown>, errors: FieldErrors): Partial<BillingConfiguration> {
  const out: Partial<BillingConfiguration> = {};
  const p = "billing_configuration.";
  if (has(raw, "invoice_grace_period")) {
    const v = days(raw.invoice_grace_period, p + "invoice_grace_period", errors);
    if (v !== undefined) out.invoice_grace_period = v;
  }
  if (has(raw, "payment_provider")) {
    const v = oneOf(raw.payment_provider, p + "payment_provider", PAYMENT_PROVIDERS, errors);
    if (v !== undefined) out.payment_provider = v;
  }
  for (const field of ["payment_provider_code", "provider_customer_id"] as const) {
    if (!has(raw, field)) continue;
    const v = text(raw[field], p + field, TEXT_MAX, errors);
    if (v !== undefined) out[field] = v === "" ? null : v;
  }
  if (has(raw, "document_locale")) {
    const v = raw.document_locale;
    if (v === null) out.document_locale = null;
    else if (typeof v === "string" && /^[a-z]{2}$/.test(v) && languageNames.of(v) !== undefined) out.document_locale = v;
    else errors[p + "document_locale"] = ["not_a_valid_language_code"];
  }
  if (has(raw, "subscription_invoice_issuing_date_anchor")) {
    const v = oneOf(raw.subscription_invoice_issuing_date_anchor, p + "subscription_invoice_issuing_date_anchor", ISSUING_DATE_ANCHORS, errors);
    if (v !== undefined) out.subscription_invoice_issuing_date_anchor = v;
  }
  if (has(raw, "subscription_invoice_issuing_date_adjustment")) {
    const field = "subscription_invoice_issuing_date_adjustment";
    const v = oneOf(raw[field], p + field, ISSUING_DATE_ADJUSTMENTS, errors);
    if (v !== undefined) out.subscription_invoice_issuing_date_adjustment = v;
  }
  return out;
}

function metadata(raw: unknown, errors: FieldErrors): MetadataInput[] | undefined {
  if (!Array.isArray(raw)) {
    errors.metadata = ["must_be_an_array"];
    return undefined;
  }
  if (raw.length > METADATA_MAX_COUNT) {
    errors.metadata = [`invalid_count (at most ${METADATA_MAX_COUNT} entries)`];
    return undefined;
  }
  const out: MetadataInput[] = [];
  const keys = new Set<string>();
  raw.forEach((item, i) => {
    const p = `metadata[${i}].`;
    if (!isObject(item)) {
      errors[`metadata[${i}]`] = ["must_be_an_object"];
      return;
    }
    const before = Object.keys(errors).length;
    let key = "";
    if (item.key === undefined || item.key === null || item.key === "") errors[p + "key"] = ["value_is_mandatory"];
    else {
      const v = text(item.key, p + "key", METADATA_KEY_MAX, errors);
      if (v) {
        if (keys.has(v)) errors[p + "key"] = ["value_already_exist"];
        keys.add(v);
        key = v;
      }
    }
    let value = "";
    if (item.value === undefined || item.value === null || item.value === "") errors[p + "value"] = ["value_is_mandatory"];
    else value = text(item.value, p + "value", METADATA_VALUE_MAX, errors) ?? "";
    let id: string | null = null;
    if (item.id !== undefined && item.id !== null) {
      if (typeof item.id === "string" && /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(item.id)) id = item.id.toLowerCase();
      else errors[p + "id"] = ["invalid_uuid"];
    }
    let display = false;
    if (item.display_in_invoice !== undefined && item.display_in_invoice !== null) {
      if (typeof item.display_in_invoice === "boolean") display = item.display_in_invoice;
      else errors[p + "display_in_invoice"] = ["must_be_a_boolean"];
    }
    if (Object.keys(errors).length === before) out.push({ id, key, value, display_in_invoice: display });
  });
  return out;
}

function taxCodes(raw: unknown, errors: FieldErrors): string[] | undefined {
  if (!Array.isArray(raw)) {
    errors.tax_codes = ["must_be_an_array"];
    return undefined;
  }
  const out = new Set<string>();
  raw.forEach((code, i) => {
    if (typeof code !== "string" || code === "") errors[`tax_codes[${i}]`] = ["must_be_a_non_empty_string"];
    else {
      const problem = textProblem(code, TEXT_MAX);
      if (problem !== null) errors[`tax_codes[${i}]`] = [problem];
      else out.add(code);
    }
  });
  return [...out];
}

/** Validates the `customer` object of `POST /customers`; `errors` names every broken field. */
export function validateCustomerInput(raw: unknown): ValidatedCustomer {
  if (!isObject(raw)) return { ok: false, errors: { customer: ["must_be_an_object"] } };
  const errors: FieldErrors = {};
  const fields: CustomerPatch["fields"] = {};

  let externalId = "";
  const ext = raw.external_id;
  if (ext === undefined || ext === null || ext === "") errors.external_id = ["value_is_mandatory"];
  else if (typeof ext === "number" && Number.isSafeInteger(ext)) externalId = String(ext); // Lago stores numeric ids as text
  else {
    const v = text(ext, "external_id", EXTERNAL_ID_MAX, errors);
    if (v !== undefined && v !== null && v.trim() === "") errors.external_id = ["value_is_mandatory"];
    else if (v) externalId = v;
  }

  for (const [field, max] of TEXT_FIELDS) {
    if (!has(raw, field)) continue;
    const v = text(raw[field], field, max, errors);
    if (v !== undefined) (fields as Record<string, unknown>)[field] = v;
  }
  Object.assign(fields, address(raw, "", errors));

  if (has(raw, "email")) {
    const v = text(raw.email, "email", URL_MAX, errors);
    if (v === null || v?.trim() === "") fields.email = null;
    else if (v !== undefined) {
      const emails = v.split(",").map((e) => e.trim());
      if (emails.every((e) => EMAIL.test(e))) fields.email = emails.join(",");
      else errors.email = ["invalid_email_format"];
    }
  }
  if (has(raw, "currency")) {
    const v = raw.currency;
    if (v === null) fields.currency = null;
    else if (isCurrency(v)) fields.currency = v;
    else errors.currency = ["value_is_invalid"];
  }
  if (has(raw, "timezone")) {
    if (raw.timezone === null) fields.timezone = null;
    else {
      const tz = normalizeTimezone(raw.timezone);
      if (tz === null) errors.timezone = ["invalid_timezone"];
      else fields.timezone = tz;
    }
  }
  if (has(raw, "customer_type")) {
    const v = oneOf(raw.customer_type, "customer_type", CUSTOMER_TYPES, errors);
    if (v !== undefined) fields.customer_type = v;
  }
  if (has(raw, "account_type")) {
    const v = oneOf(raw.account_type, "account_type", ACCOUNT_TYPES, errors, false);
    if (v) fields.account_type = v;
  }
  if (has(raw, "net_payment_term")) {
    const v = days(raw.net_payment_term, "net_payment_term", errors);
    if (v !== undefined) fields.net_payment_term = v;
  }
  if (has(raw, "finalize_zero_amount_invoice")) {
    // Lago: null means "inherit".
    const v = raw.finalize_zero_amount_invoice === null ? "inherit" : oneOf(raw.finalize_zero_amount_invoice, "finalize_zero_amount_invoice", FINALIZE_ZERO_AMOUNT_INVOICE, errors);
    if (v) fields.finalize_zero_amount_invoice = v;
  }
  if (has(raw, "skip_invoice_custom_sections") && raw.skip_invoice_custom_sections !== null) {
    if (typeof raw.skip_invoice_custom_sections === "boolean") fields.skip_invoice_custom_sections = raw.skip_invoice_custom_sections;
    else errors.skip_invoice_custom_sections = ["must_be_a_boolean"];
  }
  if (has(raw, "tax_codes") && raw.tax_codes !== null) {
    const v = taxCodes(raw.tax_codes, errors);
    if (v !== undefined) fields.tax_codes = v;
  }

  let shippingAddress: Partial<Address> = {};
  if (has(raw, "shipping_address") && raw.shipping_address !== null) {
    if (isObject(raw.shipping_address)) shippingAddress = address(raw.shipping_address, "shipping_address.", errors);
    else errors.shipping_address = ["must_be_an_object"];
  }
  let billingConfiguration: Partial<BillingConfiguration> = {};
  if (has(raw, "billing_configuration") && raw.billing_configuration !== null) {
    if (isObject(raw.billing_configuration)) billingConfiguration = billing(raw.billing_configuration, errors);
    else errors.billing_configuration = ["must_be_an_object"];
  }
  let meta: MetadataInput[] | undefined;
  if (has(raw, "metadata") && raw.metadata !== null) meta = metadata(raw.metadata, errors);

  // `billing_entity_code`, `integration_customers` and `invoice_custom_section_codes` name objects
  // this server does not have yet; like any other unknown field they are ignored.
  if (Object.keys(errors).length > 0) return { ok: false, errors };
  const patch: CustomerPatch = { externalId, fields, shippingAddress, billingConfiguration };
  if (meta !== undefined) patch.metadata = meta;
  return { ok: true, patch };
}

/**
 * The customer after the request: the current attributes (or a new customer's defaults) with the
 * request's fields applied. Metadata entries named by `id` keep their identity; the others are new.
 */
export function applyPatch(
  current: CustomerAttributes | null,
  patch: CustomerPatch,
  ctx: { now: Date; newId: () => string },
): CustomerAttributes {
  const base = current ?? NEW_CUSTOMER;
  const next: CustomerAttributes = {
    ...base,
    ...patch.fields,
    shipping_address: { ...base.shipping_address, ...patch.shippingAddress },
    billing_configuration: { ...base.billing_configuration, ...patch.billingConfiguration },
  };
  if (patch.metadata !== undefined) {
    const existing = new Map(base.metadata.map((m) => [m.lago_id, m]));
    next.metadata = patch.metadata.map((m) => {
      const kept = m.id === null ? undefined : existing.get(m.id);
      return {
        lago_id: kept?.lago_id ?? ctx.newId(),
        key: m.key,
        value: m.value,
        display_in_invoice: m.display_in_invoice,
        created_at: kept?.created_at ?? ctx.now.toISOString(),
      };
    });
  }
  return next;
}

/** Lago's slug: the organization's document prefix and the zero-padded sequential id ("ACM-1A2B-007"). */
export function customerSlug(orgName: string, orgPublicId: string, sequentialId: number): string {
  const letters = orgName.replace(/[^A-Za-z0-9]/g, "").slice(0, 3).toUpperCase() || "ORG";
  const id = orgPublicId.replace(/-/g, "").slice(-4).toUpperCase();
  return `${letters}-${id}-${String(sequentialId).padStart(3, "0")}`;
}
