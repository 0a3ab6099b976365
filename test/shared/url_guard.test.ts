import { describe, expect, it } from "vitest";
import { errorBody } from "../../src/shared/errors.ts";
import { kindOf, nulInRequest } from "../../src/shared/url_guard.ts";

describe("kindOf: the object a collection's path parameter names", () => {
  it.each([
    ["customers", "customer"],
    ["taxes", "tax"],
    ["add_ons", "add_on"],
    ["billable_metrics", "billable_metric"],
    ["charges", "charge"],
    ["fees", "fee"],
  ])("%s -> %s", (collection, kind) => expect(kindOf(collection)).toBe(kind));
});

describe("nulInRequest", () => {
  const route = "/api/v1/plans/:code/charges/:charge_code";
  it("answers nothing when no parameter or query value holds a NUL byte", () => {
    expect(nulInRequest(route, { code: "p", charge_code: "c" }, { page: "1", tags: ["a", "b"] })).toBeNull();
  });
  it("a path parameter: the 404 of the first object it names", () => {
    expect(errorBody(nulInRequest(route, { code: "p\u0000", charge_code: "c\u0000" }, {})!)).toEqual({ status: 404, error: "Not Found", code: "plan_not_found" });
    expect(errorBody(nulInRequest(route, { code: "p", charge_code: "\u0000" }, {})!)).toMatchObject({ code: "charge_not_found" });
  });
  it("query values, in arrays and objects too, and keys: one 422 naming every key", () => {
    const err = nulInRequest("/api/v1/invoices", {}, { currency: "\u0000", status: ["draft", "x\u0000"], filter: { a: "\u0000" }, "k\u0000": "1", page: "2" });
    expect(errorBody(err!)).toMatchObject({
      status: 422,
      code: "validation_errors",
      error_details: { currency: ["contains_nul_character"], status: ["contains_nul_character"], filter: ["contains_nul_character"], "k\\u0000": ["contains_nul_character"] },
    });
  });
});
