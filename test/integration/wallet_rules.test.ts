// Recurring wallet top-ups against a real database (Lago's recurring_transaction_rules), under a
// test clock: interval rules top up on each anniversary once, threshold rules once per crossing,
// fixed and target methods, paid credits billed on a credit invoice, rules set and changed through
// the wallet routes, bad rules named by field. On PGlite by default, PostgreSQL with TEST_DATABASE_URL.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestApp, type TestApp } from "../helpers/app.ts";
import { scalar } from "./support.ts";
import { BILLING_ENV, createWallet, customer, expect422, invoicesOf, newOrg, plan, subscribe, walletOf, type Org } from "./billing_support.ts";

let t: TestApp;
beforeAll(async () => {
  t = await startTestApp({ env: { ...BILLING_ENV, WEBHOOK_WORKER: "off", PAYMENT_WORKER: "off" } });
});
afterAll(async () => {
  await t?.close();
});

const ruleTransactions = async (org: Org, id: string) =>
  ((await org.api("GET", `/api/v1/wallets/${id}/wallet_transactions?per_page=100`)).wallet_transactions as any[])
    .filter((x) => x.source !== "manual")
    .map((x) => [x.source, x.transaction_status, x.status, x.amount_cents])
    .reverse();

describe("recurring wallet top-ups", () => {
  it("an interval rule tops up on each anniversary of the wallet's creation, once, however often it runs", async () => {
    const org = await newOrg(t);
    await org.freeze("2026-01-15T10:00:00Z");
    const cus = await customer(org);
    const w = await createWallet(org, cus, "1", {
      recurring_transaction_rules: [{ trigger: "interval", interval: "monthly", granted_credits: "10", transaction_name: "Monthly gift", transaction_metadata: [{ key: "k", value: "v" }] }],
    });
    expect(w.recurring_transaction_rules).toEqual([
      expect.objectContaining({
        trigger: "interval",
        method: "fixed",
        interval: "monthly",
        status: "active",
        paid_credits: "0",
        granted_credits: "10",
        started_at: null,
        target_ongoing_balance: null,
        grants_target_top_up: null,
        transaction_name: "Monthly gift",
        transaction_metadata: [{ key: "k", value: "v" }],
        created_at: "2026-01-15T10:00:00Z",
        next_top_up_at: "2026-02-15T00:00:00Z",
      }),
    ]);
    expect(w.recurring_transaction_rules[0].lago_id).toMatch(/^[0-9a-f-]{36}$/);
    expect((await walletOf(org, w.lago_id)).recurring_transaction_rules).toEqual(w.recurring_transaction_rules);

    await org.freeze("2026-02-14T23:59:00Z");
    expect((await walletOf(org, w.lago_id)).balance_cents).toBe(0);
    await org.freeze("2026-02-15T00:00:00Z");
    expect((await walletOf(org, w.lago_id)).balance_cents).toBe(1000);
    // Concurrent and repeated runs at the same time: nothing more.
    await Promise.all([t.app.wallets.runRecurringRules({ orgId: org.orgId }), t.app.wallets.runRecurringRules({ orgId: org.orgId })]);
    await t.app.wallets.runRecurringRules();
    expect(await ruleTransactions(org, w.lago_id)).toEqual([["interval", "granted", "settled", 1000]]);
    const [tx] = (await org.api("GET", `/api/v1/wallets/${w.lago_id}/wallet_transactions`)).wallet_transactions;
    expect(tx).toMatchObject({ name: "Monthly gift", metadata: [{ key: "k", value: "v" }] });

    // Three months later: March 15th, April 15th, May 15th, one each.
    await org.freeze("2026-05-20T00:00:00Z");
    expect((await walletOf(org, w.lago_id)).balance_cents).toBe(4000);
    expect((await ruleTransactions(org, w.lago_id)).length).toBe(4);
    expect((await walletOf(org, w.lago_id)).recurring_transaction_rules[0].next_top_up_at).toBe("2026-06-15T00:00:00Z");
  });

  it("a paid interval rule starting later tops up on its start day and bills the credits", async () => {
    const org = await newOrg(t);
    await org.freeze("2026-01-10T00:00:00Z");
    const cus = await customer(org);
    const w = await createWallet(org, cus, "1", { recurring_transaction_rules: [{ trigger: "interval", interval: "weekly", paid_credits: "25", started_at: "2026-02-01T00:00:00Z" }] });
    expect(w.recurring_transaction_rules[0]).toMatchObject({ started_at: "2026-02-01T00:00:00Z", next_top_up_at: "2026-02-01T00:00:00Z", paid_credits: "25" });
    await org.freeze("2026-02-01T12:00:00Z");
    expect(await ruleTransactions(org, w.lago_id)).toEqual([["interval", "purchased", "pending", 2500]]);
    const credit = (await invoicesOf(org, cus)).filter((i) => i.invoice_type === "credit");
    expect(credit.map((i) => [i.status, i.total_amount_cents])).toEqual([["finalized", 2500]]);
    await org.api("POST", "/api/v1/payments", { payment: { invoice_id: credit[0].lago_id, amount_cents: 2500, reference: "top-up" } });
    expect((await walletOf(org, w.lago_id)).balance_cents).toBe(2500);
    await org.freeze("2026-02-08T00:00:00Z");
    expect((await ruleTransactions(org, w.lago_id)).length).toBe(2);
  });

  it("a threshold rule tops up once per crossing; target tops up to the target, credits on their way count", async () => {
    const org = await newOrg(t);
    await org.freeze("2026-03-01T00:00:00Z");
    const cus = await customer(org);
    const w = await createWallet(org, cus, "1", {
      granted_credits: "100",
      recurring_transaction_rules: [{ trigger: "threshold", method: "target", threshold_credits: "20", target_ongoing_balance: "100" }],
    });
    expect(w.recurring_transaction_rules[0]).toMatchObject({ trigger: "threshold", method: "target", threshold_credits: "20", target_ongoing_balance: "100", grants_target_top_up: false, interval: null, next_top_up_at: null });
    const void_ = (credits: string) => org.api("POST", "/api/v1/wallet_transactions", { wallet_transaction: { wallet_id: w.lago_id, voided_credits: credits } });

    await void_("85"); // 15 left: at or below 20.
    await t.app.wallets.runRecurringRules({ orgId: org.orgId });
    expect(await ruleTransactions(org, w.lago_id)).toEqual([["threshold", "purchased", "pending", 8500]]);
    // The purchase awaits payment: 15 + 85 on its way is above the threshold; nothing more is bought.
    await t.app.wallets.runRecurringRules({ orgId: org.orgId });
    await org.freeze("2026-03-02T00:00:00Z");
    expect((await ruleTransactions(org, w.lago_id)).length).toBe(1);
    const [credit] = (await invoicesOf(org, cus)).filter((i) => i.invoice_type === "credit");
    await org.api("PUT", `/api/v1/invoices/${credit.lago_id}`, { invoice: { payment_status: "succeeded" } });
    expect((await walletOf(org, w.lago_id)).balance_cents).toBe(10000);

    // A second crossing: 90 voided, 10 left, topped up by 90.
    await void_("90");
    await org.freeze("2026-03-03T00:00:00Z");
    expect((await ruleTransactions(org, w.lago_id)).map((x) => x[3])).toEqual([8500, 9000]);
  });

  it("a top-up too small to lift the balance waits for the next crossing; invoices' draws trigger it on the clock move", async () => {
    const org = await newOrg(t);
    await org.freeze("2026-01-01T00:00:00Z");
    const { plan: planCode } = await plan(org, { amount_cents: 3000 });
    const cus = await customer(org);
    await subscribe(org, cus, planCode);
    const w = await createWallet(org, cus, "1", { granted_credits: "40", recurring_transaction_rules: [{ trigger: "threshold", threshold_credits: "20", granted_credits: "5" }] });
    // February 1st: the €30 invoice draws 30 credits, 10 left; the same clock move tops up 5 (15, still below).
    await org.freeze("2026-02-01T00:00:00Z");
    const [inv] = (await invoicesOf(org, cus)).filter((i) => i.invoice_type === "subscription");
    expect(inv).toMatchObject({ prepaid_credit_amount_cents: 3000, total_amount_cents: 0 });
    expect((await walletOf(org, w.lago_id)).balance_cents).toBe(1500);
    await t.app.wallets.runRecurringRules({ orgId: org.orgId });
    await org.freeze("2026-02-02T00:00:00Z");
    expect(await ruleTransactions(org, w.lago_id)).toEqual([["threshold", "granted", "settled", 500]]);
    // Credits that lift it above 20 arm the rule again; falling back below fires it once more.
    await org.api("POST", "/api/v1/wallet_transactions", { wallet_transaction: { wallet_id: w.lago_id, granted_credits: "10" } });
    await org.api("POST", "/api/v1/wallet_transactions", { wallet_transaction: { wallet_id: w.lago_id, voided_credits: "10" } });
    await org.freeze("2026-02-03T00:00:00Z");
    expect((await ruleTransactions(org, w.lago_id)).length).toBe(2);
    expect(await scalar(t.db, "SELECT count(*) AS n FROM wallet_rule_top_ups WHERE org_id = $1", [org.orgId])).toBe(2);
  });

  it("rules are changed and ended through PUT, end with their wallet, and bad ones are named by field", async () => {
    const org = await newOrg(t);
    await org.freeze("2026-01-01T00:00:00Z");
    const cus = await customer(org);
    const w = await createWallet(org, cus, "1", { recurring_transaction_rules: [{ trigger: "interval", interval: "monthly", paid_credits: "1" }] });
    const ruleId = w.recurring_transaction_rules[0].lago_id;
    const changed = (
      await org.api("PUT", `/api/v1/wallets/${w.lago_id}`, {
        wallet: { recurring_transaction_rules: [{ lago_id: ruleId, trigger: "interval", interval: "yearly", granted_credits: "3" }] },
      })
    ).wallet.recurring_transaction_rules;
    expect(changed).toEqual([expect.objectContaining({ lago_id: ruleId, interval: "yearly", paid_credits: "0", granted_credits: "3", next_top_up_at: "2027-01-01T00:00:00Z" })]);
    const replaced = (await org.api("PUT", `/api/v1/wallets/${w.lago_id}`, { wallet: { recurring_transaction_rules: [{ trigger: "threshold", threshold_credits: "1", granted_credits: "1" }] } }))
      .wallet.recurring_transaction_rules;
    expect(replaced.map((r: any) => [r.trigger, r.lago_id === ruleId])).toEqual([["threshold", false]]);
    expect((await org.api("PUT", `/api/v1/wallets/${w.lago_id}`, { wallet: { name: "kept" } })).wallet.recurring_transaction_rules).toHaveLength(1);
    expect((await org.api("PUT", `/api/v1/wallets/${w.lago_id}`, { wallet: { recurring_transaction_rules: [] } })).wallet.recurring_transaction_rules).toEqual([]);

    const w2 = await createWallet(org, cus, "1", { code: "second", recurring_transaction_rules: [{ trigger: "interval", interval: "weekly", granted_credits: "1" }] });
    await org.api("DELETE", `/api/v1/wallets/${w2.lago_id}`);
    await org.freeze("2026-02-01T00:00:00Z");
    expect(await ruleTransactions(org, w2.lago_id)).toEqual([]);

    const bad = (rules: unknown) => org.raw("POST", "/api/v1/wallets", { wallet: { external_customer_id: cus, currency: "EUR", rate_amount: "1", recurring_transaction_rules: rules } });
    expect(expect422(await bad([{}]), "recurring_transaction_rules[0].trigger", "recurring_transaction_rules[0].paid_credits")).toMatchObject({
      "recurring_transaction_rules[0].trigger": ["value_is_mandatory"],
    });
    expect(expect422(await bad([{ trigger: "interval", granted_credits: "1" }]), "recurring_transaction_rules[0].interval")).toEqual({
      "recurring_transaction_rules[0].interval": ["value_is_mandatory"],
    });
    expect422(await bad([{ trigger: "interval", interval: "daily", granted_credits: "1" }]), "recurring_transaction_rules[0].interval");
    expect422(await bad([{ trigger: "threshold", granted_credits: "1" }]), "recurring_transaction_rules[0].threshold_credits");
    expect422(await bad([{ trigger: "threshold", threshold_credits: "1", method: "target" }]), "recurring_transaction_rules[0].target_ongoing_balance");
    expect422(await bad([{ trigger: "interval", interval: "weekly", paid_credits: "-1" }]), "recurring_transaction_rules[0].paid_credits");
    expect422(await bad([{ trigger: "interval", interval: "weekly", granted_credits: "1", started_at: "soon" }]), "recurring_transaction_rules[0].started_at");
    expect(expect422(await bad([{ trigger: "interval", interval: "weekly", granted_credits: "1" }, { trigger: "interval", interval: "weekly", granted_credits: "1" }]), "recurring_transaction_rules"))
      .toEqual({ recurring_transaction_rules: ["only_one_rule_allowed"] });
    expect422(await bad("weekly"), "recurring_transaction_rules");
    expect(expect422(await bad([{ trigger: "threshold", threshold_credits: "999999999999999", granted_credits: "1" }]), "recurring_transaction_rules[0].threshold_credits")).toEqual({
      "recurring_transaction_rules[0].threshold_credits": ["value_is_out_of_range"],
    });
  });
});
