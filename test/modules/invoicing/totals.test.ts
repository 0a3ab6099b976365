import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  addDays,
  documentNumberPrefix,
  draftNumber,
  graceEndsAt,
  initialPaymentStatus,
  invoiceNumber,
  invoiceTotals,
  issuingDateOf,
  paymentDueDate,
  readInvoiceListQuery,
} from "../../../src/modules/invoicing/core/index.ts";

describe("invoice totals", () => {
  it("the total is the sum of the fees when nothing is deducted", () => {
    fc.assert(
      fc.property(fc.array(fc.bigInt({ min: 0n, max: 10n ** 12n }), { maxLength: 40 }), (fees) => {
        const t = invoiceTotals(fees);
        const sum = fees.reduce((a, b) => a + b, 0n);
        expect(t.feesAmountCents).toBe(sum);
        expect(t.totalAmountCents).toBe(sum);
        expect(t.subTotalExcludingTaxesAmountCents).toBe(sum);
        expect(t.subTotalIncludingTaxesAmountCents).toBe(sum);
      }),
      { numRuns: 200 },
    );
  });

  it("is never negative, whatever is deducted, and deducts in Lago's order", () => {
    const cents = fc.bigInt({ min: 0n, max: 10n ** 9n });
    fc.assert(
      fc.property(fc.array(cents, { maxLength: 10 }), cents, cents, cents, cents, (fees, coupons, taxes, creditNotes, prepaid) => {
        const t = invoiceTotals(fees, { couponsCents: coupons, taxesCents: taxes, creditNotesCents: creditNotes, prepaidCreditCents: prepaid });
        expect(t.totalAmountCents >= 0n).toBe(true);
        expect(t.couponsAmountCents <= t.feesAmountCents).toBe(true);
        expect(t.subTotalIncludingTaxesAmountCents).toBe(t.feesAmountCents - t.couponsAmountCents + t.taxesAmountCents);
        expect(t.totalAmountCents).toBe(t.subTotalIncludingTaxesAmountCents - t.creditNotesAmountCents - t.prepaidCreditAmountCents);
      }),
      { numRuns: 200 },
    );
  });

  it.each([
    ["a credit larger than the invoice leaves it at zero, not below", [1000n], { creditNotesCents: 2500n }, 1000n, 0n],
    ["coupons come off before taxes, credit notes after", [1000n], { couponsCents: 200n, taxesCents: 160n, creditNotesCents: 100n }, 100n, 860n],
    ["prepaid credits take what credit notes left", [1000n], { creditNotesCents: 600n, prepaidCreditCents: 600n }, 600n, 0n],
  ] as const)("%s", (_case, fees, deductions, creditNotes, total) => {
    const t = invoiceTotals(fees, deductions);
    expect(t.creditNotesAmountCents).toBe(creditNotes);
    expect(t.totalAmountCents).toBe(total);
  });

  it("refuses a negative fee: a credit is a deduction, never a fee", () => {
    expect(() => invoiceTotals([100n, -1n])).toThrow(RangeError);
  });

  it("an invoice with nothing to pay is paid (Lago)", () => {
    expect(initialPaymentStatus(0n)).toBe("succeeded");
    expect(initialPaymentStatus(1n)).toBe("pending");
  });
});

describe("issuing dates, grace periods and numbers", () => {
  it.each([
    ["a period closing at UTC midnight is issued that day", "2024-04-01T00:00:00Z", "UTC", "2024-04-01"],
    ["in Tokyo the same instant is already 09:00 on April 1st", "2024-03-31T15:00:00Z", "Asia/Tokyo", "2024-04-01"],
    ["in Los Angeles 07:00 UTC on April 1st is still March 31st", "2024-04-01T06:59:59Z", "America/Los_Angeles", "2024-03-31"],
  ] as const)("%s", (_case, at, timezone, date) => {
    expect(issuingDateOf(new Date(at), timezone)).toBe(date);
  });

  it("a grace period of 3 days finalizes at the start of the 3rd day after issuing, in the customer's timezone", () => {
    expect(graceEndsAt("2024-04-01", 3, "UTC")?.toISOString()).toBe("2024-04-04T00:00:00.000Z");
    expect(graceEndsAt("2024-04-01", 3, "Europe/Paris")?.toISOString()).toBe("2024-04-03T22:00:00.000Z");
    expect(graceEndsAt("2024-04-01", 0, "UTC")).toBeNull();
  });

  it("the payment is due after the net payment term", () => {
    expect(paymentDueDate("2024-02-20", 30)).toBe("2024-03-21");
    expect(paymentDueDate("2024-02-20", 0)).toBe("2024-02-20");
    expect(addDays("2024-12-31", 1)).toBe("2025-01-01");
  });

  it("numbers carry the organization's prefix and a gapless sequence; drafts have none yet", () => {
    const prefix = documentNumberPrefix("Acme Corp", "6f1c2d3e-1111-4222-8333-94f2a0b1c4f2");
    expect(prefix).toBe("ACM-C4F2");
    expect(invoiceNumber(prefix, 7)).toBe("ACM-C4F2-007");
    expect(invoiceNumber(prefix, 1234)).toBe("ACM-C4F2-1234");
    expect(draftNumber(prefix)).toBe("ACM-C4F2-DRAFT");
    expect(documentNumberPrefix("É ~", "abcd")).toBe("ORG-ABCD");
  });
});

describe("the invoice list query", () => {
  it("takes Lago's filters, single or repeated", () => {
    const read = readInvoiceListQuery({ "statuses[]": ["draft", "finalized"], payment_status: "pending", issuing_date_from: "2024-01-01", per_page: "5" });
    expect(read).toEqual({
      ok: true,
      value: { page: 1, perPage: 5, statuses: ["draft", "finalized"], paymentStatuses: ["pending"], issuingDateFrom: "2024-01-01" },
    });
  });

  it("reports every broken parameter at once", () => {
    const read = readInvoiceListQuery({ status: "paid", issuing_date_to: "2024-02-30", page: "0", invoice_type: "bogus" });
    expect(read.ok).toBe(false);
    if (!read.ok) expect(Object.keys(read.errors).sort()).toEqual(["invoice_type", "issuing_date_to", "page", "status"]);
  });
});
