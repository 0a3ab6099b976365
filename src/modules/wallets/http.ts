import type { FastifyInstance } from "fastify";
import { type FieldErrors, validationFailed } from "../../shared/errors.ts";
import { paginationMeta } from "../../shared/pagination.ts";
import { bodyOf, pageOf } from "../taxes/index.ts";
import { walletJson, walletTransactionJson } from "./json.ts";
import type { WalletService } from "./service.ts";
import type { TransactionFilter } from "./store.ts";

type ById = { Params: { lago_id: string } };
type ByCustomer = { Params: { external_customer_id: string } };

function transactionFilter(query: unknown): TransactionFilter {
  const q = (query ?? {}) as Record<string, unknown>;
  const errors: FieldErrors = {};
  const one = (name: string, allowed: readonly string[]): string | undefined => {
    const v = q[name];
    if (v === undefined || v === "") return undefined;
    if (typeof v !== "string" || !allowed.includes(v)) {
      errors[name] = [`must_be_one_of_${allowed.join("_")}`];
      return undefined;
    }
    return v;
  };
  const status = one("status", ["pending", "settled", "failed"]);
  const transactionStatus = one("transaction_status", ["purchased", "granted", "voided", "invoiced"]);
  const transactionType = one("transaction_type", ["inbound", "outbound"]);
  if (Object.keys(errors).length > 0) throw validationFailed(errors, "invalid query parameters");
  return {
    ...(status !== undefined ? { status } : {}),
    ...(transactionStatus !== undefined ? { transactionStatus } : {}),
    ...(transactionType !== undefined ? { transactionType } : {}),
  };
}

export function registerWalletRoutes(app: FastifyInstance, wallets: WalletService): void {
  app.post("/api/v1/wallets", async (request) => ({ wallet: walletJson(await wallets.create(request.orgId, bodyOf(request.body, "wallet"))) }));
  app.post<ByCustomer>("/api/v1/customers/:external_customer_id/wallets", async (request) => ({
    wallet: walletJson(await wallets.create(request.orgId, bodyOf(request.body, "wallet"), request.params.external_customer_id)),
  }));

  const list = async (orgId: number, query: unknown, externalCustomerId?: string) => {
    const { page, perPage } = pageOf(query);
    const ext = externalCustomerId ?? (query as Record<string, unknown> | undefined)?.["external_customer_id"];
    if (ext !== undefined && typeof ext !== "string") throw validationFailed({ external_customer_id: ["must_be_given_once"] }, "invalid query parameters");
    const { wallets: items, total } = await wallets.list(orgId, ext === "" ? undefined : ext, page, perPage);
    return { wallets: items.map(walletJson), meta: paginationMeta(page, perPage, total) };
  };
  app.get("/api/v1/wallets", async (request) => list(request.orgId, request.query));
  app.get<ByCustomer>("/api/v1/customers/:external_customer_id/wallets", async (request) => list(request.orgId, request.query, request.params.external_customer_id));

  app.get<ById>("/api/v1/wallets/:lago_id", async (request) => ({ wallet: walletJson(await wallets.get(request.orgId, request.params.lago_id)) }));
  app.put<ById>("/api/v1/wallets/:lago_id", async (request) => ({
    wallet: walletJson(await wallets.update(request.orgId, request.params.lago_id, bodyOf(request.body, "wallet"))),
  }));
  app.delete<ById>("/api/v1/wallets/:lago_id", async (request) => ({ wallet: walletJson(await wallets.terminate(request.orgId, request.params.lago_id)) }));

  app.post("/api/v1/wallet_transactions", async (request) => ({
    wallet_transactions: (await wallets.topUp(request.orgId, bodyOf(request.body, "wallet_transaction"))).map(walletTransactionJson),
  }));
  app.get<ById>("/api/v1/wallets/:lago_id/wallet_transactions", async (request) => {
    const { page, perPage } = pageOf(request.query);
    const { items, total } = await wallets.transactions(request.orgId, request.params.lago_id, transactionFilter(request.query), page, perPage);
    return { wallet_transactions: items.map(walletTransactionJson), meta: paginationMeta(page, perPage, total) };
  });
  app.get<ById>("/api/v1/wallet_transactions/:lago_id", async (request) => ({
    wallet_transaction: walletTransactionJson(await wallets.transaction(request.orgId, request.params.lago_id)),
  }));
}
