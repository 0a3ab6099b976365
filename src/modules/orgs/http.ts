import crypto from "node:crypto";
import type { FastifyInstance, FastifyRequest } from "fastify";
import { AppError, unauthorized } from "../../shared/errors.ts";
import type { ApiKeyInfo, Organization, OrgService } from "./service.ts";

declare module "fastify" {
  interface FastifyRequest {
    /** The authenticated organization's internal id (set on every /api/v1 route). */
    orgId: number;
  }
}

const orgJson = (o: Organization) => ({ id: o.publicId, name: o.name, created_at: o.createdAt.toISOString() });
const keyJson = (k: ApiKeyInfo) => ({
  id: k.id,
  prefix: k.prefix,
  name: k.name,
  created_at: k.createdAt.toISOString(),
  revoked_at: k.revokedAt ? k.revokedAt.toISOString() : null,
});

function bearer(request: FastifyRequest): string | null {
  const header = request.headers.authorization;
  if (typeof header !== "string" || !header.startsWith("Bearer ")) return null;
  const token = header.slice(7).trim();
  return token === "" ? null : token;
}

/**
 * The path the router matched, not the raw URL: the router decodes percent-escapes, so
 * `/api/%761/events` reaches the `/api/v1/events` handler while its raw URL has another prefix.
 */
function routePath(request: FastifyRequest): string {
  return request.routeOptions.url ?? request.url;
}

/** Routes outside /api/v1 that need the API key too (exact matched route paths). */
const KEYED_ROUTES: ReadonlySet<string> = new Set(["/graphql"]);

/** Every route under /api/v1 (and /graphql) needs `Authorization: Bearer <api key>`; 401 with Lago's body otherwise. */
export function registerApiAuth(app: FastifyInstance, orgs: OrgService): void {
  app.decorateRequest("orgId", 0);
  // Callback style: on the ingest path a cache hit answers without allocating a promise.
  app.addHook("onRequest", (request, _reply, done) => {
    const path = routePath(request);
    if (!path.startsWith("/api/v1/") && !KEYED_ROUTES.has(path)) return done();
    const key = bearer(request);
    if (key === null || key.length > 512) return done(unauthorized());
    const cached = orgs.cachedOrganization(key);
    if (cached !== undefined) {
      if (cached === null) return done(unauthorized());
      request.orgId = cached;
      return done();
    }
    orgs.authenticate(key).then((orgId) => {
      if (orgId === null) return done(unauthorized());
      request.orgId = orgId;
      done();
    }, done);
  });
}

/**
 * The operator's API under /admin/v1, authenticated with VALUEVERSE_ADMIN_TOKEN. Without a token
 * configured the whole API answers 404, as if it did not exist.
 */
export function registerAdminRoutes(app: FastifyInstance, orgs: OrgService, adminToken: string | undefined): void {
  const expected = adminToken ? crypto.createHash("sha256").update(adminToken).digest() : null;
  app.addHook("onRequest", async (request) => {
    if (!routePath(request).startsWith("/admin/")) return;
    if (expected === null) throw new AppError("not_found", "not_found", "Not Found");
    const token = bearer(request);
    const given = crypto.createHash("sha256").update(token ?? "").digest();
    if (token === null || !crypto.timingSafeEqual(given, expected)) throw unauthorized();
  });

  app.post("/admin/v1/organizations", async (request) => {
    const body = request.body as { organization?: { name?: unknown } } | null;
    const input = body?.organization;
    if (input === undefined || input === null || typeof input !== "object") {
      throw new AppError("validation", "validation_errors", "organization is required", { organization: ["value_is_mandatory"] });
    }
    const { org, apiKey } = await orgs.createOrganization(input.name);
    return { organization: orgJson(org), api_key: apiKey };
  });
  app.get("/admin/v1/organizations", async () => ({ organizations: (await orgs.listOrganizations()).map(orgJson) }));
  app.get<{ Params: { id: string } }>("/admin/v1/organizations/:id", async (request) => ({
    organization: orgJson(await orgs.getByPublicId(request.params.id)),
  }));
  app.post<{ Params: { id: string } }>("/admin/v1/organizations/:id/api_keys", async (request) => {
    const body = request.body as { api_key?: { name?: unknown } } | null;
    const { key, apiKey } = await orgs.createApiKey(request.params.id, body?.api_key?.name);
    return { api_key: { ...keyJson(key), value: apiKey } };
  });
  app.get<{ Params: { id: string } }>("/admin/v1/organizations/:id/api_keys", async (request) => ({
    api_keys: (await orgs.listApiKeys(request.params.id)).map(keyJson),
  }));
  app.delete<{ Params: { id: string; keyId: string } }>("/admin/v1/organizations/:id/api_keys/:keyId", async (request) => ({
    api_key: keyJson(await orgs.revokeApiKey(request.params.id, request.params.keyId)),
  }));
}
