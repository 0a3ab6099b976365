// The invoice as a PDF document (POST /invoices/:id/download, GET /invoices/:id/pdf): seller,
// customer, number, dates, a table of fees with units and unit prices, subtotal, taxes, credits and
// the total due. Drafts carry a "DRAFT" watermark. Rendered with pdfkit and its standard fonts.
import { createRequire } from "node:module";
import type PDFKit from "pdfkit";
import { Decimal, formatAmount, minorUnits } from "../../shared/money.ts";
import type { Customer } from "../customers/index.ts";
import type { FeeRecord } from "./core/index.ts";
import type { InvoiceDetails } from "./service.ts";

/** pdfkit, loaded on the first PDF: it cost every start ~0.2 s. */
let pdfkit: typeof PDFKit | undefined;
const PDFDocument = (): typeof PDFKit => (pdfkit ??= createRequire(import.meta.url)("pdfkit") as typeof PDFKit);

export interface InvoicePdfInput {
  readonly details: InvoiceDetails;
  /** The organization's name: the seller. */
  readonly sellerName: string;
}

const money = (cents: bigint, currency: string) =>
  `${formatAmount(new Decimal(cents.toString()).dividedBy(Decimal.pow(10, minorUnits(currency))), currency)} ${currency}`;

// Unit prices may be finer than the currency's minor unit (e.g. 0.0001 per call): keep up to 6 decimals.
function unitPrice(f: FeeRecord): string {
  const p = f.preciseUnitAmount;
  const places = Math.max(minorUnits(f.currency), Math.min(p.decimalPlaces(), 6));
  return `${p.toDecimalPlaces(places, Decimal.ROUND_HALF_UP).toFixed(places)} ${f.currency}`;
}

const day = (d: Date | null) => (d === null ? "" : d.toISOString().slice(0, 10));

function feeDescription(f: FeeRecord): string {
  const name = f.item.invoiceDisplayName || f.item.name;
  const filtered = f.item.filterInvoiceDisplayName !== null ? `${name} - ${f.item.filterInvoiceDisplayName}` : name;
  // A fee of one group (pricing group keys) shows the group's values, as Lago's invoices do.
  const group = Object.values(f.item.groupedBy ?? {}).map((v) => v ?? "(none)");
  const label = group.length > 0 ? `${filtered} • ${group.join(" • ")}` : filtered;
  return f.from !== null || f.to !== null ? `${label} (${day(f.from)} to ${day(f.to)})` : label;
}

function customerLines(c: Customer): string[] {
  const a = c.attributes;
  const person = [a.firstname, a.lastname].filter((x) => x).join(" ");
  const name = a.name ?? (person || c.externalId);
  const lines = [name];
  if (a.legal_name && a.legal_name !== name) lines.push(a.legal_name);
  if (a.legal_number) lines.push(`Legal number: ${a.legal_number}`);
  if (a.tax_identification_number) lines.push(`Tax ID: ${a.tax_identification_number}`);
  for (const l of [a.address_line1, a.address_line2]) if (l) lines.push(l);
  const cityLine = [a.zipcode, a.city].filter((x) => x).join(" ");
  const region = [cityLine, a.state].filter((x) => x).join(", ");
  if (region) lines.push(region);
  if (a.country) lines.push(a.country);
  if (a.email) lines.push(a.email);
  return lines;
}

function periodOf(d: InvoiceDetails): string | null {
  const starts = d.billingPeriods.map((p) => p.chargesFrom ?? p.feeFrom).filter((x): x is Date => x !== null);
  const ends = d.billingPeriods.map((p) => p.chargesTo ?? p.feeTo).filter((x): x is Date => x !== null);
  if (starts.length === 0 || ends.length === 0) return null;
  const from = new Date(Math.min(...starts.map((x) => x.getTime())));
  const to = new Date(Math.max(...ends.map((x) => x.getTime())));
  return `${day(from)} to ${day(to)}`;
}

export function renderInvoicePdf({ details, sellerName }: InvoicePdfInput): Promise<Buffer> {
  const inv = details.invoice;
  const cur = inv.currency;
  const doc = new (PDFDocument())({
    size: "A4",
    margin: 50,
    info: { Title: `Invoice ${inv.number}`, Author: sellerName, Subject: `Invoice ${inv.number}` },
  });
  const chunks: Buffer[] = [];
  const done = new Promise<Buffer>((resolve, reject) => {
    doc.on("data", (c: Buffer) => chunks.push(c));
    doc.on("end", () => resolve(Buffer.concat(chunks)));
    doc.on("error", reject);
  });

  const left = 50;
  const right = doc.page.width - 50;
  const width = right - left;

  const watermark = () => {
    if (inv.status !== "draft" && inv.status !== "voided") return;
    doc.save();
    doc.rotate(-35, { origin: [doc.page.width / 2, doc.page.height / 2] });
    doc.font("Helvetica-Bold").fontSize(110).fillColor("#d9d9d9").fillOpacity(0.5);
    doc.text(inv.status === "draft" ? "DRAFT" : "VOID", 0, doc.page.height / 2 - 60, { width: doc.page.width, align: "center", lineBreak: false });
    doc.restore();
    doc.fillOpacity(1).fillColor("#000000");
  };
  watermark();
  doc.on("pageAdded", watermark);

  // Header: seller on the left, "Invoice" and its number on the right.
  doc.font("Helvetica-Bold").fontSize(18).fillColor("#000000").text(sellerName, left, 50, { width: width / 2 });
  doc.font("Helvetica-Bold").fontSize(24).text("Invoice", left + width / 2, 50, { width: width / 2, align: "right" });
  doc.font("Helvetica").fontSize(10).text(inv.number, left + width / 2, 80, { width: width / 2, align: "right" });

  // Invoice facts.
  let y = 120;
  const facts: [string, string][] = [
    ["Invoice number", inv.number],
    ["Issue date", inv.issuingDate],
    ["Payment due date", inv.paymentDueDate],
  ];
  const period = periodOf(details);
  if (period !== null) facts.push(["Billing period", period]);
  facts.push(["Status", inv.status]);
  for (const [k, v] of facts) {
    doc.font("Helvetica-Bold").fontSize(9).fillColor("#555555").text(k, left, y, { width: 110 });
    doc.font("Helvetica").fillColor("#000000").text(v, left + 110, y, { width: 200 });
    y += 14;
  }

  // From / Bill to.
  y += 16;
  const blockTop = y;
  doc.font("Helvetica-Bold").fontSize(9).fillColor("#555555").text("From", left, y);
  doc.font("Helvetica").fontSize(10).fillColor("#000000").text(sellerName, left, y + 14, { width: width / 2 - 10 });
  doc.font("Helvetica-Bold").fontSize(9).fillColor("#555555").text("Bill to", left + width / 2, y);
  let by = y + 14;
  doc.font("Helvetica").fontSize(10).fillColor("#000000");
  for (const line of customerLines(details.customer)) {
    doc.text(line, left + width / 2, by, { width: width / 2 });
    by = doc.y;
  }
  y = Math.max(by, blockTop + 40) + 20;

  // Amount due banner.
  doc.font("Helvetica-Bold").fontSize(14).text(`${money(inv.totalAmountCents, cur)} due ${inv.paymentDueDate}`, left, y);
  y = doc.y + 16;

  // Fees table.
  const cols = [
    { title: "Item", x: left, w: 250, align: "left" as const },
    { title: "Units", x: left + 255, w: 60, align: "right" as const },
    { title: "Unit price", x: left + 320, w: 85, align: "right" as const },
    { title: "Amount", x: left + 410, w: width - 410, align: "right" as const },
  ];
  const header = () => {
    doc.font("Helvetica-Bold").fontSize(9).fillColor("#555555");
    for (const c of cols) doc.text(c.title, c.x, y, { width: c.w, align: c.align });
    y += 14;
    doc.moveTo(left, y).lineTo(right, y).lineWidth(0.8).strokeColor("#000000").stroke();
    y += 6;
  };
  header();
  doc.fillColor("#000000");
  for (const f of details.fees) {
    const desc = feeDescription(f);
    doc.font("Helvetica").fontSize(9);
    const h = Math.max(doc.heightOfString(desc, { width: cols[0]!.w }), 11);
    if (y + h > doc.page.height - 160) {
      doc.addPage();
      y = 50;
      header();
      doc.font("Helvetica").fontSize(9).fillColor("#000000");
    }
    const cells = [desc, f.units.toString(), unitPrice(f), money(f.amountCents, cur)];
    cols.forEach((c, i) => doc.text(cells[i]!, c.x, y, { width: c.w, align: c.align }));
    y += h + 6;
    doc.moveTo(left, y - 3).lineTo(right, y - 3).lineWidth(0.3).strokeColor("#cccccc").stroke();
  }
  if (details.fees.length === 0) {
    doc.font("Helvetica-Oblique").fontSize(9).text("No fees", left, y);
    y += 17;
  }

  // Totals.
  y += 10;
  if (y > doc.page.height - 150) {
    doc.addPage();
    y = 50;
  }
  // Lago's order: coupons off the fees, taxes (one line each), then credit notes and prepaid credits.
  const minus = (cents: bigint) => money(cents === 0n ? 0n : -cents, cur);
  const totals: [string, string, boolean][] = [];
  if (inv.couponsAmountCents > 0n) {
    totals.push(["Fees", money(inv.feesAmountCents, cur), false]);
    for (const c of details.credits.filter((x) => x.beforeTaxes)) totals.push([`Coupon ${c.item.name}`, minus(c.amountCents), false]);
  }
  totals.push(["Subtotal (excl. taxes)", money(inv.subTotalExcludingTaxesAmountCents, cur), false]);
  if (details.appliedTaxes.length === 0) totals.push(["Taxes", money(inv.taxesAmountCents, cur), false]);
  for (const t of details.appliedTaxes) {
    totals.push([`${t.taxName} ${t.taxRate.toString()}% on ${money(t.feesAmountCents, cur)}`, money(t.amountCents, cur), false]);
  }
  totals.push(["Subtotal (incl. taxes)", money(inv.subTotalIncludingTaxesAmountCents, cur), false]);
  for (const c of details.credits.filter((x) => !x.beforeTaxes)) totals.push([`Credit note ${c.item.code}`, minus(c.amountCents), false]);
  if (inv.prepaidCreditAmountCents > 0n) totals.push(["Prepaid credits", minus(inv.prepaidCreditAmountCents), false]);
  totals.push(["Total due", money(inv.status === "voided" ? 0n : inv.totalAmountCents, cur), true]);
  const labelX = left + 255;
  for (const [label, value, strong] of totals) {
    if (strong) {
      doc.moveTo(labelX, y - 2).lineTo(right, y - 2).lineWidth(0.8).strokeColor("#000000").stroke();
      y += 4;
    }
    doc.font(strong ? "Helvetica-Bold" : "Helvetica").fontSize(strong ? 11 : 9).fillColor("#000000");
    doc.text(label, labelX, y, { width: 150, lineBreak: false });
    doc.text(value, left + 410, y, { width: width - 410, align: "right" });
    y += strong ? 18 : 14;
  }

  // Footer.
  doc.font("Helvetica").fontSize(8).fillColor("#777777");
  doc.text(`${sellerName} - invoice ${inv.number} - amounts in ${cur}`, left, doc.page.height - 70, { width, align: "center", lineBreak: false });

  doc.end();
  return done;
}
