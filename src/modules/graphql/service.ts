// The executable schema: resolvers over the existing services, scoped to the request's organization.
import { GraphQLError, GraphQLObjectType, GraphQLScalarType, buildSchema, type GraphQLFieldResolver, type GraphQLSchema } from "graphql";
import type { Queryable } from "../../db/db.ts";
import { AppError } from "../../shared/errors.ts";
import { customerJson, type CustomerService } from "../customers/index.ts";
import { invoiceDetailsJson, invoiceJson, type InvoicingService } from "../invoicing/index.ts";
import { usageJson, type MeteringService } from "../metering/index.ts";
import { subscriptionJson, type SubscriptionService } from "../subscriptions/index.ts";
import { MAX_PER_PAGE } from "./limits.ts";
import { SDL } from "./schema.ts";

export interface GraphqlDeps {
  customers: CustomerService;
  subscriptions: SubscriptionService;
  metering: MeteringService;
  invoicing: InvoicingService;
  /** Where customer lookups read (a read replica: GraphQL is read-only); lists and usage follow their services. */
  reads?: Queryable;
}

export interface GraphqlContext {
  orgId: number;
}

type Row = Record<string, unknown>;
type Args = Record<string, unknown>;
type Resolver = GraphQLFieldResolver<Row, GraphqlContext, Args>;

function pageArgs(args: Args): { page: number; perPage: number } {
  const page = args["page"] as number;
  const perPage = args["perPage"] as number;
  if (!Number.isInteger(page) || page < 1 || page > 1_000_000) throw new GraphQLError("page must be between 1 and 1000000", { extensions: { code: "invalid_argument" } });
  if (!Number.isInteger(perPage) || perPage < 1 || perPage > MAX_PER_PAGE) {
    throw new GraphQLError(`perPage must be between 1 and ${MAX_PER_PAGE}`, { extensions: { code: "invalid_argument" } });
  }
  return { page, perPage };
}

/** `null` for a resource the organization does not have (GraphQL's way of saying 404). */
async function orNull<T>(work: Promise<T>): Promise<T | null> {
  try {
    return await work;
  } catch (err) {
    if (err instanceof AppError && err.category === "not_found") return null;
    throw err;
  }
}

export function buildGraphqlSchema(deps: GraphqlDeps): GraphQLSchema {
  const { customers, subscriptions, metering, invoicing } = deps;
  const schema = buildSchema(SDL);

  const listCustomers: Resolver = async (_r, args, ctx) => (await customers.list(ctx.orgId, pageArgs(args))).customers.map(customerJson);
  const listSubscriptions = async (orgId: number, args: Args, externalCustomerId: string | undefined) =>
    (await subscriptions.list(orgId, { ...pageArgs(args), statuses: ["active"] }, externalCustomerId)).items.map((v) => subscriptionJson(v));
  const listInvoices = async (orgId: number, args: Args, externalCustomerId: string | undefined) =>
    (await invoicing.list(orgId, { ...pageArgs(args), ...(externalCustomerId !== undefined ? { externalCustomerId } : {}) })).items.map(({ invoice, customer }) =>
      invoiceJson(invoice, { customer: customerJson(customer) }),
    );
  const usage = async (orgId: number, externalCustomerId: string, externalSubscriptionId: string) =>
    orNull(metering.currentUsage(orgId, externalCustomerId, externalSubscriptionId).then(usageJson));
  const customerOf = async (orgId: number, externalId: string) => {
    const c = await customers.findByExternalId(orgId, externalId, deps.reads);
    return c && customerJson(c);
  };

  const resolvers: Record<string, Record<string, Resolver>> = {
    Query: {
      customers: listCustomers,
      customer: (_r, args, ctx) => customerOf(ctx.orgId, args["externalId"] as string),
      subscriptions: (_r, args, ctx) => listSubscriptions(ctx.orgId, args, (args["externalCustomerId"] as string | null | undefined) ?? undefined),
      subscription: (_r, args, ctx) => orNull(subscriptions.get(ctx.orgId, args["externalId"] as string).then((v) => subscriptionJson(v))),
      currentUsage: (_r, args, ctx) => usage(ctx.orgId, args["externalCustomerId"] as string, args["externalSubscriptionId"] as string),
      invoices: (_r, args, ctx) => listInvoices(ctx.orgId, args, (args["externalCustomerId"] as string | null | undefined) ?? undefined),
      invoice: (_r, args, ctx) => orNull(invoicing.get(ctx.orgId, args["id"] as string).then(invoiceDetailsJson)),
    },
    Customer: {
      subscriptions: (c, args, ctx) => listSubscriptions(ctx.orgId, args, c["external_id"] as string),
      invoices: (c, args, ctx) => listInvoices(ctx.orgId, args, c["external_id"] as string),
    },
    Subscription: {
      customer: (s, _a, ctx) => customerOf(ctx.orgId, s["external_customer_id"] as string),
      currentUsage: (s, _a, ctx) => usage(ctx.orgId, s["external_customer_id"] as string, s["external_id"] as string),
    },
    Invoice: {
      // Listed invoices carry no fees: read the invoice as GET /invoices/:id does.
      fees: async (inv, _a, ctx) => {
        if (inv["fees"] !== undefined) return inv["fees"];
        const details = await orNull(invoicing.get(ctx.orgId, inv["lago_id"] as string));
        return details === null ? null : invoiceDetailsJson(details).fees;
      },
    },
  };
  for (const [typeName, fields] of Object.entries(resolvers)) {
    const type = schema.getType(typeName);
    if (!(type instanceof GraphQLObjectType)) throw new Error(`GraphQL type ${typeName} missing`);
    const defs = type.getFields();
    for (const [field, resolve] of Object.entries(fields)) {
      const def = defs[field];
      if (!def) throw new Error(`GraphQL field ${typeName}.${field} missing`);
      def.resolve = resolve;
    }
  }
  const json = schema.getType("JSON") as GraphQLScalarType;
  json.serialize = (v: unknown) => v;
  json.parseValue = (v: unknown) => v;
  return schema;
}
