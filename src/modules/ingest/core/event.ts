// Validation and identity of one usage event, as Lago's events API defines it. Pure: the caller
// passes "now" (the organization's clock) and the accepted time window.
import crypto from "node:crypto";
import type { FieldErrors } from "../../../shared/errors.ts";

export const MAX_ID_LENGTH = 255;
export const MAX_PROPERTIES_BYTES = 65_536;
const MAX_PROPERTIES_DEPTH = 16;
const MICROS_PER_MS = 1000;
export const DAY_MS = 86_400_000;
/** Events may be timestamped up to this far past "now" (clock skew between senders and us). */
export const FUTURE_TOLERANCE_MS = DAY_MS;

/** A validated event, with everything the writer needs precomputed. */
export interface PreparedEvent {
  orgId: number;
  transactionId: string;
  subscriptionId: string;
  code: string;
  /** Event time in microseconds since the epoch (the timestamp given, or now). */
  tsMicros: number;
  /** Canonical JSON (keys sorted) of `properties`, or null when absent. */
  propertiesJson: string | null;
  /** `properties` as received (for the response; never mutated). */
  properties: Record<string, unknown> | null;
  preciseAmount: string | null;
  /** Digest of the payload as sent (timestamp as given, absent stays absent): tells retry from conflict. */
  payloadHash: number;
}

export interface TimeWindow {
  nowMs: number;
  /** Oldest accepted event time (ms), or null for no limit. */
  oldestMs: number | null;
  retentionDays: number;
}

export type Validated = { ok: true; event: PreparedEvent } | { ok: false; errors: FieldErrors };

/** 53 bits of MD5 of the payload: a client cannot make a changed payload pass for a retry by accident. */
function payloadDigest(s: string): number {
  const h = crypto.hash("md5", s, "buffer");
  return h.readUIntBE(0, 6) * 32 + (h[6]! >>> 3);
}

function checkId(value: unknown, field: string, errors: FieldErrors): string {
  if (value === undefined || value === null || value === "") {
    errors[field] = ["value_is_mandatory"];
    return "";
  }
  if (typeof value !== "string") {
    // Lago accepts numeric ids and stores their string form.
    if (typeof value === "number" && Number.isFinite(value)) return String(value);
    errors[field] = ["must_be_a_string"];
    return "";
  }
  if (value.length > MAX_ID_LENGTH) errors[field] = [`value_is_too_long (max ${MAX_ID_LENGTH} characters)`];
  else if (value.includes("\u0000")) errors[field] = ["contains_nul_character"];
  else if (!value.isWellFormed()) errors[field] = ["invalid_unicode (unpaired surrogate)"];
  return value;
}

/** Parses Lago's unix timestamp (seconds, fractions allowed; number or numeric string) to microseconds. */
export function parseTimestamp(value: unknown): number | null {
  let s: string;
  if (typeof value === "number") {
    if (!Number.isFinite(value) || value < 0) return null;
    s = String(value);
    if (s.includes("e")) s = value.toFixed(6);
  } else if (typeof value === "string") {
    s = value.trim();
  } else return null;
  const m = /^(\d{1,12})(?:\.(\d+))?$/.exec(s);
  if (!m) return null;
  const frac = (m[2] ?? "").slice(0, 6).padEnd(6, "0");
  return Number(m[1]) * 1_000_000 + Number(frac);
}

class PropertiesError extends Error {}

/**
 * JSON with object keys sorted, so the same properties always digest the same; rejects what
 * PostgreSQL's jsonb would refuse or silently change (NUL, unpaired surrogates, overflowed numbers).
 */
export function canonicalJson(value: unknown, depth = 0): string {
  if (depth > MAX_PROPERTIES_DEPTH) throw new PropertiesError(`nested_too_deep (max ${MAX_PROPERTIES_DEPTH} levels)`);
  switch (typeof value) {
    case "string":
      if (value.includes("\u0000")) throw new PropertiesError("contains_nul_character");
      if (!value.isWellFormed()) throw new PropertiesError("invalid_unicode (unpaired surrogate)");
      return JSON.stringify(value);
    case "number":
      if (!Number.isFinite(value)) throw new PropertiesError("number_out_of_range");
      return JSON.stringify(value);
    case "boolean":
      return value ? "true" : "false";
    case "object": {
      if (value === null) return "null";
      if (Array.isArray(value)) return "[" + value.map((v) => canonicalJson(v, depth + 1)).join(",") + "]";
      const keys = Object.keys(value).sort();
      let out = "{";
      for (let i = 0; i < keys.length; i++) {
        const k = keys[i]!;
        if (k.includes("\u0000")) throw new PropertiesError("contains_nul_character");
        if (!k.isWellFormed()) throw new PropertiesError("invalid_unicode (unpaired surrogate)");
        if (i > 0) out += ",";
        out += JSON.stringify(k) + ":" + canonicalJson((value as Record<string, unknown>)[k], depth + 1);
      }
      return out + "}";
    }
    default:
      throw new PropertiesError("invalid_value");
  }
}

const DECIMAL = /^-?\d{1,30}(\.\d{1,20})?$/;

/** Validates one event of a request; `errors` names every broken field. */
export function validateEvent(raw: unknown, orgId: number, window: TimeWindow): Validated {
  if (raw === null || typeof raw !== "object" || Array.isArray(raw)) {
    return { ok: false, errors: { event: ["must_be_an_object"] } };
  }
  const input = raw as Record<string, unknown>;
  const errors: FieldErrors = {};
  const transactionId = checkId(input.transaction_id, "transaction_id", errors);
  const subscriptionId = checkId(input.external_subscription_id, "external_subscription_id", errors);
  const code = checkId(input.code, "code", errors);

  let tsMicros = window.nowMs * MICROS_PER_MS;
  let tsGiven = "";
  if (input.timestamp !== undefined && input.timestamp !== null && input.timestamp !== "") {
    const parsed = parseTimestamp(input.timestamp);
    if (parsed === null) {
      errors.timestamp = ["invalid_format (unix seconds, fractions allowed)"];
    } else if (parsed > (window.nowMs + FUTURE_TOLERANCE_MS) * MICROS_PER_MS) {
      errors.timestamp = ["too_far_in_the_future (at most 24 hours ahead)"];
    } else if (window.oldestMs !== null && parsed < window.oldestMs * MICROS_PER_MS) {
      errors.timestamp = [
        window.retentionDays > 0
          ? `older_than_retention (events older than RETENTION_DAYS=${window.retentionDays} days are not accepted)`
          : "out_of_range",
      ];
    } else {
      tsMicros = parsed;
      tsGiven = String(parsed);
    }
  }

  let propertiesJson: string | null = null;
  const props = input.properties;
  if (props !== undefined && props !== null) {
    if (typeof props !== "object" || Array.isArray(props)) {
      errors.properties = ["must_be_an_object"];
    } else {
      try {
        propertiesJson = canonicalJson(props);
        // UTF-16 length first: a UTF-8 encoding is never shorter, so bytes are only counted near the limit.
        if (propertiesJson.length * 3 > MAX_PROPERTIES_BYTES && Buffer.byteLength(propertiesJson, "utf8") > MAX_PROPERTIES_BYTES) {
          errors.properties = [`value_is_too_long (max ${MAX_PROPERTIES_BYTES} bytes)`];
        }
      } catch (err) {
        if (!(err instanceof PropertiesError)) throw err;
        errors.properties = [err.message];
      }
    }
  }

  let preciseAmount: string | null = null;
  const amount = input.precise_total_amount_cents;
  if (amount !== undefined && amount !== null && amount !== "") {
    const s = typeof amount === "number" && Number.isFinite(amount) ? String(amount) : amount;
    if (typeof s !== "string" || !DECIMAL.test(s.trim())) errors.precise_total_amount_cents = ["invalid_value (a decimal number)"];
    else preciseAmount = s.trim();
  }

  for (const _ in errors) return { ok: false, errors };
  const payloadHash = payloadDigest(code + "\u0000" + tsGiven + "\u0000" + (propertiesJson ?? "") + "\u0000" + (preciseAmount ?? ""));
  return {
    ok: true,
    event: {
      orgId,
      transactionId,
      subscriptionId,
      code,
      tsMicros,
      propertiesJson,
      properties: propertiesJson === null ? null : (props as Record<string, unknown>),
      preciseAmount,
      payloadHash,
    },
  };
}

/** ISO 8601 in UTC with milliseconds, or microseconds when the event has them. */
export function isoFromMicros(micros: number): string {
  const ms = Math.floor(micros / 1000);
  const iso = new Date(ms).toISOString();
  const rest = micros - ms * 1000;
  return rest === 0 ? iso : iso.slice(0, -1) + String(rest).padStart(3, "0") + "Z";
}

/** The identity as a string (in-batch deduplication, lock ordering); NUL cannot occur in ids. */
export const identityKey = (e: PreparedEvent) => e.orgId + "\u0000" + e.subscriptionId + "\u0000" + e.transactionId;
