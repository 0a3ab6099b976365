import { describe, expect, it } from "vitest";
import { validateEvent, type PreparedEvent } from "../../../src/modules/ingest/core/event.ts";
import { decodeEvent, encodeEvent, identityDigest, lagoEventJson, messageId } from "../../../src/modules/jetstream/core/message.ts";

const NOW = Date.UTC(2026, 2, 15, 12);
const window = { nowMs: NOW, oldestMs: NOW - 365 * 86_400_000, retentionDays: 365 };

function prepared(raw: Record<string, unknown>, orgId = 7): PreparedEvent {
  const v = validateEvent(raw, orgId, window);
  if (!v.ok) throw new Error(JSON.stringify(v.errors));
  return v.event;
}

const base = { transaction_id: "tx-1", external_subscription_id: "sub-1", code: "api_calls", timestamp: "1773576000.123456", properties: { b: 2, a: [1, "x"] }, precise_total_amount_cents: "12.5" };

describe("stream message of an event", () => {
  it("decodes to what the API validated (the writer's inputs), with the receipt time", () => {
    const e = prepared(base);
    const d = decodeEvent(encodeEvent(e, NOW));
    expect(d.ok).toBe(true);
    if (!d.ok) return;
    expect(d.value.receivedAtMs).toBe(NOW);
    expect({ ...d.value.event, properties: e.properties }).toEqual(e);
  });

  it("keeps an event without timestamp, properties or amount as the API saw it", () => {
    const e = prepared({ transaction_id: "t", external_subscription_id: "s", code: "c" });
    const d = decodeEvent(encodeEvent(e, NOW));
    expect(d.ok && d.value.event).toEqual({ ...e, properties: null });
    expect(d.ok && d.value.event.tsMicros).toBe(NOW * 1000);
  });

  it.each([
    ["not JSON", "{", "not JSON"],
    ["another version", JSON.stringify({ v: 2 }), "unknown message version"],
    ["a missing field", JSON.stringify({ v: 1, o: 1, t: "a", s: "b", c: "c", u: 1, h: 1 }), "missing or mistyped fields"],
    ["an organization that is not a positive integer", JSON.stringify({ v: 1, o: 0, t: "a", s: "b", c: "c", u: 1, h: 1, r: 1, p: null, a: null }), "missing or mistyped fields"],
    ["properties that are not text", JSON.stringify({ v: 1, o: 1, t: "a", s: "b", c: "c", u: 1, h: 1, r: 1, p: {}, a: null }), "mistyped properties or amount"],
  ])("refuses %s", (_name, text, reason) => {
    expect(decodeEvent(text)).toEqual({ ok: false, reason });
  });
});

describe("message id (Nats-Msg-Id)", () => {
  it("is the same for an exact retry, keys in another order included", () => {
    expect(messageId(prepared(base))).toBe(messageId(prepared({ ...base, properties: { a: [1, "x"], b: 2 } })));
  });

  it.each([
    ["another payload", { properties: { b: 3, a: [1, "x"] } }],
    ["another timestamp", { timestamp: "1773576000.123457" }],
    ["another subscription", { external_subscription_id: "sub-2" }],
    ["another transaction", { transaction_id: "tx-2" }],
  ])("differs for %s", (_name, change) => {
    expect(messageId(prepared({ ...base, ...change }))).not.toBe(messageId(prepared(base)));
  });

  it("differs between organizations", () => {
    expect(messageId(prepared(base, 1))).not.toBe(messageId(prepared(base, 2)));
  });

  it("is header-safe ASCII whatever the ids hold", () => {
    expect(messageId(prepared({ ...base, transaction_id: "tx\r\n:ü🙂", external_subscription_id: "s p" }))).toMatch(/^[0-9a-z.-]+$/);
  });
});

describe("identity digest", () => {
  it("separates ids that concatenate alike", () => {
    expect(identityDigest("ab", "c")).not.toBe(identityDigest("a", "bc"));
  });
  it("is a UUID", () => {
    expect(identityDigest("sub", "tx")).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
  });
});

describe("Lago event JSON of a stream event", () => {
  it("shows the event as sent, properties parsed", () => {
    expect(lagoEventJson(prepared(base))).toEqual({
      transaction_id: "tx-1",
      external_subscription_id: "sub-1",
      code: "api_calls",
      timestamp: "2026-03-15T12:00:00.123456Z",
      properties: { a: [1, "x"], b: 2 },
      precise_total_amount_cents: "12.5",
    });
  });
});
