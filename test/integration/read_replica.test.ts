// Read replicas (DATABASE_READ_URL) against a real PostgreSQL streaming replica of the test cluster.
// Its WAL replay is paused so it visibly lags: lists, usage and GraphQL show the replica's past,
// while a write's answer and single-resource GETs show the write (primary). Then the replica is
// killed (reads answer from the primary, the outage is noticed once) and started again (reads go
// back to it by themselves).
import type { InjectOptions, LightMyRequestResponse } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Db } from "../../src/db/db.ts";
import { startTestApp, type TestApp } from "../helpers/app.ts";
import { DB_KIND, openTestDb, TEST_DATABASE_URL } from "../helpers/db.ts";
import { startReplica, type Replica } from "../helpers/replica.ts";
import { T0_S, bearer, json, parseMetrics, uid } from "./support.ts";

describe.skipIf(DB_KIND !== "postgres")("read replica (PostgreSQL only: PGlite has no streaming replication; runs with TEST_DATABASE_URL)", () => {
  let replica: Replica;
  let db: Db & { url?: string };
  let t: TestApp;

  type Method = "GET" | "POST" | "PUT" | "DELETE";
  const call = (method: Method, url: string, payload?: unknown) =>
    t.app.http.inject({ method, url, headers: bearer(t.apiKey), ...(payload === undefined ? {} : { payload: payload as InjectOptions["payload"] }) });
  const ok = (r: LightMyRequestResponse) => {
    expect(r.statusCode, r.body).toBe(200);
    return json(r);
  };
  const customerIds = async () => (ok(await call("GET", "/api/v1/customers?per_page=100")).customers as { external_id: string }[]).map((c) => c.external_id);
  const createCustomer = async () => {
    const id = uid("cus");
    expect(ok(await call("POST", "/api/v1/customers", { customer: { external_id: id, currency: "EUR" } })).customer.external_id).toBe(id);
    return id;
  };
  const metrics = async () => parseMetrics(await (await t.app.http.inject({ method: "GET", url: "/metrics" })).body);

  const metricCode = uid("calls");
  const planCode = uid("plan");
  let firstCustomer: string;
  const firstSub = uid("sub");

  beforeAll(async () => {
    replica = await startReplica(TEST_DATABASE_URL!);
    db = await openTestDb();
    t = await startTestApp({
      db,
      env: { LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? "silent", DATABASE_URL: db.url!, DATABASE_READ_URL: replica.urlFor(db.url!), DATABASE_READ_RETRY_MS: "200" },
    });
    // A catalog, a customer and a subscription both databases have.
    const metric = ok(await call("POST", "/api/v1/billable_metrics", { billable_metric: { name: "Calls", code: metricCode, aggregation_type: "count_agg" } })).billable_metric;
    ok(
      await call("POST", "/api/v1/plans", {
        plan: {
          name: "Usage",
          code: planCode,
          interval: "monthly",
          amount_cents: 0,
          amount_currency: "EUR",
          charges: [{ billable_metric_id: metric.lago_id, charge_model: "standard", properties: { amount: "0.5" } }],
        },
      }),
    );
    firstCustomer = await createCustomer();
    ok(
      await call("POST", "/api/v1/subscriptions", {
        subscription: { external_customer_id: firstCustomer, plan_code: planCode, external_id: firstSub, billing_time: "calendar", subscription_at: "2026-01-01T00:00:00Z" },
      }),
    );
    await replica.waitCaughtUp();
  });

  afterAll(async () => {
    try {
      await t?.close(); // closes (and drops) the test database too
    } finally {
      await replica?.destroy();
    }
  });

  it("lists, usage and GraphQL read the replica (its lag shows); a write's answer and single GETs read the primary", async () => {
    expect(t.app.reads.state).toBe("up");
    await replica.pauseReplay();
    try {
      // Written while the replica stands still.
      const lagging = await createCustomer();
      const secondSub = uid("sub");
      const created = ok(
        await call("POST", "/api/v1/subscriptions", {
          subscription: { external_customer_id: firstCustomer, plan_code: planCode, external_id: secondSub, billing_time: "calendar", subscription_at: "2026-01-01T00:00:00Z" },
        }),
      );
      expect(created.subscription.external_id).toBe(secondSub);
      const tx = uid("tx");
      expect(ok(await call("POST", "/api/v1/events", { event: { transaction_id: tx, external_subscription_id: firstSub, code: metricCode, timestamp: T0_S } })).event.transaction_id).toBe(tx);

      // Single-resource reads: the primary, so a caller sees its own write.
      expect(ok(await call("GET", `/api/v1/customers/${lagging}`)).customer.external_id).toBe(lagging);
      expect(ok(await call("GET", `/api/v1/subscriptions/${secondSub}`)).subscription.external_id).toBe(secondSub);
      expect(ok(await call("GET", `/api/v1/events/${tx}`)).event.transaction_id).toBe(tx);

      // Lists: the replica, which has not replayed any of it.
      const before = t.app.reads.counts.replica;
      const listed = await customerIds();
      expect(listed).toContain(firstCustomer);
      expect(listed).not.toContain(lagging);
      const subs = (ok(await call("GET", `/api/v1/subscriptions?external_customer_id=${firstCustomer}`)).subscriptions as { external_id: string }[]).map((s) => s.external_id);
      expect(subs).toEqual([firstSub]);
      expect(ok(await call("GET", `/api/v1/events?external_subscription_id=${firstSub}`)).events).toEqual([]);
      expect(ok(await call("GET", "/api/v1/invoices")).invoices).toEqual([]);
      const usage = ok(await call("GET", `/api/v1/customers/${firstCustomer}/current_usage?external_subscription_id=${firstSub}`)).customer_usage;
      expect(usage.charges_usage[0].events_count).toBe(0);
      const gql = ok(await call("POST", "/graphql", { query: "{ customers(perPage: 100) { external_id } }" }));
      expect((gql.data.customers as { external_id: string }[]).map((c) => c.external_id)).not.toContain(lagging);
      expect(t.app.reads.counts.replica).toBeGreaterThan(before);
      expect(t.app.reads.counts.fallback).toBe(0);
    } finally {
      await replica.resumeReplay();
    }
    await replica.waitCaughtUp();

    // Caught up: the same reads show everything.
    expect(await customerIds()).toHaveLength(2);
    expect(ok(await call("GET", `/api/v1/subscriptions?external_customer_id=${firstCustomer}`)).subscriptions).toHaveLength(2);
    expect(ok(await call("GET", `/api/v1/events?external_subscription_id=${firstSub}`)).events).toHaveLength(1);
    const usage = ok(await call("GET", `/api/v1/customers/${firstCustomer}/current_usage?external_subscription_id=${firstSub}`)).customer_usage;
    expect(usage.charges_usage[0].events_count).toBe(1);
    expect(usage.amount_cents).toBe(50);
    const m = await metrics();
    expect(m.get("db_read_replica_up")).toBe(1);
    expect(m.get('db_read_replica_reads_total{answered_by="replica"}')).toBeGreaterThan(0);
  });

  it("the replica killed: reads answer from the primary, the outage noticed once; started again: reads go back to it", { timeout: 90_000 }, async () => {
    const downsBefore = t.app.reads.counts.down;
    await replica.kill();
    const whileDown = await createCustomer();
    // Every read answers, from the primary (which has the customer written just now).
    for (let i = 0; i < 5; i++) {
      expect(await customerIds()).toContain(whileDown);
      const usage = ok(await call("GET", `/api/v1/customers/${firstCustomer}/current_usage?external_subscription_id=${firstSub}`)).customer_usage;
      expect(usage.charges_usage[0].events_count).toBe(1);
      ok(await call("GET", "/api/v1/events"));
    }
    expect(t.app.reads.state).toBe("down");
    expect(t.app.reads.counts.down - downsBefore).toBe(1);
    expect(t.app.reads.counts.fallback).toBeGreaterThanOrEqual(15);
    let m = await metrics();
    expect(m.get("db_read_replica_up")).toBe(0);
    expect(m.get('db_read_replica_reads_total{answered_by="primary_fallback"}')).toBeGreaterThanOrEqual(15);

    await replica.start();
    // Probed every 200 ms (DATABASE_READ_RETRY_MS): back without any request having to fail first.
    const deadline = Date.now() + 30_000;
    while (t.app.reads.state !== "up" && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect(t.app.reads.state).toBe("up");
    expect(t.app.reads.counts.up).toBeGreaterThanOrEqual(1);
    await replica.waitCaughtUp();

    // Reads go to the replica again: paused, it lags once more.
    await replica.pauseReplay();
    try {
      const lagging = await createCustomer();
      const listed = await customerIds();
      expect(listed).toContain(whileDown);
      expect(listed).not.toContain(lagging);
    } finally {
      await replica.resumeReplay();
    }
    m = await metrics();
    expect(m.get("db_read_replica_up")).toBe(1);
    expect(t.app.reads.counts.down - downsBefore).toBe(1);
  });
});
