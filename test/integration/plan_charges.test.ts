// Lago's plan sub-resources: /plans/:code/charges/:charge_code and …/filters/:filter_id. Each write
// is a plan update, so it must behave exactly as PUT /plans: charge codes (derived from the metric
// when none is sent, unique per plan), Lago-shaped 422s naming the field, 404s, tenancy, the cached
// plan, subscriptions' plan_overrides, current usage and metering's rollup group keys. On PGlite by
// default, PostgreSQL with TEST_DATABASE_URL.
import type { LightMyRequestResponse } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { listMigrations, splitStatements } from "../../src/db/migrate.ts";
import { verifyRollups } from "../../src/modules/ingest/verify.ts";
import { startTestApp, type TestApp } from "../helpers/app.ts";
import { json, uid } from "./support.ts";
import { BILLING_ENV, newUsageOrg } from "./billing_support.ts";

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
let t: TestApp;

beforeAll(async () => {
  t = await startTestApp({
    env: { ...BILLING_ENV, ROLLUP_GROUP_MAX_ROWS_PERCENT: "100" },
  });
});
afterAll(async () => {
  await t?.close();
});

const T = (iso: string) => Date.parse(iso);
const newOrg = () => newUsageOrg(t);

const chargesUrl = (plan: string, charge?: string) => `/api/v1/plans/${encodeURIComponent(plan)}/charges${charge === undefined ? "" : `/${encodeURIComponent(charge)}`}`;
const filtersUrl = (plan: string, charge: string, id?: string) => `${chargesUrl(plan, charge)}/filters${id === undefined ? "" : `/${id}`}`;

function expect422(r: LightMyRequestResponse, details: Record<string, string[]>) {
  expect(r.statusCode, r.body).toBe(422);
  const body = json(r);
  expect(body).toMatchObject({ status: 422, error: "Unprocessable Entity", code: "validation_errors" });
  expect(body.error_details).toEqual(details);
}

function expect404(r: LightMyRequestResponse, code: string) {
  expect(r.statusCode, r.body).toBe(404);
  expect(json(r)).toEqual({ status: 404, error: "Not Found", code });
}

describe("charge codes on plans", () => {
  it("a charge sent without a code gets its metric's code, then _2, _3 …; codes are unique per plan and may be swapped", async () => {
    const org = await newOrg();
    const calls = await org.metric({ code: uid("calls"), aggregation_type: "count_agg" });
    const plan = await org.plan([
      { billable_metric_id: calls.lago_id, charge_model: "standard", properties: { amount: "1" } },
      { billable_metric_id: calls.lago_id, charge_model: "standard", properties: { amount: "2" } },
      { billable_metric_id: calls.lago_id, charge_model: "standard", code: `${calls.code}_2`, properties: { amount: "3" } },
      { billable_metric_code: calls.code, charge_model: "package", code: "bulk", properties: { amount: "4", package_size: 10 } },
    ]);
    // The explicit `_2` is taken, so the second generated code skips to `_3`.
    expect(plan.charges.map((c: any) => c.code)).toEqual([calls.code, `${calls.code}_3`, `${calls.code}_2`, "bulk"]);
    const [a, b] = plan.charges;

    // PUT /plans swaps two codes in one write (the unique index never sees both at once).
    const swapped = (
      await org.api("PUT", `/api/v1/plans/${plan.code}`, {
        plan: { charges: [{ id: a.lago_id, code: b.code }, { id: b.lago_id, code: a.code }, { id: plan.charges[2].lago_id }, { id: plan.charges[3].lago_id }] },
      })
    ).plan;
    expect(swapped.charges.map((c: any) => [c.lago_id, c.code])).toEqual([
      [a.lago_id, b.code],
      [b.lago_id, a.code],
      [plan.charges[2].lago_id, `${calls.code}_2`],
      [plan.charges[3].lago_id, "bulk"],
    ]);

    // Two charges with one code: refused on the later one, nothing written.
    expect422(
      await org.raw("PUT", `/api/v1/plans/${plan.code}`, { plan: { charges: [{ id: a.lago_id, code: "x" }, { id: b.lago_id, code: "x" }] } }),
      { "charges[1].code": ["value_already_exist"] },
    );
    expect((await org.api("GET", `/api/v1/plans/${plan.code}`)).plan.charges).toEqual(swapped.charges);

    // A charge left out frees its code for a new charge in the same write.
    const replaced = (
      await org.api("PUT", `/api/v1/plans/${plan.code}`, {
        plan: { charges: [{ billable_metric_id: calls.lago_id, charge_model: "standard", code: "bulk", properties: { amount: "9" } }] },
      })
    ).plan;
    expect(replaced.charges.map((c: any) => c.code)).toEqual(["bulk"]);
    expect(replaced.charges[0].lago_id).not.toBe(plan.charges[3].lago_id);
  });

  it("migration 0025 gives charges without a code the codes a plan write derives", async () => {
    const org = await newOrg();
    const calls = await org.metric({ code: uid("calls"), aggregation_type: "count_agg" });
    const gb = await org.metric({ code: uid("gb"), aggregation_type: "sum_agg", field_name: "gb" });
    const plan = await org.plan([
      { billable_metric_id: calls.lago_id, charge_model: "standard" },
      { billable_metric_id: gb.lago_id, charge_model: "standard" },
      { billable_metric_id: calls.lago_id, charge_model: "standard" },
      { billable_metric_id: calls.lago_id, charge_model: "standard", code: `${calls.code}_2` },
      { billable_metric_id: calls.lago_id, charge_model: "standard" },
    ]);
    const derived = plan.charges.map((c: any) => c.code);
    expect(derived).toEqual([calls.code, gb.code, `${calls.code}_3`, `${calls.code}_2`, `${calls.code}_4`]);
    // As before the migration: only the explicit code is stored.
    await t.db.query("UPDATE charges SET code = NULL WHERE org_id = $1 AND code <> $2", [org.orgId, `${calls.code}_2`]);
    const backfill = splitStatements(listMigrations().find((m) => m.version === 25)!.sql).find((st) => st.startsWith("DO $$"))!;
    await t.db.query(backfill);
    // (GET /plans reads the database, not the cache.)
    expect((await org.api("GET", `/api/v1/plans/${plan.code}`)).plan.charges.map((c: any) => c.code)).toEqual(derived);
  });
});

describe("/plans/:code/charges", () => {
  it("lists, creates, reads, updates and deletes one charge, each write as PUT /plans would", async () => {
    const org = await newOrg();
    const calls = await org.metric({ code: uid("calls"), aggregation_type: "count_agg" });
    const gb = await org.metric({ code: uid("gb"), aggregation_type: "sum_agg", field_name: "gb" });
    const plan = await org.plan([
      { billable_metric_id: calls.lago_id, charge_model: "standard", properties: { amount: "1" } },
      { billable_metric_id: gb.lago_id, charge_model: "standard", code: "storage", properties: { amount: "0.5" } },
    ]);

    const all = await org.api("GET", chargesUrl(plan.code));
    expect(all.charges).toEqual(plan.charges);
    expect(all.meta).toEqual({ current_page: 1, next_page: null, prev_page: null, total_pages: 1, total_count: 2 });
    const page2 = await org.api("GET", `${chargesUrl(plan.code)}?per_page=1&page=2`);
    expect(page2.charges).toEqual([plan.charges[1]]);
    expect(page2.meta).toMatchObject({ current_page: 2, prev_page: 1, next_page: null, total_pages: 2, total_count: 2 });

    expect((await org.api("GET", chargesUrl(plan.code, "storage"))).charge).toEqual(plan.charges[1]);
    expect((await org.api("GET", chargesUrl(plan.code, calls.code))).charge).toEqual(plan.charges[0]);

    // Create: code derived from the metric (taken: `_2`); `id` and `cascade_updates` are ignored.
    const created = (
      await org.api("POST", chargesUrl(plan.code), {
        charge: { id: plan.charges[0].lago_id, cascade_updates: true, billable_metric_code: calls.code, charge_model: "graduated", properties: { graduated_ranges: [{ from_value: 0, to_value: null, per_unit_amount: "0.1", flat_amount: "0" }] } },
      })
    ).charge;
    expect(created).toMatchObject({ code: `${calls.code}_2`, charge_model: "graduated", lago_billable_metric_id: calls.lago_id });
    expect(created.lago_id).toMatch(UUID);
    expect(created.lago_id).not.toBe(plan.charges[0].lago_id);
    const afterCreate = (await org.api("GET", `/api/v1/plans/${plan.code}`)).plan;
    expect(afterCreate.charges).toEqual([...plan.charges, created]);

    // Update: fields sent change, the rest (and the lago_id) stay; the code may change.
    const updated = (
      await org.api("PUT", chargesUrl(plan.code, "storage"), { charge: { code: "disk", properties: { amount: "0.75" }, invoice_display_name: "Disk" } })
    ).charge;
    expect(updated).toEqual({ ...plan.charges[1], code: "disk", invoice_display_name: "Disk", properties: { amount: "0.75" } });
    expect404(await org.raw("GET", chargesUrl(plan.code, "storage")), "charge_not_found");
    expect((await org.api("GET", chargesUrl(plan.code, "disk"))).charge).toEqual(updated);

    // Delete: answers the charge; the plan no longer has it; its code is free again.
    const deleted = (await org.api("DELETE", chargesUrl(plan.code, "disk"), { charge: { cascade_updates: false } })).charge;
    expect(deleted).toEqual(updated);
    expect404(await org.raw("GET", chargesUrl(plan.code, "disk")), "charge_not_found");
    expect404(await org.raw("DELETE", chargesUrl(plan.code, "disk")), "charge_not_found");
    expect((await org.api("GET", `/api/v1/plans/${plan.code}`)).plan.charges.map((c: any) => c.code)).toEqual([calls.code, `${calls.code}_2`]);
    const again = (await org.api("POST", chargesUrl(plan.code), { charge: { billable_metric_id: gb.lago_id, charge_model: "standard", code: "disk" } })).charge;
    expect(again).toMatchObject({ code: "disk", properties: { amount: "0" } });
    expect(again.lago_id).not.toBe(updated.lago_id);
  });

  it("an edit of one charge rewrites that charge only (the others keep their rows as they were)", async () => {
    const org = await newOrg();
    const calls = await org.metric({ code: uid("calls"), aggregation_type: "count_agg" });
    const plan = await org.plan(Array.from({ length: 5 }, (_, i) => ({ billable_metric_id: calls.lago_id, charge_model: "standard", properties: { amount: String(i) } })));
    const stamps = async () =>
      (await t.db.query<{ code: string; updated_at: string }>("SELECT code, updated_at::text AS updated_at FROM charges WHERE org_id = $1 AND deleted_at IS NULL ORDER BY position", [org.orgId])).rows;
    const before = await stamps();
    await org.freeze("2026-04-01T00:00:00Z");
    await org.api("PUT", chargesUrl(plan.code, `${calls.code}_3`), { charge: { properties: { amount: "9" } } });
    const after = await stamps();
    expect(after.map((r) => r.code)).toEqual(before.map((r) => r.code));
    expect(after.filter((r, i) => r.updated_at !== before[i]!.updated_at).map((r) => r.code)).toEqual([`${calls.code}_3`]);
    // Removing the first charge moves the others up: all of them are rewritten (positions), in order.
    await org.api("DELETE", chargesUrl(plan.code, calls.code));
    const listed = (await org.api("GET", chargesUrl(plan.code))).charges;
    expect(listed.map((c: any) => [c.code, c.properties.amount])).toEqual([
      [`${calls.code}_2`, "1"],
      [`${calls.code}_3`, "9"],
      [`${calls.code}_4`, "3"],
      [`${calls.code}_5`, "4"],
    ]);
  });

  it("concurrent charge creates on one plan each get a code of their own (the plan row serializes them)", async () => {
    const org = await newOrg();
    const calls = await org.metric({ code: uid("calls"), aggregation_type: "count_agg" });
    const plan = await org.plan([{ billable_metric_id: calls.lago_id, charge_model: "standard" }]);
    const sent = await Promise.all(
      Array.from({ length: 6 }, (_, i) =>
        org.raw("POST", chargesUrl(plan.code), { charge: { billable_metric_id: calls.lago_id, charge_model: "standard", properties: { amount: String(i) } } }),
      ),
    );
    for (const r of sent) expect(r.statusCode, r.body).toBe(200);
    const codes = sent.map((r) => json(r).charge.code).sort();
    expect(codes).toEqual([2, 3, 4, 5, 6, 7].map((n) => `${calls.code}_${n}`).sort());
    // Racing on one explicit code: one wins, the others are 422s naming `code`.
    const race = await Promise.all(
      Array.from({ length: 4 }, () => org.raw("POST", chargesUrl(plan.code), { charge: { billable_metric_id: calls.lago_id, charge_model: "standard", code: "same" } })),
    );
    expect(race.map((r) => r.statusCode).sort()).toEqual([200, 422, 422, 422]);
    for (const r of race.filter((x) => x.statusCode === 422)) expect(json(r).error_details).toEqual({ code: ["value_already_exist"] });
    expect((await org.api("GET", `/api/v1/plans/${plan.code}`)).plan.charges).toHaveLength(8);
  });

  it("answers 404 for an unknown plan or charge and 422 naming the charge's fields, writing nothing", async () => {
    const org = await newOrg();
    const calls = await org.metric({ code: uid("calls"), aggregation_type: "count_agg" });
    const plan = await org.plan([{ billable_metric_id: calls.lago_id, charge_model: "standard", properties: { amount: "1" } }]);

    expect404(await org.raw("GET", chargesUrl("nope")), "plan_not_found");
    expect404(await org.raw("POST", chargesUrl("nope"), { charge: { billable_metric_id: calls.lago_id, charge_model: "standard" } }), "plan_not_found");
    expect404(await org.raw("GET", chargesUrl(plan.code, "nope")), "charge_not_found");
    expect404(await org.raw("PUT", chargesUrl(plan.code, "nope"), { charge: { properties: { amount: "2" } } }), "charge_not_found");

    const missing = await org.raw("POST", chargesUrl(plan.code), { nothing: true });
    expect(missing.statusCode, missing.body).toBe(400);
    expect422(await org.raw("POST", chargesUrl(plan.code), { charge: "standard" }), { charge: ["value_is_invalid"] });

    expect422(await org.raw("POST", chargesUrl(plan.code), { charge: { charge_model: "magic", properties: { amount: "x" } } }), {
      billable_metric_id: ["value_is_mandatory"],
      charge_model: ["value_is_invalid"],
    });
    expect422(await org.raw("POST", chargesUrl(plan.code), { charge: { billable_metric_code: "ghost", charge_model: "standard" } }), {
      billable_metric_code: ["billable_metric_not_found"],
    });
    expect422(await org.raw("POST", chargesUrl(plan.code), { charge: { billable_metric_id: calls.lago_id, charge_model: "standard", code: calls.code } }), {
      code: ["value_already_exist"],
    });
    expect422(await org.raw("POST", chargesUrl(plan.code), { charge: { billable_metric_id: calls.lago_id, charge_model: "standard", tax_codes: ["no_such_tax"] } }), {
      tax_codes: expect.any(Array) as unknown as string[],
    });
    expect422(await org.raw("PUT", chargesUrl(plan.code, calls.code), { charge: { properties: { amount: "-1" } } }), {
      "properties.amount": expect.any(Array) as unknown as string[],
    });
    expect422(await org.raw("PUT", chargesUrl(plan.code, calls.code), { charge: { pay_in_advance: true, min_amount_cents: 100 } }), {
      min_amount_cents: ["not_compatible_with_pay_in_advance"],
    });
    expect((await org.api("GET", `/api/v1/plans/${plan.code}`)).plan).toEqual(plan);
  });

  it("one organization never reads or writes another's charges or filters", async () => {
    const owner = await newOrg();
    const other = await newOrg();
    const region = await owner.metric({ code: uid("calls"), aggregation_type: "count_agg", filters: [{ key: "region", values: ["eu", "us"] }] });
    const plan = await owner.plan([
      { billable_metric_id: region.lago_id, charge_model: "standard", properties: { amount: "1" }, filters: [{ values: { region: ["eu"] }, properties: { amount: "2" } }] },
    ]);
    const code = plan.charges[0].code;
    const filterId = (await owner.api("GET", filtersUrl(plan.code, code))).filters[0].lago_id;

    // The other organization even has a plan and charge with the same codes.
    const mine = await other.metric({ code: region.code, aggregation_type: "count_agg" });
    await other.plan([{ billable_metric_id: mine.lago_id, charge_model: "standard", properties: { amount: "5" } }], plan.code + "-other");
    expect404(await other.raw("GET", chargesUrl(plan.code)), "plan_not_found");
    expect404(await other.raw("GET", chargesUrl(plan.code, code)), "plan_not_found");
    expect404(await other.raw("PUT", chargesUrl(plan.code, code), { charge: { properties: { amount: "0" } } }), "plan_not_found");
    expect404(await other.raw("DELETE", chargesUrl(plan.code, code)), "plan_not_found");
    expect404(await other.raw("POST", chargesUrl(plan.code), { charge: { billable_metric_id: region.lago_id, charge_model: "standard" } }), "plan_not_found");
    expect404(await other.raw("GET", filtersUrl(plan.code, code, filterId)), "plan_not_found");
    expect404(await other.raw("PUT", filtersUrl(plan.code, code, filterId), { filter: { properties: { amount: "0" } } }), "plan_not_found");
    expect404(await other.raw("DELETE", filtersUrl(plan.code, code, filterId)), "plan_not_found");
    // Its own plan does not own the owner's filter id either.
    expect404(await other.raw("GET", filtersUrl(plan.code + "-other", mine.code, filterId)), "charge_filter_not_found");
    // A charge of the owner's naming the other organization's metric: not found for it.
    expect422(await owner.raw("POST", chargesUrl(plan.code), { charge: { billable_metric_id: mine.lago_id, charge_model: "standard" } }), {
      billable_metric_id: ["billable_metric_not_found"],
    });
    expect((await owner.api("GET", `/api/v1/plans/${plan.code}`)).plan).toEqual(plan);
  });
});

describe("/plans/:code/charges/:charge_code/filters", () => {
  it("lists, creates, reads, updates and deletes a filter, which keeps its lago_id across writes", async () => {
    const org = await newOrg();
    const calls = await org.metric({ code: uid("calls"), aggregation_type: "count_agg", filters: [{ key: "region", values: ["eu", "us", "ap"] }] });
    const plan = await org.plan([
      { billable_metric_id: calls.lago_id, charge_model: "standard", code: "api", properties: { amount: "1" }, filters: [{ invoice_display_name: "EU", values: { region: ["eu"] }, properties: { amount: "2" } }] },
    ]);
    const listed = await org.api("GET", filtersUrl(plan.code, "api"));
    expect(listed.meta).toMatchObject({ current_page: 1, total_count: 1 });
    const [eu] = listed.filters;
    expect(eu).toEqual({ lago_id: expect.stringMatching(UUID), charge_code: "api", invoice_display_name: "EU", values: { region: ["eu"] }, properties: { amount: "2" } });

    const us = (await org.api("POST", filtersUrl(plan.code, "api"), { filter: { cascade_updates: true, values: { region: ["us"] }, properties: { amount: "3" } } })).filter;
    expect(us).toEqual({ lago_id: expect.stringMatching(UUID), charge_code: "api", invoice_display_name: null, values: { region: ["us"] }, properties: { amount: "3" } });
    expect((await org.api("GET", filtersUrl(plan.code, "api", us.lago_id))).filter).toEqual(us);
    expect((await org.api("GET", filtersUrl(plan.code, "api", eu.lago_id.toUpperCase()))).filter).toEqual(eu);
    // The plan shows both, in order.
    expect((await org.api("GET", `/api/v1/plans/${plan.code}`)).plan.charges[0].filters.map((f: any) => f.values)).toEqual([{ region: ["eu"] }, { region: ["us"] }]);

    // Update: values change, the filter keeps its id; absent fields are kept.
    const moved = (await org.api("PUT", filtersUrl(plan.code, "api", us.lago_id), { filter: { values: { region: ["us", "ap"] } } })).filter;
    expect(moved).toEqual({ ...us, values: { region: ["us", "ap"] } });
    const renamed = (await org.api("PUT", filtersUrl(plan.code, "api", eu.lago_id), { filter: { invoice_display_name: "Europe", properties: { amount: "2.5" } } })).filter;
    expect(renamed).toEqual({ ...eu, invoice_display_name: "Europe", properties: { amount: "2.5" } });

    // PUT /plans with the same values keeps the filters' ids too (matched by values).
    await org.api("PUT", `/api/v1/plans/${plan.code}`, {
      plan: { charges: [{ id: plan.charges[0].lago_id, filters: [{ values: { region: ["ap", "us"] }, properties: { amount: "4" } }, { values: { region: ["eu"] }, properties: { amount: "2.5" } }] }] },
    });
    const afterPut = (await org.api("GET", filtersUrl(plan.code, "api"))).filters;
    expect(afterPut.map((f: any) => [f.lago_id, f.properties.amount])).toEqual([
      [us.lago_id, "4"],
      [eu.lago_id, "2.5"],
    ]);

    const gone = (await org.api("DELETE", filtersUrl(plan.code, "api", us.lago_id), { filter: { cascade_updates: true } })).filter;
    expect(gone).toEqual(afterPut[0]);
    expect404(await org.raw("GET", filtersUrl(plan.code, "api", us.lago_id)), "charge_filter_not_found");
    expect((await org.api("GET", filtersUrl(plan.code, "api"))).filters).toEqual([afterPut[1]]);
  });

  it("answers 404 for unknown filters and 422 naming the filter's fields, writing nothing", async () => {
    const org = await newOrg();
    const calls = await org.metric({ code: uid("calls"), aggregation_type: "count_agg", filters: [{ key: "region", values: ["eu", "us"] }] });
    const plan = await org.plan([
      { billable_metric_id: calls.lago_id, charge_model: "standard", code: "api", properties: { amount: "1" }, filters: [{ values: { region: ["eu"] }, properties: { amount: "2" } }] },
    ]);
    const [eu] = (await org.api("GET", filtersUrl(plan.code, "api"))).filters;
    expect404(await org.raw("GET", filtersUrl(plan.code, "api", "not-a-uuid")), "charge_filter_not_found");
    expect404(await org.raw("GET", filtersUrl(plan.code, "api", "00000000-0000-4000-8000-000000000000")), "charge_filter_not_found");
    expect404(await org.raw("GET", filtersUrl(plan.code, "nope")), "charge_not_found");
    expect404(await org.raw("POST", filtersUrl(plan.code, "nope"), { filter: { values: { region: ["us"] }, properties: { amount: "1" } } }), "charge_not_found");
    expect404(await org.raw("PUT", filtersUrl(plan.code, "api", "00000000-0000-4000-8000-000000000000"), { filter: { properties: { amount: "1" } } }), "charge_filter_not_found");

    expect422(await org.raw("POST", filtersUrl(plan.code, "api"), { filter: { values: { region: ["eu"] }, properties: { amount: "3" } } }), {
      values: ["value_already_exist"],
    });
    expect422(await org.raw("POST", filtersUrl(plan.code, "api"), { filter: { values: { region: ["mars"] }, properties: { amount: "x" } } }), {
      "values.region": ["value_is_invalid"],
      "properties.amount": expect.any(Array) as unknown as string[],
    });
    expect422(await org.raw("POST", filtersUrl(plan.code, "api"), { filter: { properties: { amount: "1" } } }), { values: ["value_is_mandatory"] });
    expect422(await org.raw("PUT", filtersUrl(plan.code, "api", eu.lago_id), { filter: { values: { planet: ["earth"] } } }), { "values.planet": ["value_is_invalid"] });
    expect((await org.api("GET", `/api/v1/plans/${plan.code}`)).plan).toEqual(plan);
  });
});

describe("charges changed on their own, priced and metered as through PUT /plans", () => {
  it("a charge changed through its route prices current usage exactly as the same change through PUT /plans; overrides keep applying; a deleted charge leaves usage", async () => {
    const org = await newOrg();
    await org.freeze("2024-03-01T00:00:00Z");
    const calls = await org.metric({ code: uid("calls"), aggregation_type: "count_agg" });
    const gb = await org.metric({ code: uid("gb"), aggregation_type: "sum_agg", field_name: "gb" });
    const charges = [
      { billable_metric_id: calls.lago_id, charge_model: "standard", code: "calls", properties: { amount: "1" } },
      { billable_metric_id: gb.lago_id, charge_model: "standard", code: "gb", properties: { amount: "0.1" } },
    ];
    const viaRoute = await org.plan(charges);
    const viaPut = await org.plan(charges);
    const a = await org.subscribe(viaRoute.code, "2024-03-01T00:00:00Z");
    const b = await org.subscribe(viaPut.code, "2024-03-01T00:00:00Z");
    // An override of the gb charge's price on a third subscription (by the charge's lago_id).
    const c = await org.subscribe(viaRoute.code, "2024-03-01T00:00:00Z", {
      plan_overrides: { charges: [{ id: viaRoute.charges[1].lago_id, properties: { amount: "1" } }] },
    });
    await org.freeze("2024-03-10T00:00:00Z");
    const at = T("2024-03-02T00:00:00Z");
    const events = [
      ...Array.from({ length: 25 }, (_, i) => ({ code: calls.code, at: at + i * 60_000 })),
      { code: gb.code, at: at + 3_600_000, properties: { gb: "12.5" } },
    ];
    for (const s of [a, b, c]) await org.send(s.sub, events);
    // Warm the cached plans (the writes below must invalidate them).
    for (const s of [a, b, c]) await org.usage(s);

    const graduated = {
      charge_model: "graduated",
      properties: { graduated_ranges: [{ from_value: 0, to_value: 10, per_unit_amount: "2", flat_amount: "1" }, { from_value: 11, to_value: null, per_unit_amount: "0.5", flat_amount: "0" }] },
    };
    await org.api("PUT", chargesUrl(viaRoute.code, "calls"), { charge: graduated });
    await org.api("PUT", chargesUrl(viaRoute.code, "gb"), { charge: { invoice_display_name: "Storage" } });
    await org.api("PUT", `/api/v1/plans/${viaPut.code}`, { plan: { charges: [{ id: viaPut.charges[0].lago_id, ...graduated }, { id: viaPut.charges[1].lago_id }] } });

    const [ua, ub, uc] = [await org.usage(a), await org.usage(b), await org.usage(c)];
    // 10 × €2 + €1 + 15 × €0.50 = €28.50, plus 12.5 GB × €0.10 = €1.25.
    expect(ua.amount_cents).toBe(2850 + 125);
    expect(ub.amount_cents).toBe(ua.amount_cents);
    const lines = (u: any) => u.charges_usage.map((x: any) => [x.billable_metric.code, x.charge.charge_model, x.units, x.amount_cents]).sort();
    expect(lines(ua)).toEqual(lines(ub));
    // The override (€1 per GB) still applies to the charge changed under it; the rest is the plan's.
    expect(uc.charges_usage.find((x: any) => x.billable_metric.code === gb.code).amount_cents).toBe(1250);
    expect(uc.amount_cents).toBe(2850 + 1250);

    // Deleting a charge used by live subscriptions (Lago: removed from them at once, no longer in
    // current usage), the same through both paths.
    await org.api("DELETE", chargesUrl(viaRoute.code, "gb"));
    await org.api("PUT", `/api/v1/plans/${viaPut.code}`, { plan: { charges: [{ id: viaPut.charges[0].lago_id }] } });
    const [da, db] = [await org.usage(a), await org.usage(b)];
    expect(da.amount_cents).toBe(2850);
    expect(db.amount_cents).toBe(da.amount_cents);
    expect(da.charges_usage.map((x: any) => x.billable_metric.code)).toEqual([calls.code]);
    expect(lines(da)).toEqual(lines(db));

    // A charge added through the route prices usage at once.
    await org.api("POST", chargesUrl(viaRoute.code), { charge: { billable_metric_id: gb.lago_id, charge_model: "standard", properties: { amount: "1" } } });
    expect((await org.usage(a)).amount_cents).toBe(2850 + 1250);
  });

  it("a pricing group key added through a charge filter reaches the metric's rollups, and grouped current usage is read from them", async () => {
    const org = await newOrg();
    await org.freeze("2024-03-01T00:00:00Z");
    const calls = await org.metric({ code: uid("calls"), aggregation_type: "count_agg", filters: [{ key: "tier", values: ["pro", "free"] }] });
    const plan = await org.plan([{ billable_metric_id: calls.lago_id, charge_model: "standard", code: "api", properties: { amount: "1" } }]);
    const groupKeys = async () =>
      (await t.db.query<{ keys: string[] }>("SELECT rollup_group_keys AS keys FROM billable_metrics WHERE org_id = $1 AND code = $2 AND deleted_at IS NULL", [org.orgId, calls.code]))
        .rows[0]!.keys;
    expect(await groupKeys()).toEqual([]);

    const filter = (
      await org.api("POST", filtersUrl(plan.code, "api"), { filter: { values: { tier: ["pro"] }, properties: { amount: "2", pricing_group_keys: ["user"] } } })
    ).filter;
    expect(filter.properties).toEqual({ amount: "2", pricing_group_keys: ["user"], grouped_by: ["user"] });
    // Synced before the route answered, as after PUT /plans.
    expect(await groupKeys()).toEqual(["user"]);

    const s = await org.subscribe(plan.code, "2024-03-01T00:00:00Z");
    await org.freeze("2024-03-10T00:00:00Z");
    const at = T("2024-03-02T00:00:00Z");
    await org.send(s.sub, [
      ...Array.from({ length: 3 }, (_, i) => ({ code: calls.code, at: at + i * 3_600_000, properties: { tier: "pro", user: "ann" } })),
      { code: calls.code, at: at + 4 * 3_600_000, properties: { tier: "pro", user: "bob" } },
      { code: calls.code, at: at + 5 * 3_600_000, properties: { tier: "free", user: "bob" } },
    ]);
    // The rollups hold the user values of the metric's events.
    const { rows } = await t.db.query<{ dims: string }>(
      "SELECT DISTINCT r.dims::text AS dims FROM metric_rollups_hourly r JOIN billable_metrics m ON m.id = r.metric_id WHERE m.org_id = $1 ORDER BY 1",
      [org.orgId],
    );
    expect(rows.map((r) => r.dims)).toEqual(['{"tier": "free", "user": "bob"}', '{"tier": "pro", "user": "ann"}', '{"tier": "pro", "user": "bob"}']);
    const usage = await org.usage(s);
    const charge = usage.charges_usage[0];
    expect(charge.filters.map((f: any) => [f.values, f.units, f.amount_cents])).toEqual(expect.arrayContaining([[{ tier: ["pro"] }, "4", 800]]));
    expect(charge.grouped_usage.map((g: any) => [g.grouped_by, g.units, g.amount_cents])).toEqual([
      [{ user: "ann" }, "3", 600],
      [{ user: "bob" }, "1", 200],
    ]);
    expect(usage.amount_cents).toBe(800 + 100);

    // The filter's grouping removed through its route: the key leaves the rollups' keys, the
    // amounts stay; put back, the rollups are rebuilt with it.
    await org.api("PUT", filtersUrl(plan.code, "api", filter.lago_id), { filter: { properties: { amount: "2" } } });
    expect(await groupKeys()).toEqual([]);
    const ungrouped = await org.usage(s);
    expect(ungrouped.amount_cents).toBe(800 + 100);
    expect(ungrouped.charges_usage[0].grouped_usage).toEqual([]);
    await org.api("PUT", filtersUrl(plan.code, "api", filter.lago_id), { filter: { properties: { amount: "2", pricing_group_keys: ["user"] } } });
    expect(await groupKeys()).toEqual(["user"]);
    const { differences } = await verifyRollups(t.db, { orgId: org.orgId });
    expect(differences).toEqual([]);
    expect(await org.usage(s)).toEqual(usage);

    // Served from the rollups: with the raw events gone (closed hours only), the same grouped answer.
    await t.db.query("DELETE FROM events WHERE external_subscription_id = $1", [s.sub]);
    expect(await org.usage(s)).toEqual(usage);
  });
});
