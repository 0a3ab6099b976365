import crypto from "node:crypto";
import type { Db, Queryable } from "../../db/db.ts";
import { isDataError, sqlState } from "../../db/db.ts";
import type { Clock } from "../../shared/clock.ts";
import { isLookupCode } from "../../shared/codes.ts";
import { type FieldErrors, notFound, validationFailed } from "../../shared/errors.ts";
import { type Tax, checkTax, draftOfTax } from "./core/tax.ts";
import * as store from "./store.ts";

/** Runs once a tax code's rename or removal committed, before the API answers (cached plans and customers go). */
export type RetargetListener = (orgId: number, changed: store.Retargeted) => Promise<void>;

const TAKEN = "value_already_exist";

/** Taxes of an organization (Lago's /taxes) and the lookups billing and the catalog use. */
export class TaxService {
  private readonly retargetListeners: RetargetListener[] = [];

  constructor(
    private readonly db: Db,
    private readonly clock: Clock,
    private readonly newId: () => string = () => crypto.randomUUID(),
  ) {}

  /** Work another module does once a code's rename or removal committed (invalidating its cached copies). */
  onRetargeted(listener: RetargetListener): void {
    this.retargetListeners.push(listener);
  }

  private async retargeted(orgId: number, changed: store.Retargeted | null): Promise<void> {
    if (changed === null) return;
    for (const listener of this.retargetListeners) await listener(orgId, changed);
  }

  private now(orgId: number): Date {
    return new Date(this.clock.now(orgId));
  }

  async create(orgId: number, input: unknown): Promise<Tax> {
    const checked = checkTax(input, null);
    return this.guard(() =>
      this.db.transaction(async (tx) => {
        const errors: FieldErrors = checked.ok ? {} : { ...checked.errors };
        if (checked.ok && (await store.taxByCode(tx, orgId, checked.value.code)) !== null) errors["code"] = [TAKEN];
        if (!checked.ok || Object.keys(errors).length > 0) throw validationFailed(errors, "the tax is invalid");
        return store.insertTax(tx, orgId, this.newId(), checked.value, this.now(orgId));
      }),
    );
  }

  async get(orgId: number, code: string): Promise<Tax> {
    const tax = isLookupCode(code) ? await store.taxByCode(this.db, orgId, code) : null;
    if (tax === null) throw notFound("tax", code);
    return tax;
  }

  list(orgId: number, page: number, perPage: number): Promise<{ taxes: Tax[]; total: number }> {
    return store.listTaxes(this.db, orgId, perPage, (page - 1) * perPage);
  }

  /** PUT /taxes/:code: the fields sent change; a new code is carried to the customers, plans and charges using the old one. */
  async update(orgId: number, code: string, input: unknown): Promise<Tax> {
    const { tax, changed } = await this.guard(() =>
      this.db.transaction(async (tx) => {
        const current = isLookupCode(code) ? await store.taxByCode(tx, orgId, code, true) : null;
        if (current === null) throw notFound("tax", code);
        const checked = checkTax(input, draftOfTax(current));
        const errors: FieldErrors = checked.ok ? {} : { ...checked.errors };
        if (checked.ok && checked.value.code !== current.code && (await store.taxByCode(tx, orgId, checked.value.code)) !== null) errors["code"] = [TAKEN];
        if (!checked.ok || Object.keys(errors).length > 0) throw validationFailed(errors, "the tax is invalid");
        const tax = await store.updateTax(tx, orgId, current.id, checked.value, this.now(orgId));
        return { tax, changed: tax.code !== current.code ? await store.retargetCode(tx, orgId, current.code, tax.code) : null };
      }),
    );
    await this.retargeted(orgId, changed);
    return tax;
  }

  /** DELETE /taxes/:code: the tax goes, and with it from every customer, plan and charge (invoices keep theirs). */
  async delete(orgId: number, code: string): Promise<Tax> {
    const { tax, changed } = await this.db.transaction(async (tx) => {
      const tax = isLookupCode(code) ? await store.taxByCode(tx, orgId, code, true) : null;
      if (tax === null) throw notFound("tax", code);
      const changed = await store.retargetCode(tx, orgId, tax.code, null);
      await store.deleteTax(tx, orgId, tax.id);
      return { tax, changed };
    });
    await this.retargeted(orgId, changed);
    return tax;
  }

  /** Every tax of the organization by code, for billing. */
  async byCode(orgId: number, q: Queryable = this.db): Promise<Map<string, Tax>> {
    return new Map((await store.allTaxes(q, orgId)).map((t) => [t.code, t]));
  }

  /** The taxes with these codes, in the order of the codes (for rendering a customer, plan or charge). */
  async resolve(orgId: number, codes: readonly string[], q: Queryable = this.db): Promise<Tax[]> {
    const found = new Map((await store.taxesByCodes(q, orgId, codes)).map((t) => [t.code, t]));
    return codes.map((c) => found.get(c)).filter((t): t is Tax => t !== undefined);
  }

  /**
   * Checks the tax codes a customer, plan or charge is given: each unknown one is a 422 naming its
   * field (`tax_codes`, `charges[1].tax_codes`), as issue 4 asks (Lago answers 404 `tax_not_found`).
   */
  async checkCodes(q: Queryable, orgId: number, fields: ReadonlyMap<string, readonly string[]>): Promise<void> {
    const all = [...new Set([...fields.values()].flat())];
    if (all.length === 0) return;
    const known = new Set((await store.taxesByCodes(q, orgId, all)).map((t) => t.code));
    const errors: FieldErrors = {};
    for (const [field, codes] of fields) if (codes.some((c) => !known.has(c))) errors[field] = ["tax_not_found"];
    if (Object.keys(errors).length > 0) throw validationFailed(errors, "unknown tax codes");
  }

  private async guard<T>(work: () => Promise<T>): Promise<T> {
    try {
      return await work();
    } catch (err) {
      if (sqlState(err) === "23505") throw validationFailed({ code: [TAKEN] }, "the tax is invalid");
      if (isDataError(err)) throw validationFailed({ tax: ["value_is_invalid"] }, "the tax is invalid");
      throw err;
    }
  }
}
