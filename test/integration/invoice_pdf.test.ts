// The invoice PDF (POST /invoices/:id/download → file_url, GET /invoices/:id/pdf): a month billed
// under a test clock, rendered as a PDF, converted to PNG with poppler's pdftoppm and read back with
// pdftotext (number, customer name, total). Drafts are watermarked; another organization gets 404.
// On PGlite by default, PostgreSQL with TEST_DATABASE_URL.
import { execFileSync, spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import type { LightMyRequestResponse } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DB_KIND } from "../helpers/db.ts";
import { startTestApp, type TestApp } from "../helpers/app.ts";
import { bearer, json, uid } from "./support.ts";

const ADMIN_TOKEN = "admin-token-for-invoice-pdf-tests-0123456789";
const hasPoppler = spawnSync("pdftoppm", ["-v"]).error === undefined && spawnSync("pdftotext", ["-v"]).error === undefined;
const OUT_DIR = fs.mkdtempSync(path.join(os.tmpdir(), "vv-invoice-pdf-"));

let t: TestApp;

beforeAll(async () => {
  t = await startTestApp({ env: { VALUEVERSE_ADMIN_TOKEN: ADMIN_TOKEN, VALUEVERSE_TEST_CLOCK: "on", BILLING_SCHEDULER: "off" } });
});
afterAll(async () => {
  await t?.close();
  // KEEP_INVOICE_PDF=1 keeps the PDFs and PNGs to look at.
  if (process.env["KEEP_INVOICE_PDF"] === undefined) fs.rmSync(OUT_DIR, { recursive: true, force: true });
  else console.log(`invoice PDFs and PNGs kept in ${OUT_DIR}`);
});

type Method = "GET" | "POST" | "PUT";
const T = (iso: string) => Math.floor(Date.parse(iso) / 1000);

async function newOrg(name: string) {
  const r = await t.app.http.inject({ method: "POST", url: "/admin/v1/organizations", headers: bearer(ADMIN_TOKEN), payload: { organization: { name } } });
  expect(r.statusCode, r.body).toBe(200);
  const key = json(r).api_key as string;
  const raw = (method: Method, url: string, payload?: unknown): Promise<LightMyRequestResponse> =>
    t.app.http.inject({ method, url, headers: bearer(key), ...(payload === undefined ? {} : { payload: payload as object }) });
  const api = async (method: Method, url: string, payload?: unknown) => {
    const res = await raw(method, url, payload);
    expect(res.statusCode, res.body).toBe(200);
    return json(res);
  };
  return { raw, api, freeze: (at: string) => api("PUT", "/api/v1/test_clock", { test_clock: { frozen_time: at } }) };
}
type Org = Awaited<ReturnType<typeof newOrg>>;

/** A plan at €49/month with a €0.05 per call charge; a customer with a full address; 150 calls in March. */
async function billedMonth(org: Org, customer: Record<string, unknown>, graceDays = 0) {
  await org.freeze("2024-03-10T12:00:00Z");
  const calls = (await org.api("POST", "/api/v1/billable_metrics", { billable_metric: { name: "API calls", code: uid("calls"), aggregation_type: "count_agg" } }))
    .billable_metric;
  const plan = (
    await org.api("POST", "/api/v1/plans", {
      plan: {
        name: "Growth",
        code: uid("growth"),
        interval: "monthly",
        amount_cents: 4900,
        amount_currency: "EUR",
        pay_in_advance: false,
        charges: [{ billable_metric_id: calls.lago_id, charge_model: "standard", properties: { amount: "0.05" } }],
      },
    })
  ).plan;
  const externalCustomerId = uid("cus");
  await org.api("POST", "/api/v1/customers", {
    customer: { external_id: externalCustomerId, currency: "EUR", ...customer, ...(graceDays > 0 ? { billing_configuration: { invoice_grace_period: graceDays } } : {}) },
  });
  const sub = uid("sub");
  await org.api("POST", "/api/v1/subscriptions", {
    subscription: { external_customer_id: externalCustomerId, plan_code: plan.code, external_id: sub, billing_time: "calendar" },
  });
  await org.freeze("2024-03-31T23:00:00Z");
  const events = Array.from({ length: 150 }, (_, i) => ({
    transaction_id: uid("tx"),
    external_subscription_id: sub,
    code: calls.code,
    timestamp: T(new Date(Date.parse("2024-03-11T00:00:00Z") + i * 3_600_000).toISOString()),
  }));
  for (let i = 0; i < events.length; i += 100) await org.api("POST", "/api/v1/events/batch", { events: events.slice(i, i + 100) });
  await org.freeze("2024-04-01T00:05:00Z");
  const list = (await org.api("GET", `/api/v1/invoices?external_customer_id=${encodeURIComponent(externalCustomerId)}`)).invoices;
  expect(list).toHaveLength(1);
  return list[0] as { lago_id: string; number: string; status: string; total_amount_cents: number };
}

const isPdf = (r: LightMyRequestResponse) => {
  expect(r.statusCode).toBe(200);
  expect(r.headers["content-type"]).toMatch(/^application\/pdf/);
  const bytes = r.rawPayload;
  expect(bytes.subarray(0, 5).toString("latin1")).toBe("%PDF-");
  expect(bytes.length).toBeGreaterThan(1000);
  return bytes;
};

describe(`invoice PDF on ${DB_KIND}`, () => {
  let org: Org;
  let inv: Awaited<ReturnType<typeof billedMonth>>;
  let pdf: Buffer;

  beforeAll(async () => {
    org = await newOrg("Acme Corp");
    inv = await billedMonth(org, {
      name: "Globex Corporation",
      legal_name: "Globex Corporation Ltd",
      email: "billing@globex.example",
      address_line1: "12 Market Street",
      city: "Springfield",
      zipcode: "12345",
      country: "US",
    });
  });

  it("POST /download answers the invoice with a file_url pointing at the PDF", async () => {
    const body = await org.api("POST", `/api/v1/invoices/${inv.lago_id}/download`);
    expect(body.invoice).toMatchObject({ lago_id: inv.lago_id, number: inv.number, status: "finalized" });
    expect(body.invoice.file_url).toBe(`/api/v1/invoices/${inv.lago_id}/pdf`);
    pdf = isPdf(await org.raw("GET", body.invoice.file_url));
  });

  it.skipIf(!hasPoppler)("converts to a PNG page and its text shows the number, the customer and the total (needs poppler-utils: pdftoppm, pdftotext)", () => {
    const pdfPath = path.join(OUT_DIR, "invoice.pdf");
    fs.writeFileSync(pdfPath, pdf);
    execFileSync("pdftoppm", ["-png", "-r", "80", "-f", "1", "-l", "1", "-singlefile", pdfPath, path.join(OUT_DIR, "invoice")]);
    const png = path.join(OUT_DIR, "invoice.png");
    expect(fs.existsSync(png)).toBe(true);
    const bytes = fs.readFileSync(png);
    expect(bytes.subarray(1, 4).toString("latin1")).toBe("PNG");
    // A4 at 80 dpi is about 662 × 935 pixels (poppler rounds); a blank page would compress to a few kilobytes.
    expect(Math.abs(bytes.readUInt32BE(16) - 662)).toBeLessThanOrEqual(2);
    expect(Math.abs(bytes.readUInt32BE(20) - 935)).toBeLessThanOrEqual(2);
    expect(bytes.length).toBeGreaterThan(15_000);

    const text = execFileSync("pdftotext", ["-layout", pdfPath, "-"], { encoding: "utf8" });
    // €49 × 22/31 = 34.77 (subscription) + 150 × €0.05 = 7.50 (calls) = 42.27.
    expect(inv.total_amount_cents).toBe(4227);
    for (const s of [inv.number, "Globex Corporation", "Globex Corporation Ltd", "billing@globex.example", "Acme Corp", "42.27 EUR", "7.50 EUR", "0.05 EUR", "150"]) {
      expect(text).toContain(s);
    }
    expect(text).toMatch(/Issue date\s+2024-04-01/);
    expect(text).toMatch(/Total due\s+42\.27 EUR/);
    expect(text).toMatch(/Taxes\s+0\.00 EUR/);
    expect(text).not.toContain("DRAFT");
  });

  it("another organization's invoice is not found", async () => {
    const other = await newOrg(uid("Other"));
    expect((await other.raw("POST", `/api/v1/invoices/${inv.lago_id}/download`)).statusCode).toBe(404);
    expect((await other.raw("GET", `/api/v1/invoices/${inv.lago_id}/pdf`)).statusCode).toBe(404);
    expect((await org.raw("GET", `/api/v1/invoices/00000000-0000-4000-8000-000000000000/pdf`)).statusCode).toBe(404);
  });

  it("a draft downloads too, watermarked DRAFT", async () => {
    const o = await newOrg(uid("Draft Co"));
    const draft = await billedMonth(o, { name: "Initech" }, 3);
    expect(draft.status).toBe("draft");
    const body = await o.api("POST", `/api/v1/invoices/${draft.lago_id}/download`);
    const bytes = isPdf(await o.raw("GET", body.invoice.file_url));
    if (!hasPoppler) return;
    const pdfPath = path.join(OUT_DIR, "draft.pdf");
    fs.writeFileSync(pdfPath, bytes);
    const text = execFileSync("pdftotext", [pdfPath, "-"], { encoding: "utf8" });
    expect(text).toContain("DRAFT");
    expect(text).toContain("Initech");
    execFileSync("pdftoppm", ["-png", "-r", "80", "-f", "1", "-l", "1", "-singlefile", pdfPath, path.join(OUT_DIR, "draft")]);
    expect(fs.statSync(path.join(OUT_DIR, "draft.png")).size).toBeGreaterThan(15_000);
  });
});
