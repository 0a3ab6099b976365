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

/**
 * Renames (to = the new code) or removes (to = null) a tax code wherever customers, plans, charges
 * and add-ons list it. (Billing skips codes naming no tax, so a list missed here only bills less.)
 */
export async function retargetCode(q: Queryable, orgId: number, from: string, to: string | null): Promise<void> {
  const expr = to === null ? "array_remove(tax_codes, $2)" : "array_replace(tax_codes, $2, $3)";
  const params = to === null ? [orgId, from] : [orgId, from, to];
  for (const table of ["customers", "plans", "charges", "add_ons"]) {
    await q.query(`UPDATE ${table} SET tax_codes = ${expr} WHERE org_id = $1 AND $2 = ANY(tax_codes)`, params);
  }
}

export async function deleteTax(q: Queryable, orgId: number, id: number): Promise<void> {
  await q.query("DELETE FROM taxes WHERE org_id = $1 AND id = $2", [orgId, id]);
}
