// Webhooks: endpoints (Lago's shapes, through the official client), the transactional outbox,
// signed at-least-once delivery to a real receiver on 127.0.0.1 that fails at first, retries under
// the test's clock, failure and manual retry, validation, and isolation between organizations.
import crypto from "node:crypto";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { Client } from "lago-javascript-client";
import type { InjectOptions } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DeliveryWorker } from "../../src/modules/webhooks/index.ts";
import * as store from "../../src/modules/webhooks/store.ts";
import { startTestApp, type TestApp } from "../helpers/app.ts";
import { DB_KIND } from "../helpers/db.ts";
import { bearer, json, parseMetrics, scalar, uid } from "./support.ts";

const ADMIN_TOKEN = "admin-token-for-tests-0123456789";
const BASE_MS = 1_000;
const MAX_ATTEMPTS = 4;
const TIMEOUT_MS = 300;
const ISSUER = "https://billing.test";
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

// The README's verification recipe, verbatim: HMAC-SHA256 over the raw body bytes, base64.
function verifyLagoSignature(rawBody: Buffer, signatureHeader: string, hmacKey: string): boolean {
  const expected = crypto.createHmac("sha256", hmacKey).update(rawBody).digest();
  const given = Buffer.from(signatureHeader, "base64");
  return given.length === expected.length && crypto.timingSafeEqual(given, expected);
}

type Answer = number | "hang";

interface Received {
  path: string;
  key: string;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
  answer: Answer;
}

/** A webhook receiver on 127.0.0.1: each path answers the n-th request of a unique key as told. */
class Receiver {
  readonly received: Received[] = [];
  private readonly behaviours = new Map<string, (nth: number) => Answer>();
  private readonly seen = new Map<string, number>();
  private readonly server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const path = req.url ?? "/";
      const key = String(req.headers["x-lago-unique-key"]);
      const nth = (this.seen.get(key) ?? 0) + 1;
      this.seen.set(key, nth);
      const answer = (this.behaviours.get(path) ?? (() => 200))(nth);
      this.received.push({ path, key, headers: req.headers, body: Buffer.concat(chunks), answer });
      if (answer === "hang") return; // never answers: the sender's timeout ends it
      res.writeHead(answer, { "content-type": "text/plain" }).end(answer < 300 ? "ok" : "receiver is down");
    });
  });
  url = "";

  async start(): Promise<void> {
    await new Promise<void>((resolve) => this.server.listen(0, "127.0.0.1", resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }
  on(path: string, behaviour: (nth: number) => Answer): string {
    this.behaviours.set(path, behaviour);
    return this.url + path;
  }
  at(path: string): Received[] {
    return this.received.filter((r) => r.path === path);
  }
  /** The receiver's view after deduplicating on X-Lago-Unique-Key: what it processed (answered 2xx). */
  processed(path: string): Received[] {
    const byKey = new Map<string, Received>();
    for (const r of this.at(path)) if (typeof r.answer === "number" && r.answer < 300 && !byKey.has(r.key)) byKey.set(r.key, r);
    return [...byKey.values()];
  }
  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

let t: TestApp;
const receiver = new Receiver();

beforeAll(async () => {
  await receiver.start();
  t = await startTestApp({
    listen: true,
    env: {
      VALUEVERSE_ADMIN_TOKEN: ADMIN_TOKEN,
      // The test drives delivery: deliverDue() after moving the injected clock.
      WEBHOOK_WORKER: "off",
      WEBHOOK_RETRY_BASE_MS: String(BASE_MS),
      WEBHOOK_MAX_ATTEMPTS: String(MAX_ATTEMPTS),
      WEBHOOK_TIMEOUT_MS: String(TIMEOUT_MS),
      WEBHOOK_JWT_ISSUER: ISSUER,
    },
  });
});
afterAll(async () => {
  await t?.close();
  await receiver.close();
});

type Method = "GET" | "POST" | "PUT" | "DELETE";
const api = (method: Method, url: string, key: string, payload?: unknown) =>
  t.app.http.inject({ method, url, headers: bearer(key), ...(payload === undefined ? {} : { payload: payload as InjectOptions["payload"] }) });

async function createOrg(): Promise<{ key: string; publicId: string }> {
  const r = await t.app.http.inject({ method: "POST", url: "/admin/v1/organizations", headers: bearer(ADMIN_TOKEN), payload: { organization: { name: uid("Org") } } });
  expect(r.statusCode).toBe(200);
  return { key: json(r).api_key, publicId: json(r).organization.id };
}

async function createEndpoint(key: string, endpoint: Record<string, unknown>) {
  const r = await api("POST", "/api/v1/webhook_endpoints", key, { webhook_endpoint: endpoint });
  expect(r.statusCode, r.body).toBe(200);
  return json(r).webhook_endpoint;
}

async function deliveries(key: string, query = "") {
  const r = await api("GET", `/api/v1/webhooks${query ? `?${query}` : ""}`, key);
  expect(r.statusCode, r.body).toBe(200);
  return json(r).webhooks as any[];
}

/** Moves the server's clock past the longest wait after the `failed`-th failed attempt (jitter included). */
const pastRetry = (failed: number) => t.clock.advance(Math.ceil(BASE_MS * 4 ** (failed - 1) * 1.1) + 1);

describe(`webhooks on ${DB_KIND}`, () => {
  it("manages endpoints with the official Lago client, in Lago's shapes", async () => {
    const { key, publicId } = await createOrg();
    const lago = Client(key, { baseUrl: `${t.url}/api/v1` });
    const created = (
      await lago.webhookEndpoints.createWebhookEndpoint({
        webhook_endpoint: { webhook_url: "https://hooks.example.com/lago", signature_algo: "hmac", name: "prod", event_types: ["invoice.created"] },
      })
    ).data.webhook_endpoint;
    expect(created).toEqual({
      lago_id: expect.stringMatching(UUID),
      lago_organization_id: publicId,
      webhook_url: "https://hooks.example.com/lago",
      signature_algo: "hmac",
      name: "prod",
      event_types: ["invoice.created"],
      created_at: new Date(t.clock.now()).toISOString().replace(/\.\d{3}Z$/, "Z"),
    });
    // Without signature_algo, Lago's default: jwt.
    const second = (await lago.webhookEndpoints.createWebhookEndpoint({ webhook_endpoint: { webhook_url: "https://hooks.example.com/other" } })).data
      .webhook_endpoint;
    expect(second).toMatchObject({ signature_algo: "jwt", event_types: null, name: null });

    expect((await lago.webhookEndpoints.findWebhookEndpoint(created.lago_id)).data.webhook_endpoint).toEqual(created);
    const listed = (await lago.webhookEndpoints.findAllWebhookEndpoints({ per_page: 1 })).data;
    expect(listed.webhook_endpoints).toHaveLength(1);
    expect(listed.meta).toMatchObject({ total_count: 2, total_pages: 2, current_page: 1, next_page: 2 });

    const updated = (
      await lago.webhookEndpoints.updateWebhookEndpoint(created.lago_id, { webhook_endpoint: { webhook_url: "https://hooks.example.com/v2", event_types: null } })
    ).data.webhook_endpoint;
    expect(updated).toMatchObject({ lago_id: created.lago_id, webhook_url: "https://hooks.example.com/v2", signature_algo: "hmac", name: "prod", event_types: null });

    expect((await lago.webhookEndpoints.destroyWebhookEndpoint(created.lago_id)).data.webhook_endpoint.lago_id).toBe(created.lago_id);
    const gone = await api("GET", `/api/v1/webhook_endpoints/${created.lago_id}`, key);
    expect([gone.statusCode, json(gone)]).toEqual([404, { status: 404, error: "Not Found", code: "webhook_endpoint_not_found" }]);
  });

  it("refuses bad input with 4xx naming each field", async () => {
    const { key } = await createOrg();
    const bad = await api("POST", "/api/v1/webhook_endpoints", key, {
      webhook_endpoint: { webhook_url: "ftp://files.example.com", signature_algo: "rsa", name: 12, event_types: ["invoice.created", "invoice.exploded"] },
    });
    expect(bad.statusCode).toBe(422);
    expect(json(bad)).toEqual({
      status: 422,
      error: "Unprocessable Entity",
      code: "validation_errors",
      error_details: { webhook_url: ["url_invalid"], signature_algo: ["value_is_invalid"], name: ["value_is_invalid"], "event_types[1]": ["value_is_invalid"] },
    });
    expect(json(await api("POST", "/api/v1/webhook_endpoints", key, { webhook_endpoint: {} })).error_details).toEqual({ webhook_url: ["value_is_mandatory"] });
    const missing = await api("POST", "/api/v1/webhook_endpoints", key, { endpoint: {} });
    expect([missing.statusCode, json(missing).code]).toEqual([400, "missing_parameter"]);

    await createEndpoint(key, { webhook_url: "https://dup.example.com/h", signature_algo: "hmac" });
    const dup = await api("POST", "/api/v1/webhook_endpoints", key, { webhook_endpoint: { webhook_url: "https://dup.example.com/h" } });
    expect([dup.statusCode, json(dup).error_details]).toEqual([422, { webhook_url: ["value_already_exist"] }]);
    for (let i = 1; i < 10; i++) await createEndpoint(key, { webhook_url: `https://dup.example.com/h${i}` });
    const eleventh = await api("POST", "/api/v1/webhook_endpoints", key, { webhook_endpoint: { webhook_url: "https://dup.example.com/h11" } });
    expect([eleventh.statusCode, json(eleventh).error_details]).toEqual([422, { base: ["exceeded_limit"] }]);

    expect((await api("GET", "/api/v1/webhook_endpoints/not-a-uuid", key)).statusCode).toBe(404);
    expect((await api("PUT", `/api/v1/webhook_endpoints/${crypto.randomUUID()}`, key, { webhook_endpoint: { name: "x" } })).statusCode).toBe(404);
    const query = await api("GET", "/api/v1/webhooks?status=lost&per_page=0&webhook_endpoint_id=abc&webhook_type=invoice.nope", key);
    expect(query.statusCode).toBe(422);
    expect(Object.keys(json(query).error_details).sort()).toEqual(["per_page", "status", "webhook_endpoint_id", "webhook_type"]);
    expect((await api("GET", "/api/v1/webhooks/not-a-uuid", key)).statusCode).toBe(404);
  });

  it("delivers every event at least once to a receiver that fails at first (500, then a timeout), signed as documented", async () => {
    const { key, publicId } = await createOrg();
    // Every delivery: first attempt 500, second no answer (timeout), third 200.
    const url = receiver.on(`/flaky-${uid("r")}`, (nth) => (nth === 1 ? 500 : nth === 2 ? "hang" : 200));
    const path = new URL(url).pathname;
    const endpoint = await createEndpoint(key, { webhook_url: url, signature_algo: "hmac" });

    // Lago's customer, subscription and update events, each written with its change.
    const customerId = uid("cus");
    expect((await api("POST", "/api/v1/customers", key, { customer: { external_id: customerId, name: "Hooli" } })).statusCode).toBe(200);
    const planCode = uid("plan");
    const plan = await api("POST", "/api/v1/plans", key, { plan: { name: "Startup", code: planCode, interval: "monthly", amount_cents: 1_000, amount_currency: "EUR" } });
    expect(plan.statusCode, plan.body).toBe(200);
    const subscriptionId = uid("sub");
    const sub = await api("POST", "/api/v1/subscriptions", key, {
      subscription: { external_customer_id: customerId, plan_code: planCode, external_id: subscriptionId },
    });
    expect(sub.statusCode, sub.body).toBe(200);
    expect((await api("DELETE", `/api/v1/subscriptions/${subscriptionId}`, key)).statusCode).toBe(200);
    expect((await api("POST", "/api/v1/customers", key, { customer: { external_id: customerId, name: "Hooli XYZ" } })).statusCode).toBe(200);

    const expected = ["customer.created", "subscription.started", "subscription.terminated", "customer.updated"];
    const pending = await deliveries(key);
    expect(pending.map((d) => d.webhook_type).sort()).toEqual([...expected].sort());
    expect(pending.every((d) => d.status === "pending" && d.attempts_count === 0 && d.lago_webhook_endpoint_id === endpoint.lago_id)).toBe(true);

    await t.app.webhooks.worker.deliverDue(); // attempt 1: 500
    expect(receiver.at(path)).toHaveLength(4);
    expect((await deliveries(key)).map((d) => [d.status, d.http_status, d.error])).toEqual(Array(4).fill(["retrying", 500, "HTTP 500"]));
    await t.app.webhooks.worker.deliverDue(); // nothing is due before its wait is over
    expect(receiver.at(path)).toHaveLength(4);

    pastRetry(1);
    await t.app.webhooks.worker.deliverDue(); // attempt 2: no answer within the timeout
    expect(receiver.at(path)).toHaveLength(8);
    expect((await deliveries(key)).map((d) => [d.status, d.http_status, d.error])).toEqual(
      Array(4).fill(["retrying", null, `timeout: no answer within ${TIMEOUT_MS} ms`]),
    );

    pastRetry(2);
    await t.app.webhooks.worker.deliverDue(); // attempt 3: 200
    const done = await deliveries(key);
    expect(done.map((d) => [d.status, d.http_status, d.attempts_count, d.retries])).toEqual(Array(4).fill(["succeeded", 200, 3, 2]));

    // The receiver, deduplicating on X-Lago-Unique-Key, processed each event exactly once.
    const processed = receiver.processed(path);
    expect(processed.map((r) => JSON.parse(r.body.toString()).webhook_type).sort()).toEqual([...expected].sort());
    expect(new Set(processed.map((r) => r.key))).toEqual(new Set(done.map((d) => d.lago_id)));

    // Every attempt carried the same body, Lago's headers, and a signature the README's recipe verifies.
    const hmacKey = json(await api("GET", "/api/v1/webhooks/hmac_key", key)).webhook.hmac_key;
    expect(hmacKey).toMatch(/^whsec_/);
    for (const r of receiver.at(path)) {
      expect(r.headers["content-type"]).toBe("application/json");
      expect(r.headers["x-lago-signature-algorithm"]).toBe("hmac");
      expect(verifyLagoSignature(r.body, String(r.headers["x-lago-signature"]), hmacKey)).toBe(true);
      expect(verifyLagoSignature(r.body, String(r.headers["x-lago-signature"]), hmacKey + "x")).toBe(false);
    }
    for (const d of done) expect(new Set(receiver.at(path).filter((r) => r.key === d.lago_id).map((r) => r.body.toString())).size).toBe(1);

    // Lago's envelope, the object under its type; subscription webhooks carry the plan and the customer.
    const bodies = Object.fromEntries(processed.map((r) => [JSON.parse(r.body.toString()).webhook_type, JSON.parse(r.body.toString())]));
    expect(bodies["customer.created"]).toMatchObject({
      webhook_type: "customer.created",
      object_type: "customer",
      organization_id: publicId,
      customer: { external_id: customerId, name: "Hooli" },
    });
    expect(bodies["customer.updated"].customer).toMatchObject({ external_id: customerId, name: "Hooli XYZ" });
    expect(bodies["subscription.started"]).toMatchObject({
      object_type: "subscription",
      subscription: { external_id: subscriptionId, status: "active", plan: { code: planCode }, customer: { external_id: customerId } },
    });
    expect(bodies["subscription.terminated"].subscription).toMatchObject({ external_id: subscriptionId, status: "terminated" });

    // The delivery record lists each attempt.
    const record = json(await api("GET", `/api/v1/webhooks/${done[0].lago_id}`, key)).webhook;
    expect(record.attempts.map((a: any) => [a.attempt, a.http_status, a.error, a.endpoint])).toEqual([
      [1, 500, "HTTP 500", url],
      [2, null, `timeout: no answer within ${TIMEOUT_MS} ms`, url],
      [3, 200, null, url],
    ]);
    expect(record.attempts[1].duration_ms).toBeGreaterThanOrEqual(TIMEOUT_MS - 50);
    expect(record).toMatchObject({ status: "succeeded", response: "ok", delivered_at: expect.any(String), next_attempt_at: null });
  });

  it("reports subscriptions that start or end as time passes, on upgrades and when their customer is deleted", async () => {
    const { key } = await createOrg();
    await createEndpoint(key, { webhook_url: receiver.on(`/lifecycle-${uid("r")}`, () => 200), signature_algo: "hmac", event_types: ["subscription.started", "subscription.terminated"] });
    const plan = async (amount: number) => {
      const code = uid("plan");
      const r = await api("POST", "/api/v1/plans", key, { plan: { name: code, code, interval: "monthly", amount_cents: amount, amount_currency: "EUR" } });
      expect(r.statusCode, r.body).toBe(200);
      return code;
    };
    const [small, big] = [await plan(1_000), await plan(5_000)];
    const customerId = uid("cus");
    const [later, ending, upgraded] = [uid("later"), uid("ending"), uid("upgraded")];
    const day = 86_400_000;
    const at = (ms: number) => new Date(ms).toISOString().replace(/\.\d{3}Z$/, "Z");
    const subscribe = async (externalId: string, planCode: string, extra: Record<string, unknown> = {}) => {
      const r = await api("POST", "/api/v1/subscriptions", key, { subscription: { external_customer_id: customerId, plan_code: planCode, external_id: externalId, ...extra } });
      expect(r.statusCode, r.body).toBe(200);
    };
    await subscribe(later, small, { subscription_at: at(t.clock.now() + 2 * day) });
    await subscribe(ending, small, { ending_at: at(t.clock.now() + 2 * day) });
    await subscribe(upgraded, small);
    await subscribe(upgraded, big); // an upgrade: the current one terminates, the new one starts
    const seen = async () => (await deliveries(key)).map((d) => `${d.webhook_type} ${d.payload.subscription.external_id} ${d.payload.subscription.plan_code}`).sort();
    expect(await seen()).toEqual(
      [`subscription.started ${ending} ${small}`, `subscription.started ${upgraded} ${small}`, `subscription.terminated ${upgraded} ${small}`, `subscription.started ${upgraded} ${big}`].sort(),
    );

    t.clock.advance(3 * day);
    // Transitions that time made due are applied (and reported) on the next read.
    expect((await api("GET", `/api/v1/subscriptions?external_customer_id=${customerId}`, key)).statusCode).toBe(200);
    expect((await api("DELETE", `/api/v1/customers/${customerId}`, key)).statusCode).toBe(200);
    expect(await seen()).toEqual(
      [
        `subscription.started ${ending} ${small}`,
        `subscription.terminated ${ending} ${small}`,
        `subscription.started ${later} ${small}`,
        `subscription.terminated ${later} ${small}`,
        `subscription.started ${upgraded} ${small}`,
        `subscription.terminated ${upgraded} ${small}`,
        `subscription.started ${upgraded} ${big}`,
        `subscription.terminated ${upgraded} ${big}`,
      ].sort(),
    );
  });

  it("marks a delivery failed after its last attempt, shows it, and resends it on request", async () => {
    const { key } = await createOrg();
    let up = false;
    const url = receiver.on(`/down-${uid("r")}`, () => (up ? 204 : 503));
    const path = new URL(url).pathname;
    await createEndpoint(key, { webhook_url: url, signature_algo: "hmac" });
    await api("POST", "/api/v1/customers", key, { customer: { external_id: uid("cus") } });

    await t.app.webhooks.worker.deliverDue();
    for (let failed = 1; failed < MAX_ATTEMPTS; failed++) {
      pastRetry(failed);
      await t.app.webhooks.worker.deliverDue();
    }
    expect(receiver.at(path)).toHaveLength(MAX_ATTEMPTS);
    const [failed] = await deliveries(key, "status=failed");
    expect(failed).toMatchObject({ status: "failed", attempts_count: MAX_ATTEMPTS, http_status: 503, next_attempt_at: null, response: "receiver is down" });
    pastRetry(MAX_ATTEMPTS);
    await t.app.webhooks.worker.deliverDue();
    expect(receiver.at(path)).toHaveLength(MAX_ATTEMPTS); // given up: no more attempts

    const metrics = parseMetrics((await t.app.http.inject({ method: "GET", url: "/metrics" })).body);
    expect(metrics.get('webhook_deliveries_total{status="failed"}')).toBeGreaterThanOrEqual(1);
    expect(metrics.get('webhook_deliveries_total{status="retrying"}')).toBeGreaterThanOrEqual(MAX_ATTEMPTS - 1);
    expect(metrics.get("webhook_delivery_seconds_count")).toBeGreaterThanOrEqual(MAX_ATTEMPTS);
    expect(metrics.has("webhook_outbox_pending")).toBe(true);

    up = true;
    const retried = await api("POST", `/api/v1/webhooks/${failed.lago_id}/retry`, key);
    expect([retried.statusCode, json(retried).webhook.status]).toEqual([200, "retrying"]);
    await t.app.webhooks.worker.deliverDue();
    expect(receiver.at(path).map((r) => r.key)).toEqual(Array(MAX_ATTEMPTS + 1).fill(failed.lago_id));
    expect((await deliveries(key))[0]).toMatchObject({ status: "succeeded", http_status: 204, attempts_count: MAX_ATTEMPTS + 1 });
    const again = await api("POST", `/api/v1/webhooks/${failed.lago_id}/retry`, key);
    expect([again.statusCode, json(again)]).toEqual([405, { status: 405, error: "Method Not Allowed", code: "is_succeeded" }]);
  });

  it("writes an outbox row if and only if the enqueuing transaction commits, one per endpoint taking the type", async () => {
    const { key, publicId } = await createOrg();
    const orgId = await scalar(t.db, "SELECT id AS n FROM organizations WHERE public_id = $1", [publicId]);
    const all = await createEndpoint(key, { webhook_url: receiver.on(`/all-${uid("r")}`, () => 200), signature_algo: "hmac" });
    const invoicesOnly = await createEndpoint(key, { webhook_url: receiver.on(`/inv-${uid("r")}`, () => 200), event_types: ["invoice.created"] });
    await createEndpoint(key, { webhook_url: receiver.on(`/none-${uid("r")}`, () => 200), event_types: ["wallet.created"] });
    const rows = () => scalar(t.db, "SELECT count(*)::text AS n FROM webhooks WHERE org_id = $1", [orgId]);
    const invoice = { lago_id: crypto.randomUUID(), number: "INV-001", total_amount_cents: 1000 };

    await expect(
      t.db.transaction(async (tx) => {
        expect(await t.app.webhooks.service.enqueue(tx, orgId, "invoice.created", "invoice", invoice)).toBe(2);
        throw new Error("the invoice could not be saved");
      }),
    ).rejects.toThrow(/could not be saved/);
    expect(await rows()).toBe(0);

    await t.db.transaction((tx) => t.app.webhooks.service.enqueue(tx, orgId, "invoice.created", "invoice", invoice));
    await t.db.transaction((tx) => t.app.webhooks.service.enqueue(tx, orgId, "invoice.voided", "invoice", invoice));
    expect(await rows()).toBe(3);
    const byEndpoint = (await deliveries(key)).map((d) => [d.lago_webhook_endpoint_id, d.webhook_type, d.object_id]);
    expect(byEndpoint.sort()).toEqual(
      [
        [all.lago_id, "invoice.created", invoice.lago_id],
        [all.lago_id, "invoice.voided", invoice.lago_id],
        [invoicesOnly.lago_id, "invoice.created", invoice.lago_id],
      ].sort(),
    );
    expect((await deliveries(key, `webhook_endpoint_id=${invoicesOnly.lago_id}`)).map((d) => d.webhook_type)).toEqual(["invoice.created"]);
    expect((await deliveries(key, `object_id=${invoice.lago_id}&webhook_type=invoice.voided`)).map((d) => d.webhook_type)).toEqual(["invoice.voided"]);
  });

  it("sends again a delivery whose worker died mid-attempt, once its claim expires (at least once)", async () => {
    const { key } = await createOrg();
    const url = receiver.on(`/crash-${uid("r")}`, () => 200);
    const path = new URL(url).pathname;
    await createEndpoint(key, { webhook_url: url, signature_algo: "hmac" });
    await api("POST", "/api/v1/customers", key, { customer: { external_id: uid("cus") } });

    // A worker claims the due deliveries and dies before sending or recording anything.
    const now = t.clock.now();
    const claimed = await store.claimDue(t.db, new Date(now), crypto.randomUUID(), new Date(now + 60_000), 1000);
    expect(claimed.length).toBeGreaterThanOrEqual(1);
    await t.app.webhooks.worker.deliverDue();
    expect(receiver.at(path)).toHaveLength(0); // still claimed

    t.clock.advance(60_001);
    await t.app.webhooks.worker.deliverDue();
    expect(receiver.at(path)).toHaveLength(1);
    expect((await deliveries(key))[0]).toMatchObject({ status: "succeeded", attempts_count: 1 });
  });

  it("shares the outbox between concurrent workers without sending a delivery twice", async () => {
    const { key } = await createOrg();
    const url = receiver.on(`/shared-${uid("r")}`, () => 200);
    const path = new URL(url).pathname;
    await createEndpoint(key, { webhook_url: url, signature_algo: "hmac" });
    for (let i = 0; i < 40; i++) await api("POST", "/api/v1/customers", key, { customer: { external_id: uid("cus") } });

    const options = { timeoutMs: 2_000, pollMs: 1_000, retryBaseMs: BASE_MS, jwtIssuer: ISSUER, batchSize: 4 };
    const workers = [0, 1, 2].map(() => new DeliveryWorker(t.db, t.clock, t.app.webhooks.service, { attempt() {} }, options));
    // The app's own worker answers timeouts on its short test timeout (a slow answer is a failed
    // attempt there, correctly retried later), so the three workers with a 2 s timeout share the work.
    const runs = await Promise.all(workers.map((w) => w.deliverDue()));
    // A pass may end while rows are claimed by another worker; one more pass picks up any leftovers.
    // What matters: every delivery sent, none twice.
    const rest = await workers[0]!.deliverDue();
    expect(runs.reduce((n, r) => n + r.succeeded, 0) + rest.succeeded).toBe(40);
    const keys = receiver.at(path).map((r) => r.key);
    expect(keys).toHaveLength(40);
    expect(new Set(keys).size).toBe(40);
    expect((await deliveries(key, "status=succeeded&per_page=100")).length).toBe(40);
  });

  it("signs jwt endpoints with RS256 over Lago's claims, verifiable with the organization's public key", async () => {
    const { key } = await createOrg();
    const url = receiver.on(`/jwt-${uid("r")}`, () => 200);
    const path = new URL(url).pathname;
    await createEndpoint(key, { webhook_url: url, signature_algo: "jwt" });
    await api("POST", "/api/v1/customers", key, { customer: { external_id: uid("cus") } });
    await t.app.webhooks.worker.deliverDue();

    const lago = Client(key, { baseUrl: `${t.url}/api/v1` });
    const publicKey = Buffer.from((await lago.webhooks.fetchJsonPublicKey()).data.webhook.public_key, "base64").toString("utf8");
    const plain = await api("GET", "/api/v1/webhooks/public_key", key);
    expect(Buffer.from(plain.body, "base64").toString("utf8")).toBe(publicKey);

    const [r] = receiver.at(path);
    expect(r!.headers["x-lago-signature-algorithm"]).toBe("jwt");
    const [header, claims, signature] = String(r!.headers["x-lago-signature"]).split(".") as [string, string, string];
    expect(crypto.verify("sha256", Buffer.from(`${header}.${claims}`), publicKey, Buffer.from(signature, "base64url"))).toBe(true);
    expect(JSON.parse(Buffer.from(claims, "base64url").toString())).toEqual({ data: r!.body.toString("utf8"), iss: ISSUER });
  });

  it("keeps organizations apart: another organization cannot see, change, retry or receive the first one's webhooks", async () => {
    const a = await createOrg();
    const b = await createOrg();
    const urlA = receiver.on(`/tenant-a-${uid("r")}`, () => 500);
    const endpointA = await createEndpoint(a.key, { webhook_url: urlA, signature_algo: "hmac" });
    await api("POST", "/api/v1/customers", a.key, { customer: { external_id: uid("cus") } });
    await api("POST", "/api/v1/customers", b.key, { customer: { external_id: uid("cus") } });
    const [deliveryA] = await deliveries(a.key);
    expect(deliveryA).toBeDefined();

    for (const [method, url, body] of [
      ["GET", `/api/v1/webhook_endpoints/${endpointA.lago_id}`, undefined],
      ["PUT", `/api/v1/webhook_endpoints/${endpointA.lago_id}`, { webhook_endpoint: { webhook_url: "https://evil.example.com/steal" } }],
      ["DELETE", `/api/v1/webhook_endpoints/${endpointA.lago_id}`, undefined],
      ["GET", `/api/v1/webhooks/${deliveryA.lago_id}`, undefined],
      ["POST", `/api/v1/webhooks/${deliveryA.lago_id}/retry`, {}],
    ] as const) {
      const r = await api(method, url, b.key, body);
      expect([method, url, r.statusCode]).toEqual([method, url, 404]);
    }
    expect(json(await api("GET", "/api/v1/webhook_endpoints", b.key)).webhook_endpoints).toEqual([]);
    expect(await deliveries(b.key)).toEqual([]);
    expect(await deliveries(b.key, `webhook_endpoint_id=${endpointA.lago_id}`)).toEqual([]);
    // B's customer went to no one; A's endpoint is unchanged; the keys differ.
    expect((await deliveries(a.key)).map((d) => d.lago_id)).toEqual([deliveryA.lago_id]);
    expect(json(await api("GET", `/api/v1/webhook_endpoints/${endpointA.lago_id}`, a.key)).webhook_endpoint.webhook_url).toBe(urlA);
    const keyA = json(await api("GET", "/api/v1/webhooks/hmac_key", a.key)).webhook.hmac_key;
    const keyB = json(await api("GET", "/api/v1/webhooks/hmac_key", b.key)).webhook.hmac_key;
    expect(keyA).not.toBe(keyB);
  });
});

describe(`the delivery worker in the server process on ${DB_KIND}`, () => {
  it("sends new webhooks by itself, without anyone calling deliverDue", async () => {
    const own = await startTestApp({ env: { WEBHOOK_POLL_MS: "50", WEBHOOK_TIMEOUT_MS: "2000" } });
    try {
      const url = receiver.on(`/background-${uid("r")}`, () => 200);
      const path = new URL(url).pathname;
      const r = await own.app.http.inject({
        method: "POST",
        url: "/api/v1/webhook_endpoints",
        headers: bearer(own.apiKey),
        payload: { webhook_endpoint: { webhook_url: url, signature_algo: "hmac" } },
      });
      expect(r.statusCode).toBe(200);
      await own.app.http.inject({ method: "POST", url: "/api/v1/customers", headers: bearer(own.apiKey), payload: { customer: { external_id: uid("cus") } } });
      const until = Date.now() + 10_000;
      while (receiver.at(path).length === 0 && Date.now() < until) await new Promise((resolve) => setTimeout(resolve, 20));
      expect(receiver.at(path).map((x) => JSON.parse(x.body.toString()).webhook_type)).toEqual(["customer.created"]);
    } finally {
      await own.close();
    }
  });
});
