import { describe, expect, it } from "vitest";
import { DEFAULT_PER_PAGE, parseCustomerListQuery, type CustomerListQuery } from "../../../src/modules/customers/core/list_query.ts";

function parsed(q: Record<string, unknown>): CustomerListQuery {
  const r = parseCustomerListQuery(q);
  if (!r.ok) throw new Error(`expected acceptance, got ${JSON.stringify(r.errors)}`);
  return r.query;
}

function errorsOf(q: Record<string, unknown>): Record<string, string[]> {
  const r = parseCustomerListQuery(q);
  if (r.ok) throw new Error(`expected ${JSON.stringify(q)} to be refused`);
  return r.errors;
}

describe("parseCustomerListQuery", () => {
  it("defaults to Lago's first page of 100", () => {
    expect(parsed({})).toEqual({ page: 1, perPage: DEFAULT_PER_PAGE });
  });

  it.each([
    ["pagination", { page: "3", per_page: "25" }, { page: 3, perPage: 25 }],
    ["array filters as Lago's clients send them", { "countries[]": ["FR", "US", "FR"], "currencies[]": "EUR" }, { countries: ["FR", "US"], currencies: ["EUR"] }],
    ["array filters without brackets", { states: "CA", zipcodes: ["75001", "10115"] }, { states: ["CA"], zipcodes: ["75001", "10115"] }],
    ["account types", { "account_type[]": ["customer", "partner"] }, { accountTypes: ["customer", "partner"] }],
    ["booleans", { has_tax_identification_number: "true", has_customer_type: "false" }, { hasTaxIdentificationNumber: true, hasCustomerType: false }],
    ["customer type", { customer_type: "individual" }, { customerType: "individual" }],
    ["search term and external id", { search_term: "gavin", external_id: "cus-1" }, { searchTerm: "gavin", externalId: "cus-1" }],
    ["metadata, an empty value meaning 'without the key'", { "metadata[plan]": "gold", "metadata[synced]": "" }, { metadata: [{ key: "plan", value: "gold" }, { key: "synced", value: "" }] }],
    ["empty parameters as absent", { page: "", search_term: "", "countries[]": "" }, { page: 1 }],
  ])("reads %s", (_case, q, expected) => {
    expect(parsed(q)).toMatchObject(expected);
  });

  it.each([
    ["a page of 0", { page: "0" }, { page: ["must_be_an_integer_between_1_and_1000000"] }],
    ["a page that is not a number", { page: "two" }, { page: ["must_be_an_integer_between_1_and_1000000"] }],
    ["a repeated page", { page: ["1", "2"] }, { page: ["invalid_value"] }],
    ["a page size over 1000", { per_page: "1001" }, { per_page: ["must_be_an_integer_between_1_and_1000"] }],
    ["an unknown country", { "countries[]": ["FR", "XX"] }, { countries: ["value_is_invalid"] }],
    ["an unknown currency", { "currencies[]": "EURO" }, { currencies: ["value_is_invalid"] }],
    ["an unknown account type", { "account_type[]": "robot" }, { account_type: ["value_is_invalid"] }],
    ["an unknown customer type", { customer_type: "robot" }, { customer_type: ["value_is_invalid"] }],
    ["a boolean that is not true or false", { has_customer_type: "yes" }, { has_customer_type: ["must_be_true_or_false"] }],
    ["a search term with a NUL", { search_term: "a\u0000" }, { search_term: ["invalid_value"] }],
  ])("refuses %s", (_case, q, expected) => {
    expect(errorsOf(q)).toEqual(expected);
  });

  it("reports every broken parameter together", () => {
    expect(Object.keys(errorsOf({ page: "-1", per_page: "x", "currencies[]": "nope" })).sort()).toEqual(["currencies", "page", "per_page"]);
  });
});
