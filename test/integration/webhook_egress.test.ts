// WEBHOOK_PRIVATE_NETWORKS=deny (the default): an endpoint on a loopback or private address is
// refused when it is created or changed (422 naming webhook_url), and a delivery whose address turns
// out private when it is sent (a URL stored before, a name that resolves there) never reaches it:
// the attempt records why and is retried like any failure. On PGlite by default, PostgreSQL with TEST_DATABASE_URL.
import http from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestApp, type TestApp } from "../helpers/app.ts";
import { bearer, json, uid } from "./support.ts";

const ADMIN_TOKEN = "admin-token-for-egress-tests-0123456789";
let t: TestApp;
let hits = 0;
const receiver = http.createServer((_req, res) => {
  hits++;
  res.end("ok");
});
let receiverUrl = "";

beforeAll(async () => {
  await new Promise<void>((r) => receiver.listen(0, "127.0.0.1", r));
  receiverUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`;
  t = await startTestApp({
    env: { VALUEVERSE_ADMIN_TOKEN: ADMIN_TOKEN, WEBHOOK_PRIVATE_NETWORKS: "deny", WEBHOOK_WORKER: "off", WEBHOOK_MAX_ATTEMPTS: "3", WEBHOOK_TIMEOUT_MS: "2000" },
  });
});
afterAll(async () => {
  await t?.close();
  receiver.closeAllConnections();
  await new Promise<void>((r) => receiver.close(() => r()));
});

const api = (method: "GET" | "POST" | "PUT", url: string, key: string, payload?: object) =>
  t.app.http.inject({ method, url, headers: bearer(key), ...(payload ? { payload } : {}) });

async function createOrg(): Promise<string> {
  const r = await t.app.http.inject({ method: "POST", url: "/admin/v1/organizations", headers: bearer(ADMIN_TOKEN), payload: { organization: { name: uid("Org") } } });
  expect(r.statusCode).toBe(200);
  return json(r).api_key;
}

describe("webhook egress under WEBHOOK_PRIVATE_NETWORKS=deny", () => {
  it("refuses loopback, private, link-local and localhost URLs at creation and update, naming webhook_url", async () => {
    const key = await createOrg();
    for (const url of [receiverUrl, "http://10.0.0.5/h", "http://169.254.169.254/latest/meta-data", "http://localhost:8080/h", "http://[::1]/h"]) {
      const r = await api("POST", "/api/v1/webhook_endpoints", key, { webhook_endpoint: { webhook_url: url } });
      expect([r.statusCode, json(r).code, json(r).error_details], url).toEqual([422, "validation_errors", { webhook_url: ["private_address_not_allowed"] }]);
    }
    const ok = await api("POST", "/api/v1/webhook_endpoints", key, { webhook_endpoint: { webhook_url: "https://hooks.example.com/lago" } });
    expect(ok.statusCode).toBe(200);
    const id = json(ok).webhook_endpoint.lago_id;
    const moved = await api("PUT", `/api/v1/webhook_endpoints/${id}`, key, { webhook_endpoint: { webhook_url: "http://192.168.1.10/h" } });
    expect([moved.statusCode, json(moved).error_details]).toEqual([422, { webhook_url: ["private_address_not_allowed"] }]);
    // A change that keeps the URL is not judged again.
    expect((await api("PUT", `/api/v1/webhook_endpoints/${id}`, key, { webhook_endpoint: { name: "prod" } })).statusCode).toBe(200);
  });

  it("a delivery to a private address is not sent: the attempt records why and the delivery is retried", async () => {
    const key = await createOrg();
    const created = await api("POST", "/api/v1/webhook_endpoints", key, { webhook_endpoint: { webhook_url: "https://hooks.example.com/x", signature_algo: "hmac" } });
    const endpointId = json(created).webhook_endpoint.lago_id;
    // As if the URL had been stored before the policy (or its name now resolved here): the local receiver.
    await t.db.query("UPDATE webhook_endpoints SET webhook_url = $1 WHERE lago_id = $2", [receiverUrl, endpointId]);
    expect((await api("POST", "/api/v1/customers", key, { customer: { external_id: uid("cus"), name: "Hooli" } })).statusCode).toBe(200);

    const before = hits;
    await t.app.webhooks.worker.deliverDue();
    expect(hits).toBe(before);
    const listed = json(await api("GET", "/api/v1/webhooks", key)).webhooks as any[];
    expect(listed).toHaveLength(1);
    expect(listed[0]).toMatchObject({ status: "retrying", http_status: null });
    expect(listed[0].error).toMatch(/^blocked: 127\.0\.0\.1 is a private address/);
  });
});
