// The stream message of one accepted event, its JetStream message id, and the identity digest the
// database uses as the event's lago_id. Pure: no NATS, no database.
import crypto from "node:crypto";
import type { PreparedEvent } from "../../ingest/core/event.ts";
import { isoFromMicros } from "../../ingest/core/event.ts";

/**
 * What the API publishes: the event as validated (ids, code, time in microseconds, canonical
 * properties, amount, payload digest), so the worker writes exactly what the API judged and
 * acknowledged — whatever the organization's clock says by the time it is written.
 */
interface Wire {
  v: 1;
  o: number;
  t: string;
  s: string;
  c: string;
  u: number;
  p: string | null;
  a: string | null;
  h: number;
  /** When the API accepted it (ms, the organization's clock). */
  r: number;
}

export function encodeEvent(e: PreparedEvent, receivedAtMs: number): string {
  const wire: Wire = {
    v: 1,
    o: e.orgId,
    t: e.transactionId,
    s: e.subscriptionId,
    c: e.code,
    u: e.tsMicros,
    p: e.propertiesJson,
    a: e.preciseAmount,
    h: e.payloadHash,
    r: receivedAtMs,
  };
  return JSON.stringify(wire);
}

export interface StreamEvent {
  event: PreparedEvent;
  receivedAtMs: number;
}

const isInt = (x: unknown): x is number => typeof x === "number" && Number.isSafeInteger(x);
const isStr = (x: unknown): x is string => typeof x === "string";
const isStrOrNull = (x: unknown): x is string | null => x === null || typeof x === "string";

/** The event of a stream message, or a reason it is not one (a message no API of ours published). */
export function decodeEvent(text: string): { ok: true; value: StreamEvent } | { ok: false; reason: string } {
  let w: Partial<Wire>;
  try {
    w = JSON.parse(text) as Partial<Wire>;
  } catch {
    return { ok: false, reason: "not JSON" };
  }
  if (w === null || typeof w !== "object" || w.v !== 1) return { ok: false, reason: "unknown message version" };
  if (!isInt(w.o) || w.o <= 0 || !isStr(w.t) || !isStr(w.s) || !isStr(w.c) || !isInt(w.u) || !isInt(w.h) || !isInt(w.r)) {
    return { ok: false, reason: "missing or mistyped fields" };
  }
  if (!isStrOrNull(w.p) || !isStrOrNull(w.a)) return { ok: false, reason: "mistyped properties or amount" };
  return {
    ok: true,
    value: {
      event: {
        orgId: w.o,
        transactionId: w.t,
        subscriptionId: w.s,
        code: w.c,
        tsMicros: w.u,
        propertiesJson: w.p,
        // The writer stores propertiesJson; the parsed object is only for rendering (see lagoEventJson).
        properties: null,
        preciseAmount: w.a,
        payloadHash: w.h,
      },
      receivedAtMs: w.r,
    },
  };
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
 * The JetStream message id (Nats-Msg-Id): organization, identity and payload digest. An exact
 * retry within the stream's duplicate window is dropped by JetStream; a conflicting payload gets
 * another id, so it reaches the worker, which records it as a rejected event.
 */
export function messageId(e: PreparedEvent): string {
  return `${e.orgId}.${identityDigest(e.subscriptionId, e.transactionId)}.${e.payloadHash.toString(36)}`;
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
