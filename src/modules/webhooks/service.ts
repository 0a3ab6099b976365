import crypto from "node:crypto";
import { promisify } from "node:util";
import type { Db, Queryable } from "../../db/db.ts";
import { sqlState } from "../../db/db.ts";
import type { Clock } from "../../shared/clock.ts";
import { AppError, notFound, validationFailed } from "../../shared/errors.ts";
import { ENDPOINT_LIMIT, readEndpointCreate, readEndpointUpdate } from "./core/endpoint.ts";
import { type PrivateNetworks, urlAllowed } from "./egress.ts";
import { objectIdOf, webhookBody } from "./core/envelope.ts";
import type { WebhookType } from "./core/event_types.ts";
import type { Delivery, DeliveryAttempt, WebhookEndpoint } from "./core/types.ts";
import * as store from "./store.ts";

/**
 * Writes webhooks to the outbox in the caller's transaction: one delivery per endpoint of the
 * organization that takes `webhookType`, committed (or rolled back) with the change it reports.
 * `object` is rendered under the `objectType` key of Lago's envelope. Answers how many deliveries.
 */
export type EnqueueWebhook = (tx: Queryable, orgId: number, webhookType: WebhookType, objectType: string, object: unknown) => Promise<number>;

export interface WebhookServiceOptions {
  /** WEBHOOK_MAX_ATTEMPTS: attempts a new delivery (or a manual retry) gets. */
  maxAttempts: number;
  /** WEBHOOK_PRIVATE_NETWORKS (see egress.ts); `allow` when not given. */
  privateNetworks?: PrivateNetworks;
  newId?: () => string;
}

export interface SigningKeys {
  hmacKey: string;
  jwtPrivateKey: string | null;
  jwtPublicKey: string | null;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const generateKeyPair = promisify(crypto.generateKeyPair);

/**
 * Webhook endpoints (Lago's /webhook_endpoints), the outbox other modules write to (`enqueue`),
 * delivery records and manual retries, and the organization's signing keys. Delivery itself is
 * the DeliveryWorker's.
 */
export class WebhookService {
  private readonly newId: () => string;
  /** Organization id -> public id and signing keys: neither ever changes once made. */
  private readonly publicIds = new Map<number, string>();
  private readonly keys = new Map<number, SigningKeys>();
  /** Loads in progress, so concurrent first requests of an organization make one RSA pair, not one each. */
  private readonly loadingKeys = new Map<number, Promise<SigningKeys>>();
  private readonly enqueueListeners: (() => void)[] = [];

  constructor(
    private readonly db: Db,
    private readonly clock: Clock,
    private readonly options: WebhookServiceOptions,
  ) {
    this.newId = options.newId ?? (() => crypto.randomUUID());
  }

  /** Called after each enqueue that wrote deliveries (the worker looks soon after the caller commits). */
  onEnqueue(listener: () => void): void {
    this.enqueueListeners.push(listener);
  }

  private now(): Date {
    return new Date(this.clock.now());
  }

  enqueue: EnqueueWebhook = async (tx, orgId, webhookType, objectType, object) => {
    const organizationId = await this.organizationPublicId(orgId, tx);
    const written = await store.insertOutbox(tx, {
      orgId,
      webhookType,
      objectType,
      objectId: objectIdOf(object),
      payload: webhookBody(webhookType, objectType, organizationId, object),
      maxAttempts: this.options.maxAttempts,
      now: this.now(),
    });
    if (written > 0) for (const listener of this.enqueueListeners) listener();
    return written;
  };

  async organizationPublicId(orgId: number, q: Queryable = this.db): Promise<string> {
    let id = this.publicIds.get(orgId);
    if (id === undefined) {
      id = await store.organizationPublicId(q, orgId);
      if (this.publicIds.size >= 100_000) this.publicIds.clear();
      this.publicIds.set(orgId, id);
    }
    return id;
  }

  // ---------------------------------------------------------------------------------------------
  // Endpoints

  /** A URL naming a private address (or localhost) is refused under WEBHOOK_PRIVATE_NETWORKS=deny. */
  private checkNetwork(url: string): void {
    if (!urlAllowed(url, this.options.privateNetworks ?? "allow")) {
      throw validationFailed(
        { webhook_url: ["private_address_not_allowed"] },
        "webhook_url points at a loopback, private or link-local address; this server refuses those (WEBHOOK_PRIVATE_NETWORKS=deny)",
      );
    }
  }

  async createEndpoint(orgId: number, raw: unknown): Promise<WebhookEndpoint> {
    const read = readEndpointCreate(raw);
    if (!read.ok) throw validationFailed(read.errors, "the webhook endpoint is invalid");
    this.checkNetwork(read.value.webhookUrl);
    const endpoint = await guardedUrl(() =>
      this.db.transaction(async (tx) => {
        await store.lockOrgEndpoints(tx, orgId);
        if ((await store.countEndpoints(tx, orgId)) >= ENDPOINT_LIMIT) {
          throw validationFailed({ base: ["exceeded_limit"] }, `an organization has at most ${ENDPOINT_LIMIT} webhook endpoints`);
        }
        if ((await store.endpointByUrl(tx, orgId, read.value.webhookUrl)) !== null) throw urlTaken();
        return store.insertEndpoint(tx, orgId, this.newId(), read.value, this.now());
      }),
    );
    await this.signingKeys(orgId, endpoint.signatureAlgo === "jwt");
    return endpoint;
  }

  async getEndpoint(orgId: number, lagoId: string, q: Queryable = this.db): Promise<WebhookEndpoint> {
    const found = UUID.test(lagoId) ? await store.findEndpoint(q, orgId, lagoId) : null;
    if (found === null) throw notFound("webhook_endpoint", lagoId);
    return found;
  }

  async updateEndpoint(orgId: number, lagoId: string, raw: unknown): Promise<WebhookEndpoint> {
    const current = await this.getEndpoint(orgId, lagoId);
    const read = readEndpointUpdate(raw, current);
    if (!read.ok) throw validationFailed(read.errors, "the webhook endpoint is invalid");
    if (read.value.webhookUrl !== current.webhookUrl) this.checkNetwork(read.value.webhookUrl);
    const endpoint = await guardedUrl(() =>
      this.db.transaction(async (tx) => {
        await store.lockOrgEndpoints(tx, orgId);
        const locked = await this.getEndpoint(orgId, lagoId, tx);
        const other = await store.endpointByUrl(tx, orgId, read.value.webhookUrl);
        if (other !== null && other.id !== locked.id) throw urlTaken();
        return store.updateEndpoint(tx, locked, read.value, this.now());
      }),
    );
    await this.signingKeys(orgId, endpoint.signatureAlgo === "jwt");
    return endpoint;
  }

  /** Deletes the endpoint; its deliveries, pending ones included, go with it (as in Lago). */
  async deleteEndpoint(orgId: number, lagoId: string): Promise<WebhookEndpoint> {
    return this.db.transaction(async (tx) => {
      await store.lockOrgEndpoints(tx, orgId);
      const endpoint = await this.getEndpoint(orgId, lagoId, tx);
      await store.deleteEndpoint(tx, endpoint);
      return endpoint;
    });
  }

  listEndpoints(orgId: number, page: number, perPage: number) {
    return store.listEndpoints(this.db, orgId, page, perPage);
  }

  // ---------------------------------------------------------------------------------------------
  // Deliveries

  listDeliveries(orgId: number, query: store.DeliveryListQuery) {
    return store.listDeliveries(this.db, orgId, query);
  }

  async getDelivery(orgId: number, lagoId: string): Promise<{ delivery: Delivery; attempts: DeliveryAttempt[] }> {
    const delivery = UUID.test(lagoId) ? await store.findDelivery(this.db, orgId, lagoId) : null;
    if (delivery === null) throw notFound("webhook", lagoId);
    return { delivery, attempts: await store.attemptsOf(this.db, delivery.id) };
  }

  /**
   * Sends a failed delivery again: due now, with WEBHOOK_MAX_ATTEMPTS more attempts (same body,
   * same X-Lago-Unique-Key). 405 for one that succeeded or is still being tried.
   */
  async retry(orgId: number, lagoId: string): Promise<Delivery> {
    const { delivery } = await this.getDelivery(orgId, lagoId);
    if (!(await store.reopenFailed(this.db, orgId, delivery.id, this.options.maxAttempts, this.now()))) {
      const current = (await store.findDelivery(this.db, orgId, lagoId)) ?? delivery;
      throw new AppError("not_allowed", current.status === "succeeded" ? "is_succeeded" : "is_pending", `webhook ${lagoId} is ${current.status}, not failed`);
    }
    for (const listener of this.enqueueListeners) listener();
    return (await store.findDelivery(this.db, orgId, lagoId))!;
  }

  // ---------------------------------------------------------------------------------------------
  // Signing keys

  /**
   * The organization's keys, made on first use: the HMAC key, and with `withJwt` an RSA pair
   * (2048 bits, generated off the event loop). Once stored they never change.
   */
  async signingKeys(orgId: number, withJwt = false): Promise<SigningKeys> {
    const cached = this.keys.get(orgId);
    if (cached !== undefined && (!withJwt || cached.jwtPrivateKey !== null)) return cached;
    const loading = this.loadingKeys.get(orgId);
    if (loading !== undefined) {
      const keys = await loading;
      if (!withJwt || keys.jwtPrivateKey !== null) return keys;
    }
    const load = this.loadKeys(orgId, withJwt).finally(() => {
      if (this.loadingKeys.get(orgId) === load) this.loadingKeys.delete(orgId);
    });
    this.loadingKeys.set(orgId, load);
    return load;
  }

  private async loadKeys(orgId: number, withJwt: boolean): Promise<SigningKeys> {
    let row = await store.ensureKeys(this.db, orgId, "whsec_" + crypto.randomBytes(32).toString("base64url"), this.now());
    if (withJwt && row.jwt_private_key === null) {
      const pair = await generateKeyPair("rsa", {
        modulusLength: 2048,
        publicKeyEncoding: { type: "spki", format: "pem" },
        privateKeyEncoding: { type: "pkcs8", format: "pem" },
      });
      row = await store.ensureJwtKeys(this.db, orgId, pair.privateKey, pair.publicKey);
    }
    const keys: SigningKeys = { hmacKey: row.hmac_key, jwtPrivateKey: row.jwt_private_key, jwtPublicKey: row.jwt_public_key };
    if (this.keys.size >= 100_000) this.keys.clear();
    this.keys.set(orgId, keys);
    return keys;
  }
}

const urlTaken = () => validationFailed({ webhook_url: ["value_already_exist"] }, "the organization has an endpoint with this webhook_url");

async function guardedUrl<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (err) {
    // The unique (org_id, webhook_url) index refusing a concurrent twin.
    if (sqlState(err) === "23505") throw urlTaken();
    throw err;
  }
}
