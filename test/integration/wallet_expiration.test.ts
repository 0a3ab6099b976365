// Wallets past their expiration_at, as Lago ends them: by the organization's clock, the billing
// job's wallet pass voids what is left of the balance (one outbound, settled `voided` transaction),
// terminates the wallet and ends its rules, once, with webhooks; invoices stop drawing on it at its
// expiration_at. Amounts by hand. On PGlite by default, PostgreSQL with TEST_DATABASE_URL.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestApp, type TestApp } from "../helpers/app.ts";
import { BILLING_ENV, createWallet, customer, invoicesOf, newOrg, orgWithHooks, plan, subscribe, walletOf, walletTransactionsOf, webhookPayloadsOf } from "./billing_support.ts";

let t: TestApp;
beforeAll(async () => {
  t = await startTestApp({ env: { ...BILLING_ENV, WEBHOOK_WORKER: "off", PAYMENT_WORKER: "off" } });
});
afterAll(async () => {
  await t?.close();
});

describe("wallet expiration", () => {
  it("at its expiration_at the balance is voided by one transaction and the wallet is terminated, with webhooks", async () => {
    const org = await orgWithHooks(t);
    const cus = await customer(org);
    // 10 credits bought (20.00, paid) and 2.5 granted (5.00): 25.00, 12.5 credits.
    const w = await createWallet(org, cus, "2", { paid_credits: "10", granted_credits: "2.5", expiration_at: "2026-03-01T00:00:00Z" });
    const bought = (await walletTransactionsOf(org, w.lago_id, "?transaction_status=purchased"))[0];
    await org.api("PUT", `/api/v1/invoices/${bought.lago_invoice_id}`, { invoice: { payment_status: "succeeded" } });
    expect(await walletOf(org, w.lago_id)).toMatchObject({ balance_cents: 2500, credits_balance: "12.5", status: "active" });

    // One second before: nothing happens.
    await org.freeze("2026-02-28T23:59:59Z");
    expect(await walletOf(org, w.lago_id)).toMatchObject({ balance_cents: 2500, status: "active", terminated_at: null });
    expect(await walletTransactionsOf(org, w.lago_id, "?transaction_type=outbound")).toEqual([]);

    await org.freeze("2026-03-01T00:00:00Z");
    const ended = await walletOf(org, w.lago_id);
    expect(ended).toMatchObject({ balance_cents: 0, credits_balance: "0", consumed_credits: "0", status: "terminated", terminated_at: "2026-03-01T00:00:00Z" });
    const out = await walletTransactionsOf(org, w.lago_id, "?transaction_type=outbound");
    expect(out.map((x) => [x.status, x.transaction_status, x.amount, x.amount_cents, x.credit_amount, x.name, x.lago_invoice_id, x.lago_credit_note_id, x.settled_at])).toEqual([
      ["settled", "voided", "25.00", 2500, "12.5", "Credits expired", null, null, "2026-03-01T00:00:00Z"],
    ]);
    expect((await webhookPayloadsOf(org, "wallet_transaction.created")).map((p) => p.wallet_transaction).filter((x: any) => x.transaction_type === "outbound")).toMatchObject([
      { lago_id: out[0].lago_id, amount_cents: 2500, transaction_status: "voided" },
    ]);
    expect((await webhookPayloadsOf(org, "wallet.terminated")).map((p) => [p.wallet.lago_id, p.wallet.balance_cents, p.wallet.status])).toEqual([[w.lago_id, 0, "terminated"]]);

    // Later runs change nothing: it expired once.
    await org.freeze("2026-04-01T00:00:00Z");
    await t.app.wallets.runRecurringRules({ orgId: org.orgId });
    expect(await walletTransactionsOf(org, w.lago_id, "?transaction_type=outbound")).toHaveLength(1);
    expect(await webhookPayloadsOf(org, "wallet.terminated")).toHaveLength(1);
    expect(await walletOf(org, w.lago_id)).toMatchObject({ terminated_at: "2026-03-01T00:00:00Z" });
  });

  it("follows each organization's own clock", async () => {
    const a = await newOrg(t);
    const b = await newOrg(t);
    await a.freeze("2026-01-01T00:00:00Z");
    await b.freeze("2026-01-01T00:00:00Z");
    const wa = await createWallet(a, await customer(a), "2", { granted_credits: "5", expiration_at: "2026-02-01T00:00:00Z" });
    const wb = await createWallet(b, await customer(b), "2", { granted_credits: "5", expiration_at: "2026-02-01T00:00:00Z" });
    await a.freeze("2026-02-02T00:00:00Z");
    // A pass over every organization: b's clock is still in January.
    const r = await t.app.wallets.runRecurringRules();
    expect(r.errors).toEqual([]);
    expect(await walletOf(a, wa.lago_id)).toMatchObject({ status: "terminated", balance_cents: 0 });
    expect(await walletOf(b, wb.lago_id)).toMatchObject({ status: "active", balance_cents: 1000 });
    await b.freeze("2026-02-01T00:00:00Z");
    expect(await walletOf(b, wb.lago_id)).toMatchObject({ status: "terminated", balance_cents: 0 });
  });

  it("an empty wallet ends with no transaction; a wallet given a later expiration_at lives on", async () => {
    const org = await newOrg(t);
    await org.freeze("2026-01-01T00:00:00Z");
    const cus = await customer(org);
    const empty = await createWallet(org, cus, "2", { expiration_at: "2026-01-15T00:00:00Z" });
    const moved = await createWallet(org, cus, "2", { granted_credits: "3", expiration_at: "2026-01-15T00:00:00Z" });
    await org.api("PUT", `/api/v1/wallets/${moved.lago_id}`, { wallet: { expiration_at: "2026-06-30T00:00:00Z" } });
    await org.freeze("2026-01-20T00:00:00Z");
    expect(await walletOf(org, empty.lago_id)).toMatchObject({ status: "terminated", balance_cents: 0 });
    expect(await walletTransactionsOf(org, empty.lago_id)).toEqual([]);
    expect(await walletOf(org, moved.lago_id)).toMatchObject({ status: "active", balance_cents: 600, expiration_at: "2026-06-30T00:00:00Z" });
    // An expiration_at already past is refused (it would end the wallet with no notice).
    const r = await org.raw("PUT", `/api/v1/wallets/${moved.lago_id}`, { wallet: { expiration_at: "2026-01-19T00:00:00Z" } });
    expect(r.statusCode, r.body).toBe(422);
    expect(JSON.parse(r.body).error_details).toEqual({ expiration_at: ["invalid_date"] });
  });

  it("an expired wallet's recurring rules end and never top it up again", async () => {
    const org = await newOrg(t);
    await org.freeze("2026-01-01T00:00:00Z");
    const cus = await customer(org);
    const w = await createWallet(org, cus, "2", {
      granted_credits: "1",
      expiration_at: "2026-02-10T00:00:00Z",
      recurring_transaction_rules: [{ trigger: "interval", interval: "weekly", granted_credits: "5" }],
    });
    await org.freeze("2026-02-09T00:00:00Z");
    expect(await walletOf(org, w.lago_id)).toMatchObject({ status: "active", balance_cents: 5200 });
    await org.freeze("2026-03-01T00:00:00Z");
    const ended = await walletOf(org, w.lago_id);
    expect(ended).toMatchObject({ status: "terminated", balance_cents: 0, recurring_transaction_rules: [] });
    const inbound = await walletTransactionsOf(org, w.lago_id, "?transaction_type=inbound&per_page=100");
    // The first credit and the weekly top-ups until February 10 (Jan 8, 15, 22, 29, Feb 5), none after.
    expect(inbound.map((x) => x.credit_amount).sort()).toEqual(["1", "5", "5", "5", "5", "5"]);
    const [voided] = await walletTransactionsOf(org, w.lago_id, "?transaction_type=outbound");
    expect(voided).toMatchObject({ transaction_status: "voided", amount_cents: 5200, credit_amount: "26" });
    await org.freeze("2026-04-01T00:00:00Z");
    expect(await walletTransactionsOf(org, w.lago_id, "?per_page=100")).toHaveLength(7);
  });

  it("an invoice finalized at the expiration_at does not draw on the wallet, whatever ran first", async () => {
    const org = await newOrg(t);
    await org.freeze("2026-01-01T00:00:00Z");
    const p = await plan(org, { amount_cents: 1000 });
    const cus = await customer(org);
    await subscribe(org, cus, p.plan);
    const w = await createWallet(org, cus, "2", { granted_credits: "50", expiration_at: "2026-02-01T00:00:00Z" });
    await org.freeze("2026-02-01T00:00:00Z");
    const [jan] = await invoicesOf(org, cus);
    expect(jan).toMatchObject({ prepaid_credit_amount_cents: 0, total_amount_cents: 1000 });
    expect(await walletOf(org, w.lago_id)).toMatchObject({ status: "terminated", balance_cents: 0, consumed_credits: "0" });
    expect((await walletTransactionsOf(org, w.lago_id, "?transaction_type=outbound")).map((x) => [x.transaction_status, x.amount_cents])).toEqual([["voided", 10000]]);
  });

  it("passes running at once expire a wallet once", async () => {
    const org = await newOrg(t);
    await org.freeze("2026-01-01T00:00:00Z");
    const cus = await customer(org);
    const w = await createWallet(org, cus, "2", { granted_credits: "7", expiration_at: "2026-01-10T00:00:00Z" });
    // Made due behind the passes' back (a clock move runs one), then three passes at once.
    await t.db.query("UPDATE wallets SET expiration_at = '2025-12-31T00:00:00Z' WHERE org_id = $1 AND lago_id = $2", [org.orgId, w.lago_id]);
    await Promise.all([1, 2, 3].map(() => t.app.wallets.runRecurringRules({ orgId: org.orgId })));
    await t.app.wallets.runRecurringRules({ orgId: org.orgId });
    expect(await walletOf(org, w.lago_id)).toMatchObject({ status: "terminated", balance_cents: 0 });
    expect((await walletTransactionsOf(org, w.lago_id, "?transaction_type=outbound")).map((x) => x.amount_cents)).toEqual([1400]);
  });

  it("another organization's pass never ends this organization's wallets", async () => {
    const a = await newOrg(t);
    const b = await newOrg(t);
    await a.freeze("2026-01-01T00:00:00Z");
    const wa = await createWallet(a, await customer(a), "2", { granted_credits: "5", expiration_at: "2026-02-01T00:00:00Z" });
    await b.freeze("2027-01-01T00:00:00Z");
    await t.app.wallets.runRecurringRules({ orgId: b.orgId });
    expect(await walletOf(a, wa.lago_id)).toMatchObject({ status: "active", balance_cents: 1000 });
  });
});
