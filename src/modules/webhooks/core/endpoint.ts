// Webhook endpoint input (Lago's WebhookEndpointCreateInput / UpdateInput), checked field by field.
import { unstorableText } from "../../../shared/codes.ts";
import type { FieldErrors } from "../../../shared/errors.ts";
import { isWebhookType, type WebhookType } from "./event_types.ts";
import type { SignatureAlgo } from "./signature.ts";

export interface EndpointAttributes {
  webhookUrl: string;
  signatureAlgo: SignatureAlgo;
  name: string | null;
  /** null: every type. */
  eventTypes: WebhookType[] | null;
}

/** Lago's limit of endpoints per organization. */
export const ENDPOINT_LIMIT = 10;
const URL_MAX = 2048;
const NAME_MAX = 255;

export type Checked<T> = { ok: true; value: T } | { ok: false; errors: FieldErrors };

/**
 * An absolute http(s) URL with a host and no credentials (Lago's `url_invalid` otherwise). Any
 * host is accepted, private addresses included: receivers on the operator's own network are usual.
 */
export function checkWebhookUrl(raw: unknown): string[] | null {
  if (raw === undefined || raw === null || raw === "") return ["value_is_mandatory"];
  if (typeof raw !== "string") return ["url_invalid"];
  if (raw.length > URL_MAX) return ["value_is_too_long"];
  // The URL parser would quietly drop or encode these; a receiver's address never contains them.
  if (/[\s\u0000-\u001f\u007f]/.test(raw)) return ["url_invalid"];
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return ["url_invalid"];
  }
  if ((url.protocol !== "http:" && url.protocol !== "https:") || url.hostname === "") return ["url_invalid"];
  if (url.username !== "" || url.password !== "") return ["url_invalid"];
  return null;
}

function readAttributes(raw: unknown, base: EndpointAttributes | null): Checked<EndpointAttributes> {
  const errors: FieldErrors = {};
  if (raw === null || typeof raw !== "object" || Array.isArray(raw)) return { ok: false, errors: { webhook_endpoint: ["value_is_invalid"] } };
  const input = raw as Record<string, unknown>;

  let webhookUrl = base?.webhookUrl ?? "";
  if (base === null || input["webhook_url"] !== undefined) {
    const problem = checkWebhookUrl(input["webhook_url"]);
    if (problem !== null) errors["webhook_url"] = problem;
    else webhookUrl = input["webhook_url"] as string;
  }

  // Lago's default is `jwt`; an update without it keeps the endpoint's.
  let signatureAlgo: SignatureAlgo = base?.signatureAlgo ?? "jwt";
  const algo = input["signature_algo"];
  if (algo !== undefined && algo !== null) {
    if (algo === "jwt" || algo === "hmac") signatureAlgo = algo;
    else errors["signature_algo"] = ["value_is_invalid"];
  }

  let name = base?.name ?? null;
  if (input["name"] !== undefined) {
    const value = input["name"];
    if (value === null) name = null;
    else if (typeof value !== "string") errors["name"] = ["value_is_invalid"];
    else if (value.length > NAME_MAX) errors["name"] = ["value_is_too_long"];
    else {
      const bad = unstorableText(value);
      if (bad !== null) errors["name"] = [bad];
      else name = value;
    }
  }

  let eventTypes = base?.eventTypes ?? null;
  if (input["event_types"] !== undefined) {
    const value = input["event_types"];
    if (value === null) eventTypes = null;
    else if (!Array.isArray(value)) errors["event_types"] = ["value_is_invalid"];
    else {
      value.forEach((t, i) => {
        if (!isWebhookType(t)) errors[`event_types[${i}]`] = ["value_is_invalid"];
      });
      if (value.every(isWebhookType)) eventTypes = [...new Set(value)];
    }
  }

  return Object.keys(errors).length > 0 ? { ok: false, errors } : { ok: true, value: { webhookUrl, signatureAlgo, name, eventTypes } };
}

export const readEndpointCreate = (raw: unknown) => readAttributes(raw, null);

/** An update changes only the fields it carries. */
export const readEndpointUpdate = (raw: unknown, current: EndpointAttributes) => readAttributes(raw, current);
