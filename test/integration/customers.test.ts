// Customers API: Lago's upsert by external_id, reads, list, deletion, validation, and isolation
// between organizations.
import { Client, type HttpResponse } from "lago-javascript-client";
import type { InjectOptions } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DB_KIND } from "../helpers/db.ts";
import { startTestApp, type TestApp } from "../helpers/app.ts";
import { T0, bearer, json, scalar, uid } from "./support.ts";

const ADMIN_TOKEN = "admin-token-for-tests-0123456789";
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const NOT_FOUND = { status: 404, error: "Not Found", code: "customer_not_found" };
const lagoTime = (ms: number) => new Date(ms).toISOString().replace(/\.\d{3}Z$/, "Z");

let t: TestApp;

beforeAll(async () => {
  t = await startTestApp({ env: { VALUEVERSE_ADMIN_TOKEN: ADMIN_TOKEN }, listen: true });
});
afterAll(async () => {
  await t?.close();
});

type Method = "GET" | "POST" | "DELETE";
const api = (method: Method, url: string, payload?: unknown, key = t.apiKey) =>
  t.app.http.inject({ method, url, headers: bearer(key), ...(payload === undefined ? {} : { payload: payload as InjectOptions["payload"] }) });
const upsert = (customer: unknown, key?: string) => api("POST", "/api/v1/customers", { customer }, key);
const getCustomer = (externalId: string, key?: string) => api("GET", `/api/v1/customers/${encodeURIComponent(externalId)}`, undefined, key);
const deleteCustomer = (externalId: string, key?: string) => api("DELETE", `/api/v1/customers/${encodeURIComponent(externalId)}`, undefined, key);
const list = (query = "", key?: string) => api("GET", `/api/v1/customers${query ? `?${query}` : ""}`, undefined, key);

async function createOrg(): Promise<string> {
  const r = await t.app.http.inject({
    method: "POST",
    url: "/admin/v1/organizations",
    headers: bearer(ADMIN_TOKEN),
    payload: { organization: { name: uid("Org") } },
  });
  expect(r.statusCode).toBe(200);
  return json(r).api_key;
}

const liveRows = (externalId: string) =>
  scalar(t.db, "SELECT count(*)::text AS n FROM customers WHERE external_id = $1 AND deleted_at IS NULL", [externalId]);

describe(`customers API on ${DB_KIND}`, () => {
  it("creates a customer with POST and answers 200 with Lago's customer object", async () => {
    const externalId = uid("cus");
    // Tax codes name taxes of the organization (422 otherwise).
    const tax = await t.app.http.inject({ method: "POST", url: "/api/v1/taxes", headers: bearer(t.apiKey), payload: { tax: { name: "TVA", code: "vat_fr", rate: "20" } } });
    expect(tax.statusCode, tax.body).toBe(200);
    const r = await upsert({
      external_id: externalId,
      name: "Gavin Belson",
      firstname: "Gavin",
      lastname: "Belson",
      email: "gavin@hooli.test",
      currency: "EUR",
      timezone: "Europe/Paris",
      country: "fr",
      address_line1: "5230 Penfield Ave",
      city: "Paris",
      zipcode: "75001",
      legal_name: "Hooli",
      tax_identification_number: "EU123456789",
      customer_type: "company",
      net_payment_term: 30,
      tax_codes: ["vat_fr"],
      shipping_address: { city: "Lyon", country: "FR" },
      billing_configuration: { invoice_grace_period: 3, document_locale: "fr" },
      metadata: [{ key: "PO", value: "123", display_in_invoice: true }],
    });
    expect(r.statusCode).toBe(200);
    const c = json(r).customer;
    expect(c).toEqual({
      lago_id: expect.stringMatching(UUID),
      external_id: externalId,
      account_type: "customer",
      name: "Gavin Belson",
      firstname: "Gavin",
      lastname: "Belson",
      customer_type: "company",
      sequential_id: expect.any(Number),
      slug: expect.stringMatching(/^[A-Z0-9]{1,3}-[0-9A-F]{4}-\d{3,}$/),
      created_at: lagoTime(T0),
      updated_at: lagoTime(T0),
      country: "FR",
      address_line1: "5230 Penfield Ave",
      address_line2: null,
      state: null,
      zipcode: "75001",
      email: "gavin@hooli.test",
      city: "Paris",
      url: null,
      phone: null,
      logo_url: null,
      legal_name: "Hooli",
      legal_number: null,
      currency: "EUR",
      tax_identification_number: "EU123456789",
      timezone: "Europe/Paris",
      applicable_timezone: "Europe/Paris",
      net_payment_term: 30,
      external_salesforce_id: null,
      finalize_zero_amount_invoice: "inherit",
      skip_invoice_custom_sections: false,
      billing_configuration: {
        invoice_grace_period: 3,
        payment_provider: null,
        payment_provider_code: null,
        provider_customer_id: null,
        document_locale: "fr",
        subscription_invoice_issuing_date_anchor: null,
        subscription_invoice_issuing_date_adjustment: null,
      },
      shipping_address: { address_line1: null, address_line2: null, city: "Lyon", state: null, zipcode: null, country: "FR" },
      metadata: [{ lago_id: expect.stringMatching(UUID), key: "PO", value: "123", display_in_invoice: true, created_at: lagoTime(T0) }],
      taxes: [expect.objectContaining({ code: "vat_fr", rate: 20 })],
      tax_codes: ["vat_fr"],
      integration_customers: [],
      applicable_invoice_custom_sections: [],
    });
    expect(c.slug.endsWith(`-${String(c.sequential_id).padStart(3, "0")}`)).toBe(true);
    expect(json(await getCustomer(externalId))).toEqual({ customer: c });
  });

  it("updates the live customer with the same external_id: only the fields sent change", async () => {
    const externalId = uid("cus");
    const created = json(await upsert({ external_id: externalId, name: "Old", email: "a@b.co", currency: "USD", metadata: [{ key: "k", value: "v" }] })).customer;
    t.clock.advance(60_000);
    try {
      const r = await upsert({ external_id: externalId, name: "New", timezone: "America/New_York" });
      expect(r.statusCode).toBe(200);
      const updated = json(r).customer;
      expect(updated).toEqual({
        ...created,
        name: "New",
        timezone: "America/New_York",
        applicable_timezone: "America/New_York",
        updated_at: lagoTime(T0 + 60_000),
      });
      expect(await liveRows(externalId)).toBe(1);
      // An explicit null clears; an empty metadata list removes every entry.
      const cleared = json(await upsert({ external_id: externalId, email: null, metadata: [] })).customer;
      expect(cleared).toMatchObject({ email: null, metadata: [], name: "New", currency: "USD" });
    } finally {
      t.clock.set(T0);
    }
  });

  it("updates a metadata entry named by its lago_id and keeps its identity", async () => {
    const externalId = uid("cus");
    const [entry] = json(await upsert({ external_id: externalId, metadata: [{ key: "a", value: "1" }] })).customer.metadata;
    const r = await upsert({ external_id: externalId, metadata: [{ id: entry.lago_id, key: "a", value: "2" }, { key: "b", value: "3" }] });
    expect(json(r).customer.metadata).toEqual([
      { ...entry, value: "2" },
      { lago_id: expect.stringMatching(UUID), key: "b", value: "3", display_in_invoice: false, created_at: lagoTime(T0) },
    ]);
  });

  it("deletes a customer: 200 with the customer, then 404 everywhere; the external_id can be reused", async () => {
    const externalId = uid("cus");
    const created = json(await upsert({ external_id: externalId, name: "Doomed" })).customer;
    const r = await deleteCustomer(externalId);
    expect(r.statusCode).toBe(200);
    expect(json(r).customer).toMatchObject({ lago_id: created.lago_id, external_id: externalId, name: "Doomed" });

    for (const again of [await getCustomer(externalId), await deleteCustomer(externalId)]) {
      expect(again.statusCode).toBe(404);
      expect(json(again)).toEqual(NOT_FOUND);
    }
    expect(json(await list(`external_id=${encodeURIComponent(externalId)}`)).customers).toEqual([]);

    // A new customer under the same external_id: a new lago_id and the next sequential id.
    const reborn = json(await upsert({ external_id: externalId })).customer;
    expect(reborn.lago_id).not.toBe(created.lago_id);
    expect(reborn.sequential_id).toBeGreaterThan(created.sequential_id);
    expect(reborn.name).toBeNull();
    expect(await scalar(t.db, "SELECT count(*)::text AS n FROM customers WHERE external_id = $1", [externalId])).toBe(2);
  });

  it("answers 404 customer_not_found for ids that do not exist or could not exist", async () => {
    for (const id of ["nope", "x".repeat(300), "a\u0000b", "%"]) {
      for (const r of [await getCustomer(id), await deleteCustomer(id)]) {
        expect(r.statusCode, id).toBe(404);
        expect(json(r)).toEqual(NOT_FOUND);
      }
    }
  });

  it("refuses an invalid customer with Lago's 422, naming every broken field, and stores nothing", async () => {
    const externalId = uid("cus");
    const r = await upsert({
      external_id: externalId,
      currency: "EURO",
      timezone: "Mars/Base",
      email: "not-an-email",
      country: "ZZ",
      name: "n".repeat(256),
      net_payment_term: -5,
      metadata: [{ key: "k".repeat(21), value: "v" }],
    });
    expect(r.statusCode).toBe(422);
    expect(json(r)).toEqual({
      status: 422,
      error: "Unprocessable Entity",
      code: "validation_errors",
      error_details: {
        currency: ["value_is_invalid"],
        timezone: ["invalid_timezone"],
        email: ["invalid_email_format"],
        country: ["not_a_valid_country_code"],
        name: ["value_is_too_long (max 255 characters)"],
        net_payment_term: ["value_is_out_of_range"],
        "metadata[0].key": ["value_is_too_long (max 20 characters)"],
      },
    });
    expect(await liveRows(externalId)).toBe(0);

    // An invalid update leaves the stored customer as it was.
    await upsert({ external_id: externalId, currency: "USD" });
    expect((await upsert({ external_id: externalId, currency: "usd", name: "changed" })).statusCode).toBe(422);
    expect(json(await getCustomer(externalId)).customer).toMatchObject({ currency: "USD", name: null });
  });

  it.each([
    ["no body", undefined, 400],
    ["no customer", {}, 400],
    ["a null customer", { customer: null }, 400],
    ["a customer that is a string", { customer: "x" }, 422],
    ["a customer without external_id", { customer: { name: "x" } }, 422],
  ])("refuses %s", async (_case, payload, status) => {
    const r = await api("POST", "/api/v1/customers", payload);
    expect(r.statusCode).toBe(status);
  });

  it("lists customers newest first, paginated with Lago's meta", async () => {
    const key = await createOrg();
    const ids: string[] = [];
    try {
      for (let i = 0; i < 5; i++) {
        t.clock.set(T0 + i * 1000);
        const id = `page-${i}`;
        ids.push(id);
        expect((await upsert({ external_id: id }, key)).statusCode).toBe(200);
      }
    } finally {
      t.clock.set(T0);
    }
    const page1 = json(await list("per_page=2", key));
    expect(page1.customers.map((c: { external_id: string }) => c.external_id)).toEqual(["page-4", "page-3"]);
    expect(page1.meta).toEqual({ current_page: 1, next_page: 2, prev_page: null, total_pages: 3, total_count: 5 });
    const page3 = json(await list("per_page=2&page=3", key));
    expect(page3.customers.map((c: { external_id: string }) => c.external_id)).toEqual(["page-0"]);
    expect(page3.meta).toEqual({ current_page: 3, next_page: null, prev_page: 2, total_pages: 3, total_count: 5 });
    const beyond = json(await list("per_page=2&page=9", key));
    expect(beyond).toEqual({ customers: [], meta: { current_page: 9, next_page: null, prev_page: 8, total_pages: 3, total_count: 5 } });
    // Lago's default page holds 100.
    expect(json(await list("", key)).customers).toHaveLength(5);

    const bad = await list("page=0&per_page=5000&currencies[]=EURO", key);
    expect(bad.statusCode).toBe(422);
    expect(Object.keys(json(bad).error_details).sort()).toEqual(["currencies", "page", "per_page"]);
  });

  it("filters the list as Lago documents (search, countries, currencies, types, metadata)", async () => {
    const key = await createOrg();
    await upsert({ external_id: "f-1", name: "Alice 100%_Corp", email: "alice@acme.test", country: "FR", currency: "EUR", customer_type: "company", metadata: [{ key: "tier", value: "gold" }] }, key);
    await upsert({ external_id: "f-2", firstname: "Bob", country: "US", currency: "USD", tax_identification_number: "US-1", metadata: [{ key: "tier", value: "silver" }] }, key);
    await upsert({ external_id: "f-3", legal_name: "Carol Ltd", country: "DE", state: "BE", zipcode: "10115" }, key);
    const ids = async (query: string) => {
      const r = await list(query, key);
      expect(r.statusCode, query).toBe(200);
      return (json(r).customers as { external_id: string }[]).map((c) => c.external_id).sort();
    };
    expect(await ids("search_term=ALICE")).toEqual(["f-1"]);
    expect(await ids("search_term=100%25_")).toEqual(["f-1"]);
    expect(await ids("search_term=_")).toEqual(["f-1"]);
    expect(await ids("search_term=acme.test")).toEqual(["f-1"]);
    expect(await ids("search_term=carol")).toEqual(["f-3"]);
    expect(await ids("search_term=f-")).toEqual(["f-1", "f-2", "f-3"]);
    expect(await ids("countries[]=FR&countries[]=DE")).toEqual(["f-1", "f-3"]);
    expect(await ids("countries%5B%5D=US")).toEqual(["f-2"]);
    expect(await ids("currencies[]=EUR")).toEqual(["f-1"]);
    expect(await ids("states[]=BE&zipcodes[]=10115")).toEqual(["f-3"]);
    expect(await ids("customer_type=company")).toEqual(["f-1"]);
    expect(await ids("has_customer_type=false")).toEqual(["f-2", "f-3"]);
    expect(await ids("has_tax_identification_number=true")).toEqual(["f-2"]);
    expect(await ids("account_type[]=partner")).toEqual([]);
    expect(await ids("external_id=f-2")).toEqual(["f-2"]);
    expect(await ids("metadata[tier]=gold")).toEqual(["f-1"]);
    expect(await ids("metadata[tier]=")).toEqual(["f-3"]);
  });

  it("keeps one customer per external_id under concurrent upserts, with distinct sequential ids", async () => {
    const externalId = uid("race");
    const same = await Promise.all(Array.from({ length: 8 }, (_, i) => upsert({ external_id: externalId, name: `n${i}` })));
    expect(same.map((r) => r.statusCode)).toEqual(Array(8).fill(200));
    expect(new Set(same.map((r) => json(r).customer.lago_id)).size).toBe(1);
    expect(await liveRows(externalId)).toBe(1);

    const distinct = await Promise.all(Array.from({ length: 8 }, (_, i) => upsert({ external_id: `${externalId}-${i}` })));
    const seqs = distinct.map((r) => json(r).customer.sequential_id as number);
    expect(new Set(seqs).size).toBe(8);
  });

  it("lets another module fix the currency (Lago's currencies_does_not_match) and run work on deletion", async () => {
    const locked = uid("locked");
    t.app.customers.lockCurrencyWhen(async (_tx, c) => c.externalId === locked);
    const undeletable = uid("undeletable");
    t.app.customers.onDelete(async (_tx, c) => {
      if (c.externalId === undeletable) throw new Error("subscriptions could not be terminated");
    });

    // No currency yet: it can be set; then it can no longer change.
    expect((await upsert({ external_id: locked })).statusCode).toBe(200);
    expect((await upsert({ external_id: locked, currency: "EUR" })).statusCode).toBe(200);
    const r = await upsert({ external_id: locked, currency: "USD", name: "x" });
    expect(r.statusCode).toBe(422);
    expect(json(r).error_details).toEqual({ currency: ["currencies_does_not_match"] });
    expect((await upsert({ external_id: locked, currency: "EUR", name: "same currency is fine" })).statusCode).toBe(200);

    // A failing deletion listener rolls the deletion back.
    await upsert({ external_id: undeletable });
    expect((await deleteCustomer(undeletable)).statusCode).toBe(500);
    expect((await getCustomer(undeletable)).statusCode).toBe(200);
  });

  it("serves the official Lago client: create, find, list with filters, destroy", async () => {
    const lago = Client(t.apiKey, { baseUrl: `${t.url}/api/v1` });
    const externalId = uid("sdk");
    const created = await lago.customers.createCustomer({
      customer: { external_id: externalId, name: "SDK", currency: "JPY", country: "JP", timezone: "Asia/Tokyo" },
    });
    expect(created.data.customer).toMatchObject({ external_id: externalId, currency: "JPY", applicable_timezone: "Asia/Tokyo" });
    expect((await lago.customers.findCustomer(externalId)).data.customer.lago_id).toBe(created.data.customer.lago_id);
    const listed = await lago.customers.findAllCustomers({ "countries[]": ["JP"], "currencies[]": ["JPY"], search_term: externalId, per_page: 10 });
    expect(listed.data.customers.map((c) => c.external_id)).toEqual([externalId]);
    expect(listed.data.meta).toMatchObject({ current_page: 1, total_count: 1 });
    await lago.customers.destroyCustomer(externalId);
    const missing = await lago.customers.findCustomer(externalId).catch((e: HttpResponse<unknown, unknown>) => e);
    expect((missing as HttpResponse<unknown, unknown>).status).toBe(404);
    expect((missing as HttpResponse<unknown, unknown>).error).toEqual(NOT_FOUND);
  });
});

describe(`customers of one organization are invisible to another on ${DB_KIND}`, () => {
  it("cannot read, list, change or delete another organization's customer", async () => {
    const other = await createOrg();
    const externalId = uid("mine");
    const mine = json(await upsert({ external_id: externalId, name: "Mine", currency: "EUR" })).customer;

    const read = await getCustomer(externalId, other);
    expect(read.statusCode).toBe(404);
    expect(json(read)).toEqual(NOT_FOUND);
    expect(json(await list(`search_term=${externalId}`, other)).customers).toEqual([]);
    expect(json(await list(`external_id=${externalId}`, other)).meta.total_count).toBe(0);
    expect((await deleteCustomer(externalId, other)).statusCode).toBe(404);

    // The same external_id in the other organization is that organization's own customer.
    const theirs = json(await upsert({ external_id: externalId, name: "Theirs", currency: "USD" }, other)).customer;
    expect(theirs.lago_id).not.toBe(mine.lago_id);
    expect(theirs.sequential_id).toBe(1);
    expect(json(await getCustomer(externalId)).customer).toEqual(mine);
    expect((await deleteCustomer(externalId, other)).statusCode).toBe(200);
    expect(json(await getCustomer(externalId)).customer).toEqual(mine);
    expect(await scalar(t.db, "SELECT count(*)::text AS n FROM customers WHERE lago_id = $1 AND deleted_at IS NULL", [mine.lago_id])).toBe(1);
  });

  it("requires an API key on every customer route", async () => {
    for (const [method, url] of [
      ["GET", "/api/v1/customers"],
      ["POST", "/api/v1/customers"],
      ["GET", "/api/v1/customers/x"],
      ["DELETE", "/api/v1/customers/x"],
    ] as const) {
      const r = await t.app.http.inject({ method, url, ...(method === "POST" ? { payload: { customer: { external_id: "x" } } } : {}) });
      expect(r.statusCode, `${method} ${url}`).toBe(401);
    }
  });
});
