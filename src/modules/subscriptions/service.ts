import crypto from "node:crypto";
import type { Db, Queryable } from "../../db/db.ts";
import { sqlState } from "../../db/db.ts";
import type { Clock } from "../../shared/clock.ts";
import { AppError, type FieldErrors, notFound, validationFailed } from "../../shared/errors.ts";
import { Cache } from "../cache/index.ts";
import type { CatalogService, Plan } from "../catalog/index.ts";
import type { TaxCodeCheck } from "../catalog/index.ts";
import { type Customer, type CustomerService, applicableTimezone } from "../customers/index.ts";
import {
  type PeriodBounds,
  type PlanOverrides,
  type PlanOverridesPatch,
  type StoredSubscription,
  type SubscriptionListQuery,
  type SubscriptionStatus,
  currentBillingPeriod,
  downgradeAt,
  downgradePlanDate,
  effectivePlan,
  initialStatus,
  isExternalId,
  mergeOverrides,
  planChange,
  readCreateInput,
  readPlanOverrides,
  readUpdateInput,
  scheduleOf,
  settle,
  trialEndedAt,
} from "./core/index.ts";
import * as store from "./store.ts";

/** A subscription with the plan it is billed on (its plan with `plan_overrides` applied). */
export interface Subscription extends StoredSubscription {
  readonly plan: Plan;
}

/** A subscription as the API shows it: with its linked plans, current period and trial, as of now. */
export interface SubscriptionView {
  readonly subscription: Subscription;
  readonly previousPlanCode: string | null;
  readonly nextPlanCode: string | null;
  /** "YYYY-MM-DD" in the customer's calendar, while a downgrade is scheduled. */
  readonly downgradePlanDate: string | null;
  readonly currentPeriod: PeriodBounds | null;
  readonly trialEndedAt: Date | null;
}

export interface SubscriptionServiceOptions {
  newId?: () => string;
  /**
   * The shared two-tier cache (app.ts) holding each external_id's subscription rows; every write
   * invalidates the external_id after it commits, in every process. By default an in-process one.
   */
  cache?: Cache;
}

/**
 * Runs inside the transaction in which a subscription started (created active, an upgrade, a future
 * start or a downgrade falling due) or was terminated (DELETE, an upgrade, `ending_at`, a downgrade,
 * its customer's deletion): another module's share of the change (webhooks, ...).
 */
/** Runs after a write of `plan_overrides` committed, before the API answers: the metrics of the plan's charges. */
export type OverridesChangeListener = (orgId: number, metricIds: readonly number[]) => Promise<void>;
export type SubscriptionTransitionListener = (tx: Queryable, transition: "started" | "terminated", subscription: SubscriptionView) => Promise<unknown>;

const TAKEN = "value_already_exist";
const MESSAGE = "the subscription is invalid";
const isLive = (s: { status: SubscriptionStatus }) => s.status === "active" || s.status === "pending";
/** The subscription a create with its external_id changes: the active one, or one that has not started yet. */
const isEditable = (s: StoredSubscription) => s.status === "active" || (s.status === "pending" && s.previousId === null);

async function guarded<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (err) {
    // The unique indexes on live external_ids refusing a concurrent twin: the same 422 as the pre-check.
    if (sqlState(err) === "23505") throw validationFailed({ external_id: [TAKEN] }, MESSAGE);
    throw err;
  }
}

function fail(errors: FieldErrors): never {
  throw validationFailed(errors, MESSAGE);
}

/**
 * Subscriptions of an organization's customers to plans (Lago's /subscriptions): create, plan
 * changes through create-with-the-same-external_id (upgrade now, downgrade at period end), update,
 * terminate, and the lookups metering uses. Transitions that time makes due (a future start, an
 * `ending_at`, a scheduled downgrade) are applied when a test clock moves (`settleOrganization`)
 * and lazily by every read, so they hold without a scheduler.
 */
export class SubscriptionService {
  private readonly newId: () => string;
  private readonly cache: Cache;
  /** The Subscription (effective plan applied) built for a cached row, while its plan object is current. */
  private readonly withPlans = new WeakMap<StoredSubscription, Subscription>();
  private readonly transitionListeners: SubscriptionTransitionListener[] = [];
  private readonly overridesListeners: OverridesChangeListener[] = [];
  private taxCodeCheck: TaxCodeCheck | null = null;
  /** Where GET /subscriptions reads: a read replica when configured (may lag), else the primary. */
  private reads: Queryable | null = null;

  constructor(
    private readonly db: Db,
    private readonly clock: Clock,
    private readonly catalog: CatalogService,
    private readonly customers: CustomerService,
    options: SubscriptionServiceOptions = {},
  ) {
    this.newId = options.newId ?? (() => crypto.randomUUID());
    this.cache = options.cache ?? new Cache();
  }

  private now(orgId: number): Date {
    return new Date(this.clock.now(orgId));
  }

  // ---------------------------------------------------------------------------------------------
  // Lookups for other modules

  /**
   * The subscription with this external_id that is active at `at` (default: now) — started at or
   * before it and not terminated by then — with its effective plan; null when none is. Events are
   * attached to subscriptions this way (an upgraded subscription's late events still find the plan
   * they were used under). As known now: a downgrade scheduled after now is not foreseen.
   */
  async getByExternalId(orgId: number, externalId: string, at?: Date): Promise<Subscription | null> {
    if (!isExternalId(externalId)) return null;
    const now = this.now(orgId);
    const rows = await this.settledGroup(orgId, externalId, now);
    const t = (at ?? now).getTime();
    let found: StoredSubscription | null = null;
    for (const r of rows) {
      if (r.startedAt === null || r.startedAt.getTime() > t) continue;
      if (r.terminatedAt !== null && r.terminatedAt.getTime() <= t) continue;
      if (found === null || r.startedAt.getTime() > found.startedAt!.getTime()) found = r;
    }
    return found === null ? null : this.withPlan(found);
  }

  /** A subscription by internal id (invoices point at it), whatever its status. */
  async getById(orgId: number, subscriptionId: number): Promise<Subscription | null> {
    const row = await store.byId(this.db, orgId, subscriptionId);
    return row === null ? null : this.withPlan(row);
  }

  /** Subscriptions by internal id (the billing job's batches), in id order; ids not found are left out. */
  async getByIds(orgId: number, subscriptionIds: readonly number[]): Promise<Subscription[]> {
    const rows = await store.byIds(this.db, orgId, subscriptionIds);
    const out: Subscription[] = [];
    for (const row of rows) out.push(await this.withPlan(row));
    return out;
  }

  /** A subscription by internal id as the API shows it (an invoice lists the subscriptions it bills). */
  async getViewById(orgId: number, subscriptionId: number): Promise<SubscriptionView | null> {
    const row = await store.byId(this.db, orgId, subscriptionId);
    return row === null ? null : this.view(row, this.now(orgId));
  }

  // ---------------------------------------------------------------------------------------------
  // API

  /**
   * POST /subscriptions. A new external_id subscribes the customer (created on the fly when it
   * does not exist, as Lago does); the external_id of the customer's active (or not yet started)
   * subscription changes its plan: same plan, nothing; upgrade, now; downgrade, at period end.
   */
  async create(orgId: number, raw: unknown): Promise<SubscriptionView> {
    const now = this.now(orgId);
    const { value: d, errors } = readCreateInput(raw, now);
    const plan = d.planCode === "" ? null : await this.catalog.getPlanByCode(orgId, d.planCode);
    if (d.planCode !== "" && plan === null) errors["plan_code"] = ["plan_not_found"];
    const patch = plan !== null && d.planOverrides !== undefined ? this.readOverrides(d.planOverrides, plan, errors) : undefined;
    if (Object.keys(errors).length > 0) {
      // Lago answers an unknown plan alone with a 404; with other broken fields it is one of them.
      if (Object.keys(errors).length === 1 && errors["plan_code"]?.[0] === "plan_not_found") throw notFound("plan", d.planCode);
      fail(errors);
    }
    const overrides = patch === undefined ? null : mergeOverrides(null, patch, { newId: this.newId, now });
    const requested = effectivePlan(plan!, overrides);

    const customer =
      (await this.customers.findByExternalId(orgId, d.externalCustomerId)) ??
      (await this.customers.upsert(orgId, { external_id: d.externalCustomerId })).customer;

    const subscriptionId = await guarded(() =>
      this.db.transaction(async (tx) => {
        const fresh = await this.lockCustomer(tx, customer, d.externalCustomerId);
        await store.lockGroup(tx, orgId, d.externalId);
        const rows = await this.settleLocked(tx, orgId, d.externalId, now);
        const current = rows.find((r) => isEditable(r) && r.customerId === fresh.id);
        // Another customer's live subscription holds this external_id (unique per organization).
        if (current === undefined && rows.some(isLive)) fail({ external_id: [TAKEN] });
        await this.customers.ensureCurrency(tx, fresh, requested.amountCurrency);
        if (patch !== undefined) await this.checkOverrideTaxCodes(tx, orgId, patch);

        if (current === undefined) {
          const status = initialStatus(d.subscriptionAt, now, applicableTimezone(fresh));
          const id = await store.insert(tx, {
            orgId,
            lagoId: this.newId(),
            externalId: d.externalId,
            customerId: fresh.id,
            planId: plan!.id,
            name: d.name ?? null,
            status,
            billingTime: d.billingTime,
            subscriptionAt: d.subscriptionAt,
            startedAt: status === "active" ? d.subscriptionAt : null,
            endingAt: d.endingAt ?? null,
            previousId: null,
            downgradeAt: null,
            overrides,
            now,
          });
          if (status === "active") await this.announce(tx, orgId, [[id, "started"]], now);
          return id;
        }

        const currentPlan = await this.effectivePlanOf(current);
        const change = planChange(
          { planId: current.planId, overridden: current.overrides !== null, plan: currentPlan },
          { planId: plan!.id, overridden: overrides !== null, plan: requested },
        );
        if (change === "unchanged") return current.id;
        const name = d.name !== undefined ? d.name : current.name;
        const endingAt = d.endingAt !== undefined ? d.endingAt : current.endingAt;
        if (current.status === "pending") {
          // Not started yet: Lago changes its plan in place, upgrade or downgrade alike.
          await store.saveChanges(tx, orgId, current.id, { name, endingAt, subscriptionAt: current.subscriptionAt, planId: plan!.id, overrides }, now);
          return current.id;
        }
        // A downgrade already scheduled gives way to this change.
        const scheduled = rows.find((r) => r.status === "pending" && r.previousId === current.id);
        if (scheduled !== undefined) await store.saveState(tx, orgId, { ...scheduled, status: "canceled", canceledAt: now }, now);
        const successor = {
          orgId,
          lagoId: this.newId(),
          externalId: current.externalId,
          customerId: current.customerId,
          planId: plan!.id,
          name,
          billingTime: current.billingTime,
          // The anniversary stays the first subscription's (Lago copies subscription_at).
          subscriptionAt: current.subscriptionAt,
          endingAt,
          previousId: current.id,
          overrides,
          now,
        };
        if (change === "upgrade") {
          await store.saveState(tx, orgId, { ...current, status: "terminated", terminatedAt: now }, now);
          const id = await store.insert(tx, { ...successor, status: "active", startedAt: now, downgradeAt: null });
          await this.announce(tx, orgId, [[current.id, "terminated"], [id, "started"]], now);
          return id;
        }
        const at = downgradeAt(scheduleOf(current, currentPlan.interval, current.timezone), now);
        await store.insert(tx, { ...successor, status: "pending", startedAt: null, downgradeAt: at });
        // Lago answers a downgrade with the current subscription, showing next_plan_code and downgrade_plan_date.
        return current.id;
      }),
    );
    await this.invalidate(orgId, [d.externalId]);
    if (patch !== undefined) await this.overridesChanged(orgId, plan!);
    return this.viewById(orgId, subscriptionId, now);
  }

  /** GET /subscriptions/:external_id: the `status` one (default active); for ended ones, the latest. */
  /** When the latest subscription with this external id was terminated (null: never, or not found). */
  async terminatedAt(orgId: number, externalId: string): Promise<Date | null> {
    try {
      return (await this.get(orgId, externalId, "terminated")).subscription.terminatedAt;
    } catch (err) {
      if (err instanceof AppError && err.category === "not_found") return null;
      throw err;
    }
  }

  async get(orgId: number, externalId: string, status: SubscriptionStatus = "active"): Promise<SubscriptionView> {
    const now = this.now(orgId);
    const rows = isExternalId(externalId) ? await this.settledGroup(orgId, externalId, now) : [];
    const found = latestWithStatus(rows, status);
    if (found === undefined) throw notFound("subscription", externalId);
    return this.view(found, now);
  }

  /** GET /subscriptions (and /customers/:id/subscriptions with `customerId`). */
  async list(orgId: number, query: SubscriptionListQuery, customerExternalId?: string): Promise<{ items: SubscriptionView[]; total: number }> {
    const now = this.now(orgId);
    let customerId: number | undefined;
    if (customerExternalId !== undefined) customerId = (await this.customers.getByExternalId(orgId, customerExternalId)).id;
    // A transition settled here is this request's own write: the (possibly lagging) replica may not have it yet.
    const settled = await this.settleDue(orgId, now);
    const { items, total } = await store.list(settled > 0 ? this.db : (this.reads ?? this.db), orgId, query, customerId);
    return { items: await Promise.all(items.map((s) => this.view(s, now))), total };
  }

  /**
   * PUT /subscriptions/:external_id: name, ending_at, plan_overrides; subscription_at only while it
   * has not started (Lago ignores it otherwise). `status: "pending"` picks the pending one; without
   * it the active one, or the only one there is when it has not started yet.
   */
  async update(orgId: number, externalId: string, raw: unknown, status?: "active" | "pending"): Promise<SubscriptionView> {
    const now = this.now(orgId);
    const rows = isExternalId(externalId) ? await this.settledGroup(orgId, externalId, now) : [];
    const target = pickForUpdate(rows, status);
    if (target === undefined) throw notFound("subscription", externalId);
    const { value: d, errors } = readUpdateInput(raw, now, target.subscriptionAt, target.status === "pending" && target.previousId === null);
    const patch = d.planOverrides !== undefined ? this.readOverrides(d.planOverrides, await this.basePlanOf(target), errors, target.overrides) : undefined;
    if (Object.keys(errors).length > 0) fail(errors);

    await this.db.transaction(async (tx) => {
      const customer = await this.customers.findById(orgId, target.customerId, tx);
      if (customer === null || !(await store.lockLiveCustomer(tx, orgId, customer.id))) throw notFound("subscription", externalId);
      await store.lockGroup(tx, orgId, externalId);
      const locked = (await this.settleLocked(tx, orgId, externalId, now)).find((r) => r.id === target.id);
      if (locked === undefined || !isLive(locked)) throw notFound("subscription", externalId);
      const overrides = patch === undefined ? locked.overrides : mergeOverrides(locked.overrides, patch, { newId: this.newId, now });
      if (patch !== undefined) {
        await this.checkOverrideTaxCodes(tx, orgId, patch);
        const plan = effectivePlan(await this.basePlanOf(locked), overrides);
        await this.customers.ensureCurrency(tx, (await this.customers.findById(orgId, customer.id, tx))!, plan.amountCurrency);
      }
      const notStarted = locked.status === "pending" && locked.previousId === null;
      await store.saveChanges(
        tx,
        orgId,
        locked.id,
        {
          name: d.name !== undefined ? d.name : locked.name,
          endingAt: d.endingAt !== undefined ? d.endingAt : locked.endingAt,
          subscriptionAt: notStarted && d.subscriptionAt !== undefined ? d.subscriptionAt : locked.subscriptionAt,
          planId: locked.planId,
          overrides,
        },
        now,
      );
      // A start moved to today or the past starts it now.
      await this.settleLocked(tx, orgId, externalId, now);
    });
    await this.invalidate(orgId, [externalId]);
    if (patch !== undefined) await this.overridesChanged(orgId, await this.basePlanOf(target));
    return this.viewById(orgId, target.id, now);
  }

  /**
   * DELETE /subscriptions/:external_id: terminates the active subscription now (canceling a
   * downgrade it had scheduled), or with `status: "pending"` cancels the pending one.
   */
  async terminate(orgId: number, externalId: string, status: "active" | "pending" = "active"): Promise<SubscriptionView> {
    if (!isExternalId(externalId)) throw notFound("subscription", externalId);
    const now = this.now(orgId);
    const id = await this.db.transaction(async (tx) => {
      await store.lockGroup(tx, orgId, externalId);
      const rows = await this.settleLocked(tx, orgId, externalId, now);
      const target = rows.find((r) => r.status === status);
      if (target === undefined) throw notFound("subscription", externalId);
      await this.end(tx, rows, target, now);
      return target.id;
    });
    await this.invalidate(orgId, [externalId]);
    return this.viewById(orgId, id, now);
  }

  // ---------------------------------------------------------------------------------------------
  // Hooks (wired in app.ts)

  /** Lists read from `reads` (src/db/replica.ts), unless answering them just settled a transition. */
  readFrom(reads: Queryable): void {
    this.reads = reads;
  }

  /** Work another module does, in the same transaction, when a subscription starts or is terminated. */
  /** Work another module does once `plan_overrides` were written (metering keeps the charges' group keys in its rollups). */
  onOverridesChange(listener: OverridesChangeListener): void {
    this.overridesListeners.push(listener);
  }

  private async overridesChanged(orgId: number, plan: Plan): Promise<void> {
    const metricIds = [...new Set(plan.charges.map((c) => c.metric.id))];
    for (const listener of this.overridesListeners) await listener(orgId, metricIds);
  }

  /** How `plan_overrides` tax codes are checked (the taxes module's rule, as for plans and customers). */
  checkTaxCodesWith(check: TaxCodeCheck): void {
    this.taxCodeCheck = check;
  }

  /** taxes.onRetargeted: subscriptions whose stored overrides named a renamed or deleted tax code are read afresh. */
  async overridesRetargeted(orgId: number, externalIds: readonly string[]): Promise<void> {
    if (externalIds.length > 0) await this.invalidate(orgId, externalIds);
  }

  onTransition(listener: SubscriptionTransitionListener): void {
    this.transitionListeners.push(listener);
  }

  /** customers.onDelete: a deleted customer's subscriptions are terminated, pending ones canceled (Lago). */
  async endCustomerSubscriptions(tx: Queryable, customer: Customer): Promise<void> {
    const orgId = customer.orgId;
    if (!(await store.lockLiveCustomer(tx, orgId, customer.id))) return;
    const now = this.now(orgId);
    const groups = [...new Set((await store.liveOfCustomer(tx, orgId, customer.id)).map((s) => s.externalId))].sort();
    for (const externalId of groups) {
      await store.lockGroup(tx, orgId, externalId);
      const rows = await this.settleLocked(tx, orgId, externalId, now);
      // Terminating the active one cancels its scheduled downgrade too; what is left is a future start.
      const active = rows.find((r) => r.status === "active" && r.customerId === customer.id);
      if (active !== undefined) await this.end(tx, rows, active, now);
      const pending = rows.find((r) => r.status === "pending" && r.previousId === null && r.customerId === customer.id);
      if (pending !== undefined) await this.end(tx, rows, pending, now);
    }
    // Their cached groups go once the deletion committed: customers.onCommitted -> customerChanged.
  }

  /**
   * customers.onCommitted: the customer's subscription groups embed it (timezone, deletion), so
   * they are invalidated once its change committed.
   */
  async customerChanged(customer: Customer): Promise<void> {
    const externalIds = await store.externalIdsOfCustomer(this.db, customer.orgId, customer.id);
    await this.invalidate(customer.orgId, externalIds);
  }

  /** customers.lockCurrencyWhen: a customer with an active or pending subscription keeps its currency. */
  customerHasLiveSubscriptions(tx: Queryable, customer: Customer): Promise<boolean> {
    return store.customerHasLive(tx, customer.orgId, customer.id);
  }

  /** Applies every transition due by `at` in the organization (a test clock move runs it before answering). */
  async settleOrganization(orgId: number, at: Date): Promise<void> {
    await this.settleDue(orgId, at);
  }

  /** settleOrganization, answering how many subscriptions (by external id) had something due. */
  private async settleDue(orgId: number, at: Date): Promise<number> {
    let settled = 0;
    for (const externalId of await store.possiblyDue(this.db, orgId, at)) {
      // Read afresh, not from the cache: another process may have scheduled what is due.
      if (hasDue(await store.byExternalId(this.db, orgId, externalId), at)) {
        await this.settleGroup(orgId, externalId, at);
        settled++;
      }
    }
    return settled;
  }

  // ---------------------------------------------------------------------------------------------
  // Internals

  private readOverrides(raw: Record<string, unknown>, plan: Plan, errors: FieldErrors, current: PlanOverrides | null = null): PlanOverridesPatch | undefined {
    const read = readPlanOverrides(raw, plan, "plan_overrides.", current);
    if (read.ok) return read.value;
    Object.assign(errors, read.errors);
    return undefined;
  }

  /** Unknown tax codes in `plan_overrides` get the catalog's 422 (`tax_not_found`), named under `plan_overrides.`. */
  private async checkOverrideTaxCodes(tx: Queryable, orgId: number, patch: PlanOverridesPatch): Promise<void> {
    const fields = new Map<string, readonly string[]>();
    if (patch.taxCodes) fields.set("plan_overrides.tax_codes", patch.taxCodes);
    const commitmentTaxes = patch.minimumCommitment?.taxCodes ?? [];
    if (commitmentTaxes.length > 0) fields.set("plan_overrides.minimum_commitment.tax_codes", commitmentTaxes);
    if (fields.size > 0) await this.taxCodeCheck?.(tx, orgId, fields);
  }

  /** The customer, row-locked while live (a concurrent deletion either sees this write or wins: 404). */
  private async lockCustomer(tx: Queryable, customer: Customer, externalId: string): Promise<Customer> {
    if (!(await store.lockLiveCustomer(tx, customer.orgId, customer.id))) throw notFound("customer", externalId);
    return (await this.customers.findById(customer.orgId, customer.id, tx))!;
  }

  /** Terminates an active subscription (and cancels its scheduled downgrade) or cancels a pending one, now. */
  private async end(tx: Queryable, rows: readonly StoredSubscription[], s: StoredSubscription, now: Date): Promise<void> {
    if (s.status === "pending") {
      await store.saveState(tx, s.orgId, { ...s, status: "canceled", canceledAt: now }, now);
      return;
    }
    await store.saveState(tx, s.orgId, { ...s, status: "terminated", terminatedAt: now }, now);
    const scheduled = rows.find((r) => r.status === "pending" && r.previousId === s.id);
    if (scheduled !== undefined) await store.saveState(tx, s.orgId, { ...scheduled, status: "canceled", canceledAt: now }, now);
    await this.announce(tx, s.orgId, [[s.id, "terminated"]], now);
  }

  /** Tells the transition listeners, inside `tx`, which subscriptions started or were terminated. */
  private async announce(tx: Queryable, orgId: number, changes: readonly (readonly [number, "started" | "terminated"])[], now: Date): Promise<void> {
    if (this.transitionListeners.length === 0) return;
    for (const [id, transition] of changes) {
      const row = (await store.byId(tx, orgId, id))!;
      // Plans read through the transaction (the embedded database has one connection); `view` then finds them cached.
      for (const planId of [row.planId, row.previousPlanId, row.next?.planId ?? null]) if (planId !== null) await this.catalog.getPlanById(orgId, planId, tx);
      const view = await this.view(row, now);
      for (const listener of this.transitionListeners) await listener(tx, transition, view);
    }
  }

  /** Applies the transitions due by `now` to the (locked) external_id; answers its rows as they then are. */
  private async settleLocked(tx: Queryable, orgId: number, externalId: string, now: Date): Promise<StoredSubscription[]> {
    const rows = await store.byExternalId(tx, orgId, externalId);
    const live = rows.filter(isLive);
    if (live.length === 0) return rows;
    const changed = settle(live, now, live[0]!.timezone);
    if (changed.length === 0) return rows;
    for (const s of changed) await store.saveState(tx, orgId, s, now);
    // A switch terminates one subscription and starts the next: the termination is told first.
    const ended = changed.filter((s) => s.status === "terminated").map((s) => [s.id, "terminated"] as const);
    await this.announce(tx, orgId, [...ended, ...changed.filter((s) => s.status === "active").map((s) => [s.id, "started"] as const)], now);
    return store.byExternalId(tx, orgId, externalId);
  }

  private async settleGroup(orgId: number, externalId: string, now: Date): Promise<void> {
    await this.db.transaction(async (tx) => {
      await store.lockGroup(tx, orgId, externalId);
      await this.settleLocked(tx, orgId, externalId, now);
    });
    await this.invalidate(orgId, [externalId]);
  }

  /** The external_id's rows with what is due by `now` applied (written first when something is). */
  private async settledGroup(orgId: number, externalId: string, now: Date): Promise<readonly StoredSubscription[]> {
    const rows = await this.groupRows(orgId, externalId);
    if (!hasDue(rows, now)) return rows;
    await this.settleGroup(orgId, externalId, now);
    return this.groupRows(orgId, externalId);
  }

  /** The external_id's subscription rows, from the cache (10 minutes in Redis, CACHE_L1_TTL_MS here). */
  private groupRows(orgId: number, externalId: string): Promise<readonly StoredSubscription[]> {
    return this.cache.get("subscription", `${orgId}:${externalId}`, () => store.byExternalId(this.db, orgId, externalId));
  }

  /** After the write committed, before answering: every process reads these groups afresh. */
  private invalidate(orgId: number, externalIds: readonly string[]): Promise<void> {
    return this.cache.invalidate(externalIds.map((e) => ({ kind: "subscription", key: `${orgId}:${e}` })));
  }

  /** The plan the subscription points at (deleted plans included: subscriptions keep theirs). */
  private async basePlanOf(s: StoredSubscription): Promise<Plan> {
    const plan = await this.catalog.getPlanById(s.orgId, s.planId);
    if (plan === null) throw new Error(`plan ${s.planId} of subscription ${s.lagoId} is missing`);
    return plan;
  }

  private async effectivePlanOf(s: StoredSubscription): Promise<Plan> {
    return (await this.withPlan(s)).plan;
  }

  private async withPlan(s: StoredSubscription): Promise<Subscription> {
    const base = await this.basePlanOf(s);
    const cached = this.withPlans.get(s);
    // Rebuilt when the catalog hands out a new plan object (the plan changed).
    if (cached !== undefined && bases.get(cached) === base) return cached;
    const built: Subscription = { ...s, plan: effectivePlan(base, s.overrides) };
    bases.set(built, base);
    this.withPlans.set(s, built);
    return built;
  }

  private async viewById(orgId: number, subscriptionId: number, now: Date): Promise<SubscriptionView> {
    const row = await store.byId(this.db, orgId, subscriptionId);
    return this.view(row!, now);
  }

  private async view(s: StoredSubscription, now: Date): Promise<SubscriptionView> {
    const subscription = await this.withPlan(s);
    const codeOf = async (planId: number | null) => (planId === null ? null : ((await this.catalog.getPlanById(s.orgId, planId))?.code ?? null));
    const next = s.next;
    return {
      subscription,
      previousPlanCode: await codeOf(s.previousPlanId),
      nextPlanCode: await codeOf(next?.planId ?? null),
      downgradePlanDate: downgradePlanDateOf(s),
      currentPeriod: currentBillingPeriod(s, subscription.plan, s.timezone, now),
      trialEndedAt: trialEndedAt(s, subscription.plan.trialPeriod, s.initialStartedAt, now),
    };
  }
}

/**
 * Lago shows `downgrade_plan_date` on the subscription being downgraded (while its successor is
 * pending); we show it on the pending successor too, as the date it takes over (Lago: null there).
 */
function downgradePlanDateOf(s: StoredSubscription): string | null {
  if (s.next?.status === "pending" && s.next.downgradeAt !== null) return downgradePlanDate(s.next.downgradeAt, s.timezone);
  if (s.status === "pending" && s.downgradeAt !== null) return downgradePlanDate(s.downgradeAt, s.timezone);
  return null;
}

/** The catalog plan each built Subscription was made from. */
const bases = new WeakMap<Subscription, Plan>();

function hasDue(rows: readonly StoredSubscription[], now: Date): boolean {
  // The common case on the event path: one active subscription with no end and nothing scheduled.
  if (!rows.some((r) => r.status === "pending" || (r.status === "active" && r.endingAt !== null))) return false;
  const live = rows.filter(isLive);
  return live.length > 0 && settle(live, now, live[0]!.timezone).length > 0;
}

/** Lago's order for ended ones: `terminated_at DESC NULLS FIRST, started_at DESC`; the latest canceled. */
function latestWithStatus(rows: readonly StoredSubscription[], status: SubscriptionStatus): StoredSubscription | undefined {
  const ms = (d: Date | null) => d?.getTime() ?? Number.NEGATIVE_INFINITY;
  const key = (s: StoredSubscription): number[] => [
    status === "terminated" ? ms(s.terminatedAt) : status === "canceled" ? ms(s.canceledAt) : s.createdAt.getTime(),
    ms(s.startedAt),
    s.id,
  ];
  const later = (a: number[], b: number[]) => {
    for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return a[i]! > b[i]!;
    return false;
  };
  let found: StoredSubscription | undefined;
  for (const r of rows) if (r.status === status && (found === undefined || later(key(r), key(found)))) found = r;
  return found;
}

function pickForUpdate(rows: readonly StoredSubscription[], status: "active" | "pending" | undefined): StoredSubscription | undefined {
  if (status === "pending") return rows.find((r) => r.status === "pending");
  return rows.find((r) => r.status === "active") ?? rows.find((r) => r.status === "pending" && r.previousId === null);
}
