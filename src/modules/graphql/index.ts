export { buildGraphqlSchema, type GraphqlContext, type GraphqlDeps } from "./service.ts";
export { GRAPHQL_PATHS, registerGraphqlRoutes } from "./http.ts";
export { DEFAULT_PER_PAGE, MAX_COMPLEXITY, MAX_DEPTH, MAX_PER_PAGE, limitRules } from "./limits.ts";
export { SDL } from "./schema.ts";
