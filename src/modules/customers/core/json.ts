// The customer as Lago's API renders it (`CustomerObjectExtended` in lago-javascript-client).
import { applicableTimezone, type Customer } from "./customer.ts";

/** Lago renders customer times with second precision ("2022-04-29T08:59:51Z"). */
export const lagoTime = (d: Date): string => d.toISOString().replace(/\.\d{3}Z$/, "Z");

export function customerJson(c: Customer) {
  const a = c.attributes;
  const b = a.billing_configuration;
  return {
    lago_id: c.lagoId,
    external_id: c.externalId,
    account_type: a.account_type,
    name: a.name,
    firstname: a.firstname,
    lastname: a.lastname,
    customer_type: a.customer_type,
    sequential_id: c.sequentialId,
    slug: c.slug,
    created_at: lagoTime(c.createdAt),
    updated_at: lagoTime(c.updatedAt),
    country: a.country,
    address_line1: a.address_line1,
    address_line2: a.address_line2,
    state: a.state,
    zipcode: a.zipcode,
    email: a.email,
    city: a.city,
    url: a.url,
    phone: a.phone,
    logo_url: a.logo_url,
    legal_name: a.legal_name,
    legal_number: a.legal_number,
    currency: a.currency,
    tax_identification_number: a.tax_identification_number,
    timezone: a.timezone,
    applicable_timezone: applicableTimezone(c),
    net_payment_term: a.net_payment_term,
    external_salesforce_id: a.external_salesforce_id,
    finalize_zero_amount_invoice: a.finalize_zero_amount_invoice,
    skip_invoice_custom_sections: a.skip_invoice_custom_sections,
    billing_configuration: {
      invoice_grace_period: b.invoice_grace_period,
      payment_provider: b.payment_provider,
      payment_provider_code: b.payment_provider_code,
      provider_customer_id: b.provider_customer_id,
      document_locale: b.document_locale,
      subscription_invoice_issuing_date_anchor: b.subscription_invoice_issuing_date_anchor,
      subscription_invoice_issuing_date_adjustment: b.subscription_invoice_issuing_date_adjustment,
    },
    shipping_address: { ...a.shipping_address },
    metadata: a.metadata.map((m) => ({
      lago_id: m.lago_id,
      key: m.key,
      value: m.value,
      display_in_invoice: m.display_in_invoice,
      created_at: lagoTime(new Date(m.created_at)),
    })),
    // Read with the customer (the taxes its codes name, in their order); the codes as set are
    // echoed too (our addition).
    taxes: (c.taxes ?? []).map((t) => ({ ...t })) as unknown[],
    tax_codes: [...a.tax_codes],
    integration_customers: [] as unknown[],
    applicable_invoice_custom_sections: [] as unknown[],
  };
}

export type CustomerJson = ReturnType<typeof customerJson>;

/** The customer with its taxes (as JSON, in the order of its codes). */
export const customerJsonWithTaxes = (c: Customer, taxes: readonly unknown[]): CustomerJson => ({ ...customerJson(c), taxes: [...taxes] });
