import crypto from "node:crypto";
import type { Db, Queryable } from "../../db/db.ts";
import type { Clock } from "../../shared/clock.ts";
import { notFound, validationFailed } from "../../shared/errors.ts";
import { applyPatch, customerSlug, validateCustomerInput, type Customer } from "./core/customer.ts";
import type { CustomerListQuery } from "./core/list_query.ts";
import * as store from "./store.ts";

/** Runs inside the deleting transaction, before the customer is marked deleted. */
export type CustomerDeleteListener = (tx: Queryable, customer: Customer) => Promise<void>;
/** True when the customer's currency may no longer change (Lago: subscriptions, invoices, wallets...). */
export type CurrencyLock = (tx: Queryable, customer: Customer) => Promise<boolean>;
/** Runs inside the upserting transaction, after the customer is written (webhooks, ...). */
export type CustomerUpsertListener = (tx: Queryable, customer: Customer, created: boolean) => Promise<unknown>;
/** Runs after a customer's create, update or deletion committed, before the API answers (cache invalidation). */
export type CustomerCommittedListener = (customer: Customer) => Promise<void>;
/** Refuses (422, naming the field) tax codes the organization has no tax for; field name → codes. */
export type CustomerTaxCodeCheck = (tx: Queryable, orgId: number, fields: ReadonlyMap<string, readonly string[]>) => Promise<void>;

const currencyMismatch = () => validationFailed({ currency: ["currencies_does_not_match"] }, "the customer's currency can no longer change");

/** Customers of an organization: Lago's upsert by external_id, reads, list and (soft) deletion. */
export class CustomerService {
  private readonly deleteListeners: CustomerDeleteListener[] = [];
  private readonly currencyLocks: CurrencyLock[] = [];
  private readonly upsertListeners: CustomerUpsertListener[] = [];
  private readonly committedListeners: CustomerCommittedListener[] = [];
  private taxCodeCheck: CustomerTaxCodeCheck | null = null;
  /** Where lists are read: a read replica when configured (may lag), else the primary. */
  private reads: Queryable | null = null;

  constructor(
    private readonly db: Db,
    private readonly clock: Clock,
    private readonly newId: () => string = () => crypto.randomUUID(),
  ) {}

  /** Work another module must do when a customer goes away (terminate subscriptions, ...). */
  onDelete(listener: CustomerDeleteListener): void {
    this.deleteListeners.push(listener);
  }

  /** Another module's rule for when a customer's currency is fixed (Lago's `editable?`). */
  lockCurrencyWhen(lock: CurrencyLock): void {
    this.currencyLocks.push(lock);
  }

  /** How `tax_codes` are checked (the taxes module's rule). */
  checkTaxCodesWith(check: CustomerTaxCodeCheck): void {
    this.taxCodeCheck = check;
  }

  /** Work another module does when a customer is created or updated, in the same transaction. */
  onUpsert(listener: CustomerUpsertListener): void {
    this.upsertListeners.push(listener);
  }

  /** Work another module does once a customer's change committed (its cached copies go). */
  onCommitted(listener: CustomerCommittedListener): void {
    this.committedListeners.push(listener);
  }

  private async committed(customer: Customer): Promise<void> {
    for (const listener of this.committedListeners) await listener(customer);
  }

  /** Lists read from `reads` (a read replica; src/db/replica.ts); everything else from the primary. */
  readFrom(reads: Queryable): void {
    this.reads = reads;
  }

  /**
   * POST /customers: creates the customer, or updates the live one with this external_id (only
   * the fields the request carries). One organization's upserts are serialized.
   */
  async upsert(orgId: number, raw: unknown): Promise<{ customer: Customer; created: boolean }> {
    const v = validateCustomerInput(raw);
    if (!v.ok) throw validationFailed(v.errors, "the customer is invalid");
    const patch = v.patch;
    const result = await this.db.transaction(async (tx) => {
      await store.lockOrgCustomers(tx, orgId);
      const codes = patch.fields.tax_codes;
      if (codes !== undefined && codes.length > 0) await this.taxCodeCheck?.(tx, orgId, new Map([["tax_codes", codes]]));
      const now = new Date(this.clock.now(orgId));
      const existing = await store.findLiveByExternalId(tx, orgId, patch.externalId);
      const attributes = applyPatch(existing?.attributes ?? null, patch, { now, newId: this.newId });
      if (existing === null) {
        const { sequentialId, orgName, orgPublicId } = await store.nextSequentialId(tx, orgId);
        const customer = await store.insertCustomer(tx, {
          orgId,
          lagoId: this.newId(),
          externalId: patch.externalId,
          sequentialId,
          slug: customerSlug(orgName, orgPublicId, sequentialId),
          attributes,
          now,
        });
        for (const listener of this.upsertListeners) await listener(tx, customer, true);
        return { customer, created: true };
      }
      // Lago: a currency may change only while nothing has been billed in it.
      if (existing.attributes.currency !== null && attributes.currency !== existing.attributes.currency) {
        for (const locked of this.currencyLocks) if (await locked(tx, existing)) throw currencyMismatch();
      }
      const customer = await store.updateCustomer(tx, existing, attributes, now);
      for (const listener of this.upsertListeners) await listener(tx, customer, false);
      return { customer, created: false };
    });
    await this.committed(result.customer);
    return result;
  }

  /** The live customer with this external_id, or null. */
  async findByExternalId(orgId: number, externalId: string, q: Queryable = this.db): Promise<Customer | null> {
    // Ids PostgreSQL could not even compare (NUL, broken UTF-16) or longer than any stored one.
    if (externalId.length > 255 || externalId.includes("\u0000") || !externalId.isWellFormed()) return null;
    return store.findLiveByExternalId(q, orgId, externalId);
  }

  /** The live customer with this external_id; 404 `customer_not_found` otherwise. */
  async getByExternalId(orgId: number, externalId: string, q: Queryable = this.db): Promise<Customer> {
    const customer = await this.findByExternalId(orgId, externalId, q);
    if (customer === null) throw notFound("customer", externalId);
    return customer;
  }

  /** A customer by internal id, deleted ones included (invoices and subscriptions outlive them). */
  async findById(orgId: number, id: number, q: Queryable = this.db): Promise<Customer | null> {
    return store.findById(q, orgId, id);
  }

  /** Customers by internal id, deleted ones included (the billing job's batches). */
  findByIds(orgId: number, ids: readonly number[], q: Queryable = this.db): Promise<Customer[]> {
    return store.findByIds(q, orgId, ids);
  }

  /**
   * Gives a customer without a currency this one (Lago: a first subscription's plan sets it);
   * 422 `currencies_does_not_match` when the customer already bills in another.
   */
  async ensureCurrency(tx: Queryable, customer: Customer, currency: string): Promise<Customer> {
    if (customer.attributes.currency === currency) return customer;
    if (customer.attributes.currency !== null) throw currencyMismatch();
    return store.setCurrency(tx, customer, currency, new Date(this.clock.now(customer.orgId)));
  }

  list(orgId: number, query: CustomerListQuery): Promise<{ customers: Customer[]; total: number }> {
    return store.listCustomers(this.reads ?? this.db, orgId, query);
  }

  /** DELETE /customers/:external_id: marks the customer deleted and answers it as it was. */
  async delete(orgId: number, externalId: string): Promise<Customer> {
    const deleted = await this.db.transaction(async (tx) => {
      await store.lockOrgCustomers(tx, orgId);
      const customer = await this.getByExternalId(orgId, externalId, tx);
      for (const listener of this.deleteListeners) await listener(tx, customer);
      return store.markDeleted(tx, customer, new Date(this.clock.now(orgId)));
    });
    await this.committed(deleted);
    return deleted;
  }
}
