import { describe, expect, it } from "vitest";
import {
  METADATA_MAX_COUNT,
  NEW_CUSTOMER,
  applyPatch,
  customerSlug,
  normalizeTimezone,
  validateCustomerInput,
  type CustomerPatch,
} from "../../../src/modules/customers/core/customer.ts";

function errorsOf(raw: unknown): Record<string, string[]> {
  const v = validateCustomerInput(raw);
  if (v.ok) throw new Error(`expected ${JSON.stringify(raw)} to be refused`);
  return v.errors;
}

function accepted(raw: unknown): CustomerPatch {
  const v = validateCustomerInput(raw);
  if (!v.ok) throw new Error(`expected acceptance, got ${JSON.stringify(v.errors)}`);
  return v.patch;
}

const ext = { external_id: "cus-1" };

describe("validateCustomerInput: accepted requests", () => {
  it("takes every field Lago documents, under Lago's names", () => {
    const p = accepted({
      external_id: "cus-1",
      name: "Gavin Belson",
      firstname: "Gavin",
      lastname: "Belson",
      email: "gavin@hooli.test",
      currency: "EUR",
      timezone: "Europe/Paris",
      country: "fr",
      address_line1: "5230 Penfield Ave",
      address_line2: "",
      city: "Paris",
      state: "IDF",
      zipcode: "75001",
      legal_name: "Hooli",
      legal_number: "49-008-2965",
      tax_identification_number: "EU123456789",
      phone: "1-171-883-3711 x245",
      url: "http://hooli.test",
      logo_url: "http://hooli.test/logo.png",
      external_salesforce_id: "0015p00001JQx1QAAT",
      customer_type: "company",
      account_type: "partner",
      net_payment_term: 30,
      finalize_zero_amount_invoice: "skip",
      skip_invoice_custom_sections: true,
      tax_codes: ["vat_fr", "vat_fr", "eco"],
      shipping_address: { address_line1: "1 rue", country: "de", city: "" },
      billing_configuration: { invoice_grace_period: 3, payment_provider: "stripe", provider_customer_id: "cus_123", document_locale: "fr" },
      metadata: [{ key: "PO", value: "123", display_in_invoice: true }],
    });
    expect(p.externalId).toBe("cus-1");
    expect(p.fields).toMatchObject({
      name: "Gavin Belson",
      email: "gavin@hooli.test",
      currency: "EUR",
      timezone: "Europe/Paris",
      country: "FR",
      address_line2: null,
      customer_type: "company",
      account_type: "partner",
      net_payment_term: 30,
      finalize_zero_amount_invoice: "skip",
      skip_invoice_custom_sections: true,
      tax_codes: ["vat_fr", "eco"],
    });
    expect(p.shippingAddress).toEqual({ address_line1: "1 rue", country: "DE", city: null });
    expect(p.billingConfiguration).toEqual({ invoice_grace_period: 3, payment_provider: "stripe", provider_customer_id: "cus_123", document_locale: "fr" });
    expect(p.metadata).toEqual([{ id: null, key: "PO", value: "123", display_in_invoice: true }]);
  });

  it("carries only the fields the request names (an update leaves the others alone)", () => {
    const p = accepted({ external_id: "cus-1", name: "New name" });
    expect(p.fields).toEqual({ name: "New name" });
    expect(p.shippingAddress).toEqual({});
    expect(p.billingConfiguration).toEqual({});
    expect(p.metadata).toBeUndefined();
  });

  it.each([
    ["a numeric external_id is stored as text", { external_id: 42 }, { externalId: "42" }],
    ["an explicit null clears a field", { ...ext, name: null, currency: null, timezone: null }, { fields: { name: null, currency: null, timezone: null } }],
    ["several comma-separated emails are one valid email field", { ...ext, email: "a@b.co, c@d.io" }, { fields: { email: "a@b.co,c@d.io" } }],
    ["an empty email clears it", { ...ext, email: "" }, { fields: { email: null } }],
    ["an empty country clears it", { ...ext, country: "" }, { fields: { country: null } }],
    ["finalize_zero_amount_invoice null means inherit", { ...ext, finalize_zero_amount_invoice: null }, { fields: { finalize_zero_amount_invoice: "inherit" } }],
    ["a numeric-string net_payment_term is read as a number", { ...ext, net_payment_term: "15" }, { fields: { net_payment_term: 15 } }],
    ["UTC is a timezone", { ...ext, timezone: "UTC" }, { fields: { timezone: "UTC" } }],
    ["a timezone in the wrong case is stored as the runtime spells it", { ...ext, timezone: "america/new_york" }, { fields: { timezone: "America/New_York" } }],
    ["an IANA alias stays as given", { ...ext, timezone: "Asia/Kolkata" }, { fields: { timezone: "Asia/Kolkata" } }],
    ["an empty metadata list is kept (it removes every entry)", { ...ext, metadata: [] }, { metadata: [] }],
    ["unknown fields (billing_entity_code, integration_customers) are ignored", { ...ext, billing_entity_code: "x", integration_customers: [{}] }, { fields: {} }],
  ])("%s", (_case, raw, expected) => {
    expect(accepted(raw)).toMatchObject(expected);
  });
});

describe("validateCustomerInput: refused requests name every broken field", () => {
  it.each([
    ["a customer that is not an object", "x", { customer: ["must_be_an_object"] }],
    ["an array as the customer", [], { customer: ["must_be_an_object"] }],
    ["no external_id", {}, { external_id: ["value_is_mandatory"] }],
    ["an empty external_id", { external_id: "" }, { external_id: ["value_is_mandatory"] }],
    ["a blank external_id", { external_id: "   " }, { external_id: ["value_is_mandatory"] }],
    ["an external_id object", { external_id: { a: 1 } }, { external_id: ["must_be_a_string"] }],
    ["an external_id over 255 characters", { external_id: "x".repeat(256) }, { external_id: ["value_is_too_long (max 255 characters)"] }],
    ["an external_id with a NUL", { external_id: "a\u0000b" }, { external_id: ["contains_nul_character"] }],
    ["an external_id with an unpaired surrogate", { external_id: "a\ud800" }, { external_id: ["invalid_unicode (unpaired surrogate)"] }],
    ["an unknown currency", { ...ext, currency: "XYZ" }, { currency: ["value_is_invalid"] }],
    ["a lowercase currency", { ...ext, currency: "usd" }, { currency: ["value_is_invalid"] }],
    ["a numeric currency", { ...ext, currency: 978 }, { currency: ["value_is_invalid"] }],
    ["an unknown timezone", { ...ext, timezone: "Mars/Olympus_Mons" }, { timezone: ["invalid_timezone"] }],
    ["an offset instead of a timezone", { ...ext, timezone: "+01:00" }, { timezone: ["invalid_timezone"] }],
    ["an empty timezone", { ...ext, timezone: "" }, { timezone: ["invalid_timezone"] }],
    ["an email without a domain", { ...ext, email: "gavin@" }, { email: ["invalid_email_format"] }],
    ["an email list with one bad entry", { ...ext, email: "a@b.co,nope" }, { email: ["invalid_email_format"] }],
    ["an unknown country", { ...ext, country: "XX" }, { country: ["not_a_valid_country_code"] }],
    ["a three-letter country", { ...ext, country: "FRA" }, { country: ["not_a_valid_country_code"] }],
    ["a name over 255 characters", { ...ext, name: "n".repeat(256) }, { name: ["value_is_too_long (max 255 characters)"] }],
    ["a numeric name", { ...ext, name: 42 }, { name: ["must_be_a_string"] }],
    ["an unknown customer_type", { ...ext, customer_type: "robot" }, { customer_type: ["value_is_invalid"] }],
    ["a null account_type", { ...ext, account_type: null }, { account_type: ["value_is_invalid"] }],
    ["a negative net_payment_term", { ...ext, net_payment_term: -1 }, { net_payment_term: ["value_is_out_of_range"] }],
    ["a fractional net_payment_term", { ...ext, net_payment_term: 1.5 }, { net_payment_term: ["must_be_an_integer"] }],
    ["an unknown finalize_zero_amount_invoice", { ...ext, finalize_zero_amount_invoice: "never" }, { finalize_zero_amount_invoice: ["value_is_invalid"] }],
    ["a string skip_invoice_custom_sections", { ...ext, skip_invoice_custom_sections: "yes" }, { skip_invoice_custom_sections: ["must_be_a_boolean"] }],
    ["tax_codes that are not a list", { ...ext, tax_codes: "vat" }, { tax_codes: ["must_be_an_array"] }],
    ["an empty tax code", { ...ext, tax_codes: ["vat", ""] }, { "tax_codes[1]": ["must_be_a_non_empty_string"] }],
    ["a shipping address that is not an object", { ...ext, shipping_address: "here" }, { shipping_address: ["must_be_an_object"] }],
    ["an unknown shipping country", { ...ext, shipping_address: { country: "QQ" } }, { "shipping_address.country": ["not_a_valid_country_code"] }],
    ["a billing configuration that is not an object", { ...ext, billing_configuration: [] }, { billing_configuration: ["must_be_an_object"] }],
    ["an unknown payment provider", { ...ext, billing_configuration: { payment_provider: "paypal" } }, { "billing_configuration.payment_provider": ["value_is_invalid"] }],
    ["a negative grace period", { ...ext, billing_configuration: { invoice_grace_period: -2 } }, { "billing_configuration.invoice_grace_period": ["value_is_out_of_range"] }],
    ["an unknown document locale", { ...ext, billing_configuration: { document_locale: "xx" } }, { "billing_configuration.document_locale": ["not_a_valid_language_code"] }],
    ["metadata that is not a list", { ...ext, metadata: { key: "a" } }, { metadata: ["must_be_an_array"] }],
    [
      "more metadata entries than Lago allows",
      { ...ext, metadata: Array.from({ length: METADATA_MAX_COUNT + 1 }, (_, i) => ({ key: `k${i}`, value: "v" })) },
      { metadata: [`invalid_count (at most ${METADATA_MAX_COUNT} entries)`] },
    ],
    ["a metadata entry without key or value", { ...ext, metadata: [{}] }, { "metadata[0].key": ["value_is_mandatory"], "metadata[0].value": ["value_is_mandatory"] }],
    ["a metadata key over 20 characters", { ...ext, metadata: [{ key: "k".repeat(21), value: "v" }] }, { "metadata[0].key": ["value_is_too_long (max 20 characters)"] }],
    ["a metadata value over 100 characters", { ...ext, metadata: [{ key: "k", value: "v".repeat(101) }] }, { "metadata[0].value": ["value_is_too_long (max 100 characters)"] }],
    ["the same metadata key twice", { ...ext, metadata: [{ key: "k", value: "1" }, { key: "k", value: "2" }] }, { "metadata[1].key": ["value_already_exist"] }],
    ["a metadata id that is not a UUID", { ...ext, metadata: [{ id: "7", key: "k", value: "v" }] }, { "metadata[0].id": ["invalid_uuid"] }],
    ["a metadata entry that is not an object", { ...ext, metadata: ["k=v"] }, { "metadata[0]": ["must_be_an_object"] }],
  ])("refuses %s", (_case, raw, expected) => {
    expect(errorsOf(raw)).toEqual(expected);
  });

  it("reports every broken field of one request together", () => {
    expect(
      errorsOf({
        currency: "EURO",
        timezone: "Nowhere/City",
        email: "not-an-email",
        country: "ZZ",
        name: "x".repeat(300),
        net_payment_term: "soon",
        billing_configuration: { invoice_grace_period: -1 },
      }),
    ).toEqual({
      external_id: ["value_is_mandatory"],
      currency: ["value_is_invalid"],
      timezone: ["invalid_timezone"],
      email: ["invalid_email_format"],
      country: ["not_a_valid_country_code"],
      name: ["value_is_too_long (max 255 characters)"],
      net_payment_term: ["must_be_an_integer"],
      "billing_configuration.invoice_grace_period": ["value_is_out_of_range"],
    });
  });
});

describe("normalizeTimezone", () => {
  it.each([
    ["Europe/Paris", "Europe/Paris"],
    ["UTC", "UTC"],
    ["utc", "UTC"],
    ["Etc/GMT+12", "Etc/GMT+12"],
    ["GMT+12", null],
    ["Europe/Nowhere", null],
    ["", null],
    [42, null],
  ])("%s reads as %s", (input, expected) => expect(normalizeTimezone(input)).toBe(expected));
});

describe("applyPatch", () => {
  const now = new Date("2026-03-15T12:00:00Z");
  let n = 0;
  const ctx = { now, newId: () => `00000000-0000-4000-8000-${String(++n).padStart(12, "0")}` };

  it("gives a new customer Lago's defaults for the fields not sent", () => {
    const next = applyPatch(null, accepted({ ...ext, name: "A" }), ctx);
    expect(next).toEqual({ ...NEW_CUSTOMER, name: "A" });
  });

  it("changes only the fields an update names, nested objects key by key", () => {
    const first = applyPatch(
      null,
      accepted({ ...ext, name: "A", email: "a@b.co", currency: "USD", shipping_address: { city: "Paris", zipcode: "75001" }, billing_configuration: { invoice_grace_period: 2 } }),
      ctx,
    );
    const next = applyPatch(first, accepted({ ...ext, email: null, shipping_address: { city: "Lyon" }, billing_configuration: { document_locale: "de" } }), ctx);
    expect(next.name).toBe("A");
    expect(next.email).toBeNull();
    expect(next.currency).toBe("USD");
    expect(next.shipping_address).toMatchObject({ city: "Lyon", zipcode: "75001" });
    expect(next.billing_configuration).toMatchObject({ invoice_grace_period: 2, document_locale: "de" });
  });

  it("keeps metadata entries named by id, creates the others and drops the rest", () => {
    const first = applyPatch(null, accepted({ ...ext, metadata: [{ key: "a", value: "1" }, { key: "b", value: "2" }] }), ctx);
    const [a, b] = first.metadata;
    expect(a).toMatchObject({ key: "a", value: "1", display_in_invoice: false, created_at: now.toISOString() });
    const later = { ...ctx, now: new Date("2026-04-01T00:00:00Z") };
    const next = applyPatch(first, accepted({ ...ext, metadata: [{ id: a!.lago_id, key: "a", value: "changed" }, { key: "c", value: "3" }] }), later);
    expect(next.metadata).toHaveLength(2);
    expect(next.metadata[0]).toEqual({ ...a, value: "changed" });
    expect(next.metadata[1]).toMatchObject({ key: "c", value: "3", created_at: "2026-04-01T00:00:00.000Z" });
    expect(next.metadata.map((m) => m.lago_id)).not.toContain(b!.lago_id);
  });

  it("leaves metadata alone when the update does not mention it", () => {
    const first = applyPatch(null, accepted({ ...ext, metadata: [{ key: "a", value: "1" }] }), ctx);
    expect(applyPatch(first, accepted({ ...ext, name: "B" }), ctx).metadata).toEqual(first.metadata);
  });
});

describe("customerSlug", () => {
  it.each([
    ["Acme", "3f2a1b4c-0000-4000-8000-00000000ab12", 7, "ACM-AB12-007"],
    ["x", "3f2a1b4c-0000-4000-8000-0000000000cd", 1234, "X-00CD-1234"],
    ["  !!", "3f2a1b4c-0000-4000-8000-00000000ffff", 1, "ORG-FFFF-001"],
  ])("organization %j, id %s, customer %i: %s", (name, publicId, seq, slug) => expect(customerSlug(name, publicId, seq)).toBe(slug));
});
