// Add-ons against a real database: Lago's /add_ons (create, get, list, update, delete by code), tax
// codes checked, bad input named by field, and one organization never sees another's add-ons.
// On PGlite by default, PostgreSQL with TEST_DATABASE_URL.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestApp, type TestApp } from "../helpers/app.ts";
import { BILLING_ENV, expect422, newOrg } from "./billing_support.ts";

let t: TestApp;
beforeAll(async () => {
  t = await startTestApp({ env: BILLING_ENV });
});
afterAll(async () => {
  await t?.close();
});

describe("add-ons", () => {
  it("create, get, list, update and delete by code, with taxes", async () => {
    const org = await newOrg(t);
    await org.api("POST", "/api/v1/taxes", { tax: { name: "VAT", code: "vat", rate: "20" } });
    const created = (
      await org.api("POST", "/api/v1/add_ons", {
        add_on: { name: "Setup Fee", code: "setup", amount_cents: 50000, amount_currency: "EUR", description: "Implementation", tax_codes: ["vat"] },
      })
    ).add_on;
    expect(created).toMatchObject({
      name: "Setup Fee",
      code: "setup",
      amount_cents: 50000,
      amount_currency: "EUR",
      description: "Implementation",
      invoice_display_name: null,
    });
    expect(created.lago_id).toMatch(/^[0-9a-f-]{36}$/);
    expect(created.taxes.map((x: any) => [x.code, x.rate])).toEqual([["vat", 20]]);
    expect((await org.api("GET", "/api/v1/add_ons/setup")).add_on.lago_id).toBe(created.lago_id);

    await org.api("POST", "/api/v1/add_ons", { add_on: { name: "Training", code: "training", amount_cents: "12050", amount_currency: "USD" } });
    const page2 = await org.api("GET", "/api/v1/add_ons?per_page=1&page=2");
    expect(page2.meta).toMatchObject({ total_count: 2, current_page: 2, total_pages: 2 });
    expect(page2.add_ons.map((a: any) => a.code)).toEqual(["setup"]);

    // Only the fields sent change; a new code frees the old one.
    const updated = (await org.api("PUT", "/api/v1/add_ons/setup", { add_on: { code: "setup_v2", amount_cents: 60000, invoice_display_name: "Setup" } })).add_on;
    expect(updated).toMatchObject({ code: "setup_v2", amount_cents: 60000, name: "Setup Fee", invoice_display_name: "Setup", amount_currency: "EUR" });
    expect(updated.taxes.map((x: any) => x.code)).toEqual(["vat"]);
    expect((await org.raw("GET", "/api/v1/add_ons/setup")).statusCode).toBe(404);

    expect((await org.api("DELETE", "/api/v1/add_ons/setup_v2")).add_on.code).toBe("setup_v2");
    const gone = await org.raw("GET", "/api/v1/add_ons/setup_v2");
    expect(gone.statusCode).toBe(404);
    expect(JSON.parse(gone.body).code).toBe("add_on_not_found");
    expect((await org.api("GET", "/api/v1/add_ons")).add_ons.map((a: any) => a.code)).toEqual(["training"]);
    // The code is free again.
    await org.api("POST", "/api/v1/add_ons", { add_on: { name: "Setup again", code: "setup_v2", amount_cents: 1, amount_currency: "EUR" } });
  });

  it("bad input is a 422 naming every field; a taken code and an unknown tax code too", async () => {
    const org = await newOrg(t);
    expect422(await org.raw("POST", "/api/v1/add_ons", { add_on: { name: "", amount_cents: -1, amount_currency: "XXX" } }), "name", "code", "amount_cents", "amount_currency");
    expect422(await org.raw("POST", "/api/v1/add_ons", { add_on: { name: "a", code: "a", amount_cents: 1.5, amount_currency: "EUR" } }), "amount_cents");
    expect422(await org.raw("POST", "/api/v1/add_ons", { add_on: { name: "a", code: "a", amount_currency: "EUR" } }), "amount_cents");
    expect((await org.raw("POST", "/api/v1/add_ons", {})).statusCode).toBe(400);
    expect(expect422(await org.raw("POST", "/api/v1/add_ons", { add_on: { name: "a", code: "a", amount_cents: 1, amount_currency: "EUR", tax_codes: ["nope"] } }), "tax_codes")).toEqual({
      tax_codes: ["tax_not_found"],
    });
    await org.api("POST", "/api/v1/add_ons", { add_on: { name: "a", code: "a", amount_cents: 1, amount_currency: "EUR" } });
    expect(expect422(await org.raw("POST", "/api/v1/add_ons", { add_on: { name: "a", code: "a", amount_cents: 1, amount_currency: "EUR" } }), "code")).toEqual({
      code: ["value_already_exist"],
    });
    await org.api("POST", "/api/v1/add_ons", { add_on: { name: "b", code: "b", amount_cents: 1, amount_currency: "EUR" } });
    expect422(await org.raw("PUT", "/api/v1/add_ons/b", { add_on: { code: "a" } }), "code");
    expect422(await org.raw("PUT", "/api/v1/add_ons/b", { add_on: { amount_currency: "nope", amount_cents: null } }), "amount_currency", "amount_cents");
    expect((await org.raw("PUT", "/api/v1/add_ons/missing", { add_on: { name: "x" } })).statusCode).toBe(404);
  });

  it("one organization never sees another's add-ons", async () => {
    const a = await newOrg(t);
    const b = await newOrg(t);
    await a.api("POST", "/api/v1/add_ons", { add_on: { name: "Secret", code: "secret", amount_cents: 100, amount_currency: "EUR" } });
    expect((await b.raw("GET", "/api/v1/add_ons/secret")).statusCode).toBe(404);
    expect((await b.raw("PUT", "/api/v1/add_ons/secret", { add_on: { name: "mine" } })).statusCode).toBe(404);
    expect((await b.raw("DELETE", "/api/v1/add_ons/secret")).statusCode).toBe(404);
    expect((await b.api("GET", "/api/v1/add_ons")).add_ons).toEqual([]);
    // B may use the same code for its own.
    await b.api("POST", "/api/v1/add_ons", { add_on: { name: "Mine", code: "secret", amount_cents: 1, amount_currency: "EUR" } });
    expect((await a.api("GET", "/api/v1/add_ons/secret")).add_on.name).toBe("Secret");
  });
});
