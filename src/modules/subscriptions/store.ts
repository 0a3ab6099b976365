// SQL for subscriptions. Every statement is scoped by org_id: a subscription is only ever found
// through its own organization.
import type { Queryable } from "../../db/db.ts";
import type { BillingTime } from "../billing/core/index.ts";
import {
  type PlanOverrides,
  type StoredOverrides,
  type StoredSubscription,
  type SubscriptionListQuery,
  type SubscriptionState,
  type SubscriptionStatus,
  overridesFromJson,
  overridesToJson,
} from "./core/index.ts";

// Writers of one external_id (create, plan change, update, terminate, settle) run one at a time:
// a transaction-scoped advisory lock on (namespace, hash of org and external_id). Lock order, to
// stay free of deadlocks: the customer's row (when taken) before this lock, never after.
const GROUP_LOCK_NAMESPACE = 7_221_004;

interface SubscriptionRow {
  id: string | number;
  org_id: number;
  lago_id: string;
  external_id: string;
  customer_id: string | number;
  plan_id: string | number;
  name: string | null;
  status: SubscriptionStatus;
  billing_time: BillingTime;
  subscription_at: Date;
  started_at: Date | null;
  ending_at: Date | null;
  terminated_at: Date | null;
  canceled_at: Date | null;
  previous_subscription_id: string | number | null;
  downgrade_at: Date | null;
  plan_overrides: StoredOverrides | string | null;
  created_at: Date;
  updated_at: Date;
  customer_external_id: string;
  customer_lago_id: string;
  customer_timezone: string | null;
  previous_plan_id: string | number | null;
  next_plan_id: string | number | null;
  next_status: SubscriptionStatus | null;
  next_downgrade_at: Date | null;
  initial_started_at: Date | null;
}

const date = (v: Date | string | null): Date | null => (v === null ? null : new Date(v));
const id = (v: string | number | null): number | null => (v === null ? null : Number(v));

function toSubscription(r: SubscriptionRow): StoredSubscription {
  const overrides = typeof r.plan_overrides === "string" ? (JSON.parse(r.plan_overrides) as StoredOverrides) : r.plan_overrides;
  return {
    id: Number(r.id),
    orgId: Number(r.org_id),
    lagoId: r.lago_id,
    externalId: r.external_id,
    customerId: Number(r.customer_id),
    customerExternalId: r.customer_external_id,
    customerLagoId: r.customer_lago_id,
    // The customers module's applicableTimezone: the customer's own, else UTC (organizations have no timezone yet).
    timezone: r.customer_timezone ?? "UTC",
    planId: Number(r.plan_id),
    name: r.name,
    status: r.status,
    billingTime: r.billing_time,
    subscriptionAt: new Date(r.subscription_at),
    startedAt: date(r.started_at),
    endingAt: date(r.ending_at),
    terminatedAt: date(r.terminated_at),
    canceledAt: date(r.canceled_at),
    previousId: id(r.previous_subscription_id),
    downgradeAt: date(r.downgrade_at),
    overrides: overrides === null ? null : overridesFromJson(overrides),
    createdAt: new Date(r.created_at),
    updatedAt: new Date(r.updated_at),
    previousPlanId: id(r.previous_plan_id),
    next:
      r.next_plan_id === null || r.next_status === null
        ? null
        : { planId: Number(r.next_plan_id), status: r.next_status, downgradeAt: date(r.next_downgrade_at) },
    initialStartedAt: date(r.initial_started_at),
  };
}

const SELECT = `
SELECT s.*,
       c.external_id AS customer_external_id, c.lago_id AS customer_lago_id, c.timezone AS customer_timezone,
       prev.plan_id AS previous_plan_id,
       nxt.plan_id AS next_plan_id, nxt.status AS next_status, nxt.downgrade_at AS next_downgrade_at,
       (SELECT min(o.started_at) FROM subscriptions o
         WHERE o.org_id = s.org_id AND o.customer_id = s.customer_id AND o.external_id = s.external_id) AS initial_started_at
  FROM subscriptions s
  JOIN customers c ON c.org_id = s.org_id AND c.id = s.customer_id
  LEFT JOIN subscriptions prev ON prev.org_id = s.org_id AND prev.id = s.previous_subscription_id
  LEFT JOIN LATERAL (
    SELECT n.plan_id, n.status, n.downgrade_at FROM subscriptions n
     WHERE n.org_id = s.org_id AND n.previous_subscription_id = s.id AND n.status <> 'canceled'
     ORDER BY n.created_at DESC, n.id DESC LIMIT 1
  ) nxt ON true`;

export async function lockGroup(tx: Queryable, orgId: number, externalId: string): Promise<void> {
  await tx.query("SELECT pg_advisory_xact_lock($1::int, hashtext($2::text))", [GROUP_LOCK_NAMESPACE, `${orgId}:${externalId}`]);
}

/**
 * Locks the customer's row while it is live: a deletion (which locks it too, before terminating
 * the customer's subscriptions) then either sees what this transaction writes or runs first, and
 * this transaction sees the customer gone. False when the customer was deleted.
 */
export async function lockLiveCustomer(tx: Queryable, orgId: number, customerId: number): Promise<boolean> {
  const { rows } = await tx.query("SELECT 1 FROM customers WHERE org_id = $1 AND id = $2 AND deleted_at IS NULL FOR UPDATE", [orgId, customerId]);
  return rows.length > 0;
}

/** Every subscription with this external_id (terminated and canceled ones included), oldest first. */
export async function byExternalId(q: Queryable, orgId: number, externalId: string): Promise<StoredSubscription[]> {
  const { rows } = await q.query<SubscriptionRow>(`${SELECT} WHERE s.org_id = $1 AND s.external_id = $2 ORDER BY s.created_at, s.id`, [orgId, externalId]);
  return rows.map(toSubscription);
}

export async function byId(q: Queryable, orgId: number, subscriptionId: number): Promise<StoredSubscription | null> {
  const { rows } = await q.query<SubscriptionRow>(`${SELECT} WHERE s.org_id = $1 AND s.id = $2`, [orgId, subscriptionId]);
  return rows[0] === undefined ? null : toSubscription(rows[0]);
}

/** Subscriptions by internal id (the billing job's batches), in id order; ids not found are left out. */
export async function byIds(q: Queryable, orgId: number, subscriptionIds: readonly number[]): Promise<StoredSubscription[]> {
  if (subscriptionIds.length === 0) return [];
  const { rows } = await q.query<SubscriptionRow>(`${SELECT} WHERE s.org_id = $1 AND s.id = ANY($2::bigint[]) ORDER BY s.id`, [orgId, subscriptionIds.map(String)]);
  return rows.map(toSubscription);
}

/** Live (active or pending) subscriptions of a customer. */
export async function liveOfCustomer(q: Queryable, orgId: number, customerId: number): Promise<StoredSubscription[]> {
  const { rows } = await q.query<SubscriptionRow>(
    `${SELECT} WHERE s.org_id = $1 AND s.customer_id = $2 AND s.status IN ('active', 'pending') ORDER BY s.created_at, s.id`,
    [orgId, customerId],
  );
  return rows.map(toSubscription);
}

export async function customerHasLive(q: Queryable, orgId: number, customerId: number): Promise<boolean> {
  const { rows } = await q.query(
    "SELECT 1 FROM subscriptions WHERE org_id = $1 AND customer_id = $2 AND status IN ('active', 'pending') LIMIT 1",
    [orgId, customerId],
  );
  return rows.length > 0;
}

/**
 * External ids of the organization with a transition that may be due at `now` (a superset: the
 * exact rule needs each customer's timezone). A future subscription starts on its day in the
 * customer's timezone, which begins at most a day (plus a DST shift) before its `subscription_at`.
 */
export async function possiblyDue(q: Queryable, orgId: number, now: Date): Promise<string[]> {
  const { rows } = await q.query<{ external_id: string }>(
    `SELECT DISTINCT external_id FROM subscriptions
      WHERE org_id = $1 AND (
        (status = 'pending' AND previous_subscription_id IS NULL AND subscription_at <= $2::timestamptz + interval '2 days')
        OR (status = 'pending' AND downgrade_at <= $2)
        OR (status = 'active' AND ending_at <= $2))`,
    [orgId, now],
  );
  return rows.map((r) => r.external_id);
}

export interface NewSubscription {
  readonly orgId: number;
  readonly lagoId: string;
  readonly externalId: string;
  readonly customerId: number;
  readonly planId: number;
  readonly name: string | null;
  readonly status: SubscriptionStatus;
  readonly billingTime: BillingTime;
  readonly subscriptionAt: Date;
  readonly startedAt: Date | null;
  readonly endingAt: Date | null;
  readonly previousId: number | null;
  readonly downgradeAt: Date | null;
  readonly overrides: PlanOverrides | null;
  readonly now: Date;
}

const overridesParam = (o: PlanOverrides | null) => (o === null ? null : JSON.stringify(overridesToJson(o)));

export async function insert(tx: Queryable, s: NewSubscription): Promise<number> {
  const { rows } = await tx.query<{ id: string | number }>(
    `INSERT INTO subscriptions (org_id, lago_id, external_id, customer_id, plan_id, name, status, billing_time, subscription_at,
                                started_at, ending_at, previous_subscription_id, downgrade_at, plan_overrides, created_at, updated_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14::jsonb, $15, $15) RETURNING id`,
    [
      s.orgId,
      s.lagoId,
      s.externalId,
      s.customerId,
      s.planId,
      s.name,
      s.status,
      s.billingTime,
      s.subscriptionAt,
      s.startedAt,
      s.endingAt,
      s.previousId,
      s.downgradeAt,
      overridesParam(s.overrides),
      s.now,
    ],
  );
  return Number(rows[0]!.id);
}

/** Writes a lifecycle transition (status and its dates). */
export async function saveState(tx: Queryable, orgId: number, s: SubscriptionState, now: Date): Promise<void> {
  await tx.query(
    `UPDATE subscriptions SET status = $1, started_at = $2, terminated_at = $3, canceled_at = $4, updated_at = $5
      WHERE org_id = $6 AND id = $7`,
    [s.status, s.startedAt, s.terminatedAt, s.canceledAt, now, orgId, s.id],
  );
}

export interface SubscriptionChanges {
  readonly name: string | null;
  readonly endingAt: Date | null;
  readonly subscriptionAt: Date;
  readonly planId: number;
  readonly overrides: PlanOverrides | null;
}

/** Writes what a client may change (PUT, or a plan change on a subscription that has not started). */
export async function saveChanges(tx: Queryable, orgId: number, subscriptionId: number, c: SubscriptionChanges, now: Date): Promise<void> {
  await tx.query(
    `UPDATE subscriptions SET name = $1, ending_at = $2, subscription_at = $3, plan_id = $4, plan_overrides = $5::jsonb, updated_at = $6
      WHERE org_id = $7 AND id = $8`,
    [c.name, c.endingAt, c.subscriptionAt, c.planId, overridesParam(c.overrides), now, orgId, subscriptionId],
  );
}

/** A page of the list and the total matching, newest `subscription_at` first (Lago's order). */
export async function list(
  q: Queryable,
  orgId: number,
  query: SubscriptionListQuery,
  customerId?: number,
): Promise<{ items: StoredSubscription[]; total: number }> {
  const where = ["s.org_id = $1", "s.status = ANY($2::text[])"];
  const params: unknown[] = [orgId, [...query.statuses]];
  if (customerId !== undefined) {
    params.push(customerId);
    where.push(`s.customer_id = $${params.length}`);
  }
  if (query.externalCustomerId !== undefined) {
    params.push(query.externalCustomerId);
    where.push(`c.external_id = $${params.length}`);
  }
  if (query.externalId !== undefined) {
    params.push(query.externalId);
    where.push(`s.external_id = $${params.length}`);
  }
  if (query.planCode !== undefined) {
    params.push(query.planCode);
    where.push(`EXISTS (SELECT 1 FROM plans p WHERE p.org_id = s.org_id AND p.id = s.plan_id AND p.code = $${params.length})`);
  }
  const filter = where.join(" AND ");
  const [page, count] = await Promise.all([
    q.query<SubscriptionRow>(
      `${SELECT} WHERE ${filter} ORDER BY s.subscription_at DESC, s.created_at DESC, s.id DESC LIMIT $${params.length + 1} OFFSET $${params.length + 2}`,
      [...params, query.perPage, (query.page - 1) * query.perPage],
    ),
    q.query<{ n: string }>(`SELECT count(*)::text AS n FROM subscriptions s JOIN customers c ON c.org_id = s.org_id AND c.id = s.customer_id WHERE ${filter}`, params),
  ]);
  return { items: page.rows.map(toSubscription), total: Number(count.rows[0]?.n ?? 0) };
}

/** Every external_id the customer has had a subscription under (their cached groups embed the customer). */
export async function externalIdsOfCustomer(q: Queryable, orgId: number, customerId: number): Promise<string[]> {
  const { rows } = await q.query<{ external_id: string }>("SELECT DISTINCT external_id FROM subscriptions WHERE org_id = $1 AND customer_id = $2", [
    orgId,
    customerId,
  ]);
  return rows.map((r) => r.external_id);
}
