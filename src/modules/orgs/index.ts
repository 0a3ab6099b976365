// Organizations (tenants) and their API keys: creation, key rotation and revocation, and the
// bearer-key authentication every /api/v1 request goes through.
export { OrgService, type Organization, type ApiKeyInfo } from "./service.ts";
export { registerAdminRoutes, registerApiAuth } from "./http.ts";
