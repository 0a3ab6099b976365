// The query of `GET /customers`: Lago's pagination and filters, validated (every broken parameter
// reported). Array filters arrive as `countries[]=FR&countries[]=US` (what Lago's clients send);
// `countries=FR` is read the same way.
import type { FieldErrors } from "../../../shared/errors.ts";
import { isCurrency } from "../../../shared/money.ts";
import { isCountry } from "./countries.ts";
import { ACCOUNT_TYPES, CUSTOMER_TYPES, type AccountType, type CustomerType } from "./customer.ts";
import { positiveIntParam } from "../../../shared/pagination.ts";

/** Lago's default page size. */
export const DEFAULT_PER_PAGE = 100;
export const MAX_PER_PAGE = 1000;

export interface CustomerListQuery {
  page: number;
  perPage: number;
  externalId?: string;
  /** Substring of name, firstname, lastname, legal_name, external_id or email (case-insensitive). */
  searchTerm?: string;
  countries?: string[];
  states?: string[];
  zipcodes?: string[];
  currencies?: string[];
  accountTypes?: AccountType[];
  customerType?: CustomerType;
  hasCustomerType?: boolean;
  hasTaxIdentificationNumber?: boolean;
  /** `metadata[key]=value`: an entry with that key and value; an empty value: no entry with that key. */
  metadata?: { key: string; value: string }[];
}

export type ParsedListQuery = { ok: true; query: CustomerListQuery } | { ok: false; errors: FieldErrors };

const MAX_FILTER_VALUES = 100;

const clean = (s: string) => s.length <= 255 && !s.includes("\u0000") && s.isWellFormed();

export function parseCustomerListQuery(q: Record<string, unknown>): ParsedListQuery {
  const errors: FieldErrors = {};

  const single = (name: string): string | undefined => {
    const v = q[name];
    if (v === undefined || v === "") return undefined;
    if (typeof v !== "string" || !clean(v)) {
      errors[name] = ["invalid_value"];
      return undefined;
    }
    return v;
  };
  const int = (name: string, fallback: number, max: number): number => positiveIntParam(single(name), name, fallback, max, errors);
  const bool = (name: string): boolean | undefined => {
    const v = single(name);
    if (v === undefined) return undefined;
    if (v === "true") return true;
    if (v === "false") return false;
    errors[name] = ["must_be_true_or_false"];
    return undefined;
  };
  const list = (name: string, check?: (v: string) => boolean): string[] | undefined => {
    const raw = [q[`${name}[]`], q[name]].flatMap((v) => (v === undefined ? [] : Array.isArray(v) ? v : [v]));
    const values = raw.filter((v) => v !== "");
    if (values.length === 0) return undefined;
    if (values.length > MAX_FILTER_VALUES || values.some((v) => typeof v !== "string" || !clean(v) || (check !== undefined && !check(v)))) {
      errors[name] = ["value_is_invalid"];
      return undefined;
    }
    return [...new Set(values as string[])];
  };

  const query: CustomerListQuery = { page: int("page", 1, 1_000_000), perPage: int("per_page", DEFAULT_PER_PAGE, MAX_PER_PAGE) };
  const externalId = single("external_id");
  if (externalId !== undefined) query.externalId = externalId;
  const searchTerm = single("search_term");
  if (searchTerm !== undefined) query.searchTerm = searchTerm;
  const countries = list("countries", isCountry);
  if (countries) query.countries = countries;
  const states = list("states");
  if (states) query.states = states;
  const zipcodes = list("zipcodes");
  if (zipcodes) query.zipcodes = zipcodes;
  const currencies = list("currencies", isCurrency);
  if (currencies) query.currencies = currencies;
  const accountTypes = list("account_type", (v) => (ACCOUNT_TYPES as readonly string[]).includes(v));
  if (accountTypes) query.accountTypes = accountTypes as AccountType[];
  const customerType = single("customer_type");
  if (customerType !== undefined) {
    if ((CUSTOMER_TYPES as readonly string[]).includes(customerType)) query.customerType = customerType as CustomerType;
    else errors.customer_type = ["value_is_invalid"];
  }
  const hasCustomerType = bool("has_customer_type");
  if (hasCustomerType !== undefined) query.hasCustomerType = hasCustomerType;
  const hasTin = bool("has_tax_identification_number");
  if (hasTin !== undefined) query.hasTaxIdentificationNumber = hasTin;

  const metadata: { key: string; value: string }[] = [];
  for (const [name, v] of Object.entries(q)) {
    const m = /^metadata\[(.+)\]$/.exec(name);
    if (!m) continue;
    const key = m[1]!;
    if (typeof v !== "string" || !clean(v) || !clean(key)) errors[name] = ["invalid_value"];
    else metadata.push({ key, value: v });
  }
  if (metadata.length > 0) query.metadata = metadata;

  return Object.keys(errors).length > 0 ? { ok: false, errors } : { ok: true, query };
}
