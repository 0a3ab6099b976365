// POST /invoices/preview (Lago's invoice preview): the invoice a customer would be issued next,
// computed by the billing job's own rules (InvoicingService.previewInvoice) and never stored. Either
// existing subscriptions (`subscriptions.external_ids`: the invoice at the end of their current
// period, or at `subscriptions.terminated_at`), or a new one on `plan_code` (its first invoice: at
// its start when the plan is paid in advance, else at the end of its first period). The customer
// is a stored one (`customer.external_id`) or described inline. Coupons given inline are applied
// after the customer's own, without being applied to anyone.
import type { FastifyInstance } from "fastify";
import { AppError, type FieldErrors, notFound, validationFailed } from "../../shared/errors.ts";
import { Decimal, isCurrency } from "../../shared/money.ts";
import type { Plan } from "../catalog/index.ts";
import type { CouponTerms } from "../coupons/core/apply.ts";
import { type Customer, customerJson, normalizeTimezone } from "../customers/index.ts";
import { NEW_CUSTOMER } from "../customers/core/customer.ts";
import type { Subscription, SubscriptionView } from "../subscriptions/index.ts";
import type { BillingInstant, BillingTerms, FeeDraft, InvoiceComputation, InvoiceRecord } from "./core/index.ts";
import type { AppliedTaxRecord, BillingPeriodRecord, CreditRecord, FeeRecord } from "./core/records.ts";
import { describeInstant, dueInstants, feeAppliedTax, invoiceJson, issuingDateOf, paymentDueDate } from "./core/index.ts";
import { type InvoicingService, chargesLastInstant, termsOf } from "./service.ts";

export interface PreviewDeps {
  readonly invoicing: InvoicingService;
  readonly customers: { getByExternalId(orgId: number, externalId: string): Promise<Customer> };
  readonly subscriptions: {
    getByExternalId(orgId: number, externalId: string, at?: Date): Promise<Subscription | null>;
    get(orgId: number, externalId: string, status?: "active" | "pending"): Promise<SubscriptionView>;
  };
  readonly catalog: { getPlanByCode(orgId: number, code: string): Promise<Plan | null> };
  /** A stored coupon by code (404 when none): a coupon given by `code` alone. */
  readonly coupons?: { get(orgId: number, code: string): Promise<{ couponType: "fixed_amount" | "percentage"; amountCents: bigint | null; amountCurrency: string | null; percentageRate: Decimal | null; frequency: "once" | "recurring" | "forever"; frequencyDuration: number | null; planCodes: readonly string[]; billableMetricCodes: readonly string[] }> };
  readonly now: (orgId: number) => Date;
  readonly newId: () => string;
}

// Far enough for any first or next billing instant (a yearly plan after a long trial).
const HORIZON_MS = 3 * 366 * 86_400_000;
const MAX_SUBSCRIPTIONS = 50;

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);
const text = (v: unknown): v is string => typeof v === "string" && v.length > 0 && v.length <= 255 && v.isWellFormed();

function readDate(v: unknown, field: string, errors: FieldErrors): Date | undefined {
  if (v === undefined || v === null) return undefined;
  const d = typeof v === "string" && /^\d{4}-\d{2}-\d{2}/.test(v) ? new Date(v) : null;
  if (d === null || Number.isNaN(d.getTime())) {
    errors[field] = ["invalid_date"];
    return undefined;
  }
  return d;
}

/** What the request asks, validated (every broken field named). */
interface PreviewRequest {
  readonly customer: { externalId: string } | { inline: Customer };
  readonly planCode: string | null;
  readonly billingTime: "calendar" | "anniversary";
  readonly subscriptionAt: Date | null;
  readonly externalIds: readonly string[];
  readonly terminatedAt: Date | null;
  readonly coupons: readonly Record<string, unknown>[];
}

function readRequest(orgId: number, body: unknown, now: Date): PreviewRequest {
  const errors: FieldErrors = {};
  const b = isObject(body) ? body : {};
  let customer: PreviewRequest["customer"] = { externalId: "" };
  const c = b["customer"];
  if (!isObject(c)) errors["customer"] = [c === undefined || c === null ? "value_is_mandatory" : "invalid_value"];
  else if (c["external_id"] !== undefined && c["external_id"] !== null) {
    if (!text(c["external_id"])) errors["customer.external_id"] = ["invalid_value"];
    else customer = { externalId: c["external_id"] };
  } else {
    const attrs = { ...NEW_CUSTOMER };
    for (const key of ["name", "address_line1", "address_line2", "city", "state", "zipcode", "tax_identification_number"] as const) {
      const v = c[key];
      if (v === undefined || v === null) continue;
      if (typeof v !== "string" || v.length > 255) errors[`customer.${key}`] = ["invalid_value"];
      else attrs[key] = v;
    }
    if (c["currency"] !== undefined && c["currency"] !== null) {
      if (typeof c["currency"] !== "string" || !isCurrency(c["currency"])) errors["customer.currency"] = ["value_is_invalid"];
      else attrs.currency = c["currency"];
    }
    if (c["timezone"] !== undefined && c["timezone"] !== null) {
      const tz = normalizeTimezone(c["timezone"]);
      if (tz === null) errors["customer.timezone"] = ["invalid_timezone"];
      else attrs.timezone = tz;
    }
    if (c["country"] !== undefined && c["country"] !== null) {
      if (typeof c["country"] !== "string" || !/^[A-Za-z]{2}$/.test(c["country"])) errors["customer.country"] = ["not_a_valid_country_code"];
      else attrs.country = c["country"].toUpperCase();
    }
    customer = {
      inline: { id: 0, orgId, lagoId: "", externalId: "", sequentialId: 0, slug: "", attributes: attrs, createdAt: now, updatedAt: now, deletedAt: null },
    };
  }

  const planCode = b["plan_code"] ?? null;
  if (planCode !== null && !text(planCode)) errors["plan_code"] = ["invalid_value"];
  const billingTime = b["billing_time"] ?? "calendar";
  if (billingTime !== "calendar" && billingTime !== "anniversary") errors["billing_time"] = ["value_is_invalid"];
  const subscriptionAt = readDate(b["subscription_at"], "subscription_at", errors) ?? null;

  let externalIds: string[] = [];
  let terminatedAt: Date | null = null;
  const s = b["subscriptions"];
  if (s !== undefined && s !== null) {
    if (!isObject(s)) errors["subscriptions"] = ["invalid_value"];
    else {
      const ids = s["external_ids"];
      if (!Array.isArray(ids) || ids.length === 0 || ids.length > MAX_SUBSCRIPTIONS || !ids.every(text)) errors["subscriptions.external_ids"] = ["invalid_value"];
      else externalIds = [...new Set(ids)];
      if (s["plan_code"] !== undefined && s["plan_code"] !== null) errors["subscriptions.plan_code"] = ["not_supported"];
      terminatedAt = readDate(s["terminated_at"], "subscriptions.terminated_at", errors) ?? null;
      if (terminatedAt !== null && terminatedAt.getTime() <= now.getTime()) errors["subscriptions.terminated_at"] = ["invalid_date"];
    }
  }
  if (planCode === null && externalIds.length === 0 && errors["subscriptions.external_ids"] === undefined) errors["plan_code"] = ["value_is_mandatory"];
  if (planCode !== null && externalIds.length > 0) errors["subscriptions"] = ["plan_code_and_subscriptions_are_exclusive"];
  if (externalIds.length > 0 && "inline" in customer) errors["customer.external_id"] = ["value_is_mandatory"];

  const coupons = b["coupons"] ?? [];
  if (!Array.isArray(coupons) || coupons.length > 20) errors["coupons"] = ["invalid_value"];
  else coupons.forEach((cp, i) => {
    if (!isObject(cp) || !text(cp["code"])) errors[`coupons[${i}].code`] = ["value_is_mandatory"];
  });

  if (Object.keys(errors).length > 0) throw validationFailed(errors, "the invoice preview is invalid");
  return {
    customer,
    planCode: planCode as string | null,
    billingTime: billingTime as "calendar" | "anniversary",
    subscriptionAt,
    externalIds,
    terminatedAt,
    coupons: coupons as Record<string, unknown>[],
  };
}

/** An inline coupon's terms (with `coupon_type`), else the stored coupon with its code; ids are negative (not applied to anyone). */
async function couponTermsOf(deps: PreviewDeps, orgId: number, raw: readonly Record<string, unknown>[], currency: string): Promise<(CouponTerms & { code: string; name: string })[]> {
  const errors: FieldErrors = {};
  const out: (CouponTerms & { code: string; name: string })[] = [];
  for (const [i, c] of raw.entries()) {
    const code = c["code"] as string;
    const name = typeof c["name"] === "string" ? c["name"] : code;
    const at = `coupons[${i}]`;
    if (c["coupon_type"] === undefined || c["coupon_type"] === null) {
      const stored = deps.coupons === undefined ? null : await deps.coupons.get(orgId, code);
      if (stored === null) throw notFound("coupon", code);
      if (stored.couponType === "fixed_amount" && stored.amountCurrency !== null && stored.amountCurrency !== currency) {
        errors[`${at}.amount_currency`] = ["currencies_does_not_match"];
        continue;
      }
      out.push({
        appliedCouponId: -(i + 1),
        couponType: stored.couponType,
        amountCents: stored.amountCents,
        percentageRate: stored.percentageRate,
        frequency: stored.frequency,
        frequencyDurationRemaining: stored.frequencyDuration,
        amountCentsRemaining: stored.amountCents,
        planCodes: stored.planCodes,
        billableMetricCodes: stored.billableMetricCodes,
        code,
        name,
      });
      continue;
    }
    const type = c["coupon_type"];
    if (type !== "fixed_amount" && type !== "percentage") {
      errors[`${at}.coupon_type`] = ["value_is_invalid"];
      continue;
    }
    let amountCents: bigint | null = null;
    let rate: Decimal | null = null;
    if (type === "fixed_amount") {
      const a = c["amount_cents"];
      if (typeof a !== "number" || !Number.isSafeInteger(a) || a < 0) errors[`${at}.amount_cents`] = ["value_is_invalid"];
      else amountCents = BigInt(a);
      const cur = c["amount_currency"];
      if (cur !== undefined && cur !== null && cur !== currency) errors[`${at}.amount_currency`] = ["currencies_does_not_match"];
    } else {
      const r = c["percentage_rate"];
      const s = typeof r === "number" && Number.isFinite(r) ? String(r) : r;
      if (typeof s !== "string" || !/^\d{1,3}(?:\.\d{1,10})?$/.test(s) || new Decimal(s).lte(0) || new Decimal(s).gt(100)) {
        errors[`${at}.percentage_rate`] = ["value_is_invalid"];
      } else rate = new Decimal(s);
    }
    out.push({
      appliedCouponId: -(i + 1),
      couponType: type,
      amountCents,
      percentageRate: rate,
      // An inline coupon discounts this invoice as a first use would.
      frequency: "once",
      frequencyDurationRemaining: null,
      amountCentsRemaining: amountCents,
      planCodes: [],
      billableMetricCodes: [],
      code,
      name,
    });
  }
  if (Object.keys(errors).length > 0) throw validationFailed(errors, "the invoice preview is invalid");
  return out;
}

/** A subscription not stored: the one `plan_code` would create. */
function newSubscription(plan: Plan, customer: Customer, req: PreviewRequest, now: Date, lagoId: string): Subscription {
  const at = req.subscriptionAt ?? now;
  return {
    id: 0,
    orgId: customer.orgId,
    status: "active",
    subscriptionAt: at,
    startedAt: at,
    endingAt: null,
    terminatedAt: null,
    canceledAt: null,
    previousId: null,
    downgradeAt: null,
    lagoId,
    // Matches no event: a subscription that does not exist yet has used nothing.
    externalId: `preview:${lagoId}`,
    customerId: customer.id,
    customerExternalId: customer.externalId,
    customerLagoId: customer.lagoId,
    timezone: customer.attributes.timezone ?? "UTC",
    planId: plan.id,
    name: null,
    billingTime: req.billingTime,
    overrides: null,
    createdAt: now,
    updatedAt: now,
    previousPlanId: null,
    next: null,
    initialStartedAt: null,
    plan,
  };
}

export interface InvoicePreview {
  readonly customer: Customer;
  readonly currency: string;
  readonly items: readonly { sub: Subscription; terms: BillingTerms; instant: BillingInstant }[];
  readonly groups: readonly { sub: Subscription; fees: FeeDraft[] }[];
  readonly computation: InvoiceComputation;
  readonly coupons: readonly (CouponTerms & { code: string; name: string })[];
  readonly now: Date;
}

export async function previewInvoice(deps: PreviewDeps, orgId: number, body: unknown): Promise<InvoicePreview> {
  const now = deps.now(orgId);
  const req = readRequest(orgId, body, now);
  const customer = "inline" in req.customer ? req.customer.inline : await deps.customers.getByExternalId(orgId, req.customer.externalId);
  const items: { sub: Subscription; terms: BillingTerms; instant: BillingInstant }[] = [];
  let currency: string;
  if (req.planCode !== null) {
    const plan = await deps.catalog.getPlanByCode(orgId, req.planCode);
    if (plan === null) throw notFound("plan", req.planCode);
    currency = plan.amountCurrency;
    if (customer.attributes.currency !== null && customer.attributes.currency !== currency) {
      throw validationFailed({ currency: ["currencies_does_not_match"] }, "the plan's currency is not the customer's");
    }
    const sub = newSubscription(plan, customer, req, now, deps.newId());
    const terms = termsOf(sub)!;
    const [instant] = dueInstants(terms, null, new Date(terms.startedAt.getTime() + HORIZON_MS), 1);
    if (instant !== undefined) items.push({ sub, terms, instant });
  } else {
    const subs: Subscription[] = [];
    for (const externalId of req.externalIds) {
      let sub = await deps.subscriptions.getByExternalId(orgId, externalId, now);
      if (sub === null) {
        // A subscription that has not started yet: previewed from its start.
        const pending = await deps.subscriptions.get(orgId, externalId, "pending").catch((err: unknown) => {
          if (err instanceof AppError && err.category === "not_found") return null;
          throw err;
        });
        sub = pending === null ? null : { ...pending.subscription, startedAt: pending.subscription.subscriptionAt };
      }
      if (sub === null || sub.customerId !== customer.id) throw notFound("subscription", externalId);
      subs.push(sub);
    }
    currency = subs[0]!.plan.amountCurrency;
    if (subs.some((s) => s.plan.amountCurrency !== currency)) {
      throw validationFailed({ "subscriptions.external_ids": ["currencies_does_not_match"] }, "the subscriptions bill in different currencies");
    }
    for (const sub of subs) {
      const base = termsOf(sub)!;
      if (req.terminatedAt !== null) {
        const terms: BillingTerms = { ...base, terminatedAt: req.terminatedAt, endedBy: "termination" };
        const instant = describeInstant(terms, req.terminatedAt);
        if (instant !== null) items.push({ sub, terms, instant });
        continue;
      }
      const after = base.startedAt.getTime() > now.getTime() ? null : now;
      const [instant] = dueInstants(base, after, new Date(Math.max(now.getTime(), base.startedAt.getTime()) + HORIZON_MS), 1);
      if (instant !== undefined) items.push({ sub, terms: base, instant });
    }
  }
  const coupons = await couponTermsOf(deps, orgId, req.coupons, currency);
  const { groups, computation } = await deps.invoicing.previewInvoice(customer, currency, items, coupons, now);
  return { customer, currency, items, groups, computation, coupons, now };
}

const feeRecord = (p: InvoicePreview, sub: Subscription, draft: FeeDraft, d: InvoiceComputation["fees"][number]): FeeRecord => ({
  id: 0,
  orgId: p.customer.orgId,
  lagoId: "",
  invoiceId: null,
  invoiceLagoId: null,
  invoiceStatus: "draft",
  paymentStatus: "pending",
  subscriptionId: sub.id,
  subscriptionLagoId: sub.id === 0 ? null : sub.lagoId,
  externalSubscriptionId: sub.id === 0 ? null : sub.externalId,
  customerLagoId: p.customer.lagoId,
  externalCustomerId: p.customer.externalId,
  feeType: draft.feeType,
  chargeLagoId: draft.charge?.lagoId ?? null,
  chargeFilterId: draft.chargeFilterId,
  from: draft.from,
  to: draft.to,
  usageFrom: draft.usage?.from ?? null,
  usageTo: draft.usage?.to ?? null,
  bucket: draft.usage?.bucket ?? null,
  units: draft.units,
  totalAggregatedUnits: draft.totalAggregatedUnits,
  eventsCount: draft.eventsCount,
  currency: p.currency,
  preciseAmount: draft.preciseAmount,
  amountCents: draft.amountCents,
  preciseUnitAmount: draft.preciseUnitAmount,
  unitAmountCents: draft.unitAmountCents,
  taxesAmountCents: d.taxes.amountCents,
  taxesRate: d.taxes.rate,
  taxesPreciseAmountCents: d.taxes.preciseAmountCents,
  preciseCouponsAmountCents: d.couponsPreciseCents,
  appliedTaxes: d.taxes.lines.map((l) => feeAppliedTax(l, "")),
  payInAdvance: draft.payInAdvance,
  invoiceable: draft.invoiceable,
  item: draft.item,
  amountDetails: draft.amountDetails,
  description: draft.addOn?.description ?? null,
  lateAdjustment: null,
  createdAt: p.now,
});

/** Lago's invoice object of the preview: no id, number or sequence (nothing was issued). */
export function previewJson(p: InvoicePreview) {
  const { computation: c, customer, now } = p;
  const t = c.totals;
  const last = p.items.reduce<BillingInstant | null>((m, i) => (m === null || i.instant.at > m.at ? i.instant : m), null);
  const timezone = p.items[0]?.sub.timezone ?? customer.attributes.timezone ?? "UTC";
  const issuingDate = issuingDateOf(last?.at ?? now, timezone);
  const netPaymentTerm = customer.attributes.net_payment_term ?? 0;
  const invoice: InvoiceRecord = {
    id: 0,
    orgId: customer.orgId,
    lagoId: "",
    customerId: customer.id,
    invoiceType: "subscription",
    status: "draft",
    paymentStatus: "pending",
    number: "",
    organizationSequentialId: null,
    sequentialId: null,
    issuingDate,
    paymentDueDate: paymentDueDate(issuingDate, netPaymentTerm),
    netPaymentTerm,
    currency: p.currency,
    feesAmountCents: t.feesAmountCents,
    couponsAmountCents: t.couponsAmountCents,
    creditNotesAmountCents: t.creditNotesAmountCents,
    prepaidCreditAmountCents: t.prepaidCreditAmountCents,
    taxesAmountCents: t.taxesAmountCents,
    subTotalExcludingTaxesAmountCents: t.subTotalExcludingTaxesAmountCents,
    subTotalIncludingTaxesAmountCents: t.subTotalIncludingTaxesAmountCents,
    totalAmountCents: t.totalAmountCents,
    progressiveBillingCreditAmountCents: t.progressiveBillingCreditAmountCents ?? 0n,
    graceUntil: null,
    finalizedAt: null,
    voidedAt: null,
    createdAt: now,
    updatedAt: now,
  };
  const fees: FeeRecord[] = [];
  let i = 0;
  for (const { sub, fees: drafts } of p.groups) for (const draft of drafts) fees.push(feeRecord(p, sub, draft, c.fees[i++]!));
  const appliedTaxes: AppliedTaxRecord[] = c.appliedTaxes.map((line) => ({
    invoiceId: 0,
    invoiceLagoId: "",
    lagoId: "",
    taxLagoId: line.tax.lagoId,
    taxCode: line.tax.code,
    taxName: line.tax.name,
    taxDescription: line.tax.description,
    taxRate: line.tax.rate,
    amountCents: line.amountCents,
    feesAmountCents: line.feesAmountCents,
    currency: p.currency,
    createdAt: now,
  }));
  // Coupons given in the request are named; the customer's applied coupons count in the totals.
  const credits: CreditRecord[] = c.couponCredits.flatMap((credit) => {
    const given = p.coupons.find((x) => x.appliedCouponId === credit.appliedCouponId);
    if (given === undefined || credit.amountCents === 0n) return [];
    return [{
      invoiceId: 0,
      invoiceLagoId: "",
      paymentStatus: "pending" as const,
      lagoId: "",
      amountCents: credit.amountCents,
      currency: p.currency,
      beforeTaxes: true,
      item: { type: "coupon" as const, lagoItemId: "", code: given.code, name: given.name },
    }];
  });
  const billingPeriods: BillingPeriodRecord[] = p.items.map(({ sub, instant }) => ({
    invoiceId: 0,
    subscriptionId: sub.id,
    subscriptionLagoId: sub.lagoId,
    externalSubscriptionId: sub.id === 0 ? "" : sub.externalId,
    planLagoId: sub.plan.lagoId,
    reason: instant.reason,
    billedAt: instant.at,
    feeFrom: instant.fee?.from ?? null,
    feeTo: instant.fee?.to ?? null,
    chargesFrom: instant.charges?.from ?? null,
    chargesTo: chargesLastInstant(instant),
    unusedAdvanceCreditCents: 0n,
  }));
  const customerView = customerJson(customer);
  const json = invoiceJson(invoice, { customer: customerView, fees, billingPeriods, appliedTaxes, credits, subscriptions: [] });
  const none = (v: string) => (v === "" ? null : v);
  return {
    ...json,
    lago_id: null,
    number: null,
    customer: { ...customerView, lago_id: none(customer.lagoId), external_id: none(customer.externalId) },
    fees: json.fees!.map((f) => ({
      ...f,
      lago_id: null,
      lago_subscription_id: none(f.lago_subscription_id ?? ""),
      applied_taxes: f.applied_taxes.map((t) => ({ ...t, lago_id: null, lago_fee_id: null })),
    })),
    applied_taxes: json.applied_taxes.map((t) => ({ ...t, lago_id: null, lago_invoice_id: null })),
    credits: json.credits!.map((cr) => ({ ...cr, lago_id: null, item: { ...cr.item, lago_item_id: null }, invoice: { ...cr.invoice, lago_id: null } })),
    billing_periods: json.billing_periods!.map((bp, n) => ({
      ...bp,
      lago_subscription_id: p.items[n]!.sub.id === 0 ? null : bp.lago_subscription_id,
      external_subscription_id: none(bp.external_subscription_id),
    })),
  };
}

export function registerInvoicePreviewRoute(app: FastifyInstance, deps: PreviewDeps): void {
  app.post("/api/v1/invoices/preview", async (request) => ({ invoice: previewJson(await previewInvoice(deps, request.orgId, request.body)) }));
}
