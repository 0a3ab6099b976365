// What the billing scenarios share: the real server with the test clock on (scheduler off, workers
// polling every 100 ms), the Lago client, the organization's clock, and a webhook receiver on
// 127.0.0.1 that keeps what it is sent and checks signatures with the README's recipe.
import crypto from "node:crypto";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { Client } from "lago-javascript-client";
import { afterAll, beforeAll, expect } from "vitest";
import { call } from "./http.ts";
import { createDataTarget, killAllServers, randomKey, startServer, type DataTarget, type ServerProcess } from "./server.ts";

export type LagoClient = ReturnType<typeof Client>;

/** The README's verification recipe. */
export function verifyLagoSignature(rawBody: Buffer, signatureHeader: string, hmacKey: string): boolean {
  const expected = crypto.createHmac("sha256", hmacKey).update(rawBody).digest();
  const given = Buffer.from(signatureHeader, "base64");
  return given.length === expected.length && crypto.timingSafeEqual(given, expected);
}

export interface ReceivedWebhook {
  key: string;
  signature: string;
  algorithm: string;
  body: Buffer;
  json: any;
}

/** Lago's webhooks as a receiver sees them; answers 200 to everything. */
export class WebhookReceiver {
  readonly received: ReceivedWebhook[] = [];
  /** The organization's HMAC key, for `signedWith`. */
  hmacKey = "";
  url = "";
  private readonly server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const body = Buffer.concat(chunks);
      this.received.push({
        key: String(req.headers["x-lago-unique-key"]),
        signature: String(req.headers["x-lago-signature"]),
        algorithm: String(req.headers["x-lago-signature-algorithm"]),
        body,
        json: JSON.parse(body.toString("utf8")),
      });
      res.writeHead(200).end("ok");
    });
  });

  async start(): Promise<void> {
    await new Promise<void>((resolve) => this.server.listen(0, "127.0.0.1", resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/lago`;
  }

  /** The webhooks of `type` (that `pick` takes), deduplicated on X-Lago-Unique-Key as the README tells receivers to. */
  of(type: string, pick: (json: any) => boolean = () => true): ReceivedWebhook[] {
    const seen = new Set<string>();
    return this.received.filter((r) => r.json.webhook_type === type && pick(r.json) && !seen.has(r.key) && (seen.add(r.key), true));
  }

  /** Whether `r` carries a valid HMAC signature under `hmacKey`. */
  signedWith(r: ReceivedWebhook): boolean {
    return verifyLagoSignature(r.body, r.signature, this.hmacKey);
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

/** Reads until `ok` (every 50 ms), failing with the last value after `timeoutMs`. */
export async function eventually<T>(what: string, read: () => Promise<T>, ok: (v: T) => boolean, timeoutMs = 20_000): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const v = await read();
    if (ok(v)) return v;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}: ${JSON.stringify(v)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Unix seconds, as Lago's event timestamps. */
export const at = (iso: string) => Date.parse(iso) / 1000;

export interface Scenario {
  readonly apiKey: string;
  readonly receiver: WebhookReceiver;
  /** Set by the suite's beforeAll. */
  server: ServerProcess;
  lago: LagoClient;
  /** Freezes the organization's test clock at `iso` (moving it runs what falls due). */
  freeze(iso: string): Promise<void>;
  /** Sends the organization's webhooks to the receiver (HMAC-signed), and gives it the key. */
  addWebhookEndpoint(): ReturnType<LagoClient["webhookEndpoints"]["createWebhookEndpoint"]>;
}

/**
 * Registers the suite's beforeAll (receiver, data target, server, client) and afterAll; call it in
 * a describe block. `env` adds to (or overrides) the server's environment.
 */
export function scenario(env: Record<string, string> = {}): Scenario {
  let target: DataTarget | undefined;
  const s = {
    apiKey: randomKey(),
    receiver: new WebhookReceiver(),
    async freeze(iso: string): Promise<void> {
      const r = await call(s.server.url, "PUT", "/api/v1/test_clock", { apiKey: s.apiKey, body: { test_clock: { frozen_time: iso } } });
      expect(r.status, JSON.stringify(r.body)).toBe(200);
    },
    async addWebhookEndpoint() {
      const endpoint = await s.lago.webhookEndpoints.createWebhookEndpoint({ webhook_endpoint: { webhook_url: s.receiver.url, signature_algo: "hmac" } });
      s.receiver.hmacKey = (await call(s.server.url, "GET", "/api/v1/webhooks/hmac_key", { apiKey: s.apiKey })).body.webhook.hmac_key;
      return endpoint;
    },
  } as Scenario;

  beforeAll(async () => {
    await s.receiver.start();
    target = await createDataTarget();
    s.server = await startServer({
      target,
      apiKey: s.apiKey,
      env: { VALUEVERSE_TEST_CLOCK: "on", BILLING_SCHEDULER: "off", WEBHOOK_POLL_MS: "100", PAYMENT_POLL_MS: "100", ...env },
      readyTimeoutMs: 90_000,
    });
    s.lago = Client(s.apiKey, { baseUrl: `${s.server.url}/api/v1` });
  });

  afterAll(async () => {
    await killAllServers();
    await target?.cleanup();
    await s.receiver.close();
  });

  return s;
}
