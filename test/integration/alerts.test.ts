// Usage alerts against a real database: the /subscriptions/:external_id/alerts API (Lago's shapes,
// 422s naming the field, one organization never reaching another's alerts), and evaluation under a
// test clock: each crossing sends one alert.triggered with the thresholds crossed, recurring
// thresholds at every multiple, a new period starts current-usage alerts over, lifetime ones not.
// On PGlite by default, PostgreSQL with TEST_DATABASE_URL.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AlertService } from "../../src/modules/alerts/index.ts";
import { startTestApp, type TestApp } from "../helpers/app.ts";
import { uid, waitFor } from "./support.ts";
import { BILLING_ENV, customer, expect422, newOrg, plan, sendCalls, subscribe, type Org } from "./billing_support.ts";

let t: TestApp;
beforeAll(async () => {
  // A short poll: the background loop runs beside the clock-driven evaluations of this file.
  t = await startTestApp({ env: { ...BILLING_ENV, ALERTS_POLL_MS: "200" } });
});
afterAll(async () => {
  await t?.close();
});

const alertsUrl = (sub: string) => `/api/v1/subscriptions/${encodeURIComponent(sub)}/alerts`;

/** An organization on the €0.05-a-call plan with a webhook endpoint, and a January subscription. */
async function setup(freezeAt = "2026-01-01T00:00:00Z") {
  const org = await newOrg(t);
  await org.api("POST", "/api/v1/webhook_endpoints", { webhook_endpoint: { webhook_url: "http://127.0.0.1:9/hook", signature_algo: "hmac" } });
  if (freezeAt) await org.freeze(freezeAt);
  const p = await plan(org, { amount_cents: 10000 });
  const cus = await customer(org);
  const sub = await subscribe(org, cus, p.plan);
  return { org, calls: p.calls, cus, sub };
}

/** The alert.triggered payloads sent so far, oldest first. */
async function triggered(org: Org): Promise<any[]> {
  const hooks = (await org.api("GET", "/api/v1/webhooks?webhook_type=alert.triggered&per_page=100")).webhooks as any[];
  return hooks
    .map((h) => {
      expect(h.object_type).toBe("triggered_alert");
      return h.payload.triggered_alert;
    })
    .sort((a, b) => a.triggered_at.localeCompare(b.triggered_at) || a.alert_code.localeCompare(b.alert_code));
}

describe("alerts API", () => {
  it("creates, lists, shows, updates and deletes a subscription's alerts in Lago's shapes", async () => {
    const { org, calls, cus, sub } = await setup();
    const created = (
      await org.api("POST", alertsUrl(sub), {
        alert: {
          alert_type: "billable_metric_current_usage_amount",
          code: "calls_spend",
          name: "Calls spend",
          billable_metric_code: calls,
          thresholds: [{ value: 5000, code: "hard" }, { value: "1000", code: "soft" }, { value: 2500, recurring: true }],
        },
      })
    ).alert;
    expect(created).toMatchObject({
      external_subscription_id: sub,
      external_customer_id: cus,
      alert_type: "billable_metric_current_usage_amount",
      code: "calls_spend",
      name: "Calls spend",
      direction: "increasing",
      previous_value: 0,
      last_processed_at: null,
      created_at: "2026-01-01T00:00:00Z",
      thresholds: [
        { code: "soft", value: "1000.0", recurring: false },
        { code: "hard", value: "5000.0", recurring: false },
        { code: null, value: "2500.0", recurring: true },
      ],
    });
    expect(created.lago_id).toMatch(/^[0-9a-f-]{36}$/);
    expect(created.lago_organization_id).toMatch(/^[0-9a-f-]{36}$/);
    expect(created.billable_metric).toMatchObject({ code: calls, aggregation_type: "count_agg" });

    const budget = (await org.api("POST", alertsUrl(sub), { alert: { alert_type: "current_usage_amount", code: "budget", thresholds: [{ value: 100 }] } })).alert;
    expect(budget.billable_metric).toBeNull();

    const list = await org.api("GET", alertsUrl(sub));
    expect(list.alerts.map((a: any) => a.code)).toEqual(["calls_spend", "budget"]);
    expect(list.meta).toMatchObject({ current_page: 1, total_count: 2 });
    // The background loop may have evaluated it since (last_processed_at): everything else is as created.
    const shown = (await org.api("GET", `${alertsUrl(sub)}/calls_spend`)).alert;
    expect({ ...shown, last_processed_at: null }).toEqual(created);

    // Thresholds are replaced whole; a renamed code is the alert's new address.
    const updated = (
      await org.api("PUT", `${alertsUrl(sub)}/budget`, { alert: { code: "monthly_budget", name: "Budget", thresholds: [{ value: 200.5, code: "warn" }] } })
    ).alert;
    expect(updated).toMatchObject({ lago_id: budget.lago_id, code: "monthly_budget", name: "Budget", alert_type: "current_usage_amount" });
    expect(updated.thresholds).toEqual([{ code: "warn", value: "200.5", recurring: false }]);
    expect((await org.raw("GET", `${alertsUrl(sub)}/budget`)).statusCode).toBe(404);

    const deleted = (await org.api("DELETE", `${alertsUrl(sub)}/monthly_budget`)).alert;
    expect(deleted.lago_id).toBe(budget.lago_id);
    const gone = await org.raw("GET", `${alertsUrl(sub)}/monthly_budget`);
    expect(gone.statusCode).toBe(404);
    expect(JSON.parse(gone.body)).toEqual({ status: 404, error: "Not Found", code: "alert_not_found" });
    // A deleted alert's code is free again.
    await org.api("POST", alertsUrl(sub), { alert: { alert_type: "current_usage_amount", code: "monthly_budget", thresholds: [{ value: 1 }] } });

    // Several at once: all or none.
    const refused = await org.raw("POST", alertsUrl(sub), {
      alerts: [
        { alert_type: "lifetime_usage_amount", code: "lifetime", thresholds: [{ value: 1 }] },
        { alert_type: "lifetime_usage_amount", code: "lifetime", thresholds: [{ value: 2 }] },
        { alert_type: "billable_metric_current_usage_units", code: "units", billable_metric_code: calls, thresholds: [] },
      ],
    });
    expect(Object.keys(expect422(refused)).sort()).toEqual(["alerts[1].alert_type", "alerts[1].code", "alerts[2].thresholds"]);
    expect((await org.api("GET", alertsUrl(sub))).alerts).toHaveLength(2);
    const batch = await org.api("POST", alertsUrl(sub), {
      alerts: [
        { alert_type: "lifetime_usage_amount", code: "lifetime", thresholds: [{ value: 100000 }] },
        { alert_type: "billable_metric_current_usage_units", code: "units", billable_metric_code: calls, thresholds: [{ value: 10 }] },
      ],
    });
    expect(batch.alerts.map((a: any) => a.code)).toEqual(["lifetime", "units"]);
    expect((await org.api("GET", alertsUrl(sub))).alerts).toHaveLength(4);

    // DELETE on the collection removes every alert of the subscription.
    expect((await org.raw("DELETE", alertsUrl(sub))).statusCode).toBe(200);
    expect((await org.api("GET", alertsUrl(sub))).alerts).toEqual([]);
  });

  it("refuses bad alerts with a 422 naming each field", async () => {
    const { org, calls, sub } = await setup();
    await org.api("POST", alertsUrl(sub), { alert: { alert_type: "current_usage_amount", code: "taken", thresholds: [{ value: 100 }] } });
    const create = (alert: unknown) => org.raw("POST", alertsUrl(sub), { alert });

    expect(expect422(await create({ alert_type: "billable_metric_current_usage_units", code: "u", billable_metric_code: "no_such_metric", thresholds: [{ value: 1 }] }), "billable_metric_code")).toEqual({
      billable_metric_code: ["billable_metric_not_found"],
    });
    expect(expect422(await create({ alert_type: "lifetime_usage_amount", code: "taken", thresholds: [{ value: 1 }] }), "code")).toEqual({ code: ["value_already_exist"] });
    // One live alert per type (and metric) on a subscription.
    expect(expect422(await create({ alert_type: "current_usage_amount", code: "other", thresholds: [{ value: 1 }] }), "alert_type")).toEqual({ alert_type: ["value_already_exist"] });
    expect422(
      await create({ alert_type: "lifetime_usage_amount", code: "bad", thresholds: [{ value: -5 }, { value: "lots" }, { value: 1, recurring: true }, { value: 2, recurring: true }] }),
      "thresholds[0].value",
      "thresholds[1].value",
      "thresholds[3].recurring",
    );
    expect(expect422(await create({ alert_type: "lifetime_usage_amount", code: "taken", thresholds: [] }))).toEqual({
      code: ["value_already_exist"],
      thresholds: ["value_is_mandatory"],
    });
    expect422(await create({ alert_type: "usage_amount", code: "x", thresholds: [{ value: 1 }] }), "alert_type");
    expect422(await create({ alert_type: "billable_metric_current_usage_amount", code: "x", thresholds: [{ value: 1 }] }), "billable_metric_code");
    expect422(await create({ alert_type: "current_usage_amount", code: "x", billable_metric_code: calls, thresholds: [{ value: 1 }] }), "billable_metric_code");
    expect422(await create("not an object"), "alert");
    const missing = await org.raw("POST", alertsUrl(sub), {});
    expect(missing.statusCode).toBe(400);
    expect422(await org.raw("PUT", `${alertsUrl(sub)}/taken`, { alert: { thresholds: [{ value: "1e5" }] } }), "thresholds[0].value");
    expect422(await org.raw("GET", `${alertsUrl(sub)}?subscription_status=sleeping`), "subscription_status");

    // Nothing was stored by any of them.
    expect((await org.api("GET", alertsUrl(sub))).alerts.map((a: any) => a.code)).toEqual(["taken"]);
    // An unknown subscription or alert is a 404.
    const noSub = await org.raw("GET", alertsUrl("no-such-subscription"));
    expect(noSub.statusCode).toBe(404);
    expect(JSON.parse(noSub.body).code).toBe("subscription_not_found");
    expect((await org.raw("PUT", `${alertsUrl(sub)}/nope`, { alert: { name: "x" } })).statusCode).toBe(404);
  });

  it("never lets another organization reach a subscription's alerts, whatever it guesses", async () => {
    const { org, sub } = await setup();
    await org.api("POST", alertsUrl(sub), { alert: { alert_type: "current_usage_amount", code: "mine", thresholds: [{ value: 100 }] } });
    const other = await newOrg(t);
    for (const [method, url, payload] of [
      ["GET", alertsUrl(sub)],
      ["POST", alertsUrl(sub), { alert: { alert_type: "current_usage_amount", code: "theirs", thresholds: [{ value: 1 }] } }],
      ["DELETE", alertsUrl(sub)],
      ["GET", `${alertsUrl(sub)}/mine`],
      ["PUT", `${alertsUrl(sub)}/mine`, { alert: { name: "stolen" } }],
      ["DELETE", `${alertsUrl(sub)}/mine`],
    ] as const) {
      const r = await other.raw(method, url, payload);
      expect(r.statusCode, `${method} ${url}`).toBe(404);
    }
    // The same external id in the other organization is another subscription, with no alerts.
    const p = await plan(other, { amount_cents: 0 });
    const cus = await customer(other);
    await other.api("POST", "/api/v1/subscriptions", { subscription: { external_customer_id: cus, plan_code: p.plan, external_id: sub } });
    expect((await other.api("GET", alertsUrl(sub))).alerts).toEqual([]);
    expect((await other.raw("GET", `${alertsUrl(sub)}/mine`)).statusCode).toBe(404);
    const mine = (await org.api("GET", `${alertsUrl(sub)}/mine`)).alert;
    expect(mine.name).toBeNull();
  });
});

describe("alert evaluation", () => {
  it("sends alert.triggered once per crossing, every multiple of a recurring threshold, and starts over with a new period", async () => {
    const { org, calls, cus, sub } = await setup();
    // €10 and €20 fixed, then every €15: €35, €50, ...
    await org.api("POST", alertsUrl(sub), {
      alert: {
        alert_type: "current_usage_amount",
        code: "spend",
        name: "Spend",
        thresholds: [{ value: 1000, code: "soft" }, { value: 2000, code: "hard" }, { value: 1500, code: "every", recurring: true }],
      },
    });
    await org.api("POST", alertsUrl(sub), {
      alert: { alert_type: "billable_metric_current_usage_units", code: "units", billable_metric_code: calls, thresholds: [{ value: 100, code: "many" }] },
    });
    await org.api("POST", alertsUrl(sub), { alert: { alert_type: "lifetime_usage_amount", code: "lifetime", thresholds: [{ value: 3000, code: "big" }] } });
    await org.api("POST", alertsUrl(sub), {
      alert: { alert_type: "billable_metric_lifetime_usage_units", code: "life_units", billable_metric_code: calls, thresholds: [{ value: 1500, code: "lu" }] },
    });

    await org.freeze("2026-01-02T00:00:00Z");
    expect(await triggered(org)).toEqual([]);
    expect((await org.api("GET", `${alertsUrl(sub)}/spend`)).alert).toMatchObject({ previous_value: 0, last_processed_at: "2026-01-02T00:00:00Z" });

    // 150 calls (€7.50): past 100 units, short of €10.
    await org.freeze("2026-01-03T10:00:00Z");
    await sendCalls(org, sub, calls, 150, "2026-01-03T10:00:00Z");
    await org.freeze("2026-01-03T12:00:00Z");
    let sent = await triggered(org);
    expect(sent).toHaveLength(1);
    const units = sent[0];
    expect(units).toMatchObject({
      external_subscription_id: sub,
      external_customer_id: cus,
      billable_metric_code: calls,
      alert_type: "billable_metric_current_usage_units",
      alert_code: "units",
      alert_name: null,
      previous_value: 0,
      current_value: 150,
      triggered_at: "2026-01-03T12:00:00Z",
      crossed_thresholds: [{ code: "many", value: "100.0", recurring: false }],
    });
    const unitsAlert = (await org.api("GET", `${alertsUrl(sub)}/units`)).alert;
    expect(units.lago_alert_id).toBe(unitsAlert.lago_id);
    expect(units.lago_organization_id).toBe(unitsAlert.lago_organization_id);
    expect(units.lago_subscription_id).toBe((await org.api("GET", `/api/v1/subscriptions/${sub}`)).subscription.lago_id);
    expect(unitsAlert).toMatchObject({ previous_value: 150, last_processed_at: "2026-01-03T12:00:00Z" });

    // The same time again, and two more runs at once: nothing new crossed.
    await org.freeze("2026-01-03T12:00:00Z");
    await Promise.all([t.app.alerts.runDue({ orgId: org.orgId }), t.app.alerts.runDue({ orgId: org.orgId })]);
    expect(await triggered(org)).toHaveLength(1);

    // 100 more (€12.50): past €10.
    await org.freeze("2026-01-04T10:00:00Z");
    await sendCalls(org, sub, calls, 100, "2026-01-04T10:00:00Z");
    await org.freeze("2026-01-04T12:00:00Z");
    sent = await triggered(org);
    expect(sent).toHaveLength(2);
    expect(sent[1]).toMatchObject({
      alert_code: "spend",
      alert_name: "Spend",
      alert_type: "current_usage_amount",
      billable_metric_code: null,
      previous_value: 750,
      current_value: 1250,
      crossed_thresholds: [{ code: "soft", value: "1000.0", recurring: false }],
    });

    // 500 more (€37.50): past €20 and the first recurring step (€35) in one run; lifetime past €30.
    await org.freeze("2026-01-05T10:00:00Z");
    await sendCalls(org, sub, calls, 500, "2026-01-05T10:00:00Z");
    await org.freeze("2026-01-05T12:00:00Z");
    sent = await triggered(org);
    expect(sent).toHaveLength(4);
    expect(sent.slice(2).map((s) => [s.alert_code, s.previous_value, s.current_value, s.crossed_thresholds])).toEqual([
      ["lifetime", 1250, 3750, [{ code: "big", value: "3000.0", recurring: false }]],
      [
        "spend",
        1250,
        3750,
        [
          { code: "hard", value: "2000.0", recurring: false },
          { code: "every", value: "3500.0", recurring: true },
        ],
      ],
    ]);

    // 700 more (€72.50): the recurring threshold again at €50 and €65.
    await org.freeze("2026-01-06T10:00:00Z");
    await sendCalls(org, sub, calls, 700, "2026-01-06T10:00:00Z");
    await org.freeze("2026-01-06T12:00:00Z");
    sent = await triggered(org);
    expect(sent).toHaveLength(5);
    expect(sent[4]).toMatchObject({
      alert_code: "spend",
      previous_value: 3750,
      current_value: 7250,
      crossed_thresholds: [
        { code: "every", value: "5000.0", recurring: true },
        { code: "every", value: "6500.0", recurring: true },
      ],
    });

    // February: January is invoiced; the current-usage alerts start from 0, the lifetime ones keep
    // January's €72.50 and 1,450 calls (now invoiced).
    await org.freeze("2026-02-01T00:00:00Z");
    expect(await triggered(org)).toHaveLength(5);
    expect((await org.api("GET", `${alertsUrl(sub)}/spend`)).alert.previous_value).toBe(0);
    expect((await org.api("GET", `${alertsUrl(sub)}/lifetime`)).alert.previous_value).toBe(7250);
    expect((await org.api("GET", `${alertsUrl(sub)}/life_units`)).alert.previous_value).toBe(1450);
    await org.freeze("2026-02-02T10:00:00Z");
    await sendCalls(org, sub, calls, 250, "2026-02-02T10:00:00Z");
    await org.freeze("2026-02-02T12:00:00Z");
    sent = await triggered(org);
    expect(sent).toHaveLength(8);
    expect(sent.slice(5).map((s) => [s.alert_code, s.previous_value, s.current_value, s.crossed_thresholds.map((c: any) => c.code)])).toEqual([
      ["life_units", 1450, 1700, ["lu"]],
      ["spend", 0, 1250, ["soft"]],
      ["units", 0, 250, ["many"]],
    ]);
    expect((await org.api("GET", `${alertsUrl(sub)}/lifetime`)).alert.previous_value).toBe(8500);
  });

  it("still reports a crossing made in the last moments of a period the clock jumped past", async () => {
    const { org, calls, sub } = await setup();
    await org.api("POST", alertsUrl(sub), { alert: { alert_type: "current_usage_amount", code: "spend", thresholds: [{ value: 1000, code: "soft" }] } });
    await org.freeze("2026-01-31T20:00:00Z");
    await sendCalls(org, sub, calls, 300, "2026-01-31T21:00:00Z");
    // Straight to February 2nd: January's €15 crossed €10 after the last evaluation.
    await org.freeze("2026-02-02T00:00:00Z");
    const sent = await triggered(org);
    expect(sent.map((s) => [s.previous_value, s.current_value, s.triggered_at, s.crossed_thresholds])).toEqual([
      [0, 1500, "2026-02-02T00:00:00Z", [{ code: "soft", value: "1000.0", recurring: false }]],
    ]);
    expect((await org.api("GET", `${alertsUrl(sub)}/spend`)).alert.previous_value).toBe(0);
    await org.freeze("2026-02-03T00:00:00Z");
    expect(await triggered(org)).toHaveLength(1);
  });

  it("reports a crossing once when two processes evaluate at the same time", async () => {
    const { org, calls, sub } = await setup();
    await org.api("POST", alertsUrl(sub), { alert: { alert_type: "current_usage_amount", code: "spend", thresholds: [{ value: 1000 }] } });
    await org.freeze("2026-01-03T10:00:00Z");
    await sendCalls(org, sub, calls, 300, "2026-01-03T10:00:00Z");
    // Another process's evaluator on the same database.
    const a = t.app;
    const other = new AlertService(
      t.db,
      a.testClock,
      t.clock,
      { subscriptions: a.subscriptions, catalog: a.catalog, metering: a.metering, enqueueWebhook: a.webhooks.service.enqueue },
      { pollMs: 60_000 },
    );
    const runs = await Promise.all([a.alerts.runDue({ orgId: org.orgId }), other.runDue({ orgId: org.orgId }), other.runDue({ orgId: org.orgId })]);
    expect(runs.reduce((n, r) => n + r.triggered, 0)).toBe(1);
    expect(runs.every((r) => r.failed === 0)).toBe(true);
    const sent = await triggered(org);
    expect(sent.map((s) => [s.previous_value, s.current_value])).toEqual([[0, 1500]]);
    await other.stop();
  });

  it("evaluates in the background, without a clock move", async () => {
    const { org, calls, sub } = await setup("");
    await sendCalls(org, sub, calls, 300, new Date(t.clock.now()).toISOString());
    await org.api("POST", alertsUrl(sub), { alert: { alert_type: "current_usage_amount", code: uid("bg"), thresholds: [{ value: 1000 }] } });
    await waitFor(async () => (await triggered(org)).length === 1, "the background loop's alert.triggered");
    expect((await triggered(org))[0]).toMatchObject({ previous_value: 0, current_value: 1500 });
  });

  it("changing the watched metric starts the alert over; a deleted metric takes its alerts with it", async () => {
    const { org, calls, sub } = await setup();
    const other = (await org.api("POST", "/api/v1/billable_metrics", { billable_metric: { name: "Other", code: uid("other"), aggregation_type: "count_agg" } }))
      .billable_metric;
    await org.api("POST", alertsUrl(sub), {
      alert: { alert_type: "billable_metric_current_usage_units", code: "units", billable_metric_code: calls, thresholds: [{ value: 10 }] },
    });
    await org.freeze("2026-01-03T10:00:00Z");
    await sendCalls(org, sub, calls, 20, "2026-01-03T10:00:00Z");
    await org.freeze("2026-01-03T12:00:00Z");
    expect(await triggered(org)).toHaveLength(1);
    const moved = (await org.api("PUT", `${alertsUrl(sub)}/units`, { alert: { billable_metric_code: other.code } })).alert;
    expect(moved).toMatchObject({ previous_value: 0, billable_metric: { code: other.code } });
    expect422(await org.raw("PUT", `${alertsUrl(sub)}/units`, { alert: { billable_metric_code: "missing" } }), "billable_metric_code");

    await org.api("DELETE", `/api/v1/billable_metrics/${other.code}`);
    expect((await org.raw("GET", `${alertsUrl(sub)}/units`)).statusCode).toBe(404);
  });
});
