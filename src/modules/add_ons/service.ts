import crypto from "node:crypto";
import type { Db, Queryable } from "../../db/db.ts";
import { isDataError, sqlState } from "../../db/db.ts";
import type { Clock } from "../../shared/clock.ts";
import { isLookupCode } from "../../shared/codes.ts";
import { type FieldErrors, notFound, validationFailed } from "../../shared/errors.ts";
import type { Tax } from "../taxes/index.ts";
import { type AddOn, checkAddOn, draftOfAddOn } from "./core/add_on.ts";
import * as store from "./store.ts";

const TAKEN = "value_already_exist";

/** What add-ons need of the taxes module: unknown codes refused, codes rendered as taxes. */
export interface AddOnDeps {
  readonly taxes: {
    checkCodes(q: Queryable, orgId: number, fields: ReadonlyMap<string, readonly string[]>): Promise<void>;
    resolve(orgId: number, codes: readonly string[], q?: Queryable): Promise<Tax[]>;
  };
}

/** Add-ons of an organization (Lago's /add_ons) and the lookups one-off invoices use. */
export class AddOnService {
  constructor(
    private readonly db: Db,
    private readonly clock: Clock,
    private readonly deps: AddOnDeps,
    private readonly newId: () => string = () => crypto.randomUUID(),
  ) {}

  private now(orgId: number): Date {
    return new Date(this.clock.now(orgId));
  }

  async create(orgId: number, input: unknown): Promise<AddOn> {
    const checked = checkAddOn(input, null);
    return this.guard(() =>
      this.db.transaction(async (tx) => {
        const errors: FieldErrors = checked.ok ? {} : { ...checked.errors };
        if (checked.ok && (await store.addOnByCode(tx, orgId, checked.value.code)) !== null) errors["code"] = [TAKEN];
        if (!checked.ok || Object.keys(errors).length > 0) throw validationFailed(errors, "the add-on is invalid");
        await this.deps.taxes.checkCodes(tx, orgId, new Map([["tax_codes", checked.value.taxCodes]]));
        return store.insertAddOn(tx, orgId, this.newId(), checked.value, this.now(orgId));
      }),
    );
  }

  async get(orgId: number, code: string, q: Queryable = this.db): Promise<AddOn> {
    const addOn = isLookupCode(code) ? await store.addOnByCode(q, orgId, code) : null;
    if (addOn === null) throw notFound("add_on", code);
    return addOn;
  }

  list(orgId: number, page: number, perPage: number): Promise<{ addOns: AddOn[]; total: number }> {
    return store.listAddOns(this.db, orgId, perPage, (page - 1) * perPage);
  }

  /** PUT /add_ons/:code: the fields sent change (invoices already issued keep what they billed). */
  async update(orgId: number, code: string, input: unknown): Promise<AddOn> {
    return this.guard(() =>
      this.db.transaction(async (tx) => {
        const current = isLookupCode(code) ? await store.addOnByCode(tx, orgId, code, true) : null;
        if (current === null) throw notFound("add_on", code);
        const checked = checkAddOn(input, draftOfAddOn(current));
        const errors: FieldErrors = checked.ok ? {} : { ...checked.errors };
        if (checked.ok && checked.value.code !== current.code && (await store.addOnByCode(tx, orgId, checked.value.code)) !== null) errors["code"] = [TAKEN];
        if (!checked.ok || Object.keys(errors).length > 0) throw validationFailed(errors, "the add-on is invalid");
        await this.deps.taxes.checkCodes(tx, orgId, new Map([["tax_codes", checked.value.taxCodes]]));
        return store.updateAddOn(tx, orgId, current.id, checked.value, this.now(orgId));
      }),
    );
  }

  /** DELETE /add_ons/:code: the code is free again; fees already billed keep their add-on. */
  async delete(orgId: number, code: string): Promise<AddOn> {
    return this.db.transaction(async (tx) => {
      const addOn = isLookupCode(code) ? await store.addOnByCode(tx, orgId, code, true) : null;
      if (addOn === null) throw notFound("add_on", code);
      await store.deleteAddOn(tx, orgId, addOn.id, this.now(orgId));
      return addOn;
    });
  }

  /** The live add-ons with these codes, by code. */
  async byCodes(orgId: number, codes: readonly string[], q: Queryable = this.db): Promise<Map<string, AddOn>> {
    return new Map((await store.addOnsByCodes(q, orgId, codes)).map((a) => [a.code, a]));
  }

  taxesOf(addOn: AddOn, q: Queryable = this.db): Promise<Tax[]> {
    return this.deps.taxes.resolve(addOn.orgId, addOn.taxCodes, q);
  }

  private async guard<T>(work: () => Promise<T>): Promise<T> {
    try {
      return await work();
    } catch (err) {
      if (sqlState(err) === "23505") throw validationFailed({ code: [TAKEN] }, "the add-on is invalid");
      if (isDataError(err)) throw validationFailed({ add_on: ["value_is_invalid"] }, "the add-on is invalid");
      throw err;
    }
  }
}
