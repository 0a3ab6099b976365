// POST /graphql and GET /graphql?query=… (also under /api/v1/graphql), authenticated by the API
// key like every /api/v1 route. Syntax and validation errors (limits included) answer 400 in
// GraphQL's error format before anything executes; execution errors answer 200 with `errors`.
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { GraphQLError, execute, getOperationAST, parse, specifiedRules, validate, type DocumentNode, type ExecutionResult, type GraphQLSchema } from "graphql";
import { AppError } from "../../shared/errors.ts";
import { limitRules } from "./limits.ts";
import type { GraphqlContext } from "./service.ts";

export const GRAPHQL_PATHS = ["/graphql", "/api/v1/graphql"] as const;

interface GraphqlParams {
  query?: unknown;
  variables?: unknown;
  operationName?: unknown;
}

const MAX_TOKENS = 5000;

function fail(reply: FastifyReply, status: number, errors: readonly GraphQLError[]) {
  return reply.code(status).send({ errors: errors.map((e) => e.toJSON()) });
}

const requestError = (message: string) => new GraphQLError(message, { extensions: { code: "bad_request" } });

/** Resolver errors: AppErrors keep their message and code; anything else is masked (and logged). */
function maskErrors(request: FastifyRequest, result: ExecutionResult): ExecutionResult {
  if (!result.errors) return result;
  const errors = result.errors.map((e) => {
    const cause = e.originalError;
    if (cause === undefined || cause instanceof GraphQLError) return e;
    if (cause instanceof AppError) {
      return new GraphQLError(cause.message, { nodes: e.nodes, path: e.path, extensions: { code: cause.code, ...(cause.details ? { details: cause.details } : {}) } });
    }
    request.log.error({ err: cause }, "graphql resolver failed");
    return new GraphQLError("internal error", { nodes: e.nodes, path: e.path, extensions: { code: "internal_error", request_id: request.id } });
  });
  return { ...result, errors };
}

export function registerGraphqlRoutes(app: FastifyInstance, schema: GraphQLSchema): void {
  const handle = async (request: FastifyRequest, reply: FastifyReply, params: GraphqlParams, method: "GET" | "POST") => {
    const { query, operationName } = params;
    let variables = params.variables;
    if (typeof query !== "string" || query.trim() === "") return fail(reply, 400, [requestError("a GraphQL `query` string is required")]);
    if (method === "GET" && typeof variables === "string" && variables !== "") {
      try {
        variables = JSON.parse(variables);
      } catch {
        return fail(reply, 400, [requestError("`variables` must be a JSON object")]);
      }
    }
    if (variables === "") variables = undefined;
    if (variables !== undefined && variables !== null && (typeof variables !== "object" || Array.isArray(variables))) {
      return fail(reply, 400, [requestError("`variables` must be a JSON object")]);
    }
    if (operationName !== undefined && operationName !== null && typeof operationName !== "string") {
      return fail(reply, 400, [requestError("`operationName` must be a string")]);
    }
    let document: DocumentNode;
    try {
      document = parse(query, { maxTokens: MAX_TOKENS });
    } catch (err) {
      if (err instanceof GraphQLError) return fail(reply, 400, [err]);
      throw err;
    }
    const vars = (variables ?? undefined) as Record<string, unknown> | undefined;
    const errors = validate(schema, document, [...specifiedRules, ...limitRules(vars)]);
    if (errors.length > 0) return fail(reply, 400, errors);
    const operation = getOperationAST(document, typeof operationName === "string" ? operationName : undefined);
    if (!operation) return fail(reply, 400, [requestError("no operation to run: give `operationName` when the document has several")]);
    if (operation.operation !== "query") return fail(reply, 400, [requestError(`this API is read-only: ${operation.operation} operations are not supported`)]);
    const contextValue: GraphqlContext = { orgId: request.orgId };
    const result = await execute({
      schema,
      document,
      contextValue,
      ...(vars !== undefined ? { variableValues: vars } : {}),
      ...(typeof operationName === "string" ? { operationName } : {}),
    });
    // Errors before execution starts (bad variables, unknown operation): no `data`, 400.
    if (!("data" in result) || result.data === undefined) return reply.code(400).send(maskErrors(request, result));
    return reply.code(200).send(maskErrors(request, result));
  };

  for (const path of GRAPHQL_PATHS) {
    app.post(path, (request, reply) => handle(request, reply, (request.body ?? {}) as GraphqlParams, "POST"));
    app.get(path, (request, reply) => handle(request, reply, (request.query ?? {}) as GraphqlParams, "GET"));
  }
}
