// SQL for add-ons. Every statement is scoped by org_id; deleted add-ons are kept (fees point at them).
import type { Queryable } from "../../db/db.ts";
import type { AddOn, AddOnDraft } from "./core/add_on.ts";

interface AddOnRow {
  id: string;
  org_id: number;
  lago_id: string;
  code: string;
  name: string;
  invoice_display_name: string | null;
  description: string | null;
  amount_cents: string;
  amount_currency: string;
  tax_codes: string[];
  created_at: Date;
}

const COLUMNS = `id, org_id, lago_id::text AS lago_id, code, name, invoice_display_name, description, amount_cents, amount_currency,
  tax_codes, created_at`;

const toAddOn = (r: AddOnRow): AddOn => ({
  id: Number(r.id),
  orgId: Number(r.org_id),
  lagoId: r.lago_id,
  code: r.code,
  name: r.name,
  invoiceDisplayName: r.invoice_display_name,
  description: r.description,
  amountCents: BigInt(r.amount_cents),
  amountCurrency: r.amount_currency,
  taxCodes: r.tax_codes ?? [],
  createdAt: new Date(r.created_at),
});

export async function insertAddOn(q: Queryable, orgId: number, lagoId: string, d: AddOnDraft, now: Date): Promise<AddOn> {
  const { rows } = await q.query<AddOnRow>(
    `INSERT INTO add_ons (org_id, lago_id, code, name, invoice_display_name, description, amount_cents, amount_currency, tax_codes, created_at, updated_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::text[], $10, $10) RETURNING ${COLUMNS}`,
    [orgId, lagoId, d.code, d.name, d.invoiceDisplayName, d.description, d.amountCents.toString(), d.amountCurrency, [...d.taxCodes], now],
  );
  return toAddOn(rows[0]!);
}

export async function updateAddOn(q: Queryable, orgId: number, id: number, d: AddOnDraft, now: Date): Promise<AddOn> {
  const { rows } = await q.query<AddOnRow>(
    `UPDATE add_ons SET code = $3, name = $4, invoice_display_name = $5, description = $6, amount_cents = $7, amount_currency = $8,
            tax_codes = $9::text[], updated_at = $10
      WHERE org_id = $1 AND id = $2 RETURNING ${COLUMNS}`,
    [orgId, id, d.code, d.name, d.invoiceDisplayName, d.description, d.amountCents.toString(), d.amountCurrency, [...d.taxCodes], now],
  );
  return toAddOn(rows[0]!);
}

export async function addOnByCode(q: Queryable, orgId: number, code: string, forUpdate = false): Promise<AddOn | null> {
  const { rows } = await q.query<AddOnRow>(
    `SELECT ${COLUMNS} FROM add_ons WHERE org_id = $1 AND code = $2 AND deleted_at IS NULL${forUpdate ? " FOR UPDATE" : ""}`,
    [orgId, code],
  );
  return rows[0] === undefined ? null : toAddOn(rows[0]);
}

export async function addOnsByCodes(q: Queryable, orgId: number, codes: readonly string[]): Promise<AddOn[]> {
  if (codes.length === 0) return [];
  const { rows } = await q.query<AddOnRow>(`SELECT ${COLUMNS} FROM add_ons WHERE org_id = $1 AND code = ANY($2::text[]) AND deleted_at IS NULL`, [
    orgId,
    [...codes],
  ]);
  return rows.map(toAddOn);
}

export async function listAddOns(q: Queryable, orgId: number, limit: number, offset: number): Promise<{ addOns: AddOn[]; total: number }> {
  const { rows } = await q.query<AddOnRow>(
    `SELECT ${COLUMNS} FROM add_ons WHERE org_id = $1 AND deleted_at IS NULL ORDER BY created_at DESC, id DESC LIMIT $2 OFFSET $3`,
    [orgId, limit, offset],
  );
  const count = await q.query<{ n: string }>("SELECT count(*)::text AS n FROM add_ons WHERE org_id = $1 AND deleted_at IS NULL", [orgId]);
  return { addOns: rows.map(toAddOn), total: Number(count.rows[0]?.n ?? 0) };
}

export async function deleteAddOn(q: Queryable, orgId: number, id: number, now: Date): Promise<void> {
  await q.query("UPDATE add_ons SET deleted_at = $3, updated_at = $3 WHERE org_id = $1 AND id = $2", [orgId, id, now]);
}
