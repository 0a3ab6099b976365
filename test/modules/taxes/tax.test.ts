import { describe, expect, it } from "vitest";
import { checkTax, feeTaxes, invoiceTaxes, taxesForFee, type Tax } from "../../../src/modules/taxes/index.ts";
import { d } from "../../../src/shared/money.ts";

let nextId = 1;
export const tax = (code: string, rate: string, appliedToOrganization = false): Tax => ({
  id: nextId++,
  orgId: 1,
  lagoId: `00000000-0000-4000-8000-${String(nextId).padStart(12, "0")}`,
  code,
  name: code.toUpperCase(),
  description: null,
  rate: d(rate),
  appliedToOrganization,
  createdAt: new Date(0),
});

const vat = tax("vat", "20", true);
const reduced = tax("reduced", "5.5");
const city = tax("city", "1.5", true);
const customerTax = tax("customer_tax", "10");
const exempt = tax("exempt", "0");
const byCode = new Map([vat, reduced, city, customerTax, exempt].map((t) => [t.code, t]));

describe("which taxes a fee bears (charge > plan > customer > organization)", () => {
  it.each<[string, Parameters<typeof taxesForFee>[0], string[]]>([
    ["nothing set: the organization's defaults", { customer: [] }, ["vat", "city"]],
    ["the customer's replace the organization's", { customer: ["customer_tax"] }, ["customer_tax"]],
    ["the plan's replace the customer's", { plan: ["reduced"], customer: ["customer_tax"] }, ["reduced"]],
    ["the charge's replace the plan's", { charge: ["exempt"], plan: ["reduced"], customer: ["customer_tax"] }, ["exempt"]],
    ["an empty charge list falls back to the plan", { charge: [], plan: ["reduced", "city"], customer: [] }, ["reduced", "city"]],
    ["codes of deleted taxes are skipped, falling through when none is left", { plan: ["gone"], customer: ["customer_tax"] }, ["customer_tax"]],
  ])("%s", (_name, levels, codes) => {
    expect(taxesForFee(levels, byCode).map((t) => t.code)).toEqual(codes);
  });
});

describe("tax amounts", () => {
  it("a fee's taxes are exact per tax, rounded half-up once for the fee", () => {
    // 1234 cents at 20 % = 246.8, at 1.5 % = 18.51: 265.31 in all, shown as 265.
    const t = feeTaxes(d("1234"), [vat, city]);
    expect(t.rate.toString()).toBe("21.5");
    expect(t.preciseAmountCents.toString()).toBe("265.31");
    expect(t.amountCents).toBe(265n);
    expect(t.lines.map((l) => l.amountCents)).toEqual([247n, 19n]);
  });

  it("an invoice rounds each tax once on the sum of its fees' bases, not the sum of rounded fee taxes", () => {
    // Three fees of 5 cents at 10 %: each fee's tax is 0.5 (shows 1), the invoice's is 1.5 → 2, not 3.
    const fees = [d(5), d(5), d(5)].map((base) => ({ base, taxes: [customerTax] }));
    expect(fees.map((f) => feeTaxes(f.base, f.taxes).amountCents)).toEqual([1n, 1n, 1n]);
    const lines = invoiceTaxes(fees);
    expect(lines.map((l) => [l.tax.code, l.feesAmountCents, l.amountCents])).toEqual([["customer_tax", 15n, 2n]]);
  });

  it("each tax of an invoice has its own base: only the fees bearing it", () => {
    const lines = invoiceTaxes([
      { base: d("10000"), taxes: [vat] },
      { base: d("2000"), taxes: [reduced] },
      { base: d("500"), taxes: [vat, city] },
    ]);
    // vat: (10000 + 500) × 20 % = 2100; reduced: 2000 × 5.5 % = 110; city: 500 × 1.5 % = 7.5 → 8.
    expect(lines.map((l) => [l.tax.code, l.feesAmountCents, l.amountCents])).toEqual([
      ["vat", 10500n, 2100n],
      ["reduced", 2000n, 110n],
      ["city", 500n, 8n],
    ]);
  });

  it("a negative base (a coupon rounding past the fee) is taxed as zero", () => {
    expect(feeTaxes(d("-0.4"), [vat]).amountCents).toBe(0n);
  });
});

describe("tax input", () => {
  it("reads Lago's body, rate as a decimal string", () => {
    const r = checkTax({ name: "TVA", code: "fr_vat", rate: "20.0", applied_to_organization: true }, null);
    expect(r.ok && { ...r.value, rate: r.value.rate.toString() }).toEqual({ code: "fr_vat", name: "TVA", description: null, rate: "20", appliedToOrganization: true });
  });

  it.each<[string, unknown, Record<string, string[]>]>([
    ["every missing field is named", {}, { name: ["value_is_mandatory"], code: ["value_is_mandatory"], rate: ["value_is_mandatory"] }],
    ["a rate over 100 %", { name: "x", code: "x", rate: "100.5" }, { rate: ["value_is_out_of_range"] }],
    ["a negative rate", { name: "x", code: "x", rate: "-1" }, { rate: ["value_is_invalid"] }],
    ["a rate that is not a number", { name: "x", code: "x", rate: "twenty" }, { rate: ["value_is_invalid"] }],
    ["applied_to_organization not a boolean", { name: "x", code: "x", rate: "1", applied_to_organization: "yes" }, { applied_to_organization: ["value_is_invalid"] }],
  ])("refuses %s", (_name, raw, errors) => {
    const r = checkTax(raw, null);
    expect(r.ok ? null : r.errors).toEqual(errors);
  });

  it("an update keeps what it does not send", () => {
    const r = checkTax({ rate: "7" }, { code: "a", name: "A", description: "d", rate: d(5), appliedToOrganization: true });
    expect(r.ok && [r.value.code, r.value.rate.toString(), r.value.appliedToOrganization, r.value.description]).toEqual(["a", "7", true, "d"]);
  });
});
