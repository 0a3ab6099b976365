import fs from "node:fs";
import { execFileSync } from "node:child_process";
import { it } from "vitest";
import { startTestApp } from "../helpers/app.ts";
import { BILLING_ENV, customer, invoicesOf, newOrg, plan, sendCalls, subscribe } from "./billing_support.ts";

it("renders", async () => {
  const t = await startTestApp({ env: BILLING_ENV });
  const org = await newOrg(t);
  await org.freeze("2026-01-01T00:00:00Z");
  await org.api("POST", "/api/v1/taxes", { tax: { name: "VAT", code: "vat", rate: "20", applied_to_organization: true } });
  await org.api("POST", "/api/v1/taxes", { tax: { name: "Digital", code: "dig", rate: "5.5" } });
  const p = await plan(org, { amount_cents: 10000, charge_tax_codes: ["dig", "vat"] });
  await org.api("POST", "/api/v1/coupons", { coupon: { name: "Welcome", code: "w", coupon_type: "fixed_amount", amount_cents: 1500, amount_currency: "EUR", frequency: "once", expiration: "no_expiration" } });
  const cus = await customer(org, { name: "Ada Lovelace" });
  const sub = await subscribe(org, cus, p.plan);
  await org.api("POST", "/api/v1/applied_coupons", { applied_coupon: { external_customer_id: cus, coupon_code: "w" } });
  await org.api("POST", "/api/v1/wallets", { wallet: { external_customer_id: cus, currency: "EUR", rate_amount: "1", granted_credits: "20" } });
  await org.freeze("2026-01-10T00:00:00Z");
  await sendCalls(org, sub, p.calls, 321, "2026-01-10T00:00:00Z");
  await org.freeze("2026-02-01T00:00:00Z");
  const [inv] = await invoicesOf(org, cus);
  const r = await org.raw("GET", `/api/v1/invoices/${inv.lago_id}/pdf`);
  fs.writeFileSync(".tmp/view.pdf", r.rawPayload);
  execFileSync("pdftoppm", ["-png", "-r", "70", "-f", "1", "-l", "1", "-singlefile", ".tmp/view.pdf", ".tmp/view"]);
  await t.close();
});
