import crypto from "node:crypto";
import type { Db, Queryable } from "../../db/db.ts";
import { isDataError, sqlState } from "../../db/db.ts";
import { BackgroundLoop } from "../../shared/background_loop.ts";
import type { Clock } from "../../shared/clock.ts";
import { isLookupCode } from "../../shared/codes.ts";
import type { Decimal } from "../../shared/money.ts";
import { AppError, type FieldErrors, notFound, validationFailed } from "../../shared/errors.ts";
import type { BillableMetric, MetricChange, MetricView } from "../catalog/index.ts";
import { type SubscriptionUsage, type UsageSubscription, type UsageWindow, usageWindowAt } from "../metering/index.ts";
import type { Subscription, SubscriptionStatus, SubscriptionView } from "../subscriptions/index.ts";
import type { EnqueueWebhook } from "../webhooks/index.ts";
import { type Alert, type AlertDraft, checkAlert, draftOfAlert, isMetricAlert, isPeriodAlert } from "./core/alert.ts";
import { type UsageReading, baselineOf, crossedThresholds, watchedValue } from "./core/crossing.ts";
import { triggeredAlertJson } from "./core/json.ts";
import * as store from "./store.ts";

const TAKEN = "value_already_exist";
/** Most alerts one batch create takes. */
const MAX_BATCH = 100;
/** Most subscriptions one background run evaluates (the stalest first); the next run goes on. */
const SUBSCRIPTIONS_PER_RUN = 10_000;

/** What alerts need of the other modules (the composition root wires the real services). */
export interface AlertDeps {
  readonly subscriptions: {
    /** The subscription with this external id and status (404 subscription_not_found otherwise). */
    get(orgId: number, externalId: string, status?: SubscriptionStatus): Promise<SubscriptionView>;
    /** The one active at `at`, or null. */
    getByExternalId(orgId: number, externalId: string, at?: Date): Promise<Subscription | null>;
  };
  readonly catalog: {
    getMetricByCode(orgId: number, code: string): Promise<BillableMetric | null>;
    getMetric(orgId: number, code: string): Promise<MetricView>;
  };
  readonly metering: {
    usage(orgId: number, sub: UsageSubscription, window: UsageWindow): Promise<SubscriptionUsage>;
  };
  readonly enqueueWebhook: EnqueueWebhook;
}

export interface AlertServiceOptions {
  /** ALERTS_POLL_MS: how often the background loop evaluates the subscriptions with alerts. */
  readonly pollMs: number;
  readonly newId?: () => string;
  readonly onError?: (err: unknown, context: Record<string, unknown>) => void;
}

/** An alert with what its JSON shows beside it. */
export interface AlertView {
  readonly alert: Alert;
  readonly organizationId: string;
  readonly externalCustomerId: string;
  /** The watched metric (billable_metric_* types; null once deleted). */
  readonly metric: MetricView | null;
}

export interface AlertRun {
  /** Subscriptions evaluated. */
  subscriptions: number;
  /** Alerts that triggered (one alert.triggered each). */
  triggered: number;
  failed: number;
}

/**
 * Usage alerts of subscriptions (Lago's /subscriptions/:external_id/alerts) and their evaluation:
 * a background loop (every ALERTS_POLL_MS, stalest subscriptions first) and each test clock move
 * read the subscriptions' live usage and, in one transaction per subscription with its alerts
 * locked, record the value read and every threshold crossing with its alert.triggered webhook.
 * Never on the ingest path: a crossing is seen by the next evaluation.
 */
export class AlertService {
  private readonly loop: BackgroundLoop<AlertRun>;
  private readonly newId: () => string;

  constructor(
    private readonly db: Db,
    /** The organization's clock (test clocks): usage periods, last_processed_at, triggered_at. */
    private readonly clock: Clock,
    /** The wall clock: which evaluation read last, and when a subscription is due again. */
    private readonly wallClock: Clock,
    private readonly deps: AlertDeps,
    private readonly options: AlertServiceOptions,
  ) {
    this.newId = options.newId ?? (() => crypto.randomUUID());
    this.loop = new BackgroundLoop(() => this.runOnce(undefined), {
      pollMs: options.pollMs,
      coalesce: true,
      onError: (err) => options.onError?.(err, {}),
    });
  }

  start(): void {
    this.loop.start();
  }

  stop(): Promise<void> {
    return this.loop.stop();
  }

  /** Evaluates every subscription with alerts (of one organization, or all) now, whenever last evaluated. */
  runDue(opts: { orgId?: number } = {}): Promise<AlertRun> {
    return this.loop.serial(() => this.runOnce(opts.orgId));
  }

  private now(orgId: number): Date {
    return new Date(this.clock.now(orgId));
  }

  // ---------------------------------------------------------------------------------------------
  // API

  /** POST: `{"alert": {...}}` creates one, `{"alerts": [...]}` several at once (all or none). */
  async create(orgId: number, externalId: string, status: SubscriptionStatus | undefined, body: unknown): Promise<{ one: boolean; views: AlertView[] }> {
    const view = await this.deps.subscriptions.get(orgId, externalId, status);
    const { one, items } = createItems(body);
    const errors: FieldErrors = {};
    const drafts: { draft: AlertDraft; metric: BillableMetric | null; prefix: string }[] = [];
    // Every code sent is checked for uniqueness, also on items broken otherwise: all errors at once.
    const codes: { code: string; prefix: string }[] = [];
    for (const [i, raw] of items.entries()) {
      const prefix = one ? "" : `alerts[${i}].`;
      const code = (raw as Record<string, unknown>)["code"];
      if (typeof code === "string" && isLookupCode(code)) codes.push({ code, prefix });
      const checked = checkAlert(raw, null, prefix);
      if (!checked.ok) {
        Object.assign(errors, checked.errors);
        continue;
      }
      const metric = await this.metricOf(orgId, checked.value.billableMetricCode, prefix, errors);
      drafts.push({ draft: checked.value, metric, prefix });
    }
    // Within one batch, codes and kinds must differ as they must from the live alerts.
    const seenCodes = new Set<string>();
    for (const c of codes) {
      if (seenCodes.has(c.code)) addError(errors, `${c.prefix}code`, TAKEN);
      seenCodes.add(c.code);
    }
    const kinds = new Set<string>();
    for (const d of drafts) {
      const kind = `${d.draft.alertType}:${d.metric?.id ?? 0}`;
      if (kinds.has(kind)) addError(errors, `${d.prefix}alert_type`, TAKEN);
      kinds.add(kind);
    }
    const created = await this.guard(() =>
      this.db.transaction(async (tx) => {
        for (const c of codes) {
          if ((await store.alertByCode(tx, orgId, externalId, c.code)) !== null) addError(errors, `${c.prefix}code`, TAKEN);
        }
        for (const d of drafts) {
          if ((await store.alertOfKind(tx, orgId, externalId, d.draft.alertType, d.metric?.id ?? null)) !== null) {
            addError(errors, `${d.prefix}alert_type`, TAKEN);
          }
        }
        if (Object.keys(errors).length > 0) throw validationFailed(errors, "the alert is invalid");
        const now = this.now(orgId);
        const out: Alert[] = [];
        for (const d of drafts) out.push(await store.insertAlert(tx, orgId, this.newId(), externalId, writeOf(d.draft, d.metric), now));
        return out;
      }),
    );
    return { one, views: await this.views(orgId, view, created) };
  }

  async list(orgId: number, externalId: string, status: SubscriptionStatus | undefined, page: number, perPage: number): Promise<{ views: AlertView[]; total: number }> {
    const view = await this.deps.subscriptions.get(orgId, externalId, status);
    const { alerts, total } = await store.listAlerts(this.db, orgId, externalId, perPage, (page - 1) * perPage);
    return { views: await this.views(orgId, view, alerts), total };
  }

  async get(orgId: number, externalId: string, status: SubscriptionStatus | undefined, code: string): Promise<AlertView> {
    const view = await this.deps.subscriptions.get(orgId, externalId, status);
    const alert = isLookupCode(code) ? await store.alertByCode(this.db, orgId, externalId, code) : null;
    if (alert === null) throw notFound("alert", code);
    return (await this.views(orgId, view, [alert]))[0]!;
  }

  /** PUT: name, code, thresholds (replaced whole) and, for the metric types, billable_metric_code. */
  async update(orgId: number, externalId: string, status: SubscriptionStatus | undefined, code: string, body: unknown): Promise<AlertView> {
    const view = await this.deps.subscriptions.get(orgId, externalId, status);
    const current = isLookupCode(code) ? await store.alertByCode(this.db, orgId, externalId, code) : null;
    if (current === null) throw notFound("alert", code);
    const checked = checkAlert(alertBody(body), draftOfAlert(current));
    const errors: FieldErrors = checked.ok ? {} : { ...checked.errors };
    let metricId = current.billableMetricId;
    if (checked.ok && checked.value.billableMetricCode !== undefined) {
      metricId = (await this.metricOf(orgId, checked.value.billableMetricCode, "", errors))?.id ?? metricId;
    }
    const updated = await this.guard(() =>
      this.db.transaction(async (tx) => {
        const locked = await store.alertByCode(tx, orgId, externalId, code, true);
        if (locked === null || locked.id !== current.id) throw notFound("alert", code);
        if (checked.ok) {
          const d = checked.value;
          if (d.code !== locked.code && (await store.alertByCode(tx, orgId, externalId, d.code)) !== null) addError(errors, "code", TAKEN);
          if (metricId !== locked.billableMetricId) {
            const other = await store.alertOfKind(tx, orgId, externalId, locked.alertType, metricId);
            if (other !== null && other.id !== locked.id) addError(errors, "billable_metric_code", TAKEN);
          }
        }
        if (!checked.ok || Object.keys(errors).length > 0) throw validationFailed(errors, "the alert is invalid");
        const d = checked.value;
        const write = { alertType: locked.alertType, billableMetricId: metricId, code: d.code, name: d.name, thresholds: d.thresholds };
        return store.updateAlert(tx, orgId, locked.id, write, metricId !== locked.billableMetricId, this.now(orgId));
      }),
    );
    return (await this.views(orgId, view, [updated]))[0]!;
  }

  async delete(orgId: number, externalId: string, status: SubscriptionStatus | undefined, code: string): Promise<AlertView> {
    const view = await this.deps.subscriptions.get(orgId, externalId, status);
    const alert = await this.db.transaction(async (tx) => {
      const found = isLookupCode(code) ? await store.alertByCode(tx, orgId, externalId, code, true) : null;
      if (found === null) throw notFound("alert", code);
      await store.deleteAlerts(tx, orgId, [found.id], this.now(orgId));
      return found;
    });
    return (await this.views(orgId, view, [alert]))[0]!;
  }

  /** DELETE /subscriptions/:external_id/alerts: every live alert of the subscription. */
  async deleteAll(orgId: number, externalId: string, status: SubscriptionStatus | undefined): Promise<void> {
    await this.deps.subscriptions.get(orgId, externalId, status);
    await this.db.transaction(async (tx) => {
      const { alerts } = await store.listAlerts(tx, orgId, externalId, 1_000_000, 0, true);
      await store.deleteAlerts(
        tx,
        orgId,
        alerts.map((a) => a.id),
        this.now(orgId),
      );
    });
  }

  /** For CatalogService.onMetricChange: a deleted metric's alerts go with it, in its transaction. */
  readonly onMetricChange = async (tx: Queryable, change: MetricChange): Promise<void> => {
    const before = change.before;
    if (before === null || change.after !== null) return;
    await store.deleteAlertsOfMetric(tx, before.orgId, before.id, this.now(before.orgId));
  };

  private async metricOf(orgId: number, code: string | null | undefined, prefix: string, errors: FieldErrors): Promise<BillableMetric | null> {
    if (code === null || code === undefined) return null;
    const metric = await this.deps.catalog.getMetricByCode(orgId, code);
    if (metric === null) addError(errors, `${prefix}billable_metric_code`, "billable_metric_not_found");
    return metric;
  }

  private async views(orgId: number, view: SubscriptionView, alerts: readonly Alert[]): Promise<AlertView[]> {
    if (alerts.length === 0) return [];
    const organizationId = await store.organizationPublicId(this.db, orgId);
    const metricIds = [...new Set(alerts.flatMap((a) => (a.billableMetricId === null ? [] : [a.billableMetricId])))];
    const codes = await store.metricCodes(this.db, orgId, metricIds);
    const metrics = new Map<number, MetricView | null>();
    for (const id of metricIds) {
      const c = codes.get(id);
      metrics.set(id, c === undefined || c.deleted ? null : await this.deps.catalog.getMetric(orgId, c.code).catch(notFoundAsNull));
    }
    return alerts.map((alert) => ({
      alert,
      organizationId,
      externalCustomerId: view.subscription.customerExternalId,
      metric: alert.billableMetricId === null ? null : (metrics.get(alert.billableMetricId) ?? null),
    }));
  }

  private async guard<T>(work: () => Promise<T>): Promise<T> {
    try {
      return await work();
    } catch (err) {
      if (sqlState(err) === "23505") {
        // Two creates at once: the unique index says which rule the loser broke.
        const constraint = String((err as { constraint?: unknown }).constraint ?? "");
        throw validationFailed({ [constraint.includes("kind") ? "alert_type" : "code"]: [TAKEN] }, "the alert is invalid");
      }
      if (isDataError(err)) throw validationFailed({ alert: ["value_is_invalid"] }, "the alert is invalid");
      throw err;
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Evaluation

  /**
   * One run: with `onlyOrg` (a clock move), every subscription of the organization with alerts;
   * otherwise those not evaluated for half a poll interval, by any process, stalest first.
   */
  private async runOnce(onlyOrg: number | undefined): Promise<AlertRun> {
    const run: AlertRun = { subscriptions: 0, triggered: 0, failed: 0 };
    const staleBefore = onlyOrg === undefined ? new Date(this.wallClock.now() - this.options.pollMs / 2) : null;
    const todo = await store.subscriptionsWithAlerts(this.db, onlyOrg, staleBefore, SUBSCRIPTIONS_PER_RUN);
    let next = 0;
    const lane = async () => {
      while (next < todo.length && !this.loop.signal.aborted) {
        const s = todo[next++]!;
        try {
          run.triggered += await this.evaluate(s.orgId, s.externalSubscriptionId);
          run.subscriptions++;
        } catch (err) {
          run.failed++;
          this.options.onError?.(err, { orgId: s.orgId, externalSubscriptionId: s.externalSubscriptionId });
        }
      }
    };
    // Usage reads are the cost: two subscriptions at once on PostgreSQL, one on the embedded database.
    const lanes = this.db.kind === "postgres" ? 2 : 1;
    await Promise.all(Array.from({ length: Math.min(lanes, todo.length) }, lane));
    return run;
  }

  /**
   * Reads the subscription's usage (outside any transaction), then applies it to its alerts under
   * their row locks: a value read before the one already applied (another process, slower) is
   * dropped, so a crossing is never reported twice. Answers how many alerts triggered.
   */
  private async evaluate(orgId: number, externalId: string): Promise<number> {
    const readAt = new Date(this.wallClock.now());
    const now = this.now(orgId);
    const sub = await this.deps.subscriptions.getByExternalId(orgId, externalId, now);
    const window = sub === null ? null : usageWindowAt(sub, sub.plan, now);
    if (sub === null || window === null) {
      // Not active (pending, terminated): nothing to watch until it is.
      await store.markRead(this.db, orgId, externalId, readAt);
      return 0;
    }
    const usage = await this.deps.metering.usage(orgId, sub, window);
    const { alerts: live } = await store.listAlerts(this.db, orgId, externalId, 1_000_000, 0);
    // Earlier periods' invoices are read only for the lifetime alerts there are.
    const lifetime = live.some((a) => a.alertType === "lifetime_usage_amount");
    const unitMetrics = live.flatMap((a) => (a.alertType === "billable_metric_lifetime_usage_units" && a.billableMetricId !== null ? [a.billableMetricId] : []));
    const reading: UsageReading = {
      amountCents: usage.amountCents,
      charges: usage.charges,
      invoicedUsageCents: lifetime ? await store.invoicedUsageCents(this.db, orgId, externalId, window.from) : 0n,
      invoicedUnits: await store.invoicedUnits(this.db, orgId, externalId, unitMetrics, window.from),
    };
    const closing = await this.closingReading(orgId, externalId, window, live);
    const readAlerts = new Map(live.map((a) => [a.id, a]));
    const organizationId = await store.organizationPublicId(this.db, orgId);
    const metricCodes = await store.metricCodes(this.db, orgId, live.flatMap((a) => (a.billableMetricId === null ? [] : [a.billableMetricId])));
    return this.db.transaction(async (tx) => {
      let triggered = 0;
      for (const alert of await store.lockAlertsOf(tx, orgId, externalId)) {
        if (alert.readAt !== null && alert.readAt.getTime() > readAt.getTime()) continue;
        // Created (or moved to another metric) after the reading began: the next evaluation takes it.
        const read = readAlerts.get(alert.id);
        if (read === undefined || read.billableMetricId !== alert.billableMetricId) continue;
        const trigger = async (on: Subscription, previous: Decimal, value: Decimal) => {
          const crossed = crossedThresholds(alert.thresholds, previous, value);
          if (crossed.length === 0) return;
          const lagoId = this.newId();
          await store.insertTriggeredAlert(tx, orgId, {
            lagoId,
            alertId: alert.id,
            subscriptionId: on.id,
            currentValue: value,
            previousValue: previous,
            crossed,
            triggeredAt: now,
          });
          const object = triggeredAlertJson({
            lagoId,
            organizationId,
            alert,
            billableMetricCode: alert.billableMetricId === null ? null : (metricCodes.get(alert.billableMetricId)?.code ?? null),
            subscription: on,
            currentValue: value,
            previousValue: previous,
            crossed,
            triggeredAt: now,
          });
          await this.deps.enqueueWebhook(tx, orgId, "alert.triggered", "triggered_alert", object);
          triggered++;
        };
        // A period that ended since the last evaluation: what it reached after that is checked first.
        if (closing !== null && isPeriodAlert(alert.alertType) && alert.previousPeriodFrom?.getTime() === closing.from.getTime()) {
          await trigger(closing.sub, alert.previousValue, watchedValue(alert.alertType, alert.billableMetricId, closing.reading));
        }
        const value = watchedValue(alert.alertType, alert.billableMetricId, reading);
        await trigger(sub, baselineOf(alert.alertType, alert.previousValue, alert.previousPeriodFrom, window.from), value);
        await store.recordEvaluation(tx, orgId, alert.id, value, isPeriodAlert(alert.alertType) ? window.from : null, now, readAt);
      }
      return triggered;
    });
  }

  /**
   * The final usage of the period before `window`, when a current-usage alert was last evaluated
   * in it (the period ended, or the plan changed, since): a crossing in its last moments is still
   * reported once. Null when no alert needs it.
   */
  private async closingReading(
    orgId: number,
    externalId: string,
    window: UsageWindow,
    live: readonly Alert[],
  ): Promise<{ sub: Subscription; from: Date; reading: UsageReading } | null> {
    const earlier = live.some(
      (a) => isPeriodAlert(a.alertType) && a.previousPeriodFrom !== null && a.previousPeriodFrom.getTime() < window.from.getTime(),
    );
    if (!earlier) return null;
    const at = new Date(window.from.getTime() - 1);
    const sub = await this.deps.subscriptions.getByExternalId(orgId, externalId, at);
    const closed = sub === null ? null : usageWindowAt(sub, sub.plan, at);
    if (sub === null || closed === null) return null;
    const usage = await this.deps.metering.usage(orgId, sub, closed);
    return { sub, from: closed.from, reading: { amountCents: usage.amountCents, charges: usage.charges, invoicedUsageCents: 0n, invoicedUnits: new Map() } };
  }
}

function addError(errors: FieldErrors, field: string, code: string): void {
  const list = (errors[field] ??= []);
  if (!list.includes(code)) list.push(code);
}

function notFoundAsNull(err: unknown): null {
  if (err instanceof AppError && err.category === "not_found") return null;
  throw err;
}

const writeOf = (d: AlertDraft, metric: BillableMetric | null): store.AlertWrite => ({
  alertType: d.alertType,
  billableMetricId: isMetricAlert(d.alertType) ? (metric?.id ?? null) : null,
  code: d.code,
  name: d.name,
  thresholds: d.thresholds,
});

const isObject = (x: unknown): x is Record<string, unknown> => typeof x === "object" && x !== null && !Array.isArray(x);

function missingBody(): AppError {
  return new AppError("bad_request", "missing_parameter", 'the request body must be {"alert": {...}} or {"alerts": [...]}', {
    alert: ["value_is_mandatory"],
  });
}

/** `{"alert": {...}}` (one) or `{"alerts": [...]}` (a batch, created atomically). */
function createItems(body: unknown): { one: boolean; items: unknown[] } {
  if (!isObject(body)) throw missingBody();
  const one = body["alert"];
  const many = body["alerts"];
  if (one !== undefined && one !== null) {
    if (!isObject(one)) throw validationFailed({ alert: ["value_is_invalid"] });
    return { one: true, items: [one] };
  }
  if (many === undefined || many === null) throw missingBody();
  if (!Array.isArray(many)) throw validationFailed({ alerts: ["value_is_invalid"] });
  if (many.length === 0) throw validationFailed({ alerts: ["value_is_mandatory"] });
  if (many.length > MAX_BATCH) throw validationFailed({ alerts: ["too_many_alerts"] });
  const errors: FieldErrors = {};
  many.forEach((a, i) => {
    if (!isObject(a)) errors[`alerts[${i}]`] = ["value_is_invalid"];
  });
  if (Object.keys(errors).length > 0) throw validationFailed(errors);
  return { one: false, items: many };
}

function alertBody(body: unknown): unknown {
  const value = isObject(body) ? body["alert"] : undefined;
  if (value === undefined || value === null) {
    throw new AppError("bad_request", "missing_parameter", 'the request body must be {"alert": {...}}', { alert: ["value_is_mandatory"] });
  }
  if (!isObject(value)) throw validationFailed({ alert: ["value_is_invalid"] });
  return value;
}
