// Payments against a real database: finalized invoices charged by the payment worker after the
// finalizing transaction commits, the sandbox provider's outcomes by payment method token, dunning
// retries per the configured schedule under a ManualClock (a transient failure retried succeeds
// exactly once; a timeout retried with the same idempotency key never charges twice; a worker that
// died mid-attempt), declines, retry_payment, manual payment status, voiding, attempts in flight,
// the invoice-paid hook, webhooks, metrics, bad input, and isolation between organizations.
import type { InjectOptions, LightMyRequestResponse } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Queryable } from "../../src/db/db.ts";
import {
  PaymentWorker,
  registerPaymentMetrics,
  type ChargeRequest,
  type ChargeResult,
  type PaidInvoice,
  type PaymentProvider,
} from "../../src/modules/payments/index.ts";
import * as paymentStore from "../../src/modules/payments/store.ts";
import client from "prom-client";
import { buildApp, type App } from "../../src/app.ts";
import type { Db } from "../../src/db/db.ts";
import { ManualClock } from "../../src/shared/clock.ts";
import { loadConfig } from "../../src/shared/config.ts";
import { T0 } from "../helpers/app.ts";
import { DB_KIND, openTestDb } from "../helpers/db.ts";
import { bearer, json, parseMetrics, uid, waitFor } from "./support.ts";

const ADMIN_TOKEN = "admin-token-for-payments-tests-0123456789";
const H = 3_600_000;
const D = 24 * H;
const TIMEOUT_MS = 300;

/** A provider the test answers by hand: each charge waits until `answer` is called. */
class HandProvider implements PaymentProvider {
  readonly code = "by_hand";
  readonly type = "by_hand";
  readonly requests: ChargeRequest[] = [];
  private pending: ((r: ChargeResult | Error) => void)[] = [];
  charge(request: ChargeRequest): Promise<ChargeResult> {
    this.requests.push(request);
    return new Promise((resolve, reject) => this.pending.push((r) => (r instanceof Error ? reject(r) : resolve(r))));
  }
  get waiting(): number {
    return this.pending.length;
  }
  answer(r: ChargeResult | Error): void {
    const next = this.pending.shift();
    if (next === undefined) throw new Error("no charge is waiting");
    next(r);
  }
}

const hand = new HandProvider();
let t: { app: App; db: Db; clock: ManualClock; close(): Promise<void> };
const paidEvents: { invoice: PaidInvoice; statusInTx: string }[] = [];
/** Invoices whose next invoice-paid notification the subscriber fails (once). */
const failPaidHookFor = new Set<string>();

beforeAll(async () => {
  // The worker's background loop stays off: every attempt here is a `runDue` under the ManualClock.
  const db = await openTestDb();
  const clock = new ManualClock(T0);
  const config = loadConfig({
    LOG_LEVEL: "silent",
    VALUEVERSE_ADMIN_TOKEN: ADMIN_TOKEN,
    BILLING_SCHEDULER: "off",
    WEBHOOK_WORKER: "off",
    PAYMENT_WORKER: "off",
    PAYMENT_RETRY_SCHEDULE: "1h,1d,3d",
    PAYMENT_TIMEOUT_MS: String(TIMEOUT_MS),
    // The test's webhook receiver listens on 127.0.0.1.
    WEBHOOK_PRIVATE_NETWORKS: "allow",
  });
  const app = buildApp(config, { db, clock, paymentProviders: [hand] });
  await app.start();
  t = { app, db, clock, close: () => app.close() };
  // A wallet-like subscriber: reads, inside the paying transaction, what it is told was paid.
  t.app.payments.service.onInvoicePaid(async (tx: Queryable, invoice) => {
    if (failPaidHookFor.has(invoice.lagoId)) {
      failPaidHookFor.delete(invoice.lagoId);
      throw new Error("the subscriber failed");
    }
    const { rows } = await tx.query<{ payment_status: string }>("SELECT payment_status FROM invoices WHERE id = $1", [invoice.invoiceId]);
    paidEvents.push({ invoice, statusInTx: rows[0]!.payment_status });
  });
});
afterAll(async () => {
  await t?.close();
});

type Method = "GET" | "POST" | "PUT" | "DELETE";

interface Org {
  key: string;
  orgId: number;
  raw: (method: Method, url: string, payload?: unknown) => Promise<LightMyRequestResponse>;
  api: (method: Method, url: string, payload?: unknown) => Promise<any>;
  plan: string;
}

async function newOrg(): Promise<Org> {
  const r = await t.app.http.inject({ method: "POST", url: "/admin/v1/organizations", headers: bearer(ADMIN_TOKEN), payload: { organization: { name: uid("Org") } } });
  expect(r.statusCode, r.body).toBe(200);
  const key = json(r).api_key as string;
  const orgId = (await t.app.orgs.authenticate(key))!;
  const raw = (method: Method, url: string, payload?: unknown) =>
    t.app.http.inject({ method, url, headers: bearer(key), ...(payload === undefined ? {} : { payload: payload as InjectOptions["payload"] }) });
  const api = async (method: Method, url: string, payload?: unknown) => {
    const res = await raw(method, url, payload);
    expect(res.statusCode, `${method} ${url}: ${res.body}`).toBe(200);
    return json(res);
  };
  // A monthly plan of 49.00 EUR paid in advance: subscribing issues (and, with no grace period,
  // finalizes) the first period's invoice in the subscription's transaction.
  const plan = uid("pro");
  await api("POST", "/api/v1/plans", { plan: { name: "Pro", code: plan, interval: "monthly", amount_cents: 4900, amount_currency: "EUR", pay_in_advance: true } });
  return { key, orgId, raw, api, plan };
}

/**
 * A customer whose billing_configuration names a provider and payment method token, subscribed on
 * anniversary billing (a whole first period: 49.00 EUR). Answers its finalized first invoice.
 */
async function invoiceFor(org: Org, billing: Record<string, unknown> | null, customer: Record<string, unknown> = {}) {
  const external = uid("cus");
  await org.api("POST", "/api/v1/customers", {
    customer: { external_id: external, currency: "EUR", ...(billing ? { billing_configuration: billing } : {}), ...customer },
  });
  await org.api("POST", "/api/v1/subscriptions", {
    subscription: { external_customer_id: external, plan_code: org.plan, external_id: uid("sub"), billing_time: "anniversary" },
  });
  const invoices = (await org.api("GET", `/api/v1/invoices?external_customer_id=${encodeURIComponent(external)}`)).invoices;
  expect(invoices).toHaveLength(1);
  return { customer: external, invoice: invoices[0] as any };
}

const sandbox = (token: string) => ({ payment_provider: "stripe", payment_provider_code: "sandbox", provider_customer_id: token });

async function paymentOf(org: Org, invoiceLagoId: string): Promise<any> {
  const list = (await org.api("GET", `/api/v1/payments?invoice_id=${invoiceLagoId}`)).payments;
  expect(list).toHaveLength(1);
  return (await org.api("GET", `/api/v1/payments/${list[0].lago_id}`)).payment;
}

const invoiceOf = async (org: Org, lagoId: string) => (await org.api("GET", `/api/v1/invoices/${lagoId}`)).invoice;
const ledger = (org: Org, invoiceLagoId: string) => t.app.payments.sandbox!.ledger(org.orgId, invoiceLagoId);
const runDue = () => t.app.payments.worker.runDue();

/** Webhooks written to the outbox for one invoice, oldest first. */
async function webhooksOf(org: Org, invoiceLagoId: string): Promise<{ type: string; body: any }[]> {
  const { rows } = await t.db.query<{ webhook_type: string; payload: string }>(
    "SELECT webhook_type, payload FROM webhooks WHERE org_id = $1 AND payload LIKE $2 ORDER BY id",
    [org.orgId, `%${invoiceLagoId}%`],
  );
  return rows.map((r) => ({ type: r.webhook_type, body: JSON.parse(r.payload) }));
}

let orgA: Org;

beforeAll(async () => {
  orgA = await newOrg();
  // Every webhook type goes to one endpoint (never called: WEBHOOK_WORKER=off), so the outbox shows them.
  await orgA.api("POST", "/api/v1/webhook_endpoints", { webhook_endpoint: { webhook_url: "http://127.0.0.1:9/hooks", signature_algo: "hmac" } });
});

describe(`payments on ${DB_KIND}`, () => {
  it("a finalized invoice is charged after its transaction commits: paid, one charge, webhook, hook, metric", async () => {
    const before = parseMetrics((await t.app.http.inject({ method: "GET", url: "/metrics" })).body);
    const { invoice, customer } = await invoiceFor(orgA, sandbox("pm_succeeds"));
    expect(invoice).toMatchObject({ status: "finalized", payment_status: "pending", total_amount_cents: 4900, currency: "EUR" });
    // Written in the finalizing transaction, not yet attempted.
    let payment = await paymentOf(orgA, invoice.lago_id);
    expect(payment).toMatchObject({ payment_status: "pending", attempts_count: 0, amount_cents: 4900, amount_currency: "EUR", provider_customer_id: "pm_succeeds" });
    expect(await ledger(orgA, invoice.lago_id)).toEqual([]);

    const run = await runDue();
    expect(run).toMatchObject({ attempted: 1, succeeded: 1 });
    const paid = await invoiceOf(orgA, invoice.lago_id);
    expect(paid).toMatchObject({ payment_status: "succeeded", total_paid_amount_cents: 4900, total_due_amount_cents: 0 });
    payment = await paymentOf(orgA, invoice.lago_id);
    expect(payment).toMatchObject({
      lago_customer_id: paid.customer.lago_id,
      external_customer_id: customer,
      invoice_ids: [invoice.lago_id],
      invoice_numbers: [paid.number],
      lago_payable_id: invoice.lago_id,
      payable_type: "Invoice",
      amount_cents: 4900,
      amount_currency: "EUR",
      status: "succeeded",
      payment_status: "succeeded",
      type: "provider",
      payment_provider_code: "sandbox",
      payment_provider_type: "sandbox",
      provider_customer_id: "pm_succeeds",
      next_attempt_at: null,
      attempts_count: 1,
    });
    const charges = await ledger(orgA, invoice.lago_id);
    expect(charges.map((c) => [c.outcome, c.amountCents, c.currency])).toEqual([["succeeded", 4900n, "EUR"]]);
    expect(payment.provider_payment_id).toBe(charges[0]!.providerPaymentId);
    expect(payment.attempts).toMatchObject([{ attempt: 1, outcome: "succeeded", idempotency_key: charges[0]!.idempotencyKey, replayed: false }]);

    // Nothing more is attempted, however late.
    t.clock.advance(10 * D);
    expect((await runDue()).attempted).toBe(0);
    expect(await ledger(orgA, invoice.lago_id)).toHaveLength(1);

    const hooks = await webhooksOf(orgA, invoice.lago_id);
    const updated = hooks.filter((h) => h.type === "invoice.payment_status_updated");
    expect(updated).toHaveLength(1);
    expect(updated[0]!.body).toMatchObject({ webhook_type: "invoice.payment_status_updated", object_type: "invoice", invoice: { lago_id: invoice.lago_id, payment_status: "succeeded" } });
    expect(hooks.some((h) => h.type === "invoice.payment_failure")).toBe(false);

    const mine = paidEvents.filter((e) => e.invoice.lagoId === invoice.lago_id);
    expect(mine).toEqual([
      {
        invoice: expect.objectContaining({ orgId: orgA.orgId, lagoId: invoice.lago_id, via: "provider", totalAmountCents: 4900n, currency: "EUR", invoiceType: "subscription" }),
        statusInTx: "succeeded",
      },
    ]);

    const after = parseMetrics((await t.app.http.inject({ method: "GET", url: "/metrics" })).body);
    const key = 'billing_payment_attempts_total{outcome="succeeded",provider="sandbox"}';
    expect(after.get(key)! - (before.get(key) ?? 0)).toBe(1);
    expect(after.has('billing_payment_failures_total{outcome="declined",provider="sandbox"}')).toBe(true);
  });

  it("a transient failure is retried per the dunning schedule and succeeds exactly once", async () => {
    const { invoice } = await invoiceFor(orgA, sandbox("pm_fails_2_then_succeeds"));
    const start = t.clock.now();
    expect(await runDue()).toMatchObject({ attempted: 1, transient_failure: 1 });
    let payment = await paymentOf(orgA, invoice.lago_id);
    expect(payment).toMatchObject({ payment_status: "pending", attempts_count: 1, last_error: { code: "processing_error", outcome: "transient_failure" } });
    expect(Date.parse(payment.next_attempt_at)).toBe(start + H);
    expect((await invoiceOf(orgA, invoice.lago_id)).payment_status).toBe("pending");

    // Not before the first wait (1h) is over.
    t.clock.advance(H - 60_000);
    expect((await runDue()).attempted).toBe(0);
    t.clock.advance(60_000);
    expect(await runDue()).toMatchObject({ attempted: 1, transient_failure: 1 });
    payment = await paymentOf(orgA, invoice.lago_id);
    expect(Date.parse(payment.next_attempt_at)).toBe(start + H + D);

    // The second wait is a day.
    t.clock.advance(D - 1000);
    expect((await runDue()).attempted).toBe(0);
    t.clock.advance(1000);
    expect(await runDue()).toMatchObject({ attempted: 1, succeeded: 1 });

    payment = await paymentOf(orgA, invoice.lago_id);
    expect(payment).toMatchObject({ payment_status: "succeeded", attempts_count: 3, next_attempt_at: null });
    const keys = payment.attempts.map((a: any) => a.idempotency_key);
    expect(new Set(keys).size).toBe(3); // nothing was charged by a failed attempt: each try is a new request
    expect(payment.attempts.map((a: any) => a.outcome)).toEqual(["transient_failure", "transient_failure", "succeeded"]);
    const charges = await ledger(orgA, invoice.lago_id);
    expect(charges.filter((c) => c.outcome === "succeeded")).toHaveLength(1);
    expect(charges.map((c) => c.outcome)).toEqual(["transient_failure", "transient_failure", "succeeded"]);
    expect((await invoiceOf(orgA, invoice.lago_id)).payment_status).toBe("succeeded");

    const hooks = await webhooksOf(orgA, invoice.lago_id);
    expect(hooks.filter((h) => h.type === "invoice.payment_failure")).toHaveLength(2);
    expect(hooks.filter((h) => h.type === "invoice.payment_status_updated")).toHaveLength(1);
    t.clock.advance(10 * D);
    expect((await runDue()).attempted).toBe(0);
  });

  it("a timeout is retried with the same idempotency key and never charges twice", async () => {
    const { invoice } = await invoiceFor(orgA, sandbox("pm_times_out"));
    const t0 = performance.now();
    expect(await runDue()).toMatchObject({ attempted: 1, timeout: 1 });
    expect(performance.now() - t0).toBeGreaterThanOrEqual(TIMEOUT_MS - 20);
    // The sandbox charged; its answer never came.
    let charges = await ledger(orgA, invoice.lago_id);
    expect(charges.map((c) => c.outcome)).toEqual(["succeeded"]);
    let payment = await paymentOf(orgA, invoice.lago_id);
    expect(payment).toMatchObject({ payment_status: "pending", attempts_count: 1, last_error: { code: "timeout", outcome: "timeout" } });
    expect((await invoiceOf(orgA, invoice.lago_id)).payment_status).toBe("pending");

    t.clock.advance(H);
    expect(await runDue()).toMatchObject({ attempted: 1, succeeded: 1 });
    payment = await paymentOf(orgA, invoice.lago_id);
    expect(payment.attempts).toMatchObject([
      { attempt: 1, outcome: "timeout", idempotency_key: charges[0]!.idempotencyKey },
      { attempt: 2, outcome: "succeeded", idempotency_key: charges[0]!.idempotencyKey, replayed: true },
    ]);
    charges = await ledger(orgA, invoice.lago_id);
    expect(charges).toHaveLength(1);
    expect(payment).toMatchObject({ payment_status: "succeeded", provider_payment_id: charges[0]!.providerPaymentId });
    expect((await invoiceOf(orgA, invoice.lago_id)).payment_status).toBe("succeeded");
  });

  it("a worker that died mid-attempt: the next one sends the same key and the provider answers its charge", async () => {
    const { invoice } = await invoiceFor(orgA, sandbox("pm_succeeds"));
    const [claimed] = await paymentStore.claimDue(t.db, {
      orgId: orgA.orgId,
      orgNow: new Date(t.clock.now()),
      wallNow: new Date(t.clock.now()),
      leaseId: crypto.randomUUID(),
      leaseUntil: new Date(t.clock.now() + 5 * 60_000),
      limit: 10,
    });
    expect(claimed?.invoiceLagoId).toBe(invoice.lago_id);
    // The request reached the provider, then the process died before recording anything.
    const first = await t.app.payments.sandbox!.charge(
      {
        orgId: orgA.orgId,
        paymentId: claimed!.lagoId,
        invoiceId: invoice.lago_id,
        amountCents: claimed!.amountCents,
        currency: claimed!.currency,
        paymentMethod: claimed!.providerCustomerId,
        idempotencyKey: claimed!.idempotencyKey,
      },
      new AbortController().signal,
    );
    expect(first.outcome).toBe("succeeded");
    // While the dead worker's claim lasts, nobody else takes the payment.
    expect((await runDue()).attempted).toBe(0);
    t.clock.advance(5 * 60_000);
    expect(await runDue()).toMatchObject({ attempted: 1, succeeded: 1 });
    const payment = await paymentOf(orgA, invoice.lago_id);
    expect(payment.attempts).toMatchObject([{ attempt: 1, outcome: "succeeded", replayed: true, idempotency_key: claimed!.idempotencyKey }]);
    expect(await ledger(orgA, invoice.lago_id)).toHaveLength(1);
  });

  it("a decline fails the invoice with no automatic retry; retry_payment with a new payment method pays it", async () => {
    const { invoice, customer } = await invoiceFor(orgA, sandbox("pm_declines"));
    expect(await runDue()).toMatchObject({ attempted: 1, declined: 1 });
    let payment = await paymentOf(orgA, invoice.lago_id);
    expect(payment).toMatchObject({ payment_status: "failed", status: "failed", next_attempt_at: null, last_error: { code: "card_declined", outcome: "declined" } });
    expect((await invoiceOf(orgA, invoice.lago_id)).payment_status).toBe("failed");
    t.clock.advance(7 * D);
    expect((await runDue()).attempted).toBe(0);

    const hooks = await webhooksOf(orgA, invoice.lago_id);
    const failure = hooks.find((h) => h.type === "invoice.payment_failure")!;
    expect(failure.body).toEqual({
      webhook_type: "invoice.payment_failure",
      object_type: "payment_provider_invoice_payment_error",
      organization_id: expect.any(String),
      payment_provider_invoice_payment_error: {
        lago_invoice_id: invoice.lago_id,
        lago_customer_id: invoice.customer.lago_id,
        external_customer_id: customer,
        provider_customer_id: "pm_declines",
        payment_provider: "sandbox",
        payment_provider_code: "sandbox",
        provider_error: { message: "Your card was declined.", error_code: "card_declined" },
      },
    });
    expect(hooks.find((h) => h.type === "invoice.payment_status_updated")!.body.invoice.payment_status).toBe("failed");

    // The customer gives a card that works; retry_payment collects again with it, under a new key.
    await orgA.api("POST", "/api/v1/customers", { customer: { external_id: customer, billing_configuration: { provider_customer_id: "pm_succeeds" } } });
    const retried = await orgA.raw("POST", `/api/v1/invoices/${invoice.lago_id}/retry_payment`);
    expect(retried.statusCode, retried.body).toBe(200);
    expect(retried.body).toBe("");
    expect(await runDue()).toMatchObject({ attempted: 1, succeeded: 1 });
    payment = await paymentOf(orgA, invoice.lago_id);
    expect(payment).toMatchObject({ payment_status: "succeeded", provider_customer_id: "pm_succeeds", attempts_count: 2 });
    expect(payment.attempts[0].idempotency_key).not.toBe(payment.attempts[1].idempotency_key);
    expect((await invoiceOf(orgA, invoice.lago_id)).payment_status).toBe("succeeded");
    const charges = await ledger(orgA, invoice.lago_id);
    expect(charges.map((c) => c.outcome)).toEqual(["declined", "succeeded"]);
    // Paid now: retrying is refused.
    const again = await orgA.raw("POST", `/api/v1/invoices/${invoice.lago_id}/retry_payment`, {});
    expect(again.statusCode).toBe(405);
    expect(json(again)).toEqual({ status: 405, error: "Method Not Allowed", code: "invalid_status" });
  });

  it("transient failures past the schedule fail the payment after 1 + 3 attempts", async () => {
    const { invoice } = await invoiceFor(orgA, sandbox("pm_fails_transiently"));
    for (const wait of [0, H, D, 3 * D]) {
      t.clock.advance(wait);
      expect(await runDue()).toMatchObject({ attempted: 1, transient_failure: 1 });
    }
    const payment = await paymentOf(orgA, invoice.lago_id);
    expect(payment).toMatchObject({ payment_status: "failed", attempts_count: 4, next_attempt_at: null });
    expect((await invoiceOf(orgA, invoice.lago_id)).payment_status).toBe("failed");
    expect((await ledger(orgA, invoice.lago_id)).filter((c) => c.outcome === "succeeded")).toHaveLength(0);
    t.clock.advance(30 * D);
    expect((await runDue()).attempted).toBe(0);
  });

  it("voiding an invoice stops its dunning", async () => {
    const { invoice } = await invoiceFor(orgA, sandbox("pm_fails_transiently"));
    expect(await runDue()).toMatchObject({ attempted: 1, transient_failure: 1 });
    const voided = await orgA.api("POST", `/api/v1/invoices/${invoice.lago_id}/void`, {});
    expect(voided.invoice.status).toBe("voided");
    t.clock.advance(10 * D);
    expect((await runDue()).attempted).toBe(0);
    const payment = await paymentOf(orgA, invoice.lago_id);
    expect(payment).toMatchObject({ status: "canceled", payment_status: "failed", next_attempt_at: null, attempts_count: 1 });
    const retry = await orgA.raw("POST", `/api/v1/invoices/${invoice.lago_id}/retry_payment`, {});
    expect(retry.statusCode).toBe(405);
    expect(json(retry).code).toBe("invalid_status");
  });

  it("while an attempt is in flight, void, manual status and retry are refused; its answer is then recorded", async () => {
    const { invoice } = await invoiceFor(orgA, { payment_provider_code: "by_hand", provider_customer_id: "card_1" });
    const running = runDue();
    await waitFor(() => hand.waiting === 1, "the charge to reach the provider");
    expect(hand.requests.at(-1)).toMatchObject({ invoiceId: invoice.lago_id, amountCents: 4900n, currency: "EUR", paymentMethod: "card_1" });
    expect((await paymentOf(orgA, invoice.lago_id)).payment_status).toBe("processing");
    for (const [method, url, body] of [
      ["POST", `/api/v1/invoices/${invoice.lago_id}/void`, {}],
      ["PUT", `/api/v1/invoices/${invoice.lago_id}`, { invoice: { payment_status: "succeeded" } }],
      ["POST", `/api/v1/invoices/${invoice.lago_id}/retry_payment`, {}],
    ] as const) {
      const r = await orgA.raw(method, url, body);
      expect(r.statusCode, `${method} ${url}`).toBe(405);
      expect(json(r).code).toBe("payment_processor_is_currently_handling_payment");
    }
    hand.answer({ outcome: "succeeded", providerPaymentId: "hand_1" });
    expect(await running).toMatchObject({ attempted: 1, succeeded: 1 });
    expect((await invoiceOf(orgA, invoice.lago_id)).payment_status).toBe("succeeded");
    expect((await paymentOf(orgA, invoice.lago_id)).payment_provider_type).toBe("by_hand");
  });

  it("a provider that throws leaves the outcome unknown: retried with the same key", async () => {
    const { invoice } = await invoiceFor(orgA, { payment_provider_code: "by_hand", provider_customer_id: "card_2" });
    const running = runDue();
    await waitFor(() => hand.waiting === 1, "the charge");
    hand.answer(new Error("connection reset by peer"));
    expect(await running).toMatchObject({ attempted: 1, timeout: 1 });
    t.clock.advance(H);
    const again = runDue();
    await waitFor(() => hand.waiting === 1, "the retry");
    const [a, b] = hand.requests.slice(-2);
    expect(b!.idempotencyKey).toBe(a!.idempotencyKey);
    hand.answer({ outcome: "declined", errorCode: "do_not_honor", message: "declined" });
    expect(await again).toMatchObject({ attempted: 1, declined: 1 });
    const payment = await paymentOf(orgA, invoice.lago_id);
    expect(payment.attempts.map((x: any) => [x.outcome, x.error_code])).toEqual([
      ["timeout", "provider_error"],
      ["declined", "do_not_honor"],
    ]);
  });

  it("two workers racing for the same due payment attempt it once", async () => {
    const { invoice } = await invoiceFor(orgA, sandbox("pm_succeeds"));
    const other = new PaymentWorker(t.db, t.clock, t.clock, t.app.payments.service, registerPaymentMetrics(new client.Registry(), ["sandbox"], async () => 0), {
      timeoutMs: TIMEOUT_MS,
      pollMs: 1000,
    });
    const [x, y] = await Promise.all([runDue(), other.runDue()]);
    expect(x.attempted + y.attempted).toBe(1);
    expect((await paymentOf(orgA, invoice.lago_id)).attempts).toHaveLength(1);
    expect(await ledger(orgA, invoice.lago_id)).toHaveLength(1);
    await other.stop();
  });

  it("a customer with no provider is not charged; its payment status is set by hand (PUT /invoices/:id)", async () => {
    const { invoice } = await invoiceFor(orgA, null);
    expect((await orgA.api("GET", `/api/v1/payments?invoice_id=${invoice.lago_id}`)).payments).toEqual([]);
    expect((await runDue()).attempted).toBe(0);

    const put = (status: string) => orgA.api("PUT", `/api/v1/invoices/${invoice.lago_id}`, { invoice: { payment_status: status } });
    const updated = await put("succeeded");
    expect(updated.invoice).toMatchObject({ lago_id: invoice.lago_id, payment_status: "succeeded", total_paid_amount_cents: 4900 });
    expect(updated.invoice.fees.length).toBeGreaterThan(0);
    // Setting it again changes nothing and says nothing.
    await put("succeeded");
    await put("pending");
    await put("succeeded");
    const hooks = (await webhooksOf(orgA, invoice.lago_id)).filter((h) => h.type === "invoice.payment_status_updated");
    expect(hooks.map((h) => h.body.invoice.payment_status)).toEqual(["succeeded", "pending", "succeeded"]);
    // The invoice-paid hook fired once, the first time.
    expect(paidEvents.filter((e) => e.invoice.lagoId === invoice.lago_id).map((e) => e.invoice.via)).toEqual(["manual"]);
    // A paid invoice cannot be voided (Lago's rule).
    expect((await orgA.raw("POST", `/api/v1/invoices/${invoice.lago_id}/void`, {})).statusCode).toBe(405);
  });

  it("marking an invoice paid by hand stops its dunning", async () => {
    const { invoice } = await invoiceFor(orgA, sandbox("pm_fails_transiently"));
    expect(await runDue()).toMatchObject({ transient_failure: 1 });
    await orgA.api("PUT", `/api/v1/invoices/${invoice.lago_id}`, { invoice: { payment_status: "succeeded" } });
    t.clock.advance(5 * D);
    expect((await runDue()).attempted).toBe(0);
    expect(await paymentOf(orgA, invoice.lago_id)).toMatchObject({ status: "canceled", attempts_count: 1 });
  });

  it("retry_payment starts collection for an invoice whose customer got a provider later", async () => {
    const { invoice, customer } = await invoiceFor(orgA, null);
    const refused = await orgA.raw("POST", `/api/v1/invoices/${invoice.lago_id}/retry_payment`, {});
    expect(refused.statusCode).toBe(405);
    expect(json(refused).code).toBe("no_payment_provider");
    await orgA.api("POST", "/api/v1/customers", { customer: { external_id: customer, billing_configuration: sandbox("pm_succeeds") } });
    // Lago's client sends no body when called without options.
    const r = await t.app.http.inject({
      method: "POST",
      url: `/api/v1/invoices/${invoice.lago_id}/retry_payment`,
      headers: { ...bearer(orgA.key), "content-type": "application/json", "content-length": "0" },
    });
    expect(r.statusCode, r.body).toBe(200);
    expect(await runDue()).toMatchObject({ succeeded: 1 });
    expect((await invoiceOf(orgA, invoice.lago_id)).payment_status).toBe("succeeded");
  });

  it("drafts are not charged, and their payment status cannot be set", async () => {
    const { invoice } = await invoiceFor(orgA, sandbox("pm_succeeds"), { billing_configuration: { ...sandbox("pm_succeeds"), invoice_grace_period: 3 } });
    expect(invoice.status).toBe("draft");
    expect((await runDue()).attempted).toBe(0);
    const put = await orgA.raw("PUT", `/api/v1/invoices/${invoice.lago_id}`, { invoice: { payment_status: "succeeded" } });
    expect(put.statusCode).toBe(405);
    expect(json(put).code).toBe("payment_status_update_on_draft_invoice");
    expect(json(await orgA.raw("POST", `/api/v1/invoices/${invoice.lago_id}/retry_payment`, {})).code).toBe("invalid_status");
    // Finalized by hand: charged then.
    await orgA.api("PUT", `/api/v1/invoices/${invoice.lago_id}/finalize`);
    expect(await runDue()).toMatchObject({ succeeded: 1 });
    expect((await invoiceOf(orgA, invoice.lago_id)).payment_status).toBe("succeeded");
  });

  it("an invoice with nothing to pay is paid at finalization: the hook fires, nothing is charged", async () => {
    const free = uid("free");
    await orgA.api("POST", "/api/v1/plans", { plan: { name: "Free", code: free, interval: "monthly", amount_cents: 0, amount_currency: "EUR", pay_in_advance: true } });
    const external = uid("cus");
    await orgA.api("POST", "/api/v1/customers", { customer: { external_id: external, currency: "EUR", billing_configuration: sandbox("pm_succeeds") } });
    await orgA.api("POST", "/api/v1/subscriptions", { subscription: { external_customer_id: external, plan_code: free, external_id: uid("sub"), billing_time: "anniversary" } });
    const invoices = (await orgA.api("GET", `/api/v1/invoices?external_customer_id=${external}`)).invoices;
    expect(invoices).toHaveLength(1);
    expect(invoices[0]).toMatchObject({ status: "finalized", total_amount_cents: 0, payment_status: "succeeded" });
    expect((await orgA.api("GET", `/api/v1/payments?invoice_id=${invoices[0].lago_id}`)).payments).toEqual([]);
    expect(paidEvents.filter((e) => e.invoice.lagoId === invoices[0].lago_id).map((e) => e.invoice.via)).toEqual(["nothing_due"]);
  });

  it("a failing invoice-paid subscriber rolls the payment's record back; the retry (same key) records it, one charge", async () => {
    const { invoice } = await invoiceFor(orgA, sandbox("pm_succeeds"));
    failPaidHookFor.add(invoice.lago_id);
    expect((await runDue()).attempted).toBe(0); // charged, but nothing recorded
    expect((await invoiceOf(orgA, invoice.lago_id)).payment_status).toBe("pending");
    expect(await ledger(orgA, invoice.lago_id)).toHaveLength(1);
    t.clock.advance(TIMEOUT_MS + 60_000); // the claim expires
    expect(await runDue()).toMatchObject({ attempted: 1, succeeded: 1 });
    const payment = await paymentOf(orgA, invoice.lago_id);
    expect(payment.attempts).toMatchObject([{ attempt: 1, outcome: "succeeded", replayed: true }]);
    expect(await ledger(orgA, invoice.lago_id)).toHaveLength(1);
    expect(paidEvents.filter((e) => e.invoice.lagoId === invoice.lago_id)).toHaveLength(1);
  });

  it("bad input gets a 422 naming the field, unknown ids a 404", async () => {
    const { invoice } = await invoiceFor(orgA, null);
    const cases: [Method, string, unknown, Record<string, string[]>][] = [
      ["PUT", `/api/v1/invoices/${invoice.lago_id}`, { invoice: { payment_status: "paid" } }, { payment_status: ["value_is_invalid"] }],
      ["PUT", `/api/v1/invoices/${invoice.lago_id}`, { payment_status: "succeeded" }, { invoice: ["must_be_an_object"] }],
      [
        "PUT",
        `/api/v1/invoices/${invoice.lago_id}`,
        { invoice: { payment_status: 3, metadata: [{ key: "k", value: "v" }] } },
        { payment_status: ["value_is_invalid"], metadata: ["invoice_metadata_not_supported"] },
      ],
      ["GET", "/api/v1/payments?invoice_id=inv_123", undefined, { invoice_id: ["invalid_uuid"] }],
      ["GET", "/api/v1/payments?per_page=1000&page=0", undefined, { per_page: ["must_be_an_integer_between_1_and_100"], page: ["must_be_an_integer_between_1_and_1000000"] }],
    ];
    for (const [method, url, body, details] of cases) {
      const r = await orgA.raw(method, url, body);
      expect(r.statusCode, `${method} ${url} ${r.body}`).toBe(422);
      expect(json(r)).toEqual({ status: 422, error: "Unprocessable Entity", code: "validation_errors", error_details: details });
    }
    expect((await invoiceOf(orgA, invoice.lago_id)).payment_status).toBe("pending");
    for (const [method, url] of [
      ["GET", "/api/v1/payments"],
      ["PUT", `/api/v1/invoices/${invoice.lago_id}`],
      ["POST", `/api/v1/invoices/${invoice.lago_id}/retry_payment`],
    ] as const) {
      const r = await t.app.http.inject({ method, url, payload: { invoice: { payment_status: "succeeded" } } });
      expect(r.statusCode, `${method} ${url} without a key`).toBe(401);
    }
    for (const [method, url, code] of [
      ["GET", "/api/v1/payments/not-a-uuid", "payment_not_found"],
      ["GET", `/api/v1/payments/${crypto.randomUUID()}`, "payment_not_found"],
      ["PUT", `/api/v1/invoices/${crypto.randomUUID()}`, "invoice_not_found"],
      ["POST", `/api/v1/invoices/${crypto.randomUUID()}/retry_payment`, "invoice_not_found"],
      ["POST", "/api/v1/invoices/nope/retry_payment", "invoice_not_found"],
    ] as const) {
      const r = await orgA.raw(method, url, method === "GET" ? undefined : { invoice: { payment_status: "succeeded" } });
      expect(r.statusCode, `${method} ${url}`).toBe(404);
      expect(json(r)).toEqual({ status: 404, error: "Not Found", code });
    }
  });

  it("one organization never sees another's payments", async () => {
    const { invoice, customer } = await invoiceFor(orgA, sandbox("pm_succeeds"));
    await runDue();
    const payment = await paymentOf(orgA, invoice.lago_id);
    const orgB = await newOrg();
    expect((await orgB.api("GET", "/api/v1/payments")).payments).toEqual([]);
    expect((await orgB.api("GET", `/api/v1/payments?invoice_id=${invoice.lago_id}`)).payments).toEqual([]);
    expect((await orgB.api("GET", `/api/v1/payments?external_customer_id=${customer}`)).payments).toEqual([]);
    expect((await orgB.api("GET", `/api/v1/customers/${customer}/payments`)).payments).toEqual([]);
    expect((await orgB.raw("GET", `/api/v1/payments/${payment.lago_id}`)).statusCode).toBe(404);
    const put = await orgB.raw("PUT", `/api/v1/invoices/${invoice.lago_id}`, { invoice: { payment_status: "failed" } });
    expect(put.statusCode).toBe(404);
    expect((await orgB.raw("POST", `/api/v1/invoices/${invoice.lago_id}/retry_payment`, {})).statusCode).toBe(404);
    // A's invoice and payment are untouched.
    expect((await invoiceOf(orgA, invoice.lago_id)).payment_status).toBe("succeeded");
    // And B's own payments are B's alone.
    const b = await invoiceFor(orgB, sandbox("pm_succeeds"));
    await runDue();
    const bList = (await orgB.api("GET", "/api/v1/payments")).payments;
    expect(bList.map((p: any) => p.lago_payable_id)).toEqual([b.invoice.lago_id]);
    expect((await orgA.raw("GET", `/api/v1/payments/${bList[0].lago_id}`)).statusCode).toBe(404);
    const aList = (await orgA.api("GET", "/api/v1/payments?per_page=100")).payments;
    expect(aList.some((p: any) => p.lago_payable_id === b.invoice.lago_id)).toBe(false);
    expect(aList.length).toBeGreaterThan(5);
  });
});
