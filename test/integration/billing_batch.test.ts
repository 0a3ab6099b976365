// The billing job's batch path (src/modules/invoicing/batch.ts) against the per-subscription path:
// the same organization set up twice, on two servers (BILLING_BATCH_SIZE=0 and the default),
// billed by the same clock moves, must issue the same invoices (JSON compared, ids aside) —
// taxes, filters, graduated tiers, time zones, trials, spending minimums, grace periods and
// payment terms included, and subscriptions the batch path leaves alone (coupons, wallets,
// advance fees) billed the same too. Then exactly once: a batch that crashes writes nothing, and
// two jobs racing over the same batch issue one invoice per subscription with gapless numbers.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DB_KIND } from "../helpers/db.ts";
import { startTestApp, type TestApp } from "../helpers/app.ts";
import { InvoicingService } from "../../src/modules/invoicing/index.ts";
import { BILLING_ENV, type Org, newOrg } from "./billing_support.ts";
import { bearer, scalar } from "./support.ts";

const ts = (iso: string) => Math.floor(Date.parse(iso) / 1000);

interface Setup {
  org: Org;
  customers: string[];
}

/** One organization with a mix of subscriptions; every id is fixed, so two servers hold the same data. */
async function setUp(t: TestApp): Promise<Setup> {
  const org = await newOrg(t, "Batch Compare Co");
  await org.freeze("2026-03-01T00:00:00Z");
  await org.api("POST", "/api/v1/taxes", { tax: { name: "VAT", code: "vat", rate: "20", applied_to_organization: true } });
  await org.api("POST", "/api/v1/taxes", { tax: { name: "Reduced", code: "reduced", rate: "5.5" } });
  const metric = async (code: string, aggregation_type: string, extra: object = {}) =>
    (await org.api("POST", "/api/v1/billable_metrics", { billable_metric: { name: code, code, aggregation_type, ...extra } })).billable_metric.lago_id as string;
  const calls = await metric("calls", "count_agg", { filters: [{ key: "region", values: ["eu", "us"] }] });
  const gb = await metric("gb", "sum_agg", { field_name: "gb" });
  const seats = await metric("seats", "max_agg", { field_name: "seats" });
  const charges = [
    {
      billable_metric_id: calls,
      charge_model: "standard",
      properties: { amount: "0.05" },
      filters: [{ invoice_display_name: "Europe", properties: { amount: "0.1" }, values: { region: ["eu"] } }],
    },
    {
      billable_metric_id: gb,
      charge_model: "graduated",
      tax_codes: ["reduced"],
      properties: {
        graduated_ranges: [
          { from_value: 0, to_value: 10, per_unit_amount: "1.00", flat_amount: "0" },
          { from_value: 11, to_value: null, per_unit_amount: "0.333", flat_amount: "1" },
        ],
      },
    },
    { billable_metric_id: seats, charge_model: "standard", min_amount_cents: 1500, properties: { amount: "2.00" } },
  ];
  const plan = async (code: string, extra: object = {}) =>
    org.api("POST", "/api/v1/plans", { plan: { name: code, code, interval: "monthly", amount_cents: 1999, amount_currency: "EUR", pay_in_advance: false, charges, ...extra } });
  await plan("basic");
  await plan("trial", { trial_period: 10 });
  await plan("advance", { pay_in_advance: true });
  await org.api("POST", "/api/v1/coupons", {
    coupon: { name: "Ten off", code: "ten", coupon_type: "fixed_amount", amount_cents: 1000, amount_currency: "EUR", frequency: "once", expiration: "no_expiration" },
  });

  const kinds: { id: string; plan: string; customer?: object; after?: (id: string) => Promise<void> }[] = [
    { id: "utc", plan: "basic" },
    { id: "ny", plan: "basic", customer: { timezone: "America/New_York" } },
    { id: "tokyo", plan: "basic", customer: { timezone: "Asia/Tokyo", net_payment_term: 30 } },
    { id: "grace", plan: "basic", customer: { billing_configuration: { invoice_grace_period: 2 } } },
    { id: "taxed", plan: "basic", customer: { tax_codes: ["reduced"] } },
    { id: "idle", plan: "basic" },
    { id: "trial", plan: "trial" },
    { id: "advance", plan: "advance" },
    {
      id: "coupon",
      plan: "basic",
      after: async (cus) => void (await org.api("POST", "/api/v1/applied_coupons", { applied_coupon: { external_customer_id: cus, coupon_code: "ten" } })),
    },
    {
      id: "wallet",
      plan: "basic",
      after: async (cus) =>
        void (await org.api("POST", "/api/v1/wallets", { wallet: { external_customer_id: cus, currency: "EUR", rate_amount: "1", granted_credits: "5.00" } })),
    },
  ];
  const customers: string[] = [];
  for (const k of kinds) {
    for (const n of [1, 2]) {
      const cus = `cus_${k.id}_${n}`;
      await org.api("POST", "/api/v1/customers", { customer: { external_id: cus, currency: "EUR", ...k.customer } });
      await org.api("POST", "/api/v1/subscriptions", {
        subscription: { external_customer_id: cus, plan_code: k.plan, external_id: `sub_${k.id}_${n}`, billing_time: "calendar", subscription_at: "2026-03-01T00:00:00Z" },
      });
      await k.after?.(cus);
      customers.push(cus);
    }
  }
  await org.freeze("2026-03-31T12:00:00Z");
  const events = kinds
    .filter((k) => k.id !== "idle")
    .flatMap((k, i) =>
      [1, 2].flatMap((n) => {
        const sub = `sub_${k.id}_${n}`;
        return [
          ...Array.from({ length: 3 + i + n }, (_, j) => ({
            transaction_id: `c_${sub}_${j}`,
            external_subscription_id: sub,
            code: "calls",
            timestamp: ts(`2026-03-${String(2 + j).padStart(2, "0")}T10:00:00Z`),
            properties: { region: j % 3 === 0 ? "eu" : j % 3 === 1 ? "us" : "asia" },
          })),
          { transaction_id: `g1_${sub}`, external_subscription_id: sub, code: "gb", timestamp: ts("2026-03-05T00:30:00Z"), properties: { gb: 4 + n } },
          { transaction_id: `g2_${sub}`, external_subscription_id: sub, code: "gb", timestamp: ts("2026-03-18T23:59:59Z"), properties: { gb: "7.25" } },
          { transaction_id: `s1_${sub}`, external_subscription_id: sub, code: "seats", timestamp: ts("2026-03-10T12:00:00Z"), properties: { seats: i % 4 } },
          // The last hour of March in UTC: inside the period for UTC, after it in Tokyo, before it in New York.
          { transaction_id: `c_${sub}_late`, external_subscription_id: sub, code: "calls", timestamp: ts("2026-03-31T23:30:00Z"), properties: {} },
        ];
      }),
    );
  await org.api("POST", "/api/v1/events/batch", { events });
  return { org, customers };
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** The customers' invoices as JSON, ids replaced by their order of appearance, numbers left out (compared apart). */
async function invoicesJson(s: Setup): Promise<unknown> {
  const ids = new Map<string, string>();
  const scrub = (v: unknown): unknown => {
    if (typeof v === "string" && UUID.test(v)) {
      if (!ids.has(v)) ids.set(v, `id${ids.size}`);
      return ids.get(v);
    }
    // Document numbers and customer slugs start with the organization's prefix (its id's last four characters).
    if (typeof v === "string") return v.replace(/^([A-Z0-9]{1,3})-[0-9A-F]{4}-/, "$1-XXXX-");
    if (Array.isArray(v)) return v.map((x) => scrub(x));
    if (v !== null && typeof v === "object") {
      return Object.fromEntries(
        Object.entries(v)
          .filter(([k]) => k !== "number" && k !== "organization_sequential_id")
          .map(([k, x]) => [k, scrub(x)]),
      );
    }
    return v;
  };
  const out: Record<string, unknown> = {};
  for (const cus of s.customers) {
    const list = (await s.org.api("GET", `/api/v1/invoices?external_customer_id=${cus}&per_page=100`)).invoices as { lago_id: string }[];
    const full = [];
    for (const i of list) full.push((await s.org.api("GET", `/api/v1/invoices/${i.lago_id}`)).invoice);
    out[cus] = scrub(full);
  }
  return out;
}

describe(`the billing job's batch path issues the same invoices as the per-subscription path on ${DB_KIND}`, () => {
  let one: TestApp;
  let batched: TestApp;
  let a: Setup;
  let b: Setup;

  beforeAll(async () => {
    one = await startTestApp({ env: { ...BILLING_ENV, BILLING_BATCH_SIZE: "0" } });
    batched = await startTestApp({ env: { ...BILLING_ENV, BILLING_BATCH_SIZE: "4" } });
    a = await setUp(one);
    b = await setUp(batched);
  }, 120_000);
  afterAll(async () => {
    await one?.close();
    await batched?.close();
  });

  it("at the end of March (drafts in their grace period included), then once the grace period is over", async () => {
    const expected = await invoicesJson(a);
    expect(await invoicesJson(b)).toEqual(expected);
    for (const at of ["2026-04-02T00:00:00Z", "2026-04-06T00:00:00Z"]) {
      await a.org.freeze(at);
      await b.org.freeze(at);
      const left = await invoicesJson(a);
      expect(await invoicesJson(b)).toEqual(left);
    }
    const all = (await b.org.api("GET", "/api/v1/invoices?per_page=100")).invoices as { status: string; invoice_type: string; organization_sequential_id: number | null }[];
    // 10 kinds × 2 at the end of March; the advance plan's first periods at their start; New York's
    // first day (subscribed at midnight UTC, the evening before in New York) on March 1st.
    expect(all.map((i) => i.invoice_type)).toEqual(Array(24).fill("subscription"));
    expect(all.every((i) => i.status === "finalized")).toBe(true);
    expect(all.map((i) => i.organization_sequential_id).sort((x, y) => x! - y!)).toEqual(Array.from({ length: 24 }, (_, i) => i + 1));
    // One transaction per invoice one way; the batch path wrote the plain periodic ones of each clock
    // move together (batches of 4). Counted on the fees, written with their invoice and never updated
    // after (invoices are: the overdue pass marks many in one transaction).
    const transactions = (t: TestApp) => scalar(t.db, "SELECT count(DISTINCT xmin::text)::text AS n FROM fees WHERE invoice_id IS NOT NULL");
    expect(await transactions(one)).toBe(24);
    expect(await transactions(batched)).toBeLessThan(20);
  });
});

describe(`a batch is billed exactly once on ${DB_KIND}`, () => {
  let t: TestApp;
  let orgId: number;
  const N = 10;

  beforeAll(async () => {
    t = await startTestApp({ env: { BILLING_SCHEDULER: "off", BILLING_BATCH_SIZE: "5" } });
    orgId = (await t.app.orgs.authenticate(t.apiKey))!;
    const api = async (url: string, payload: object) => {
      const r = await t.app.http.inject({ method: "POST", url, headers: bearer(t.apiKey), payload });
      expect(r.statusCode, r.body).toBe(200);
    };
    await api("/api/v1/plans", { plan: { name: "Flat", code: "flat", interval: "monthly", amount_cents: 1000, amount_currency: "EUR", pay_in_advance: false, charges: [] } });
    for (let i = 0; i < N; i++) {
      await api("/api/v1/customers", { customer: { external_id: `cus_${i}`, currency: "EUR" } });
      await api("/api/v1/subscriptions", {
        subscription: { external_customer_id: `cus_${i}`, plan_code: "flat", external_id: `sub_${i}`, billing_time: "calendar", subscription_at: "2026-03-01T00:00:00Z" },
      });
    }
    t.clock.set(Date.UTC(2026, 3, 1, 0, 0, 5));
  }, 60_000);
  afterAll(async () => {
    await t?.close();
  });

  const count = (table: string) => scalar(t.db, `SELECT count(*)::text AS n FROM ${table} WHERE org_id = $1`, [orgId]);

  it("a batch that crashes after writing its invoices and billing instants, before its fees, leaves nothing of it", async () => {
    let crashes = 0;
    const errors: unknown[] = [];
    const crashing = new InvoicingService(t.db, t.clock, { customers: t.app.customers, subscriptions: t.app.subscriptions, metering: t.app.metering }, {
      billingBatchSize: 5,
      beforeBatchFees: (ids) => {
        crashes += 1;
        expect(ids.length).toBe(5);
        throw new Error("process killed");
      },
      // The per-subscription path that a failed batch falls back to bills nothing: what crashed stays unbilled.
      maxInstantsPerRun: 0,
      onError: (err) => errors.push(err),
    });
    const summary = await crashing.runBillingJob({ orgId });
    expect(crashes).toBe(2);
    expect(errors.map((e) => (e as Error).message)).toEqual(["process killed", "process killed"]);
    expect(summary.invoicesIssued).toBe(0);
    expect(await count("invoices")).toBe(0);
    expect(await count("invoice_subscriptions")).toBe(0);
    expect(await count("fees")).toBe(0);
    expect(await count("invoice_sequences")).toBe(0);
  });

  it("two jobs racing over the same batches issue one invoice per subscription, numbered 1..N without gaps", async () => {
    const [x, y] = await Promise.all([t.app.invoicing.runBillingJob({ orgId }), t.app.invoicing.runBillingJob({ orgId })]);
    expect(x.failures + y.failures).toBe(0);
    expect(x.invoicesIssued + y.invoicesIssued).toBe(N);
    const { rows } = await t.db.query<{ n: string; seq: string }>(
      `SELECT count(*)::text AS n, min(i.organization_sequential_id)::text AS seq
         FROM invoice_subscriptions b JOIN invoices i ON i.id = b.invoice_id WHERE b.org_id = $1 GROUP BY b.subscription_id`,
      [orgId],
    );
    expect(rows.length).toBe(N);
    expect(rows.every((r) => r.n === "1")).toBe(true);
    expect(rows.map((r) => Number(r.seq)).sort((p, q) => p - q)).toEqual(Array.from({ length: N }, (_, i) => i + 1));
    expect(await count("fees")).toBe(N);
    // Batches of 5: two transactions wrote the ten invoices.
    expect(await scalar(t.db, "SELECT count(DISTINCT xmin::text)::text AS n FROM invoices WHERE org_id = $1", [orgId])).toBe(2);
    expect((await t.app.invoicing.runBillingJob({ orgId })).invoicesIssued).toBe(0);
  });
});
