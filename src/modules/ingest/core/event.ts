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

/**
 * 53 bits of MD5 of the payload (its UTF-8 bytes): a client cannot make a changed payload pass for
 * a retry by accident. The first 53 bits of the digest, big-endian — stored in event_identities, so
 * this value must never change. MD5 per RFC 1321 in plain JS: one event's payload is one or two
 * 64-byte blocks, and node:crypto's fixed cost per call (and its Buffer) was ~2× this on the
 * ingest path. `payloadDigestNative` is the reference (the tests compare both).
 */
export function payloadDigest(s: string): number {
  const need = s.length * 3 + 72;
  if (md5Bytes.length < need) md5Bytes = new Uint8Array(need);
  const bytes = md5Bytes;
  let len = 0;
  for (; len < s.length; len++) {
    const c = s.charCodeAt(len);
    if (c > 0x7f) break;
    bytes[len] = c;
  }
  if (len < s.length) len = utf8.encodeInto(s, bytes).written;
  const total = (((len + 8) >>> 6) + 1) << 6;
  bytes[len] = 0x80;
  bytes.fill(0, len + 1, total - 8);
  const lo = (len << 3) >>> 0;
  const hi = Math.floor(len / 0x20000000);
  bytes[total - 8] = lo;
  bytes[total - 7] = lo >>> 8;
  bytes[total - 6] = lo >>> 16;
  bytes[total - 5] = lo >>> 24;
  bytes[total - 4] = hi;
  bytes[total - 3] = hi >>> 8;
  bytes[total - 2] = hi >>> 16;
  bytes[total - 1] = hi >>> 24;
  const M = md5Words;
  let a0 = 0x67452301;
  let b0 = 0xefcdab89 | 0;
  let c0 = 0x98badcfe | 0;
  let d0 = 0x10325476;
  for (let off = 0; off < total; off += 64) {
    for (let j = 0, p = off; j < 16; j++, p += 4) M[j] = bytes[p]! | (bytes[p + 1]! << 8) | (bytes[p + 2]! << 16) | (bytes[p + 3]! << 24);
    let a = a0;
    let b = b0;
    let c = c0;
    let d = d0;
    for (let i = 0; i < 64; i++) {
      let f: number;
      let g: number;
      if (i < 16) (f = d ^ (b & (c ^ d))), (g = i);
      else if (i < 32) (f = c ^ (d & (b ^ c))), (g = (5 * i + 1) & 15);
      else if (i < 48) (f = b ^ c ^ d), (g = (3 * i + 5) & 15);
      else (f = c ^ (b | ~d)), (g = (7 * i) & 15);
      f = (f + a + MD5_K[i]! + M[g]!) | 0;
      a = d;
      d = c;
      c = b;
      const r = MD5_SHIFTS[((i >>> 4) << 2) | (i & 3)]!;
      b = (b + ((f << r) | (f >>> (32 - r)))) | 0;
    }
    a0 = (a0 + a) | 0;
    b0 = (b0 + b) | 0;
    c0 = (c0 + c) | 0;
    d0 = (d0 + d) | 0;
  }
  // Digest bytes 0-3 are a0 little-endian, 4-6 the low bytes of b0: 48 bits, then 5 more.
  const first32 = (((a0 & 0xff) << 24) | (((a0 >>> 8) & 0xff) << 16) | (((a0 >>> 16) & 0xff) << 8) | (a0 >>> 24)) >>> 0;
  return (first32 * 65536 + (((b0 & 0xff) << 8) | ((b0 >>> 8) & 0xff))) * 32 + (((b0 >>> 16) & 0xff) >>> 3);
}
const MD5_SHIFTS = new Uint8Array([7, 12, 17, 22, 5, 9, 14, 20, 4, 11, 16, 23, 6, 10, 15, 21]);
const MD5_K = new Int32Array(64).map((_, i) => Math.floor(Math.abs(Math.sin(i + 1)) * 2 ** 32) | 0);
const md5Words = new Int32Array(16);
let md5Bytes = new Uint8Array(1024);
const utf8 = new TextEncoder();

/** The same digest through node:crypto (reference for the tests). */
export function payloadDigestNative(s: string): number {
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
  // Most senders' properties are flat with keys already in order: then JSON.stringify writes the
  // canonical text itself, in one native call instead of one per key and value.
  if (depth === 0 && alreadyCanonical(value, 0)) return JSON.stringify(value);
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

/** Why `properties` cannot be stored as an event's (the reason canonicalJson refuses them), or null. */
export function propertiesProblem(properties: unknown): string | null {
  try {
    canonicalJson(properties);
    return null;
  } catch (err) {
    if (err instanceof PropertiesError) return err.message;
    throw err;
  }
}

/**
 * True when JSON.stringify(value) is exactly canonicalJson(value): plain objects whose keys are in
 * sorted order at every level, and nothing canonicalJson would refuse (anything else, or any doubt,
 * answers false and canonicalJson does the work).
 */
function alreadyCanonical(value: unknown, depth: number): boolean {
  if (depth > MAX_PROPERTIES_DEPTH) return false;
  switch (typeof value) {
    case "string":
      return !value.includes("\u0000") && value.isWellFormed();
    case "number":
      return Number.isFinite(value);
    case "boolean":
      return true;
    case "object": {
      if (value === null) return true;
      if (Array.isArray(value)) {
        for (let i = 0; i < value.length; i++) if (!alreadyCanonical(value[i], depth + 1)) return false;
        return true;
      }
      const proto = Object.getPrototypeOf(value);
      if (proto !== Object.prototype && proto !== null) return false;
      const keys = Object.keys(value);
      for (let i = 0; i < keys.length; i++) {
        const k = keys[i]!;
        if (i > 0 && !(keys[i - 1]! < k)) return false;
        if (k.includes("\u0000") || !k.isWellFormed()) return false;
        if (!alreadyCanonical((value as Record<string, unknown>)[k], depth + 1)) return false;
      }
      return true;
    }
    default:
      return false;
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
  const iso = isoFromMs(ms);
  const rest = micros - ms * 1000;
  return rest === 0 ? iso : iso.slice(0, -1) + String(rest).padStart(3, "0") + "Z";
}

let lastMs = NaN;
let lastIso = "";
/**
 * new Date(ms).toISOString(), remembering the last answer: under load the responses of one
 * millisecond (their created_at, and the timestamp of events sent without one) share it.
 */
export function isoFromMs(ms: number): string {
  if (ms !== lastMs) {
    lastIso = new Date(ms).toISOString();
    lastMs = ms;
  }
  return lastIso;
}

/** The identity as a string (in-batch deduplication, lock ordering); NUL cannot occur in ids. */
export const identityKey = (e: PreparedEvent) => e.orgId + "\u0000" + e.subscriptionId + "\u0000" + e.transactionId;
