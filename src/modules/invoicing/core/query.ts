// GET /invoices query parameters as Lago takes them: every broken parameter is reported at once.
import type { FieldErrors } from "../../../shared/errors.ts";
import { positiveIntParam } from "../../../shared/pagination.ts";
import {
  INVOICE_STATUSES,
  INVOICE_TYPES,
  PAYMENT_STATUSES,
  type InvoiceStatus,
  type InvoiceType,
  type PaymentStatus,
  isOneOf,
} from "./types.ts";

export interface InvoiceListQuery {
  readonly page: number;
  readonly perPage: number;
  readonly externalCustomerId?: string;
  readonly statuses?: readonly InvoiceStatus[];
  readonly paymentStatuses?: readonly PaymentStatus[];
  readonly invoiceType?: InvoiceType;
  readonly currency?: string;
  /** "YYYY-MM-DD", inclusive. */
  readonly issuingDateFrom?: string;
  readonly issuingDateTo?: string;
  /** Lago's `payment_overdue=true|false`. */
  readonly paymentOverdue?: boolean;
}

export const PER_PAGE_DEFAULT = 20;
export const PER_PAGE_MAX = 100;

const ISO_DATE = /^(\d{4})-(\d{2})-(\d{2})$/;

export function isIsoDate(v: unknown): v is string {
  if (typeof v !== "string") return false;
  const m = ISO_DATE.exec(v);
  if (m === null) return false;
  const date = new Date(`${v}T00:00:00Z`);
  return !Number.isNaN(date.getTime()) && date.toISOString().slice(0, 10) === v;
}

/** A query value that may be repeated (`statuses[]=a&statuses[]=b`) or given once (`status=a`). */
function list(q: Record<string, unknown>, ...names: string[]): string[] | undefined {
  const values: string[] = [];
  let present = false;
  for (const name of names) {
    const v = q[name];
    if (v === undefined || v === "") continue;
    present = true;
    for (const item of Array.isArray(v) ? v : [v]) values.push(String(item));
  }
  return present ? values : undefined;
}

function single(q: Record<string, unknown>, name: string, errors: FieldErrors): string | undefined {
  const v = q[name];
  if (v === undefined || v === "") return undefined;
  if (typeof v !== "string") {
    errors[name] = ["must_be_given_once"];
    return undefined;
  }
  return v;
}

export function readInvoiceListQuery(q: Record<string, unknown>): { ok: true; value: InvoiceListQuery } | { ok: false; errors: FieldErrors } {
  const errors: FieldErrors = {};
  const page = positiveIntParam(q["page"], "page", 1, 1_000_000, errors);
  const perPage = positiveIntParam(q["per_page"], "per_page", PER_PAGE_DEFAULT, PER_PAGE_MAX, errors);
  const enumList = <T extends string>(allowed: readonly T[], field: string, ...names: string[]): T[] | undefined => {
    const values = list(q, ...names);
    if (values === undefined) return undefined;
    const bad = values.filter((v) => !isOneOf(allowed)(v));
    if (bad.length > 0) errors[field] = [`must_be_one_of_${allowed.join("_")}`];
    return values.filter(isOneOf(allowed));
  };
  const statuses = enumList(INVOICE_STATUSES, "status", "status", "statuses[]", "statuses");
  const paymentStatuses = enumList(PAYMENT_STATUSES, "payment_status", "payment_status", "payment_statuses[]", "payment_statuses");
  const invoiceType = single(q, "invoice_type", errors);
  if (invoiceType !== undefined && !isOneOf(INVOICE_TYPES)(invoiceType)) errors["invoice_type"] = [`must_be_one_of_${INVOICE_TYPES.join("_")}`];
  const date = (name: string) => {
    const v = single(q, name, errors);
    if (v !== undefined && !isIsoDate(v)) errors[name] = ["invalid_date"];
    return v;
  };
  const issuingDateFrom = date("issuing_date_from");
  const issuingDateTo = date("issuing_date_to");
  const externalCustomerId = single(q, "external_customer_id", errors);
  const currency = single(q, "currency", errors);
  const overdue = single(q, "payment_overdue", errors);
  if (overdue !== undefined && overdue !== "true" && overdue !== "false") errors["payment_overdue"] = ["must_be_true_or_false"];
  if (Object.keys(errors).length > 0) return { ok: false, errors };
  return {
    ok: true,
    value: {
      page,
      perPage,
      ...(externalCustomerId !== undefined ? { externalCustomerId } : {}),
      ...(statuses !== undefined ? { statuses } : {}),
      ...(paymentStatuses !== undefined ? { paymentStatuses } : {}),
      ...(invoiceType !== undefined ? { invoiceType: invoiceType as InvoiceType } : {}),
      ...(currency !== undefined ? { currency } : {}),
      ...(issuingDateFrom !== undefined ? { issuingDateFrom } : {}),
      ...(issuingDateTo !== undefined ? { issuingDateTo } : {}),
      ...(overdue !== undefined ? { paymentOverdue: overdue === "true" } : {}),
    },
  };
}
