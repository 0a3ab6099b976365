// Organizations, API keys and the admin API; one organization never sees another's events.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildApp } from "../../src/app.ts";
import { loadConfig } from "../../src/shared/config.ts";
import { DB_KIND } from "../helpers/db.ts";
import { startTestApp, type TestApp } from "../helpers/app.ts";
import { T0, T0_S, bearer, client, json, scalar, uid } from "./support.ts";

const ADMIN_TOKEN = "admin-token-for-tests-0123456789";
const UNAUTHORIZED = { status: 401, error: "Unauthorized" };
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

let t: TestApp;

beforeAll(async () => {
  t = await startTestApp({ env: { VALUEVERSE_ADMIN_TOKEN: ADMIN_TOKEN } });
});
afterAll(async () => {
  await t?.close();
});

const admin = (method: "GET" | "POST" | "DELETE", url: string, payload?: unknown, token: string | null = ADMIN_TOKEN) =>
  t.app.http.inject({ method, url, headers: token === null ? {} : bearer(token), ...(payload === undefined ? {} : { payload: payload as object }) });

async function createOrg(name = uid("org")): Promise<{ id: string; apiKey: string }> {
  const r = await admin("POST", "/admin/v1/organizations", { organization: { name } });
  expect(r.statusCode).toBe(200);
  const body = json(r);
  return { id: body.organization.id, apiKey: body.api_key };
}

const listStatus = async (key: string) => (await client(t, key).list()).statusCode;

describe(`admin API on ${DB_KIND}`, () => {
  it("creates an organization and shows its API key once", async () => {
    const name = uid("Acme");
    const r = await admin("POST", "/admin/v1/organizations", { organization: { name } });
    expect(r.statusCode).toBe(200);
    const body = json(r);
    expect(body).toEqual({
      organization: { id: expect.stringMatching(UUID), name, created_at: new Date(T0).toISOString() },
      api_key: expect.stringMatching(/^\S{24,}$/),
    });
    const apiKey: string = body.api_key;
    expect(await listStatus(apiKey)).toBe(200);

    // The key is stored hashed and never shown again.
    expect(await scalar(t.db, "SELECT count(*)::text AS n FROM api_keys WHERE key_hash = $1 OR key_prefix = $1", [apiKey])).toBe(0);
    const keys = await admin("GET", `/admin/v1/organizations/${body.organization.id}/api_keys`);
    expect(keys.statusCode).toBe(200);
    expect(keys.body).not.toContain(apiKey);
    expect(json(keys).api_keys).toEqual([
      { id: expect.stringMatching(UUID), prefix: apiKey.slice(0, 8), name: "default", created_at: expect.any(String), revoked_at: null },
    ]);
    const orgs = await admin("GET", "/admin/v1/organizations");
    expect(orgs.body).not.toContain(apiKey);
    expect(json(orgs).organizations).toContainEqual(body.organization);
    expect(json(await admin("GET", `/admin/v1/organizations/${body.organization.id}`))).toEqual({ organization: body.organization });
  });

  it("rotates keys: a second key works alongside the first; revoking the first leaves the second working", async () => {
    const org = await createOrg();
    const created = await admin("POST", `/admin/v1/organizations/${org.id}/api_keys`, { api_key: { name: "rotation" } });
    expect(created.statusCode).toBe(200);
    const second = json(created).api_key;
    expect(second).toMatchObject({ id: expect.stringMatching(UUID), name: "rotation", revoked_at: null, value: expect.any(String) });
    expect(second.value).not.toBe(org.apiKey);
    expect(await listStatus(org.apiKey)).toBe(200);
    expect(await listStatus(second.value)).toBe(200);

    const keys = json(await admin("GET", `/admin/v1/organizations/${org.id}/api_keys`)).api_keys as { id: string; name: string }[];
    expect(keys.map((k) => k.name).sort()).toEqual(["default", "rotation"]);
    expect(JSON.stringify(keys)).not.toContain(second.value);

    const firstId = keys.find((k) => k.name === "default")!.id;
    const revoked = await admin("DELETE", `/admin/v1/organizations/${org.id}/api_keys/${firstId}`);
    expect(revoked.statusCode).toBe(200);
    expect(json(revoked).api_key).toMatchObject({ id: firstId, revoked_at: new Date(T0).toISOString() });

    const r = await client(t, org.apiKey).list();
    expect(r.statusCode).toBe(401);
    expect(json(r)).toEqual(UNAUTHORIZED);
    expect(await listStatus(second.value)).toBe(200);
    // Revoking again is harmless and keeps the first revocation time.
    expect(json(await admin("DELETE", `/admin/v1/organizations/${org.id}/api_keys/${firstId}`)).api_key.revoked_at).toBe(new Date(T0).toISOString());
  });

  it("cannot revoke one organization's key through another organization", async () => {
    const a = await createOrg();
    const b = await createOrg();
    const aKeyId = json(await admin("GET", `/admin/v1/organizations/${a.id}/api_keys`)).api_keys[0].id;
    const r = await admin("DELETE", `/admin/v1/organizations/${b.id}/api_keys/${aKeyId}`);
    expect(r.statusCode).toBe(404);
    expect(await listStatus(a.apiKey)).toBe(200);
  });

  it.each([
    ["no body", undefined],
    ["no organization", {}],
    ["no name", { organization: {} }],
    ["a blank name", { organization: { name: "   " } }],
    ["a name that is not a string", { organization: { name: 42 } }],
    ["a name over 255 characters", { organization: { name: "n".repeat(256) } }],
  ])("refuses to create an organization with %s (422)", async (_case, payload) => {
    const r = await admin("POST", "/admin/v1/organizations", payload);
    expect(r.statusCode).toBe(422);
    expect(json(r)).toMatchObject({ status: 422, code: "validation_errors" });
  });

  it("answers 404 for unknown organizations and keys", async () => {
    const org = await createOrg();
    for (const url of [
      "/admin/v1/organizations/00000000-0000-0000-0000-000000000000",
      "/admin/v1/organizations/not-a-uuid",
      "/admin/v1/organizations/00000000-0000-0000-0000-000000000000/api_keys",
    ]) {
      expect((await admin("GET", url)).statusCode, url).toBe(404);
    }
    expect((await admin("DELETE", `/admin/v1/organizations/${org.id}/api_keys/00000000-0000-0000-0000-000000000000`)).statusCode).toBe(404);
    expect((await admin("DELETE", `/admin/v1/organizations/${org.id}/api_keys/nope`)).statusCode).toBe(404);
  });

  it.each([
    ["no token", null],
    ["a wrong token", "admin-token-for-tests-0123456780"],
    ["an organization's API key", "use-api-key"],
  ])("answers 401 with %s", async (_case, token) => {
    const r = await admin("GET", "/admin/v1/organizations", undefined, token === "use-api-key" ? t.apiKey : token);
    expect(r.statusCode).toBe(401);
    expect(json(r)).toEqual(UNAUTHORIZED);
    const create = await admin("POST", "/admin/v1/organizations", { organization: { name: uid("x") } }, token === "use-api-key" ? t.apiKey : token);
    expect(create.statusCode).toBe(401);
  });

  it("cannot be reached by percent-encoding the path past the token check", async () => {
    const before = await scalar(t.db, "SELECT count(*)::text AS n FROM organizations");
    for (const url of ["/%61dmin/v1/organizations", "/admin%2Fv1/organizations", "/%61%64%6din/v1/organizations"]) {
      const r = await t.app.http.inject({ method: "GET", url });
      expect([401, 404], url).toContain(r.statusCode);
      const post = await t.app.http.inject({ method: "POST", url, payload: { organization: { name: "intruder" } } });
      expect([401, 404], url).toContain(post.statusCode);
    }
    expect(await scalar(t.db, "SELECT count(*)::text AS n FROM organizations")).toBe(before);
  });

  it("does not exist (404 on every route, whatever the token) when no admin token is configured", async () => {
    const config = loadConfig({ LOG_LEVEL: "silent" });
    const other = buildApp(config, { db: t.db, clock: t.clock });
    await other.start();
    try {
      const org = (await createOrg()).id;
      const routes: [string, string, unknown?][] = [
        ["POST", "/admin/v1/organizations", { organization: { name: "x" } }],
        ["GET", "/admin/v1/organizations"],
        ["GET", `/admin/v1/organizations/${org}`],
        ["POST", `/admin/v1/organizations/${org}/api_keys`, {}],
        ["GET", `/admin/v1/organizations/${org}/api_keys`],
        ["DELETE", `/admin/v1/organizations/${org}/api_keys/00000000-0000-0000-0000-000000000000`],
        ["GET", "/admin/v1/anything"],
      ];
      for (const [method, url, payload] of routes) {
        for (const headers of [{}, bearer(ADMIN_TOKEN), bearer("")]) {
          const r = await other.http.inject({ method: method as "GET", url, headers, ...(payload === undefined ? {} : { payload: payload as object }) });
          expect(r.statusCode, `${method} ${url}`).toBe(404);
        }
      }
    } finally {
      // The database belongs to `t`; only this second server is stopped.
      await other.http.close();
    }
  });
});

describe(`API authentication on ${DB_KIND}`, () => {
  const routes: [string, string, unknown?][] = [
    ["POST", "/api/v1/events", { event: { transaction_id: "auth-x", external_subscription_id: "auth-s", code: "c" } }],
    ["POST", "/api/v1/events/batch", { events: [{ transaction_id: "auth-x", external_subscription_id: "auth-s", code: "c" }] }],
    ["GET", "/api/v1/events"],
    ["GET", "/api/v1/events/auth-x"],
    ["GET", "/api/v1/unknown-route"],
  ];

  it.each([
    ["no Authorization header", undefined],
    ["an empty header", ""],
    ["another scheme", "Basic dXNlcjpwYXNz"],
    ["the scheme alone", "Bearer"],
    ["an empty bearer token", "Bearer    "],
    ["an unknown key", "Bearer vv_unknown_key_0000000000000000"],
    ["an oversized key", `Bearer ${"k".repeat(10_000)}`],
    ["the admin token", `Bearer ${ADMIN_TOKEN}`],
  ])("answers 401 with Lago's body to %s, on every API route, storing nothing", async (_case, header) => {
    const before = await scalar(t.db, "SELECT count(*)::text AS n FROM events");
    for (const [method, url, payload] of routes) {
      const r = await t.app.http.inject({
        method: method as "GET",
        url,
        headers: header === undefined ? {} : { authorization: header },
        ...(payload === undefined ? {} : { payload: payload as object }),
      });
      expect(r.statusCode, `${method} ${url}`).toBe(401);
      expect(json(r)).toEqual(UNAUTHORIZED);
    }
    expect(await scalar(t.db, "SELECT count(*)::text AS n FROM events")).toBe(before);
  });

  it("cannot be bypassed by percent-encoding the path", async () => {
    const before = await scalar(t.db, "SELECT count(*)::text AS n FROM events");
    for (const url of ["/api/%761/events", "/%61pi/v1/events", "/api/v%31/events", "/api/%76%31/events/batch"]) {
      const get = await t.app.http.inject({ method: "GET", url });
      expect(get.statusCode, url).not.toBe(200);
      const post = await t.app.http.inject({
        method: "POST",
        url,
        payload: { event: { transaction_id: "bypass", external_subscription_id: "bypass", code: "c" }, events: [] },
      });
      expect([401, 404], url).toContain(post.statusCode);
    }
    expect(await scalar(t.db, "SELECT count(*)::text AS n FROM events")).toBe(before);
  });

  it("keeps health and metrics open (no key needed)", async () => {
    expect((await t.app.http.inject({ method: "GET", url: "/health" })).statusCode).toBe(200);
    expect((await t.app.http.inject({ method: "GET", url: "/metrics" })).statusCode).toBe(200);
  });
});

describe(`tenancy on ${DB_KIND}`, () => {
  let a: ReturnType<typeof client>;
  let b: ReturnType<typeof client>;
  const shared = { transaction_id: uid("shared"), external_subscription_id: uid("sub"), code: "calls", timestamp: T0_S };
  const aOnly = { transaction_id: uid("a-only"), external_subscription_id: uid("sub"), code: "calls", timestamp: T0_S };

  beforeAll(async () => {
    a = client(t, (await createOrg("tenant A")).apiKey);
    b = client(t, (await createOrg("tenant B")).apiKey);
    expect((await a.postEvent({ ...shared, properties: { owner: "a" } })).statusCode).toBe(200);
    expect((await a.postEvent(aOnly)).statusCode).toBe(200);
  });

  it("the same identity in two organizations is two independent events (no conflict)", async () => {
    const r = await b.postEvent({ ...shared, properties: { owner: "b" } });
    expect(r.statusCode).toBe(200);
    expect(await scalar(t.db, "SELECT count(DISTINCT org_id)::text AS n FROM events WHERE transaction_id = $1", [shared.transaction_id])).toBe(2);
    expect(json(await a.get(shared.transaction_id)).event.properties).toEqual({ owner: "a" });
    expect(json(await b.get(shared.transaction_id)).event.properties).toEqual({ owner: "b" });
  });

  it("an organization cannot get another's event, whatever id it guesses", async () => {
    const r = await b.get(aOnly.transaction_id);
    expect(r.statusCode).toBe(404);
    expect(json(r)).toEqual({ status: 404, error: "Not Found", code: "event_not_found" });
    expect((await b.get(aOnly.transaction_id, `external_subscription_id=${aOnly.external_subscription_id}`)).statusCode).toBe(404);
    expect((await a.get(aOnly.transaction_id)).statusCode).toBe(200);
  });

  it("an organization lists only its own events", async () => {
    const listB = json(await b.list("per_page=1000"));
    expect(listB.meta.total_count).toBe(1);
    expect(listB.events.map((e: { transaction_id: string }) => e.transaction_id)).toEqual([shared.transaction_id]);
    expect(json(await b.list(`external_subscription_id=${aOnly.external_subscription_id}`)).meta.total_count).toBe(0);
    const listA = json(await a.list("per_page=1000"));
    expect(listA.events.map((e: { transaction_id: string }) => e.transaction_id).sort()).toEqual([aOnly.transaction_id, shared.transaction_id].sort());
  });

  it("a retry in one organization never answers with another organization's event", async () => {
    const r = await b.postEvent({ ...aOnly, properties: { owner: "b" } });
    expect(r.statusCode).toBe(200);
    expect(json(r).event.properties).toEqual({ owner: "b" });
    expect(json(await a.get(aOnly.transaction_id)).event.properties).toEqual({});
  });

  it("rollups are kept per organization", async () => {
    const { rows } = await t.db.query<{ n: string }>(
      "SELECT sum(events_count)::text AS n FROM event_counts_hourly WHERE external_subscription_id = $1 GROUP BY org_id ORDER BY org_id",
      [shared.external_subscription_id],
    );
    expect(rows).toEqual([{ n: "1" }, { n: "1" }]);
  });
});
