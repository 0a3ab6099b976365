// SQL for customers. Every statement is scoped by org_id: a customer is only ever found through
// its own organization.
import type { Queryable } from "../../db/db.ts";
import type { CustomerAttributes, Customer, CustomerMetadata, CustomerTax } from "./core/customer.ts";
import type { CustomerListQuery } from "./core/list_query.ts";

// Upserts of one organization's customers run one at a time (sequential ids, the live-external_id
// uniqueness check): a transaction-scoped advisory lock on (namespace, org).
const CUSTOMER_LOCK_NAMESPACE = 7_221_003;

interface CustomerRow {
  id: string | number;
  org_id: number;
  lago_id: string;
  external_id: string;
  sequential_id: number;
  slug: string;
  name: string | null;
  firstname: string | null;
  lastname: string | null;
  email: string | null;
  currency: string | null;
  timezone: string | null;
  country: string | null;
  address_line1: string | null;
  address_line2: string | null;
  city: string | null;
  state: string | null;
  zipcode: string | null;
  shipping_address_line1: string | null;
  shipping_address_line2: string | null;
  shipping_city: string | null;
  shipping_state: string | null;
  shipping_zipcode: string | null;
  shipping_country: string | null;
  legal_name: string | null;
  legal_number: string | null;
  tax_identification_number: string | null;
  phone: string | null;
  url: string | null;
  logo_url: string | null;
  external_salesforce_id: string | null;
  customer_type: CustomerAttributes["customer_type"];
  account_type: CustomerAttributes["account_type"];
  net_payment_term: number | null;
  finalize_zero_amount_invoice: CustomerAttributes["finalize_zero_amount_invoice"];
  skip_invoice_custom_sections: boolean;
  invoice_grace_period: number | null;
  payment_provider: CustomerAttributes["billing_configuration"]["payment_provider"];
  payment_provider_code: string | null;
  provider_customer_id: string | null;
  document_locale: string | null;
  subscription_invoice_issuing_date_anchor: CustomerAttributes["billing_configuration"]["subscription_invoice_issuing_date_anchor"];
  subscription_invoice_issuing_date_adjustment: CustomerAttributes["billing_configuration"]["subscription_invoice_issuing_date_adjustment"];
  metadata: CustomerMetadata[] | string;
  tax_codes: string[] | null;
  tax_objects?: CustomerTax[] | string | null;
  created_at: Date;
  updated_at: Date;
  deleted_at: Date | null;
}

// The customer's taxes (Lago's TaxObject), in the order of its codes, read in the same statement
// so every customer rendered anywhere (its own routes, invoices, webhooks) shows them.
const TAX_OBJECTS = `CASE WHEN cardinality(customers.tax_codes) > 0 THEN
  (SELECT jsonb_agg(jsonb_build_object('lago_id', t.lago_id::text, 'name', t.name, 'code', t.code, 'description', t.description,
                                       'rate', t.rate::text, 'applied_to_organization', t.applied_to_organization,
                                       'created_at', to_char(t.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'))
                    ORDER BY array_position(customers.tax_codes, t.code))
     FROM taxes t WHERE t.org_id = customers.org_id AND t.code = ANY(customers.tax_codes)) END AS tax_objects`;
const CUSTOMER_COLUMNS = `customers.*, ${TAX_OBJECTS}`;

function taxesOf(r: CustomerRow): CustomerTax[] {
  const raw = typeof r.tax_objects === "string" ? (JSON.parse(r.tax_objects) as CustomerTax[]) : (r.tax_objects ?? []);
  return raw.map((t) => ({ ...t, rate: Number(t.rate) }));
}

export function toCustomer(r: CustomerRow): Customer {
  return {
    taxes: taxesOf(r),
    id: Number(r.id),
    orgId: Number(r.org_id),
    lagoId: r.lago_id,
    externalId: r.external_id,
    sequentialId: Number(r.sequential_id),
    slug: r.slug,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
    deletedAt: r.deleted_at,
    attributes: {
      name: r.name,
      firstname: r.firstname,
      lastname: r.lastname,
      email: r.email,
      currency: r.currency,
      timezone: r.timezone,
      country: r.country,
      address_line1: r.address_line1,
      address_line2: r.address_line2,
      city: r.city,
      state: r.state,
      zipcode: r.zipcode,
      legal_name: r.legal_name,
      legal_number: r.legal_number,
      tax_identification_number: r.tax_identification_number,
      phone: r.phone,
      url: r.url,
      logo_url: r.logo_url,
      external_salesforce_id: r.external_salesforce_id,
      customer_type: r.customer_type,
      account_type: r.account_type,
      net_payment_term: r.net_payment_term === null ? null : Number(r.net_payment_term),
      finalize_zero_amount_invoice: r.finalize_zero_amount_invoice,
      skip_invoice_custom_sections: r.skip_invoice_custom_sections,
      shipping_address: {
        address_line1: r.shipping_address_line1,
        address_line2: r.shipping_address_line2,
        city: r.shipping_city,
        state: r.shipping_state,
        zipcode: r.shipping_zipcode,
        country: r.shipping_country,
      },
      billing_configuration: {
        invoice_grace_period: r.invoice_grace_period === null ? null : Number(r.invoice_grace_period),
        payment_provider: r.payment_provider,
        payment_provider_code: r.payment_provider_code,
        provider_customer_id: r.provider_customer_id,
        document_locale: r.document_locale,
        subscription_invoice_issuing_date_anchor: r.subscription_invoice_issuing_date_anchor,
        subscription_invoice_issuing_date_adjustment: r.subscription_invoice_issuing_date_adjustment,
      },
      metadata: typeof r.metadata === "string" ? (JSON.parse(r.metadata) as CustomerMetadata[]) : r.metadata,
      tax_codes: r.tax_codes ?? [],
    },
  };
}

// The attribute columns, in the order `attributeValues` lists them (starting at parameter $offset).
const ATTRIBUTE_COLUMNS = [
  "name",
  "firstname",
  "lastname",
  "email",
  "currency",
  "timezone",
  "country",
  "address_line1",
  "address_line2",
  "city",
  "state",
  "zipcode",
  "shipping_address_line1",
  "shipping_address_line2",
  "shipping_city",
  "shipping_state",
  "shipping_zipcode",
  "shipping_country",
  "legal_name",
  "legal_number",
  "tax_identification_number",
  "phone",
  "url",
  "logo_url",
  "external_salesforce_id",
  "customer_type",
  "account_type",
  "net_payment_term",
  "finalize_zero_amount_invoice",
  "skip_invoice_custom_sections",
  "invoice_grace_period",
  "payment_provider",
  "payment_provider_code",
  "provider_customer_id",
  "document_locale",
  "subscription_invoice_issuing_date_anchor",
  "subscription_invoice_issuing_date_adjustment",
  "metadata",
  "tax_codes",
] as const;
const CASTS: Partial<Record<(typeof ATTRIBUTE_COLUMNS)[number], string>> = {
  net_payment_term: "::int",
  invoice_grace_period: "::int",
  skip_invoice_custom_sections: "::boolean",
  metadata: "::jsonb",
  tax_codes: "::text[]",
};

function attributeValues(a: CustomerAttributes): unknown[] {
  const s = a.shipping_address;
  const b = a.billing_configuration;
  return [
    a.name,
    a.firstname,
    a.lastname,
    a.email,
    a.currency,
    a.timezone,
    a.country,
    a.address_line1,
    a.address_line2,
    a.city,
    a.state,
    a.zipcode,
    s.address_line1,
    s.address_line2,
    s.city,
    s.state,
    s.zipcode,
    s.country,
    a.legal_name,
    a.legal_number,
    a.tax_identification_number,
    a.phone,
    a.url,
    a.logo_url,
    a.external_salesforce_id,
    a.customer_type,
    a.account_type,
    a.net_payment_term,
    a.finalize_zero_amount_invoice,
    a.skip_invoice_custom_sections,
    b.invoice_grace_period,
    b.payment_provider,
    b.payment_provider_code,
    b.provider_customer_id,
    b.document_locale,
    b.subscription_invoice_issuing_date_anchor,
    b.subscription_invoice_issuing_date_adjustment,
    JSON.stringify(a.metadata),
    a.tax_codes,
  ];
}

const placeholder = (column: (typeof ATTRIBUTE_COLUMNS)[number], n: number) => `$${n}${CASTS[column] ?? ""}`;

export async function lockOrgCustomers(tx: Queryable, orgId: number): Promise<void> {
  await tx.query("SELECT pg_advisory_xact_lock($1::int, $2::int)", [CUSTOMER_LOCK_NAMESPACE, orgId]);
}

/** The live (not deleted) customer with this external_id. */
export async function findLiveByExternalId(q: Queryable, orgId: number, externalId: string): Promise<Customer | null> {
  const { rows } = await q.query<CustomerRow>(`SELECT ${CUSTOMER_COLUMNS} FROM customers WHERE org_id = $1 AND external_id = $2 AND deleted_at IS NULL`, [
    orgId,
    externalId,
  ]);
  return rows[0] ? toCustomer(rows[0]) : null;
}

/** Any customer of the organization by internal id, deleted ones included. */
export async function findById(q: Queryable, orgId: number, id: number): Promise<Customer | null> {
  const { rows } = await q.query<CustomerRow>(`SELECT ${CUSTOMER_COLUMNS} FROM customers WHERE org_id = $1 AND id = $2`, [orgId, id]);
  return rows[0] ? toCustomer(rows[0]) : null;
}

/** Customers of the organization by internal id, deleted ones included; ids not found are left out. */
export async function findByIds(q: Queryable, orgId: number, ids: readonly number[]): Promise<Customer[]> {
  if (ids.length === 0) return [];
  const { rows } = await q.query<CustomerRow>(`SELECT ${CUSTOMER_COLUMNS} FROM customers WHERE org_id = $1 AND id = ANY($2::bigint[])`, [orgId, ids.map(String)]);
  return rows.map(toCustomer);
}

/**
 * The next sequential id of the organization's customers (deleted ones keep theirs) and what its
 * slug is made of. The caller holds the organization's customer lock until it inserts.
 */
export async function nextSequentialId(tx: Queryable, orgId: number): Promise<{ sequentialId: number; orgName: string; orgPublicId: string }> {
  const { rows } = await tx.query<{ name: string; public_id: string; seq: number | string }>(
    `SELECT o.name, o.public_id::text AS public_id,
            COALESCE((SELECT max(sequential_id) FROM customers WHERE org_id = o.id), 0) + 1 AS seq
       FROM organizations o WHERE o.id = $1`,
    [orgId],
  );
  const o = rows[0]!;
  return { sequentialId: Number(o.seq), orgName: o.name, orgPublicId: o.public_id };
}

export async function insertCustomer(
  tx: Queryable,
  c: { orgId: number; lagoId: string; externalId: string; sequentialId: number; slug: string; attributes: CustomerAttributes; now: Date },
): Promise<Customer> {
  const base = ATTRIBUTE_COLUMNS.length;
  const { rows } = await tx.query<CustomerRow>(
    `INSERT INTO customers (${ATTRIBUTE_COLUMNS.join(", ")}, org_id, lago_id, external_id, sequential_id, slug, created_at, updated_at)
     VALUES (${ATTRIBUTE_COLUMNS.map((col, i) => placeholder(col, i + 1)).join(", ")},
             $${base + 1}, $${base + 2}, $${base + 3}, $${base + 4}, $${base + 5}, $${base + 6}, $${base + 6})
     RETURNING ${CUSTOMER_COLUMNS}`,
    [...attributeValues(c.attributes), c.orgId, c.lagoId, c.externalId, c.sequentialId, c.slug, c.now],
  );
  return toCustomer(rows[0]!);
}

export async function updateCustomer(tx: Queryable, c: Customer, attributes: CustomerAttributes, now: Date): Promise<Customer> {
  const base = ATTRIBUTE_COLUMNS.length;
  const { rows } = await tx.query<CustomerRow>(
    `UPDATE customers SET ${ATTRIBUTE_COLUMNS.map((col, i) => `${col} = ${placeholder(col, i + 1)}`).join(", ")}, updated_at = $${base + 1}
      WHERE org_id = $${base + 2} AND id = $${base + 3}
      RETURNING ${CUSTOMER_COLUMNS}`,
    [...attributeValues(attributes), now, c.orgId, c.id],
  );
  return toCustomer(rows[0]!);
}

export async function setCurrency(tx: Queryable, c: Customer, currency: string, now: Date): Promise<Customer> {
  const { rows } = await tx.query<CustomerRow>(`UPDATE customers SET currency = $1, updated_at = $2 WHERE org_id = $3 AND id = $4 RETURNING ${CUSTOMER_COLUMNS}`, [
    currency,
    now,
    c.orgId,
    c.id,
  ]);
  return toCustomer(rows[0]!);
}

export async function markDeleted(tx: Queryable, c: Customer, now: Date): Promise<Customer> {
  const { rows } = await tx.query<CustomerRow>(
    `UPDATE customers SET deleted_at = $1, updated_at = $1 WHERE org_id = $2 AND id = $3 AND deleted_at IS NULL RETURNING ${CUSTOMER_COLUMNS}`,
    [now, c.orgId, c.id],
  );
  return toCustomer(rows[0]!);
}

const escapeLike = (s: string) => s.replace(/[\\%_]/g, (ch) => "\\" + ch);

export async function listCustomers(q: Queryable, orgId: number, f: CustomerListQuery): Promise<{ customers: Customer[]; total: number }> {
  const where = ["org_id = $1", "deleted_at IS NULL"];
  const params: unknown[] = [orgId];
  const p = (v: unknown) => `$${params.push(v)}`;
  if (f.externalId !== undefined) where.push(`external_id = ${p(f.externalId)}`);
  if (f.searchTerm !== undefined) {
    const like = p(`%${escapeLike(f.searchTerm)}%`);
    where.push(
      `(${["name", "firstname", "lastname", "legal_name", "external_id", "email"].map((col) => `${col} ILIKE ${like}`).join(" OR ")})`,
    );
  }
  if (f.countries) where.push(`country = ANY(${p(f.countries)}::text[])`);
  if (f.states) where.push(`state = ANY(${p(f.states)}::text[])`);
  if (f.zipcodes) where.push(`zipcode = ANY(${p(f.zipcodes)}::text[])`);
  if (f.currencies) where.push(`currency = ANY(${p(f.currencies)}::text[])`);
  if (f.accountTypes) where.push(`account_type = ANY(${p(f.accountTypes)}::text[])`);
  if (f.customerType !== undefined) where.push(`customer_type = ${p(f.customerType)}`);
  if (f.hasCustomerType !== undefined) where.push(`customer_type IS ${f.hasCustomerType ? "NOT " : ""}NULL`);
  if (f.hasTaxIdentificationNumber !== undefined) where.push(`tax_identification_number IS ${f.hasTaxIdentificationNumber ? "NOT " : ""}NULL`);
  for (const m of f.metadata ?? []) {
    if (m.value === "") where.push(`NOT metadata @> ${p(JSON.stringify([{ key: m.key }]))}::jsonb`);
    else where.push(`metadata @> ${p(JSON.stringify([{ key: m.key, value: m.value }]))}::jsonb`);
  }
  const cond = where.join(" AND ");
  const [rows, count] = await Promise.all([
    q.query<CustomerRow>(
      `SELECT ${CUSTOMER_COLUMNS} FROM customers WHERE ${cond} ORDER BY created_at DESC, sequential_id DESC LIMIT ${f.perPage} OFFSET ${(f.page - 1) * f.perPage}`,
      params,
    ),
    q.query<{ n: string }>(`SELECT count(*)::text AS n FROM customers WHERE ${cond}`, params),
  ]);
  return { customers: rows.rows.map(toCustomer), total: Number(count.rows[0]?.n ?? 0) };
}
