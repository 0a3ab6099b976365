import { describe, expect, it } from "vitest";
import { readInvoiceUpdate, readPaymentListQuery } from "../../../src/modules/payments/core/index.ts";

describe("PUT /invoices/:id bodies", () => {
  it.each([
    [{ invoice: { payment_status: "succeeded" } }, { paymentStatus: "succeeded" }],
    [{ invoice: { payment_status: "failed", metadata: [] } }, { paymentStatus: "failed" }],
    [{ invoice: {} }, {}],
    [{ invoice: { metadata: null } }, {}],
  ])("%j is read", (body, value) => {
    expect(readInvoiceUpdate(body)).toEqual({ ok: true, value });
  });

  it.each([
    [{ invoice: { payment_status: "paid" } }, { payment_status: ["value_is_invalid"] }],
    [{ invoice: { payment_status: null } }, { payment_status: ["value_is_invalid"] }],
    [{ invoice: { payment_status: 1, metadata: [{ key: "a", value: "b" }] } }, { payment_status: ["value_is_invalid"], metadata: ["invoice_metadata_not_supported"] }],
    [{ invoice: { metadata: "x" } }, { metadata: ["must_be_an_array"] }],
    [{ payment_status: "succeeded" }, { invoice: ["must_be_an_object"] }],
    [null, { invoice: ["must_be_an_object"] }],
    [{ invoice: [] }, { invoice: ["must_be_an_object"] }],
  ])("%j is refused, every field named", (body, errors) => {
    expect(readInvoiceUpdate(body)).toEqual({ ok: false, errors });
  });
});

describe("GET /payments query", () => {
  it("defaults and filters", () => {
    expect(readPaymentListQuery({})).toEqual({ ok: true, value: { page: 1, perPage: 20 } });
    const id = "1a901a90-1a90-1a90-1a90-1a901a901a90";
    expect(readPaymentListQuery({ page: "2", per_page: "5", external_customer_id: "c1", invoice_id: id })).toEqual({
      ok: true,
      value: { page: 2, perPage: 5, externalCustomerId: "c1", invoiceId: id },
    });
  });

  it("names every broken parameter", () => {
    expect(readPaymentListQuery({ page: "0", per_page: "101", invoice_id: "inv_1", external_customer_id: ["a", "b"] })).toEqual({
      ok: false,
      errors: {
        page: ["must_be_an_integer_between_1_and_1000000"],
        per_page: ["must_be_an_integer_between_1_and_100"],
        invoice_id: ["invalid_uuid"],
        external_customer_id: ["must_be_given_once"],
      },
    });
  });
});
