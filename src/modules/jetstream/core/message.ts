// The stream message of one accepted event, its JetStream message id, and the identity digest the
// database uses as the event's lago_id. Pure: no NATS, no database.
import crypto from "node:crypto";
import type { PreparedEvent } from "../../ingest/core/event.ts";
import { isoFromMicros } from "../../ingest/core/event.ts";

/**
 * What the API publishes: the events of one request (all of it, or a chunk of a large batch), as
 * validated — ids, code, time in microseconds, canonical properties, amount, payload digest — so
 * the worker writes exactly what the API judged and acknowledged, whatever the organization's
 * clock says by the time it is written. `{"v":1,"o":org,"r":receivedAtMs,"e":[[tx,sub,code,µs,props,amount,hash],…]}`.
 */
type WireEvent = [string, string, string, number, string | null, string | null, number];
interface Wire {
  v: 1;
  o: number;
  /** When the API accepted them (ms, the organization's clock). */
  r: number;
  e: WireEvent[];
}

export function encodeEvents(orgId: number, receivedAtMs: number, events: readonly PreparedEvent[]): string {
  const wire: Wire = {
    v: 1,
    o: orgId,
    r: receivedAtMs,
    e: events.map((e) => [e.transactionId, e.subscriptionId, e.code, e.tsMicros, e.propertiesJson, e.preciseAmount, e.payloadHash]),
  };
  return JSON.stringify(wire);
}

/** An upper bound of an event's share of a message, in bytes (UTF-16 length × 3 bounds UTF-8). */
export function encodedSizeBound(e: PreparedEvent): number {
  return 64 + 3 * (e.transactionId.length + e.subscriptionId.length + e.code.length + (e.propertiesJson?.length ?? 0) + (e.preciseAmount?.length ?? 0));
}

/**
 * Splits a request's events into messages: at most `maxEvents` and about `maxBytes` each (NATS
 * refuses messages over its max_payload, 1 MB by default).
 */
export function chunkEvents(events: readonly PreparedEvent[], maxEvents: number, maxBytes: number): PreparedEvent[][] {
  const chunks: PreparedEvent[][] = [];
  let current: PreparedEvent[] = [];
  let bytes = 0;
  for (const e of events) {
    const size = encodedSizeBound(e);
    if (current.length > 0 && (current.length >= maxEvents || bytes + size > maxBytes)) {
      chunks.push(current);
      current = [];
      bytes = 0;
    }
    current.push(e);
    bytes += size;
  }
  if (current.length > 0) chunks.push(current);
  return chunks;
}

export interface StreamEvent {
  event: PreparedEvent;
  receivedAtMs: number;
}

const isInt = (x: unknown): x is number => typeof x === "number" && Number.isSafeInteger(x);
const isStr = (x: unknown): x is string => typeof x === "string";
const isStrOrNull = (x: unknown): x is string | null => x === null || typeof x === "string";

/** The events of a stream message, or a reason it holds none (a message no API of ours published). */
export function decodeEvents(text: string): { ok: true; events: StreamEvent[] } | { ok: false; reason: string } {
  let w: Partial<Wire>;
  try {
    w = JSON.parse(text) as Partial<Wire>;
  } catch {
    return { ok: false, reason: "not JSON" };
  }
  if (w === null || typeof w !== "object" || w.v !== 1) return { ok: false, reason: "unknown message version" };
  const orgId = w.o;
  const receivedAtMs = w.r;
  if (!isInt(orgId) || orgId <= 0 || !isInt(receivedAtMs) || !Array.isArray(w.e) || w.e.length === 0) {
    return { ok: false, reason: "missing or mistyped fields" };
  }
  const events: StreamEvent[] = [];
  for (const x of w.e as unknown[]) {
    if (!Array.isArray(x) || x.length !== 7) return { ok: false, reason: "mistyped event" };
    const [t, s, c, u, p, a, h] = x as unknown[];
    if (!isStr(t) || !isStr(s) || !isStr(c) || !isInt(u) || !isStrOrNull(p) || !isStrOrNull(a) || !isInt(h)) {
      return { ok: false, reason: "mistyped event" };
    }
    events.push({
      // The writer stores propertiesJson; the parsed object is only for rendering (see lagoEventJson).
      event: { orgId, transactionId: t, subscriptionId: s, code: c, tsMicros: u, propertiesJson: p, properties: null, preciseAmount: a, payloadHash: h },
      receivedAtMs,
    });
  }
  return { ok: true, events };
}

/**
 * The identity as the database digests it (KEY_DIGEST in ingest/store.ts): MD5 of
 * `length(sub) ':' sub tx` over UTF-8, `length` counting characters (code points), as a UUID.
 */
export function identityDigest(subscriptionId: string, transactionId: string): string {
  let chars = 0;
  for (const _ of subscriptionId) chars++;
  const h = crypto.hash("md5", `${chars}:${subscriptionId}${transactionId}`, "hex");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/**
 * The JetStream message id (Nats-Msg-Id) of a message: organization, then the identity digest and
 * payload digest of its one event, or a digest of those of all its events. An exact retry within
 * the stream's duplicate window is dropped by JetStream; a conflicting payload gets another id, so
 * it reaches the worker, which records it as a rejected event. `digests` are the events' identity
 * digests (the caller has them: they are the events' lago_ids).
 */
export function messageId(orgId: number, events: readonly PreparedEvent[], digests: readonly string[]): string {
  if (events.length === 1) return `${orgId}.${digests[0]}.${events[0]!.payloadHash.toString(36)}`;
  const h = crypto.createHash("md5");
  events.forEach((e, i) => h.update(`${digests[i]}:${e.payloadHash};`));
  return `${orgId}.m${events.length}.${h.digest("hex")}`;
}

/** Lago's event JSON (what a client sends) rebuilt from a stream event: rejected events and `event.error` show it. */
export function lagoEventJson(e: PreparedEvent): Record<string, unknown> {
  return {
    transaction_id: e.transactionId,
    external_subscription_id: e.subscriptionId,
    code: e.code,
    timestamp: isoFromMicros(e.tsMicros),
    properties: e.propertiesJson === null ? {} : (JSON.parse(e.propertiesJson) as Record<string, unknown>),
    precise_total_amount_cents: e.preciseAmount,
  };
}
