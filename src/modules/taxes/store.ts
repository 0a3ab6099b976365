// SQL for taxes. Every statement is scoped by org_id.
import type { Queryable } from "../../db/db.ts";
import { Decimal } from "../../shared/money.ts";
import type { Tax, TaxDraft } from "./core/tax.ts";

interface TaxRow {
  id: string;
  org_id: number;
  lago_id: string;
  code: string;
  name: string;
  description: string | null;
  rate: string;
  applied_to_organization: boolean;
  created_at: Date;
}

const COLUMNS = "id, org_id, lago_id::text AS lago_id, code, name, description, rate::text AS rate, applied_to_organization, created_at";

const toTax = (r: TaxRow): Tax => ({
  id: Number(r.id),
  orgId: Number(r.org_id),
  lagoId: r.lago_id,
  code: r.code,
  name: r.name,
  description: r.description,
  rate: new Decimal(r.rate),
  appliedToOrganization: r.applied_to_organization,
  createdAt: new Date(r.created_at),
});

export async function insertTax(q: Queryable, orgId: number, lagoId: string, d: TaxDraft, now: Date): Promise<Tax> {
  const { rows } = await q.query<TaxRow>(
    `INSERT INTO taxes (org_id, lago_id, code, name, description, rate, applied_to_organization, created_at, updated_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8) RETURNING ${COLUMNS}`,
    [orgId, lagoId, d.code, d.name, d.description, d.rate.toString(), d.appliedToOrganization, now],
  );
  return toTax(rows[0]!);
}

export async function updateTax(q: Queryable, orgId: number, id: number, d: TaxDraft, now: Date): Promise<Tax> {
  const { rows } = await q.query<TaxRow>(
    `UPDATE taxes SET code = $3, name = $4, description = $5, rate = $6, applied_to_organization = $7, updated_at = $8
      WHERE org_id = $1 AND id = $2 RETURNING ${COLUMNS}`,
    [orgId, id, d.code, d.name, d.description, d.rate.toString(), d.appliedToOrganization, now],
  );
  return toTax(rows[0]!);
}

export async function taxByCode(q: Queryable, orgId: number, code: string, forUpdate = false): Promise<Tax | null> {
  const { rows } = await q.query<TaxRow>(`SELECT ${COLUMNS} FROM taxes WHERE org_id = $1 AND code = $2${forUpdate ? " FOR UPDATE" : ""}`, [orgId, code]);
  return rows[0] === undefined ? null : toTax(rows[0]);
}

export async function listTaxes(q: Queryable, orgId: number, limit: number, offset: number): Promise<{ taxes: Tax[]; total: number }> {
  const { rows } = await q.query<TaxRow>(
    `SELECT ${COLUMNS} FROM taxes WHERE org_id = $1 ORDER BY created_at DESC, id DESC LIMIT $2 OFFSET $3`,
    [orgId, limit, offset],
  );
  const count = await q.query<{ n: string }>("SELECT count(*)::text AS n FROM taxes WHERE org_id = $1", [orgId]);
  return { taxes: rows.map(toTax), total: Number(count.rows[0]?.n ?? 0) };
}

/** Every tax of the organization (a short list), for billing. */
export async function allTaxes(q: Queryable, orgId: number): Promise<Tax[]> {
  const { rows } = await q.query<TaxRow>(`SELECT ${COLUMNS} FROM taxes WHERE org_id = $1 ORDER BY id`, [orgId]);
  return rows.map(toTax);
}

export async function taxesByCodes(q: Queryable, orgId: number, codes: readonly string[]): Promise<Tax[]> {
  if (codes.length === 0) return [];
  const { rows } = await q.query<TaxRow>(`SELECT ${COLUMNS} FROM taxes WHERE org_id = $1 AND code = ANY($2::text[]) ORDER BY id`, [orgId, [...codes]]);
  return rows.map(toTax);
}

/** What a tax code's rename or removal changed: plans (charges, commitment) and customers, whose cached copies must go. */
export interface Retargeted {
  plans: { id: number; code: string }[];
  customerIds: number[];
  /** External ids of subscriptions whose `plan_overrides` (taxes, commitment taxes) listed the code. */
  subscriptionExternalIds: string[];
}

/**
 * Renames (to = the new code) or removes (to = null) a tax code wherever customers, plans, charges,
 * plans' minimum commitments and add-ons list it. (Billing skips codes naming no tax, so a list
 * missed here only bills less.)
 */
export async function retargetCode(q: Queryable, orgId: number, from: string, to: string | null): Promise<Retargeted> {
  const expr = "CASE WHEN $3::text IS NULL THEN array_remove(tax_codes, $2) ELSE array_replace(tax_codes, $2, $3) END";
  const params = [orgId, from, to];
  const where = "WHERE org_id = $1 AND $2 = ANY(tax_codes)";
  const customers = await q.query<{ id: number }>(`UPDATE customers SET tax_codes = ${expr} ${where} RETURNING id`, params);
  const plans = await q.query<{ id: number }>(`UPDATE plans SET tax_codes = ${expr} ${where} RETURNING id`, params);
  const charges = await q.query<{ id: number }>(`UPDATE charges SET tax_codes = ${expr} ${where} RETURNING plan_id AS id`, params);
  await q.query(`UPDATE add_ons SET tax_codes = ${expr} ${where}`, params);
  const commitments = await q.query<{ id: number }>(
    `UPDATE plans SET minimum_commitment = jsonb_set(minimum_commitment, '{tax_codes}', coalesce(
        (SELECT jsonb_agg(CASE WHEN c = $2 THEN to_jsonb($3::text) ELSE to_jsonb(c) END ORDER BY n)
           FROM jsonb_array_elements_text(minimum_commitment -> 'tax_codes') WITH ORDINALITY AS t(c, n)
          WHERE c <> $2 OR $3::text IS NOT NULL), '[]'::jsonb))
      WHERE org_id = $1 AND minimum_commitment -> 'tax_codes' ? $2 RETURNING id`,
    params,
  );
  // Subscriptions' plan_overrides: their own tax codes and their commitment's.
  const retargetAt = (path: string) =>
    `jsonb_set(plan_overrides, '${path}', coalesce(
        (SELECT jsonb_agg(CASE WHEN c = $2 THEN to_jsonb($3::text) ELSE to_jsonb(c) END ORDER BY n)
           FROM jsonb_array_elements_text(plan_overrides #> '${path}') WITH ORDINALITY AS t(c, n)
          WHERE c <> $2 OR $3::text IS NOT NULL), '[]'::jsonb))`;
  const overridden: string[] = [];
  for (const path of ["{tax_codes}", "{minimum_commitment,tax_codes}"]) {
    const res = await q.query<{ external_id: string }>(
      `UPDATE subscriptions SET plan_overrides = ${retargetAt(path)} WHERE org_id = $1 AND plan_overrides #> '${path}' ? $2 RETURNING external_id`,
      params,
    );
    overridden.push(...res.rows.map((r) => r.external_id));
  }
  const planIds = [...new Set([...plans.rows, ...charges.rows, ...commitments.rows].map((r) => Number(r.id)))];
  const refs =
    planIds.length === 0
      ? []
      : (await q.query<{ id: number; code: string }>("SELECT id, code FROM plans WHERE org_id = $1 AND id = ANY($2::int8[])", [orgId, planIds])).rows;
  return {
    plans: refs.map((r) => ({ id: Number(r.id), code: r.code })),
    customerIds: customers.rows.map((r) => Number(r.id)),
    subscriptionExternalIds: [...new Set(overridden)],
  };
}

export async function deleteTax(q: Queryable, orgId: number, id: number): Promise<void> {
  await q.query("DELETE FROM taxes WHERE org_id = $1 AND id = $2", [orgId, id]);
}
