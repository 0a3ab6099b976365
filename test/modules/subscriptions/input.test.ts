import { describe, expect, it } from "vitest";
import { readCreateInput, readListQuery, readStatusParam, readUpdateInput } from "../../../src/modules/subscriptions/core/index.ts";

const NOW = new Date("2026-03-15T12:00:00Z");
const valid = { external_customer_id: "cus-1", plan_code: "startup", external_id: "sub-1" };

describe("a subscription request is read", () => {
  it("with Lago's defaults: calendar billing, starting now, no end", () => {
    expect(readCreateInput(valid, NOW)).toEqual({
      value: {
        externalCustomerId: "cus-1",
        planCode: "startup",
        externalId: "sub-1",
        name: undefined,
        billingTime: "calendar",
        subscriptionAt: NOW,
        endingAt: undefined,
        planOverrides: undefined,
      },
      errors: {},
    });
  });

  it.each([
    ["an anniversary subscription", { billing_time: "anniversary" }, { billingTime: "anniversary" }],
    ["a start in the past", { subscription_at: "2025-01-01T00:00:00Z" }, { subscriptionAt: new Date("2025-01-01T00:00:00Z") }],
    ["a start given as a date", { subscription_at: "2026-04-01" }, { subscriptionAt: new Date("2026-04-01T00:00:00Z") }],
    ["a start with an offset", { subscription_at: "2026-04-01T02:00:00+02:00" }, { subscriptionAt: new Date("2026-04-01T00:00:00Z") }],
    ["a start sent as null, read as now", { subscription_at: null }, { subscriptionAt: NOW }],
    ["an end on a later day", { ending_at: "2026-03-16T00:00:00Z" }, { endingAt: new Date("2026-03-16T00:00:00Z") }],
    ["an end sent as null", { ending_at: null }, { endingAt: null }],
    ["a blank name, read as none", { name: "  " }, { name: null }],
    ["plan overrides, kept for the plan to read", { plan_overrides: { amount_cents: 1 } }, { planOverrides: { amount_cents: 1 } }],
  ])("%s", (_case, fields, expected) => {
    const read = readCreateInput({ ...valid, ...fields }, NOW);
    expect(read.errors).toEqual({});
    expect(read.value).toMatchObject(expected);
  });
});

describe("a subscription request is refused, naming every broken field", () => {
  it("reports all missing fields at once", () => {
    expect(readCreateInput({}, NOW).errors).toEqual({
      external_customer_id: ["value_is_mandatory"],
      plan_code: ["value_is_mandatory"],
      external_id: ["value_is_mandatory"],
    });
  });

  it.each([
    ["an id that is not a string", { external_id: 12 }, { external_id: ["value_is_invalid"] }],
    ["an id longer than 255 characters", { external_customer_id: "x".repeat(256) }, { external_customer_id: ["value_is_invalid"] }],
    ["an id holding U+0000", { external_id: "a\u0000b" }, { external_id: ["value_is_invalid"] }],
    ["an unknown billing time", { billing_time: "monthly" }, { billing_time: ["value_is_invalid"] }],
    ["a start that is not a date", { subscription_at: "yesterday" }, { subscription_at: ["invalid_date"] }],
    ["a start without an offset", { subscription_at: "2026-04-01T00:00:00" }, { subscription_at: ["invalid_date"] }],
    ["an end today (Lago wants a later day)", { ending_at: "2026-03-15T23:00:00Z" }, { ending_at: ["invalid_date"] }],
    ["an end on the start's day", { subscription_at: "2026-05-01T00:00:00Z", ending_at: "2026-05-01T10:00:00Z" }, { ending_at: ["invalid_date"] }],
    ["an end that is not a date", { ending_at: 5 }, { ending_at: ["invalid_date"] }],
    ["a name that is not a string", { name: 5 }, { name: ["value_is_invalid"] }],
    ["plan overrides that are not an object", { plan_overrides: "cheap" }, { plan_overrides: ["value_is_invalid"] }],
  ])("%s", (_case, fields, errors) => {
    expect(readCreateInput({ ...valid, ...fields }, NOW).errors).toEqual(errors);
  });
});

describe("an update is read", () => {
  const start = new Date("2026-01-01T00:00:00Z");
  it("ignores a new start once the subscription has started, checking ending_at against the start it has", () => {
    const read = readUpdateInput({ subscription_at: "2026-05-01T00:00:00Z", ending_at: "2026-04-01T00:00:00Z" }, NOW, start, false);
    expect(read).toEqual({ value: { endingAt: new Date("2026-04-01T00:00:00Z") }, errors: {} });
    expect(readUpdateInput({ subscription_at: "later" }, NOW, start, false).errors).toEqual({ subscription_at: ["invalid_date"] });
  });

  it.each([
    ["a new name", { name: "Repo B" }, { name: "Repo B" }, {}],
    ["an end removed with null", { ending_at: null }, { endingAt: null }, {}],
    ["a new start", { subscription_at: "2026-05-01T00:00:00Z" }, { subscriptionAt: new Date("2026-05-01T00:00:00Z") }, {}],
    ["an end before a new start is refused", { subscription_at: "2026-05-01T00:00:00Z", ending_at: "2026-04-01T00:00:00Z" }, {}, { ending_at: ["invalid_date"] }],
    ["an end in the past is refused", { ending_at: "2026-03-01T00:00:00Z" }, {}, { ending_at: ["invalid_date"] }],
  ])("%s", (_case, raw, value, errors) => {
    const read = readUpdateInput(raw, NOW, start, true);
    expect(read.errors).toEqual(errors);
    expect(read.value).toMatchObject(value);
  });
});

describe("query parameters", () => {
  it.each([
    ["no status lists active subscriptions only (Lago)", {}, ["active"]],
    ["status[] as Lago's clients send it", { "status[]": ["active", "pending"] }, ["active", "pending"]],
    ["a single status", { status: "terminated" }, ["terminated"]],
  ])("%s", (_case, q, statuses) => {
    const read = readListQuery(q);
    expect(read.ok && read.value.statuses).toEqual(statuses);
  });

  it.each([
    ["an unknown status", { "status[]": ["active", "gone"] }, { status: ["value_is_invalid"] }],
    ["a page of zero", { page: "0" }, { page: ["must_be_an_integer_between_1_and_1000000"] }],
    ["a page size past the maximum", { per_page: "1001" }, { per_page: ["must_be_an_integer_between_1_and_1000"] }],
  ])("%s is refused", (_case, q, errors) => {
    expect(readListQuery(q)).toEqual({ ok: false, errors });
  });

  it("a status selector takes only the statuses the route allows", () => {
    expect(readStatusParam("pending", ["active", "pending"])).toEqual({ ok: true, value: "pending" });
    expect(readStatusParam(undefined, ["active", "pending"])).toEqual({ ok: true, value: undefined });
    expect(readStatusParam("terminated", ["active", "pending"])).toEqual({ ok: false, errors: { status: ["value_is_invalid"] } });
  });
});
