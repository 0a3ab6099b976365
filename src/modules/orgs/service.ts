import crypto from "node:crypto";
import type { Db } from "../../db/db.ts";
import type { Clock } from "../../shared/clock.ts";
import { unstorableText } from "../../shared/codes.ts";
import { notFound, validationFailed } from "../../shared/errors.ts";

export interface Organization {
  id: number;
  publicId: string;
  name: string;
  createdAt: Date;
}

export interface ApiKeyInfo {
  id: string;
  prefix: string;
  name: string | null;
  createdAt: Date;
  revokedAt: Date | null;
}

const KEY_PREFIX = "vv_";
// Authentication results are cached briefly so the ingest path never waits on a key lookup; a
// revoked key stops working everywhere within this time (immediately in the revoking process).
const AUTH_CACHE_MS = 5_000;
const AUTH_CACHE_MAX = 10_000;

export const hashApiKey = (key: string) => crypto.createHash("sha256").update(key).digest("hex");

export function newApiKey(): string {
  return KEY_PREFIX + crypto.randomBytes(24).toString("base64url");
}

interface OrgRow {
  id: number;
  public_id: string;
  name: string;
  created_at: Date;
}
const toOrg = (r: OrgRow): Organization => ({ id: Number(r.id), publicId: r.public_id, name: r.name, createdAt: r.created_at });

export class OrgService {
  /** API key -> organization (null: unknown key). */
  private authCache = new Map<string, { orgId: number | null; until: number }>();

  constructor(
    private readonly db: Db,
    private readonly clock: Clock,
  ) {}

  async createOrganization(name: unknown, apiKey = newApiKey()): Promise<{ org: Organization; apiKey: string }> {
    if (typeof name !== "string" || name.trim() === "") throw validationFailed({ name: ["value_is_mandatory"] });
    if (name.length > 255) throw validationFailed({ name: ["value_is_too_long"] });
    const bad = unstorableText(name);
    if (bad) throw validationFailed({ name: [bad] });
    const now = new Date(this.clock.now());
    return this.db.transaction(async (tx) => {
      const { rows } = await tx.query<OrgRow>(
        "INSERT INTO organizations (public_id, name, created_at) VALUES ($1, $2, $3) RETURNING *",
        [crypto.randomUUID(), name.trim(), now],
      );
      const org = toOrg(rows[0]!);
      await tx.query(
        "INSERT INTO api_keys (id, org_id, key_hash, key_prefix, name, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
        [crypto.randomUUID(), org.id, hashApiKey(apiKey), apiKey.slice(0, 8), "default", now],
      );
      return { org, apiKey };
    });
  }

  /** Makes sure an organization answers to `apiKey` (the VALUEVERSE_API_KEY bootstrap); idempotent. */
  async ensureOrganizationForKey(apiKey: string, name = "default"): Promise<Organization> {
    const existing = await this.db.query<OrgRow>(
      "SELECT o.* FROM api_keys k JOIN organizations o ON o.id = k.org_id WHERE k.key_hash = $1 AND k.revoked_at IS NULL",
      [hashApiKey(apiKey)],
    );
    if (existing.rows[0]) return toOrg(existing.rows[0]);
    try {
      return (await this.createOrganization(name, apiKey)).org;
    } catch (err) {
      // Another process created it at the same moment (unique key_hash): read theirs.
      const again = await this.db.query<OrgRow>(
        "SELECT o.* FROM api_keys k JOIN organizations o ON o.id = k.org_id WHERE k.key_hash = $1",
        [hashApiKey(apiKey)],
      );
      if (again.rows[0]) return toOrg(again.rows[0]);
      throw err;
    }
  }

  async listOrganizations(): Promise<Organization[]> {
    return (await this.db.query<OrgRow>("SELECT * FROM organizations ORDER BY id")).rows.map(toOrg);
  }

  async getByPublicId(publicId: string): Promise<Organization> {
    if (!/^[0-9a-f-]{36}$/i.test(publicId)) throw notFound("organization", publicId);
    const { rows } = await this.db.query<OrgRow>("SELECT * FROM organizations WHERE public_id = $1", [publicId]);
    if (!rows[0]) throw notFound("organization", publicId);
    return toOrg(rows[0]);
  }

  async createApiKey(orgPublicId: string, name: unknown): Promise<{ key: ApiKeyInfo; apiKey: string }> {
    if (name !== undefined && name !== null && (typeof name !== "string" || name.length > 255)) {
      throw validationFailed({ name: ["must_be_a_string_of_at_most_255_characters"] });
    }
    const bad = typeof name === "string" ? unstorableText(name) : null;
    if (bad) throw validationFailed({ name: [bad] });
    const org = await this.getByPublicId(orgPublicId);
    const apiKey = newApiKey();
    const { rows } = await this.db.query<KeyRow>(
      "INSERT INTO api_keys (id, org_id, key_hash, key_prefix, name, created_at) VALUES ($1, $2, $3, $4, $5, $6) RETURNING *",
      [crypto.randomUUID(), org.id, hashApiKey(apiKey), apiKey.slice(0, 8), name ?? null, new Date(this.clock.now())],
    );
    return { key: toKey(rows[0]!), apiKey };
  }

  async listApiKeys(orgPublicId: string): Promise<ApiKeyInfo[]> {
    const org = await this.getByPublicId(orgPublicId);
    const { rows } = await this.db.query<KeyRow>("SELECT * FROM api_keys WHERE org_id = $1 ORDER BY created_at, id", [org.id]);
    return rows.map(toKey);
  }

  async revokeApiKey(orgPublicId: string, keyId: string): Promise<ApiKeyInfo> {
    const org = await this.getByPublicId(orgPublicId);
    if (!/^[0-9a-f-]{36}$/i.test(keyId)) throw notFound("api_key", keyId);
    const { rows } = await this.db.query<KeyRow>(
      "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, $3) WHERE org_id = $1 AND id = $2 RETURNING *",
      [org.id, keyId, new Date(this.clock.now())],
    );
    if (!rows[0]) throw notFound("api_key", keyId);
    for (const [key, entry] of this.authCache) if (entry.orgId === org.id) this.authCache.delete(key);
    return toKey(rows[0]);
  }

  /** The cached answer of `authenticate` (undefined: not cached or expired); no IO, no promise. */
  cachedOrganization(apiKey: string): number | null | undefined {
    const cached = this.authCache.get(apiKey);
    return cached !== undefined && cached.until > this.clock.now() ? cached.orgId : undefined;
  }

  /**
   * The organization a bearer key belongs to, or null. Cached (positive and negative) for a few
   * seconds, keyed by the key itself so a cache hit costs no hashing.
   */
  async authenticate(apiKey: string): Promise<number | null> {
    const cached = this.cachedOrganization(apiKey);
    if (cached !== undefined) return cached;
    const now = this.clock.now();
    const hash = hashApiKey(apiKey);
    const { rows } = await this.db.query<{ org_id: number }>(
      "SELECT org_id FROM api_keys WHERE key_hash = $1 AND revoked_at IS NULL",
      [hash],
    );
    const orgId = rows[0] ? Number(rows[0].org_id) : null;
    if (this.authCache.size >= AUTH_CACHE_MAX) this.authCache.clear();
    this.authCache.set(apiKey, { orgId, until: now + AUTH_CACHE_MS });
    return orgId;
  }
}

interface KeyRow {
  id: string;
  key_prefix: string;
  name: string | null;
  created_at: Date;
  revoked_at: Date | null;
}
const toKey = (r: KeyRow): ApiKeyInfo => ({ id: r.id, prefix: r.key_prefix, name: r.name, createdAt: r.created_at, revokedAt: r.revoked_at });
