// Coupons against a real database: Lago's /coupons and /applied_coupons, and coupons on invoices
// (before taxes; a fixed once coupon carried over, a recurring one counted down, drafts that show a
// coupon without using it up). On PGlite by default, PostgreSQL with TEST_DATABASE_URL.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestApp, type TestApp } from "../helpers/app.ts";
import { uid } from "./support.ts";
import { BILLING_ENV, customer, expect422, invoiceOf, invoicesOf, newOrg, plan, subscribe, type Org } from "./billing_support.ts";

let t: TestApp;
beforeAll(async () => {
  t = await startTestApp({ env: BILLING_ENV });
});
afterAll(async () => {
  await t?.close();
});

const fixed = (code: string, amount: number, extra: Record<string, unknown> = {}) => ({
  coupon: { name: code, code, coupon_type: "fixed_amount", amount_cents: amount, amount_currency: "EUR", frequency: "once", expiration: "no_expiration", ...extra },
});
const apply = (org: Org, customerId: string, couponCode: string, extra: Record<string, unknown> = {}) =>
  org.raw("POST", "/api/v1/applied_coupons", { applied_coupon: { external_customer_id: customerId, coupon_code: couponCode, ...extra } });
const appliedOf = async (org: Org, customerId: string) =>
  (await org.api("GET", `/api/v1/applied_coupons?external_customer_id=${encodeURIComponent(customerId)}`)).applied_coupons as any[];

describe("coupons", () => {
  it("create, get, list, update, delete; applied coupons listed and terminated", async () => {
    const org = await newOrg(t);
    await org.freeze("2026-01-05T00:00:00Z");
    const c = (await org.api("POST", "/api/v1/coupons", fixed("welcome", 2000, { reusable: false, expiration: "time_limit", expiration_at: "2026-06-30T23:59:59Z" }))).coupon;
    expect(c).toMatchObject({ code: "welcome", coupon_type: "fixed_amount", amount_cents: 2000, amount_currency: "EUR", reusable: false, frequency: "once", expiration_at: "2026-06-30T23:59:59Z", limited_plans: false });
    const pct = (
      await org.api("POST", "/api/v1/coupons", {
        coupon: { name: "Ten", code: "ten", coupon_type: "percentage", percentage_rate: "10.5", frequency: "recurring", frequency_duration: 3, expiration: "no_expiration" },
      })
    ).coupon;
    expect(pct).toMatchObject({ percentage_rate: "10.5", frequency_duration: 3, amount_cents: null });
    expect((await org.api("GET", "/api/v1/coupons")).meta.total_count).toBe(2);
    expect((await org.api("PUT", "/api/v1/coupons/ten", { coupon: { name: "Ten percent" } })).coupon).toMatchObject({ name: "Ten percent", percentage_rate: "10.5" });

    const cus = await customer(org);
    const applied = (await (async () => {
      const r = await apply(org, cus, "welcome", { amount_cents: 1500 });
      expect(r.statusCode, r.body).toBe(200);
      return JSON.parse(r.body).applied_coupon;
    })());
    expect(applied).toMatchObject({ coupon_code: "welcome", external_customer_id: cus, status: "active", amount_cents: 1500, amount_cents_remaining: 1500, frequency: "once" });
    expect422(await apply(org, cus, "welcome"), "coupon_code");
    const list = await appliedOf(org, cus);
    expect(list.map((a) => [a.lago_id, a.credits])).toEqual([[applied.lago_id, []]]);
    const gone = (await org.api("DELETE", `/api/v1/customers/${cus}/applied_coupons/${applied.lago_id}`)).applied_coupon;
    expect(gone).toMatchObject({ status: "terminated" });
    // Not reusable: once had, never again.
    expect(expect422(await apply(org, cus, "welcome"), "coupon_code")).toEqual({ coupon_code: ["coupon_is_not_reusable"] });

    const r2 = await apply(org, cus, "ten");
    expect(r2.statusCode, r2.body).toBe(200);
    expect((await org.api("DELETE", "/api/v1/coupons/ten")).coupon.terminated_at).not.toBeNull();
    expect((await org.raw("GET", "/api/v1/coupons/ten")).statusCode).toBe(404);
    expect((await appliedOf(org, cus)).every((a) => a.status === "terminated")).toBe(true);
  });

  it("bad input is a 422 naming each field", async () => {
    const org = await newOrg(t);
    expect422(await org.raw("POST", "/api/v1/coupons", { coupon: { coupon_type: "fixed_amount" } }), "name", "code", "frequency", "expiration", "amount_cents", "amount_currency");
    expect422(
      await org.raw("POST", "/api/v1/coupons", { coupon: { name: "p", code: "p", coupon_type: "percentage", percentage_rate: "120", frequency: "recurring", expiration: "time_limit" } }),
      "percentage_rate",
      "frequency_duration",
      "expiration_at",
    );
    expect422(await org.raw("POST", "/api/v1/coupons", { coupon: { ...fixed("x", 1).coupon, coupon_type: "bogus", amount_cents: -5 } }), "coupon_type", "amount_cents");
    expect422(await org.raw("POST", "/api/v1/coupons", { coupon: { ...fixed("y", 1).coupon, applies_to: { plan_codes: ["nope"] } } }), "applies_to.plan_codes");
    expect422(await org.raw("POST", "/api/v1/applied_coupons", { applied_coupon: {} }), "external_customer_id", "coupon_code");
    const cus = await customer(org);
    expect((await apply(org, cus, "missing")).statusCode).toBe(404);
    expect((await apply(org, uid("nobody"), "missing")).statusCode).toBe(404);
    // A fixed coupon in another currency than the customer's.
    await org.api("POST", "/api/v1/coupons", { coupon: { ...fixed("usd", 100).coupon, amount_currency: "USD" } });
    expect422(await apply(org, cus, "usd"), "currency");
  });

  it("another organization never sees, applies or removes this one's coupons", async () => {
    const a = await newOrg(t);
    const b = await newOrg(t);
    await a.api("POST", "/api/v1/coupons", fixed("a_only", 100));
    const cusA = await customer(a);
    const applied = JSON.parse((await apply(a, cusA, "a_only")).body).applied_coupon;
    expect((await b.raw("GET", "/api/v1/coupons/a_only")).statusCode).toBe(404);
    expect((await b.api("GET", "/api/v1/coupons")).coupons).toEqual([]);
    expect((await b.api("GET", "/api/v1/applied_coupons")).applied_coupons).toEqual([]);
    const cusB = await customer(b);
    expect((await apply(b, cusB, "a_only")).statusCode).toBe(404);
    expect((await b.raw("DELETE", `/api/v1/customers/${cusA}/applied_coupons/${applied.lago_id}`)).statusCode).toBe(404);
    expect((await b.raw("DELETE", `/api/v1/customers/${cusB}/applied_coupons/${applied.lago_id}`)).statusCode).toBe(404);
    expect((await appliedOf(a, cusA))[0].status).toBe("active");
  });

  it("a fixed once coupon larger than an invoice carries its rest to the next; a recurring one counts down; taxes come after", async () => {
    const org = await newOrg(t);
    await org.freeze("2026-01-01T00:00:00Z");
    await org.api("POST", "/api/v1/taxes", { tax: { name: "VAT", code: "vat", rate: "20", applied_to_organization: true } });
    const p = await plan(org, { amount_cents: 10000 });
    await org.api("POST", "/api/v1/coupons", fixed("big", 15000));
    await org.api("POST", "/api/v1/coupons", {
      coupon: { name: "Ten", code: "ten", coupon_type: "percentage", percentage_rate: "10", frequency: "recurring", frequency_duration: 2, expiration: "no_expiration" },
    });
    const a = await customer(org);
    await subscribe(org, a, p.plan);
    expect((await apply(org, a, "big")).statusCode).toBe(200);
    const b = await customer(org);
    await subscribe(org, b, p.plan);
    expect((await apply(org, b, "ten")).statusCode).toBe(200);

    await org.freeze("2026-02-01T00:00:00Z");
    // a, January: 100.00 − 100.00 (of the 150.00 coupon) = 0, no tax. b: 100.00 − 10 % = 90.00 + 20 % = 108.00.
    const [a1] = await invoicesOf(org, a);
    expect(a1).toMatchObject({ fees_amount_cents: 10000, coupons_amount_cents: 10000, sub_total_excluding_taxes_amount_cents: 0, taxes_amount_cents: 0, total_amount_cents: 0 });
    const a1Full = await invoiceOf(org, a1.lago_id);
    expect(a1Full.credits).toEqual([
      expect.objectContaining({ amount_cents: 10000, before_taxes: true, item: expect.objectContaining({ type: "coupon", code: "big" }) }),
    ]);
    expect(a1Full.fees[0]).toMatchObject({ precise_coupons_amount_cents: "10000", taxes_amount_cents: 0 });
    expect((await appliedOf(org, a))[0]).toMatchObject({ status: "active", amount_cents_remaining: 5000 });
    const [b1] = await invoicesOf(org, b);
    expect(b1).toMatchObject({ coupons_amount_cents: 1000, taxes_amount_cents: 1800, total_amount_cents: 10800 });
    expect((await appliedOf(org, b))[0]).toMatchObject({ frequency_duration_remaining: 1, status: "active" });

    await org.freeze("2026-03-01T00:00:00Z");
    // a, February: the 50.00 left → 50.00 + 20 % = 60.00; the coupon is used up. b: its second and last period.
    const [a2] = await invoicesOf(org, a);
    expect(a2).toMatchObject({ coupons_amount_cents: 5000, taxes_amount_cents: 1000, total_amount_cents: 6000 });
    expect((await appliedOf(org, a))[0]).toMatchObject({ status: "terminated", amount_cents_remaining: 0 });
    expect((await appliedOf(org, a))[0].credits.map((c: any) => c.amount_cents)).toEqual([10000, 5000]);
    expect((await invoicesOf(org, b))[0]).toMatchObject({ coupons_amount_cents: 1000 });
    expect((await appliedOf(org, b))[0]).toMatchObject({ frequency_duration_remaining: 0, status: "terminated" });

    await org.freeze("2026-04-01T00:00:00Z");
    expect((await invoicesOf(org, a))[0]).toMatchObject({ coupons_amount_cents: 0, total_amount_cents: 12000 });
    expect((await invoicesOf(org, b))[0]).toMatchObject({ coupons_amount_cents: 0, total_amount_cents: 12000 });
  });

  it("a draft shows the coupon without using it; finalizing uses it once", async () => {
    const org = await newOrg(t);
    await org.freeze("2026-01-01T00:00:00Z");
    const p = await plan(org, { amount_cents: 4000 });
    await org.api("POST", "/api/v1/coupons", fixed("once", 3000));
    const cus = await customer(org, { billing_configuration: { invoice_grace_period: 3 } });
    await subscribe(org, cus, p.plan);
    expect((await apply(org, cus, "once")).statusCode).toBe(200);
    await org.freeze("2026-02-01T00:00:00Z");
    const [draft] = await invoicesOf(org, cus);
    expect(draft).toMatchObject({ status: "draft", coupons_amount_cents: 3000, total_amount_cents: 1000 });
    expect((await appliedOf(org, cus))[0]).toMatchObject({ amount_cents_remaining: 3000, credits: [] });
    await org.api("PUT", `/api/v1/invoices/${draft.lago_id}/refresh`);
    expect((await appliedOf(org, cus))[0]).toMatchObject({ amount_cents_remaining: 3000 });
    const final = (await org.api("PUT", `/api/v1/invoices/${draft.lago_id}/finalize`)).invoice;
    expect(final).toMatchObject({ status: "finalized", coupons_amount_cents: 3000, total_amount_cents: 1000 });
    expect((await appliedOf(org, cus))[0]).toMatchObject({ amount_cents_remaining: 0, status: "terminated" });
  });
});
