// Composition root: configuration, database, services and the HTTP server, wired by hand.
import Fastify, { LogController, type FastifyBaseLogger, type FastifyError, type FastifyInstance, type FastifyReply, type FastifyRequest } from "fastify";
import type { Db, Queryable } from "./db/db.ts";
import { DeferredDb } from "./db/deferred.ts";
import { migrate } from "./db/migrate.ts";
import { openDatabase, openReadReplica } from "./db/open.ts";
import { ReplicaReads, replicaMetrics } from "./db/replica.ts";
import { Cache, createCacheMetrics } from "./modules/cache/index.ts";
import { ClockService, registerTestClockRoutes } from "./modules/clock/index.ts";
import { CatalogService, type TaxesResolver, registerCatalogRoutes, usageThresholdJson } from "./modules/catalog/index.ts";
import { CustomerService, customerJson, registerCustomerRoutes } from "./modules/customers/index.ts";
import { EventWriter, IngestService, Partitions, earliestNow, registerEventRoutes, runLifecycle } from "./modules/ingest/index.ts";
import { RejectedEventsService, createJetstreamIngest, registerRejectedEventRoutes } from "./modules/jetstream/index.ts";
import { buildGraphqlSchema, registerGraphqlRoutes } from "./modules/graphql/index.ts";
import { BillingScheduler, InvoicingService, registerInvoiceRoutes, type InvoiceAdjustments } from "./modules/invoicing/index.ts";
import { createPayments, ManualPayments, registerPaymentRoutes, type PaymentProvider, type Payments } from "./modules/payments/index.ts";
import { MeteringService, registerMeteringRoutes, registerUnmatchedGauge } from "./modules/metering/index.ts";
import { OrgService, registerAdminRoutes, registerApiAuth } from "./modules/orgs/index.ts";
import { SubscriptionService, registerSubscriptionRoutes, subscriptionWithPlanJson } from "./modules/subscriptions/index.ts";
import { TaxService, registerTaxRoutes, taxJson, usageTaxes } from "./modules/taxes/index.ts";
import { AddOnService, registerAddOnRoutes } from "./modules/add_ons/index.ts";
import { AnalyticsService, registerAnalyticsRoutes } from "./modules/analytics/index.ts";
import { invoiceDetailsJson, recordUsageCutoff, recordUsageCutoffs, registerOneOffInvoiceRoute } from "./modules/invoicing/index.ts";
import { registerInvoicePreviewRoute, registerLifetimeUsageRoute } from "./modules/invoicing/index.ts";
import { AdvanceBilling, feeJson, registerAdvanceFeeRoutes, registerAdvanceQueueGauge } from "./modules/invoicing/index.ts";
import { markOverdueInvoices } from "./modules/invoicing/index.ts";
import { CouponService, registerCouponRoutes } from "./modules/coupons/index.ts";
import { CreditNoteService, creditNoteJson, registerCreditNoteRoutes } from "./modules/credit_notes/index.ts";
import { WalletService, registerWalletRoutes } from "./modules/wallets/index.ts";
import { AlertService, registerAlertRoutes } from "./modules/alerts/index.ts";
import { failVoidedPurchases, restoreWalletCredits } from "./modules/wallets/restore.ts";
import type { WalletWebhook } from "./modules/wallets/index.ts";
import { Refunds } from "./modules/payments/refunds.ts";
import { createWebhooks, registerWebhookRoutes, type Webhooks } from "./modules/webhooks/index.ts";
import { createMetrics, type Metrics } from "./observability/metrics.ts";
import { systemClock, type Clock } from "./shared/clock.ts";
import type { Config } from "./shared/config.ts";
import { AppError, STATUS, errorBody } from "./shared/errors.ts";
import { nulInRequest } from "./shared/url_guard.ts";

export interface AppDeps {
  /** The wall clock (tests inject a ManualClock); test clocks, when on, are built over it. */
  clock?: Clock;
  /** An open database to use instead of opening one from the configuration (tests). */
  db?: Db;
  /** Payment providers beside the built-in sandbox (tests). */
  paymentProviders?: PaymentProvider[];
}

export interface App {
  http: FastifyInstance;
  config: Config;
  metrics: Metrics;
  orgs: OrgService;
  ingest: IngestService;
  customers: CustomerService;
  catalog: CatalogService;
  subscriptions: SubscriptionService;
  metering: MeteringService;
  /** The two-tier cache (L1 in process, L2 Redis); `invalidate` after a write commits. */
  cache: Cache;
  /** Invoices and the billing job (`invoicing.runBillingJob()`; every minute with BILLING_SCHEDULER=on). */
  invoicing: InvoicingService;
  /** Charges paid in advance, billed as their events arrive (`advanceBilling.runDue()` bills what is queued). */
  advanceBilling: AdvanceBilling;
  /** The webhook outbox (`webhooks.service.enqueue` in a module's transaction) and its delivery worker. */
  webhooks: Webhooks;
  /** Invoice collection: the payments service (and its invoice-paid hook) and the payment worker. */
  payments: Payments;
  /** Credit note refunds through the payment provider (`runDue` attempts those due). */
  refunds: Refunds;
  /** Wallets; `wallets.runRecurringRules()` makes the recurring top-ups due (run after each billing job). */
  wallets: WalletService;
  /** Usage alerts; `alerts.runDue({ orgId })` evaluates them now (a background loop every ALERTS_POLL_MS, and clock moves, do). */
  alerts: AlertService;
  /** The app's clock with VALUEVERSE_TEST_CLOCK=on; register work a clock move makes due with `onAdvance`. */
  testClock: ClockService;
  /** Lag-tolerant reads (lists, usage, GraphQL): the read replica (DATABASE_READ_URL) while it answers, else the primary. */
  reads: ReplicaReads;
  /** Opens the database, migrates, bootstraps; /health answers 200 once it resolves. */
  start(): Promise<void>;
  /** Stops accepting requests, commits everything queued, closes the database. */
  close(): Promise<void>;
  readonly ready: boolean;
}

// Fastify's own refusals (body parsing, limits), renamed to codes a client can act on.
const FRAMEWORK_ERRORS: Record<string, string> = {
  FST_ERR_CTP_INVALID_JSON_BODY: "invalid_json",
  FST_ERR_CTP_EMPTY_JSON_BODY: "empty_body",
  FST_ERR_CTP_BODY_TOO_LARGE: "body_too_large",
  FST_ERR_CTP_INVALID_MEDIA_TYPE: "unsupported_media_type",
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: "invalid_content_length",
};

let requestCounter = 0;
const requestIdPrefix = process.pid.toString(36) + "-";

type LogMethod = (...args: unknown[]) => void;

/**
 * request.log without a pino child per request: the child, bound to the request id as fastify's
 * own would be, is made the first time the request logs — on the ingest path that is never
 * (access logs are off), and a child per request was a measurable share of its CPU.
 */
class LazyRequestLogger {
  private made: FastifyBaseLogger | null = null;
  constructor(
    private readonly parent: FastifyBaseLogger,
    private readonly bindings: Parameters<FastifyBaseLogger["child"]>[0],
    private readonly options: Parameters<FastifyBaseLogger["child"]>[1],
  ) {}
  private get log(): FastifyBaseLogger {
    return (this.made ??= this.parent.child(this.bindings, this.options));
  }
  private call(method: "info" | "error" | "debug" | "fatal" | "warn" | "trace", args: unknown[]): void {
    const log = this.log;
    (log[method] as LogMethod).apply(log, args);
  }
  get level(): string {
    return this.log.level;
  }
  set level(level: string) {
    this.log.level = level;
  }
  info(...args: unknown[]): void {
    this.call("info", args);
  }
  error(...args: unknown[]): void {
    this.call("error", args);
  }
  debug(...args: unknown[]): void {
    this.call("debug", args);
  }
  fatal(...args: unknown[]): void {
    this.call("fatal", args);
  }
  warn(...args: unknown[]): void {
    this.call("warn", args);
  }
  trace(...args: unknown[]): void {
    this.call("trace", args);
  }
  silent(): void {}
  child(...args: Parameters<FastifyBaseLogger["child"]>): FastifyBaseLogger {
    return this.log.child(...args);
  }
}

export function buildApp(config: Config, deps: AppDeps = {}): App {
  const db = new DeferredDb();
  const wallClock = deps.clock ?? systemClock;
  const testClock = new ClockService(db, wallClock, {
    enabled: config.testClock,
    onError: (err) => http.log.warn({ err }, "test clock refresh failed"),
    // A move reaches the other worker processes over the cache's invalidation channel before
    // PUT /test_clock answers (the next request may land on any of them); see cache.onDrop below.
    announce: (orgId, frozenMs) => cache.invalidate([{ kind: "clock", key: `${orgId}:${frozenMs}` }]),
  });
  // Per-organization frozen time only with VALUEVERSE_TEST_CLOCK=on; otherwise no indirection at all.
  const clock: Clock = config.testClock ? testClock : wallClock;
  const metrics = createMetrics(db);
  // Lists and usage read from the replica when one is configured; writes and their read-backs never do.
  const reads = new ReplicaReads(db, {
    retryMs: config.databaseReadRetryMs,
    onStateChange: (state, err) =>
      state === "down"
        ? http.log.warn({ err }, "read replica unavailable: lists and usage read from the primary until it answers again")
        : http.log.info("read replica answers again: lists and usage read from it"),
    ...(config.databaseReadUrl ? replicaMetrics(metrics.registry, () => reads) : {}),
  });
  const partitions = new Partitions(db);
  const writer = new EventWriter(db, partitions, clock, config.ingest, metrics);
  metrics.setQueueDepth(() => writer.queued);
  metrics.setCodeLockWaiting(() => writer.waitingOnCodeLock);
  const orgs = new OrgService(db, clock);
  // INGEST_MODE=jetstream: validated events go to the replicated stream; `valueverse ingest-worker` commits them.
  const jetstream =
    config.ingest.mode === "jetstream"
      ? createJetstreamIngest(config, clock, metrics.registry, (err) => http.log.warn({ err }, "JetStream not ready yet; retrying"))
      : null;
  const ingest = new IngestService(db, writer, partitions, clock, config, metrics, jetstream?.sink);
  // Written by the ingest workers; listed here (empty in direct mode, where conflicts are 422s).
  const rejectedEvents = new RejectedEventsService(db, clock, null);
  const customers = new CustomerService(db, clock);
  // Two-tier cache (L1 in process, L2 Redis with REDIS_URL): catalog and subscription lookups; writers
  // invalidate after commit, in every process (Redis pub/sub, PostgreSQL LISTEN/NOTIFY).
  const cache = new Cache(config.cache, {
    metrics: createCacheMetrics(metrics.registry),
    log: { warn: (obj, msg) => http.log.warn(obj, msg), info: (obj, msg) => http.log.info(obj, msg) },
  });
  cache.onDrop("clock", (key) => {
    const [orgId, frozenMs] = key.split(":").map(Number);
    testClock.learn(orgId!, frozenMs!);
  });
  const catalog = new CatalogService(db, clock, { cache });
  // Taxes by code on customers, plans and charges: unknown codes are refused where they are set.
  const taxes = new TaxService(db, clock);
  // Plans (alone or in a subscription) render their taxes by code, read through `q` (a webhook's transaction, or the pool).
  const taxesIn =
    (q: Queryable): TaxesResolver =>
    async (orgId, codes) =>
      new Map((await taxes.resolve(orgId, codes, q)).map((t) => [t.code, taxJson(t)]));
  // Add-ons (one-off invoices bill them); their tax codes are checked like a plan's.
  const addOns = new AddOnService(db, clock, { taxes });
  customers.checkTaxCodesWith((tx, orgId, fields) => taxes.checkCodes(tx, orgId, fields));
  catalog.checkTaxCodesWith((tx, orgId, fields) => taxes.checkCodes(tx, orgId, fields));
  const subscriptions = new SubscriptionService(db, clock, catalog, customers, { cache });
  subscriptions.checkTaxCodesWith((tx, orgId, fields) => taxes.checkCodes(tx, orgId, fields));
  customers.onDelete((tx, customer) => subscriptions.endCustomerSubscriptions(tx, customer));
  customers.onCommitted((customer) => subscriptions.customerChanged(customer));
  // A renamed or deleted tax code leaves the plans and customers that listed it: their cached copies go.
  taxes.onRetargeted(async (orgId, changed) => {
    await catalog.plansChanged(orgId, changed.plans);
    for (const c of await customers.findByIds(orgId, changed.customerIds)) await subscriptions.customerChanged(c);
    await subscriptions.overridesRetargeted(orgId, changed.subscriptionExternalIds);
  });
  customers.lockCurrencyWhen((tx, customer) => subscriptions.customerHasLiveSubscriptions(tx, customer));
  // First on a clock move, events of charges paid in advance still queued are billed (advanceBilling,
  // below): a period's carry-over and a plan change's hand-over then include them.
  testClock.onAdvance(async (orgId) => {
    await advanceBilling.billQueuedNow({ orgId });
  });
  // Future starts, ending_at and scheduled downgrades that a clock move makes due, before PUT /test_clock answers.
  testClock.onAdvance((orgId, _from, to) => subscriptions.settleOrganization(orgId, to));
  const metering = new MeteringService(db, clock, customers, subscriptions);
  // A metric's rollups are rebuilt in the transaction that creates, changes or deletes it.
  catalog.onMetricChange(metering.onMetricChange);
  // Rollups keep the pricing group keys of the charges on each metric (after the plan write; a
  // failure only leaves grouped usage on raw events, exact but slower).
  metering.boundRollupGroupKeys(config.rollupGroupMaxRowsPercent / 100);
  const syncGroupKeys = (orgId: number, metricIds: readonly number[]) =>
    metering.syncRollupGroupKeys(orgId, metricIds).catch((err: unknown) => http.log.warn({ err, orgId }, "rollup group keys not synced"));
  catalog.onChargesChange(syncGroupKeys);
  // Subscriptions' plan_overrides may group a charge by other keys.
  subscriptions.onOverridesChange(syncGroupKeys);
  registerUnmatchedGauge(metrics.registry, metering);
  // Current usage shows the taxes its invoice would bear.
  metering.taxUsageWith(async (orgId, customer, plan, charges) =>
    usageTaxes(
      charges.map((c) => ({ amountCents: c.amountCents, chargeTaxCodes: c.charge.taxCodes ?? [] })),
      { plan: plan.taxCodes ?? [], customer: customer.attributes.tax_codes },
      await taxes.byCode(orgId),
    ),
  );
  // Webhooks are written to the outbox in the transaction of the change they report; retries follow the wall clock.
  const webhooks = createWebhooks(db, wallClock, config.webhooks, metrics.registry, (err) => http.log.warn({ err }, "webhook delivery failed"));
  customers.onUpsert((tx, c, created) => webhooks.service.enqueue(tx, c.orgId, created ? "customer.created" : "customer.updated", "customer", customerJson(c)));
  subscriptions.onTransition(async (tx, transition, view) => {
    const s = view.subscription;
    // Lago's subscription webhooks carry the plan and the customer.
    const customer = await customers.findById(s.orgId, s.customerId, tx);
    const object = { ...(await subscriptionWithPlanJson(view, taxesIn(tx))), customer: customer && customerJson(customer) };
    return webhooks.service.enqueue(tx, s.orgId, `subscription.${transition}`, "subscription", object);
  });
  // Deductions on invoices, in Lago's order: coupons, taxes, credit notes, prepaid credits.
  const coupons = new CouponService(db, clock, { customers });
  // Credit notes render their fees through invoicing, which is built below (read lazily).
  const creditNotes = new CreditNoteService(db, clock, {
    customers,
    fees: { feeIn: (q, orgId, lagoId) => invoicing.feeIn(q, orgId, lagoId) },
    // A note on a paid purchase of credits takes them back out of the wallet (built below).
    prepaidCredits: {
      voidCreditedPurchase: (tx, orgId, invoiceId, noteId, cents, now) => wallets.voidCreditedPurchase(tx, orgId, invoiceId, noteId, cents, now),
      creditedPurchase: (q, orgId, invoiceId, cents) => wallets.creditedPurchase(q, orgId, invoiceId, cents),
    },
  });
  // Purchased credits are billed on a credit invoice (invoicing, built below) and count once it is paid.
  const wallets = new WalletService(db, clock, {
    customers,
    webhook: (tx, orgId, type, objectType, object) => webhooks.service.enqueue(tx, orgId, type, objectType, object),
    invoices: {
      issueCreditInvoice: (tx, customer, currency, fee, now) => invoicing.issueCreditInvoice(tx, customer, currency, fee, now),
      voidCreditInvoiceIn: (tx, orgId, lagoId) => invoicing.voidCreditInvoiceIn(tx, orgId, lagoId),
    },
  });
  const adjustments: InvoiceAdjustments = {
    taxes: (q, orgId) => taxes.byCode(orgId, q),
    coupons: (q, orgId, customerId, currency, now) => coupons.terms(q, orgId, customerId, currency, now),
    creditNotes: (q, orgId, customerId, currency) => creditNotes.balances(q, orgId, customerId, currency),
    wallets: (q, orgId, customerId, currency, now) => wallets.drawable(q, orgId, customerId, currency, now),
    consume: async (q, invoice, result, now) => {
      await coupons.recordUse(q, invoice.orgId, result.couponCredits, now);
      await creditNotes.draw(q, invoice.orgId, result.creditNoteCredits, now);
      await wallets.draw(q, invoice.orgId, invoice.id, result.walletDebits, now);
    },
    creditUnusedAdvanceFee: (q, unused) => creditNotes.creditUnusedAdvanceFee(q, unused),
    creditLateEvents: (q, orgId, feeId, amountCents, now) => creditNotes.creditLateEvents(q, orgId, feeId, amountCents, now),
    // A voided invoice gives back what it used (Lago: prepaid credits; here also coupons and credit notes).
    restoreVoided: async (q, invoice, now) => {
      await coupons.restoreFromVoided(q, invoice.orgId, invoice.id, now);
      await creditNotes.restoreFromVoided(q, invoice.orgId, invoice.id, now);
      const webhook: WalletWebhook = (tx, orgId, type, objectType, object) => webhooks.service.enqueue(tx, orgId, type, objectType, object);
      await restoreWalletCredits(q, invoice.orgId, invoice.id, now, { webhook });
      await failVoidedPurchases(q, invoice.orgId, invoice.id, now, { webhook });
    },
    creditVoided: (q, invoice, amounts, now) => creditNotes.creditVoidedInvoice(q, invoice.orgId, invoice.id, amounts, now),
  };
  creditNotes.onCreated(async (tx, note) =>
    webhooks.service.enqueue(tx, note.orgId, "credit_note.created", "credit_note", creditNoteJson(await creditNotes.view(note.orgId, note, tx))),
  );
  // A subscription's final invoice is issued in the transaction that ends it; clock moves and the
  // scheduler bill what falls due (after the subscription transitions settled above).
  const invoicing = new InvoicingService(db, clock, { customers, subscriptions, metering, adjustments }, {
    billingBatchSize: config.billingBatchSize,
    onError: (err, context) => http.log.error({ err, ...context }, "billing failed; retried by the next run"),
  });
  subscriptions.onTransition(invoicing.onSubscriptionTransition);
  // Lago's subscription.usage_threshold_reached: the subscription with its plan and customer, and the threshold.
  invoicing.onUsageThresholdReached(async (tx, view, crossing) => {
    const sub = view.subscription;
    const customer = await customers.findById(sub.orgId, sub.customerId, tx);
    const object = {
      ...(await subscriptionWithPlanJson(view, taxesIn(tx))),
      customer: customer && customerJson(customer),
      usage_threshold: usageThresholdJson(crossing.threshold),
    };
    return webhooks.service.enqueue(tx, sub.orgId, "subscription.usage_threshold_reached", "subscription", object);
  });
  // Rule: lists and usage may lag (read replica); writes, what they answer and single-resource GETs use the primary.
  for (const service of [ingest, customers, subscriptions, metering, invoicing]) service.readFrom(reads);
  // Recurring wallet top-ups due by the organization's clock, run after each billing job (its draws).
  const runWalletRules = async (orgId?: number) => {
    const r = await wallets.runRecurringRules(orgId === undefined ? {} : { orgId });
    for (const err of r.errors) http.log.error({ err }, "wallet top-up rule failed; retried by the next run");
    return r;
  };
  testClock.onAdvance(async (orgId) => {
    await invoicing.runBillingJob({ orgId });
    await runWalletRules(orgId);
  });
  // Charges paid in advance: the ingest statement queues their events; billed after each ingest
  // commit of this process, on a poll (events committed by other processes), and on clock moves.
  const advanceBilling = new AdvanceBilling({
    db,
    clock,
    subscriptions,
    customers,
    invoicing,
    onInvoiceIssued: (tx, d) => webhooks.service.enqueue(tx, d.invoice.orgId, "invoice.created", "invoice", invoiceDetailsJson(d)),
    onFeeCreated: (tx, fee) => webhooks.service.enqueue(tx, fee.orgId, "fee.created", "fee", feeJson(fee)),
    onError: (err, context) => http.log.error({ err, ...context }, "advance charge billing failed; retried by the next run"),
  });
  writer.onCommitted(() => advanceBilling.kick());
  // The billing job (clock moves and the wall-clock scheduler alike) bills the queue before closing periods.
  invoicing.onBeforeBilling((orgId) => advanceBilling.billQueuedNow({ orgId }));
  registerAdvanceQueueGauge(metrics.registry, db);
  testClock.onAdvance(async (orgId) => {
    await advanceBilling.runDue({ orgId });
  });
  // A finalized invoice's payment is written in the finalizing transaction and charged by the
  // payment worker after the commit; dunning follows the organization's clock.
  const payments = createPayments(
    db,
    clock,
    wallClock,
    config.payments,
    { customers, invoicing, enqueueWebhook: webhooks.service.enqueue },
    metrics.registry,
    (err) => http.log.warn({ err }, "payment attempt failed to record; retried when its claim expires"),
    deps.paymentProviders,
  );
  invoicing.onFinalized(payments.service.collect, payments.service.collectMany);
  // Events stored after this (wall clock, as events.created_at) are late for the invoice's periods.
  invoicing.onFinalized(
    (tx, orgId, invoiceId) => recordUsageCutoff(tx, orgId, invoiceId, new Date(wallClock.now())),
    (tx, orgId, invoiceIds) => recordUsageCutoffs(tx, orgId, invoiceIds, new Date(wallClock.now())),
  );
  invoicing.onOneOffIssued((tx, d) => webhooks.service.enqueue(tx, d.invoice.orgId, "invoice.one_off_created", "invoice", invoiceDetailsJson(d)));
  invoicing.onVoided(payments.service.stopCollecting);
  invoicing.onVoidedView((tx, d) => webhooks.service.enqueue(tx, d.invoice.orgId, "invoice.voided", "invoice", invoiceDetailsJson(d)));
  payments.service.onInvoicePaid((tx, paid) => wallets.settlePurchases(tx, paid.orgId, paid.invoiceId));
  // Payments that fell due by the new time have been attempted when PUT /test_clock answers.
  testClock.onAdvance(async (orgId) => {
    await payments.worker.runDue({ orgId });
  });
  // Unpaid invoices past their due date are marked overdue (invoice.payment_overdue) after each
  // billing job, and on clock moves after the payment attempts the move made due (a charge that
  // succeeds by then leaves its invoice alone).
  const runOverdue = async (orgId?: number) => {
    const r = await markOverdueInvoices({ db, clock, customers, enqueueWebhook: webhooks.service.enqueue }, orgId === undefined ? {} : { orgId });
    for (const err of r.errors) http.log.error({ err }, "marking overdue invoices failed; retried by the next run");
    return r;
  };
  testClock.onAdvance(async (orgId) => {
    await runOverdue(orgId);
  });
  // A credit note's refund part is written with the note and paid back through the provider that
  // collected the invoice after the commit (retries follow the organization's clock).
  const refunds = new Refunds(
    db,
    clock,
    wallClock,
    { provider: (code) => payments.service.provider(code), enqueueWebhook: webhooks.service.enqueue },
    {
      retryScheduleMs: config.payments.retryScheduleMs,
      timeoutMs: config.payments.timeoutMs,
      pollMs: config.payments.pollMs,
      onError: (err) => http.log.warn({ err }, "refund attempt failed to record; retried when its claim expires"),
      registry: metrics.registry,
      providerCodes: [...(payments.sandbox === null ? [] : [payments.sandbox.code]), ...(deps.paymentProviders ?? []).map((p) => p.code)],
    },
  );
  creditNotes.onCreated((tx, note) => refunds.schedule(tx, note));
  testClock.onAdvance(async (orgId) => {
    await refunds.runDue({ orgId });
  });
  // Usage alerts read live usage in the background (never on the ingest path), and after the
  // billing job on each clock move, before PUT /test_clock answers.
  const alerts = new AlertService(db, clock, wallClock, { subscriptions, catalog, metering, enqueueWebhook: webhooks.service.enqueue }, {
    pollMs: config.alertsPollMs,
    onError: (err, context) => http.log.error({ err, ...context }, "alert evaluation failed; retried by the next run"),
  });
  catalog.onMetricChange(alerts.onMetricChange);
  testClock.onAdvance(async (orgId) => {
    await alerts.runDue({ orgId });
  });
  const billingScheduler = new BillingScheduler(async () => {
    const summary = await invoicing.runBillingJob();
    await runWalletRules();
    await runOverdue();
    return summary;
  }, {
    now: () => wallClock.now(),
    onError: (err) => http.log.error({ err }, "billing job failed"),
  });
  let ready = false;
  let closing = false;
  // Data lifecycle (RETENTION_DAYS): partitions ahead, expired ones dropped, old ones slimmed; at start, then hourly.
  let lifecycleTimer: ReturnType<typeof setInterval> | null = null;
  let lifecycleRun: Promise<void> = Promise.resolve();
  const lifecycle = () =>
    (lifecycleRun = lifecycleRun.then(async () => {
      try {
        const r = await runLifecycle(db, wallClock, config.retentionDays, partitions);
        // Rejected events (JetStream mode) follow the events' retention, against the same earliest clock.
        const rejected = config.retentionDays > 0 ? await rejectedEvents.expire(new Date((await earliestNow(db, wallClock)) - config.retentionDays * 86_400_000)) : 0;
        if (r.dropped.length > 0 || r.slimmed.length > 0 || rejected > 0) {
          http.log.info({ dropped: r.dropped, identities_deleted: r.identitiesDeleted, slimmed: r.slimmed, rejected_events_deleted: rejected }, "data lifecycle");
        }
      } catch (err) {
        // Stopped while it ran (SIGTERM during start-up closes the database under it): nothing failed.
        if (closing) return;
        http.log.error({ err }, "data lifecycle failed; retried within the hour");
      }
    }));

  const http = Fastify({
    logger: { level: config.logLevel },
    // Per-request access logs would cost more than the ingest path itself; errors are logged.
    logController: new LogController({ disableRequestLogging: true }),
    requestIdHeader: "x-request-id",
    genReqId: () => requestIdPrefix + (++requestCounter).toString(36),
    // request.log's pino child is made only when the request logs (see LazyRequestLogger).
    childLoggerFactory: (logger, bindings, options) => new LazyRequestLogger(logger, bindings, options) as unknown as FastifyBaseLogger,
    bodyLimit: 1 << 20,
    // A transaction_id may hold 255 characters; percent-encoded in GET /events/:transaction_id
    // that is up to 9 URL characters each (the default limit, 100, made long ids unreadable).
    routerOptions: { maxParamLength: 4096 },
    return503OnClosing: true,
  });

  // Hooks in callback style: they run on every ingest request, and a promise per hook costs.
  http.addHook("onRequest", (request, reply, done) => {
    reply.header("x-request-id", request.id);
    // Lago's clients call action routes (void, finalize, retry_payment, terminate...) with
    // `Content-Type: application/json` and no body: that is a request without options, not a
    // malformed body. An empty body sent to the events routes stays a 400 (an event is required).
    const h = request.headers;
    const noBody = h["content-length"] === "0" || (h["content-length"] === undefined && h["transfer-encoding"] === undefined);
    if (noBody && h["content-type"] !== undefined && !request.url.startsWith("/api/v1/events")) {
      delete h["content-type"];
    }
    if (!ready && request.url !== "/health") {
      return done(new AppError("unavailable", "starting", "the server is starting", undefined, { "retry-after": "1" }));
    }
    done();
  });
  // A NUL byte in a path parameter or query value (see url_guard.ts), checked after authentication
  // (the organizations module's onRequest hooks: a caller without a key learns nothing from it), on
  // the routes that read either: those with path parameters, and reads. The ingest POSTs read
  // neither and pay nothing for it.
  const nulGuard = (request: FastifyRequest, _reply: FastifyReply, done: (err?: Error) => void) => {
    if (request.url.includes("%00")) {
      const err = nulInRequest(request.routeOptions.url ?? "", request.params as Record<string, unknown>, request.query as Record<string, unknown>);
      if (err) return done(err);
    }
    done();
  };
  http.addHook("onRoute", (route) => {
    if (!route.url.includes(":") && ![route.method].flat().includes("GET")) return;
    route.preValidation = [nulGuard, ...[route.preValidation ?? []].flat()];
  });
  // While shutting down, answers close their connection (requests in flight included): a keep-alive
  // client would otherwise hold the server open, since http.close() waits for every connection.
  http.addHook("onSend", (_request, reply, payload, done) => {
    if (closing) reply.header("connection", "close");
    done(null, payload);
  });
  http.addHook("onResponse", (request, reply, done) => {
    metrics.httpRequest(request.routeOptions.url ?? "unmatched", request.method, reply.statusCode, reply.elapsedTime / 1000);
    done();
  });
  http.setErrorHandler((err: FastifyError | AppError, request, reply) => {
    if (err instanceof AppError) {
      if (err.headers) reply.headers(err.headers);
      return reply.code(STATUS[err.category].status).send(errorBody(err));
    }
    const status = typeof err.statusCode === "number" ? err.statusCode : 500;
    if (status >= 400 && status < 500) {
      const known = FRAMEWORK_ERRORS[err.code ?? ""];
      const error = status === 413 ? "Payload Too Large" : status === 415 ? "Unsupported Media Type" : status === 400 ? "Bad request" : "Client Error";
      return reply.code(status).send({ status, error, code: known ?? "bad_request", message: err.message });
    }
    request.log.error({ err }, "request failed");
    return reply.code(500).send({ status: 500, error: "Internal Server Error", code: "internal_error", request_id: request.id });
  });
  // The API speaks JSON only: JSON sent as text/plain would otherwise reach the routes as a string
  // and be told its (present) `event` is missing; 415 says what is actually wrong.
  http.removeContentTypeParser("text/plain");
  http.setNotFoundHandler((request, reply) => {
    reply.code(404).send({ status: 404, error: "Not Found", code: "route_not_found", message: `${request.method} ${request.url.split("?")[0]} does not exist` });
  });

  http.get("/health", async (_request, reply) => {
    if (!ready) return reply.code(503).send({ status: "starting" });
    return { status: "ok", database: db.kind };
  });
  http.get("/metrics", async (_request, reply) => {
    reply.header("content-type", metrics.registry.contentType);
    return metrics.aggregate();
  });

  registerApiAuth(http, orgs);
  registerAdminRoutes(http, orgs, config.adminToken);
  registerEventRoutes(http, ingest, config.ingest.batchRequestMax);
  registerRejectedEventRoutes(http, rejectedEvents);
  registerCustomerRoutes(http, customers, async (orgId, codes) => (await taxes.resolve(orgId, codes)).map(taxJson));
  registerCatalogRoutes(http, catalog, taxesIn(db));
  registerTaxRoutes(http, taxes);
  registerCouponRoutes(http, coupons);
  registerCreditNoteRoutes(http, creditNotes);
  registerWalletRoutes(http, wallets);
  registerSubscriptionRoutes(http, subscriptions, taxesIn(db));
  registerMeteringRoutes(http, metering);
  registerTestClockRoutes(http, testClock);
  registerWebhookRoutes(http, webhooks.service);
  registerInvoiceRoutes(http, invoicing);
  registerAdvanceFeeRoutes(http, { db, clock, invoicing, advance: advanceBilling });
  registerAddOnRoutes(http, addOns);
  registerAlertRoutes(http, alerts);
  registerOneOffInvoiceRoute(http, { invoicing, customers, addOns, taxes, db, now: (orgId) => new Date(clock.now(orgId)) });
  registerInvoicePreviewRoute(http, {
    invoicing,
    customers,
    subscriptions,
    catalog,
    coupons,
    now: (orgId) => new Date(clock.now(orgId)),
    newId: () => crypto.randomUUID(),
  });
  registerLifetimeUsageRoute(http, {
    db,
    subscriptions,
    metering: { usage: (orgId, sub, window) => metering.usage(orgId, sub, window) },
    now: (orgId) => new Date(clock.now(orgId)),
  });
  registerPaymentRoutes(http, payments.service, new ManualPayments(db, clock, payments.service));
  // Revenue analytics (gross revenue, MRR, collection, overdue, invoiced usage); lists, so they may read the replica.
  registerAnalyticsRoutes(http, new AnalyticsService(reads, clock));
  // Read-only GraphQL over the same services, keyed and organization-scoped like /api/v1.
  registerGraphqlRoutes(http, buildGraphqlSchema({ customers, subscriptions, metering, invoicing, reads }));

  return {
    http,
    config,
    metrics,
    orgs,
    ingest,
    customers,
    catalog,
    subscriptions,
    metering,
    invoicing,
    advanceBilling,
    webhooks,
    payments,
    refunds,
    wallets,
    alerts,
    testClock,
    cache,
    reads,
    get ready() {
      return ready;
    },
    async start() {
      db.set(deps.db ?? (await openDatabase(config, http.log)));
      const replica = openReadReplica(config);
      if (replica !== null) reads.attach(replica);
      await migrate(db);
      await cache.start({ dbKind: db.kind, databaseUrl: config.databaseUrl, dataDir: deps.db ? undefined : config.dataDir });
      if (config.apiKey) await orgs.ensureOrganizationForKey(config.apiKey);
      await partitions.ensureAround(clock.now());
      await testClock.start();
      await lifecycle();
      lifecycleTimer = setInterval(() => void lifecycle(), 3_600_000);
      lifecycleTimer.unref();
      if (jetstream !== null) await jetstream.start();
      webhooks.start();
      payments.start();
      if (config.payments.worker) refunds.start();
      advanceBilling.start();
      alerts.start();
      if (config.billingScheduler) billingScheduler.start();
      ready = true;
    },
    async close() {
      closing = true;
      testClock.stop();
      if (lifecycleTimer !== null) clearInterval(lifecycleTimer);
      await http.close();
      await jetstream?.close();
      await billingScheduler.stop();
      await advanceBilling.stop();
      await alerts.stop();
      await payments.stop();
      await refunds.stop();
      await webhooks.stop();
      await writer.drain();
      await lifecycleRun;
      await reads.close();
      await cache.close();
      if (db.isSet) await db.close();
    },
  };
}
