// OrgService against a real database: organizations, hashed API keys, rotation and revocation.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Db } from "../../../src/db/db.ts";
import { OrgService } from "../../../src/modules/orgs/index.ts";
import { hashApiKey, newApiKey } from "../../../src/modules/orgs/service.ts";
import { ManualClock } from "../../../src/shared/clock.ts";
import { AppError } from "../../../src/shared/errors.ts";
import { DB_KIND, openTestDb } from "../../helpers/db.ts";

const T0 = Date.UTC(2026, 2, 15, 12);
let db: Db;
let orgs: OrgService;
const clock = new ManualClock(T0);

beforeAll(async () => {
  db = await openTestDb();
  orgs = new OrgService(db, clock);
});
afterAll(async () => {
  await db?.close();
});

async function failure(p: Promise<unknown>): Promise<AppError> {
  const err = await p.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(AppError);
  return err as AppError;
}

describe("API keys", () => {
  it("are random, prefixed and long enough to resist guessing", () => {
    const keys = new Set(Array.from({ length: 100 }, newApiKey));
    expect(keys.size).toBe(100);
    for (const k of keys) expect(k).toMatch(/^vv_[A-Za-z0-9_-]{32}$/);
  });

  it("hash to SHA-256 hex", () => {
    expect(hashApiKey("abc")).toBe("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  });
});

describe(`OrgService on ${DB_KIND}`, () => {
  it("creates an organization whose key authenticates to it, storing only the key's hash", async () => {
    const { org, apiKey } = await orgs.createOrganization("  Acme  ");
    expect(org).toMatchObject({ name: "Acme", createdAt: new Date(T0) });
    expect(await orgs.authenticate(apiKey)).toBe(org.id);
    const { rows } = await db.query<{ key_hash: string; key_prefix: string }>("SELECT key_hash, key_prefix FROM api_keys WHERE org_id = $1", [org.id]);
    expect(rows).toEqual([{ key_hash: hashApiKey(apiKey), key_prefix: apiKey.slice(0, 8) }]);
  });

  it.each([
    ["missing", undefined],
    ["blank", "  "],
    ["not a string", 12],
    ["over 255 characters", "n".repeat(256)],
  ])("refuses a name that is %s, naming `name`", async (_case, name) => {
    const err = await failure(orgs.createOrganization(name));
    expect(err.category).toBe("validation");
    expect(Object.keys(err.details ?? {})).toEqual(["name"]);
  });

  it("does not authenticate an unknown key", async () => {
    expect(await orgs.authenticate(newApiKey())).toBeNull();
  });

  it("bootstraps the organization of VALUEVERSE_API_KEY once, however often it is asked", async () => {
    const key = "bootstrap-key-" + Math.random().toString(36).slice(2);
    const [a, b] = await Promise.all([orgs.ensureOrganizationForKey(key), orgs.ensureOrganizationForKey(key)]);
    const c = await orgs.ensureOrganizationForKey(key);
    expect(b.id).toBe(a.id);
    expect(c.id).toBe(a.id);
    const { rows } = await db.query<{ n: string }>("SELECT count(*)::text AS n FROM api_keys WHERE key_hash = $1", [hashApiKey(key)]);
    expect(rows[0]!.n).toBe("1");
    expect(await orgs.authenticate(key)).toBe(a.id);
  });

  it("rotates: a second key works with the first; revoking one stops it at once and leaves the other", async () => {
    const { org, apiKey: first } = await orgs.createOrganization("Rotating");
    const { key, apiKey: second } = await orgs.createApiKey(org.publicId, "ci");
    expect(key).toMatchObject({ name: "ci", prefix: second.slice(0, 8), revokedAt: null });
    expect(await orgs.authenticate(first)).toBe(org.id); // cached from now on
    expect(await orgs.authenticate(second)).toBe(org.id);

    const firstId = (await orgs.listApiKeys(org.publicId)).find((k) => k.name === "default")!.id;
    clock.advance(1000);
    const revoked = await orgs.revokeApiKey(org.publicId, firstId);
    expect(revoked.revokedAt).toEqual(new Date(T0 + 1000));
    expect(await orgs.authenticate(first)).toBeNull(); // despite the cache
    expect(await orgs.authenticate(second)).toBe(org.id);
    clock.set(T0);
  });

  it("lists an organization's keys without their values", async () => {
    const { org, apiKey } = await orgs.createOrganization("Listing");
    await orgs.createApiKey(org.publicId, undefined);
    const keys = await orgs.listApiKeys(org.publicId);
    expect(keys).toHaveLength(2);
    expect(JSON.stringify(keys)).not.toContain(apiKey);
    expect(JSON.stringify(keys)).not.toContain(hashApiKey(apiKey));
  });

  it("will not revoke a key through another organization", async () => {
    const a = await orgs.createOrganization("A");
    const b = await orgs.createOrganization("B");
    const aKey = (await orgs.listApiKeys(a.org.publicId))[0]!;
    const err = await failure(orgs.revokeApiKey(b.org.publicId, aKey.id));
    expect(err.category).toBe("not_found");
    expect(await orgs.authenticate(a.apiKey)).toBe(a.org.id);
  });

  it.each([
    ["an unknown uuid", "00000000-0000-0000-0000-000000000000"],
    ["a malformed id", "'; DROP TABLE organizations; --"],
  ])("answers not found for %s", async (_case, id) => {
    expect((await failure(orgs.getByPublicId(id))).code).toBe("organization_not_found");
    expect((await failure(orgs.createApiKey(id, "x"))).category).toBe("not_found");
    expect((await failure(orgs.listApiKeys(id))).category).toBe("not_found");
  });

  it("refuses a key name that is not a string of at most 255 characters", async () => {
    const { org } = await orgs.createOrganization("Names");
    expect((await failure(orgs.createApiKey(org.publicId, 5))).category).toBe("validation");
    expect((await failure(orgs.createApiKey(org.publicId, "k".repeat(256)))).category).toBe("validation");
  });
});
