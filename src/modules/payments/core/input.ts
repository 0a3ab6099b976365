// Request bodies and query parameters of the payment routes, every broken field reported at once.
import type { FieldErrors } from "../../../shared/errors.ts";
import { positiveIntParam } from "../../../shared/pagination.ts";

export const INVOICE_PAYMENT_STATUSES = ["pending", "succeeded", "failed"] as const;
export type InvoicePaymentStatus = (typeof INVOICE_PAYMENT_STATUSES)[number];

export const PER_PAGE_DEFAULT = 20;
export const PER_PAGE_MAX = 100;

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
export const isUuid = (v: string) => UUID.test(v);

type Read<T> = { ok: true; value: T } | { ok: false; errors: FieldErrors };

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

/**
 * PUT /invoices/:lago_id: Lago's `{"invoice":{"payment_status":…,"metadata":[…]}}`. Only the payment
 * status can be changed here; invoice metadata is not kept by this server, so a non-empty
 * `metadata` is refused rather than silently dropped.
 */
export function readInvoiceUpdate(raw: unknown): Read<{ paymentStatus?: InvoicePaymentStatus }> {
  const errors: FieldErrors = {};
  if (!isObject(raw) || !isObject(raw["invoice"])) return { ok: false, errors: { invoice: ["must_be_an_object"] } };
  const body = raw["invoice"];
  let paymentStatus: InvoicePaymentStatus | undefined;
  if ("payment_status" in body) {
    const v = body["payment_status"];
    if (typeof v === "string" && (INVOICE_PAYMENT_STATUSES as readonly string[]).includes(v)) paymentStatus = v as InvoicePaymentStatus;
    else errors["payment_status"] = ["value_is_invalid"];
  }
  if ("metadata" in body && body["metadata"] !== null) {
    const m = body["metadata"];
    if (!Array.isArray(m)) errors["metadata"] = ["must_be_an_array"];
    else if (m.length > 0) errors["metadata"] = ["invoice_metadata_not_supported"];
  }
  if (Object.keys(errors).length > 0) return { ok: false, errors };
  return { ok: true, value: paymentStatus === undefined ? {} : { paymentStatus } };
}

export interface PaymentListQuery {
  readonly page: number;
  readonly perPage: number;
  readonly externalCustomerId?: string;
  /** An invoice's lago_id. */
  readonly invoiceId?: string;
}

/** GET /payments: `page`, `per_page`, `external_customer_id`, `invoice_id` (a uuid). */
export function readPaymentListQuery(q: Record<string, unknown>): Read<PaymentListQuery> {
  const errors: FieldErrors = {};
  const page = positiveIntParam(q["page"], "page", 1, 1_000_000, errors);
  const perPage = positiveIntParam(q["per_page"], "per_page", PER_PAGE_DEFAULT, PER_PAGE_MAX, errors);
  const single = (name: string): string | undefined => {
    const v = q[name];
    if (v === undefined || v === "") return undefined;
    if (typeof v !== "string") {
      errors[name] = ["must_be_given_once"];
      return undefined;
    }
    return v;
  };
  const externalCustomerId = single("external_customer_id");
  const invoiceId = single("invoice_id");
  if (invoiceId !== undefined && !isUuid(invoiceId)) errors["invoice_id"] = ["invalid_uuid"];
  if (Object.keys(errors).length > 0) return { ok: false, errors };
  return {
    ok: true,
    value: {
      page,
      perPage,
      ...(externalCustomerId !== undefined ? { externalCustomerId } : {}),
      ...(invoiceId !== undefined ? { invoiceId } : {}),
    },
  };
}
