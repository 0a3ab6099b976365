import { describe, expect, it } from "vitest";
import { validateEvent, type PreparedEvent } from "../../../src/modules/ingest/core/event.ts";
import { chunkEvents, decodeEvents, encodeEvents, identityDigest, lagoEventJson, messageId } from "../../../src/modules/jetstream/core/message.ts";

const NOW = Date.UTC(2026, 2, 15, 12);
const window = { nowMs: NOW, oldestMs: NOW - 365 * 86_400_000, retentionDays: 365 };

function prepared(raw: Record<string, unknown>, orgId = 7): PreparedEvent {
  const v = validateEvent(raw, orgId, window);
  if (!v.ok) throw new Error(JSON.stringify(v.errors));
  return v.event;
}
const idOf = (...events: PreparedEvent[]) =>
  messageId(events[0]!.orgId, events, events.map((e) => identityDigest(e.subscriptionId, e.transactionId)));

const base = { transaction_id: "tx-1", external_subscription_id: "sub-1", code: "api_calls", timestamp: "1773576000.123456", properties: { b: 2, a: [1, "x"] }, precise_total_amount_cents: "12.5" };

describe("stream message of a request's events", () => {
  it("decodes to what the API validated (the writer's inputs), each with the receipt time", () => {
    const events = [prepared(base), prepared({ transaction_id: "t", external_subscription_id: "s", code: "c" })];
    const d = decodeEvents(encodeEvents(7, NOW, events));
    expect(d.ok).toBe(true);
    if (!d.ok) return;
    expect(d.events.map((x) => x.receivedAtMs)).toEqual([NOW, NOW]);
    // Only the parsed properties object (for responses) is not carried: the writer stores the canonical JSON.
    expect(d.events.map((x) => x.event)).toEqual(events.map((e) => ({ ...e, properties: null })));
    expect(d.events[1]!.event.tsMicros).toBe(NOW * 1000);
  });

  it.each([
    ["not JSON", "{", "not JSON"],
    ["another version", JSON.stringify({ v: 2 }), "unknown message version"],
    ["no events", JSON.stringify({ v: 1, o: 1, r: 1, e: [] }), "missing or mistyped fields"],
    ["an organization that is not a positive integer", JSON.stringify({ v: 1, o: 0, r: 1, e: [["t", "s", "c", 1, null, null, 1]] }), "missing or mistyped fields"],
    ["an event with a missing field", JSON.stringify({ v: 1, o: 1, r: 1, e: [["t", "s", "c", 1, null, 1]] }), "mistyped event"],
    ["properties that are not text", JSON.stringify({ v: 1, o: 1, r: 1, e: [["t", "s", "c", 1, {}, null, 1]] }), "mistyped event"],
    ["a time that is not an integer", JSON.stringify({ v: 1, o: 1, r: 1, e: [["t", "s", "c", 1.5, null, null, 1]] }), "mistyped event"],
  ])("refuses %s", (_name, text, reason) => {
    expect(decodeEvents(text)).toEqual({ ok: false, reason });
  });
});

describe("chunks of a batch", () => {
  const many = Array.from({ length: 250 }, (_, i) => prepared({ ...base, transaction_id: `t${i}` }));

  it("holds at most the given number of events, in order", () => {
    const chunks = chunkEvents(many, 100, 1 << 20);
    expect(chunks.map((c) => c.length)).toEqual([100, 100, 50]);
    expect(chunks.flat()).toEqual(many);
  });

  it("stays under the byte bound, and an event larger than it travels alone", () => {
    const big = prepared({ ...base, properties: { blob: "x".repeat(60_000) } });
    const chunks = chunkEvents([many[0]!, big, many[1]!, many[2]!], 100, 100_000);
    expect(chunks.map((c) => c.length)).toEqual([1, 1, 2]);
    const alone = chunkEvents([big, big], 100, 100_000);
    expect(alone.map((c) => c.length)).toEqual([1, 1]);
    for (const c of chunkEvents(many, 100, 10_000)) expect(Buffer.byteLength(encodeEvents(7, NOW, c))).toBeLessThan(10_000);
  });

  it("of one event per message when asked", () => {
    expect(chunkEvents(many.slice(0, 3), 1, 1 << 20).map((c) => c.length)).toEqual([1, 1, 1]);
  });
});

describe("message id (Nats-Msg-Id)", () => {
  it("is the same for an exact retry, keys in another order included", () => {
    expect(idOf(prepared(base))).toBe(idOf(prepared({ ...base, properties: { a: [1, "x"], b: 2 } })));
  });

  it.each([
    ["another payload", { properties: { b: 3, a: [1, "x"] } }],
    ["another timestamp", { timestamp: "1773576000.123457" }],
    ["another subscription", { external_subscription_id: "sub-2" }],
    ["another transaction", { transaction_id: "tx-2" }],
  ])("differs for %s", (_name, change) => {
    expect(idOf(prepared({ ...base, ...change }))).not.toBe(idOf(prepared(base)));
  });

  it("differs between organizations", () => {
    expect(idOf(prepared(base, 1))).not.toBe(idOf(prepared(base, 2)));
  });

  it("of several events: the same for the same events, another for any change or order", () => {
    const a = prepared(base);
    const b = prepared({ ...base, transaction_id: "tx-2" });
    expect(idOf(a, b)).toBe(idOf(prepared(base), prepared({ ...base, transaction_id: "tx-2" })));
    expect(idOf(a, b)).not.toBe(idOf(b, a));
    expect(idOf(a, b)).not.toBe(idOf(a, prepared({ ...base, transaction_id: "tx-2", properties: {} })));
    expect(idOf(a, b)).not.toBe(idOf(a));
  });

  it("is header-safe ASCII whatever the ids hold", () => {
    const odd = prepared({ ...base, transaction_id: "tx\r\n:ü🙂", external_subscription_id: "s p" });
    expect(idOf(odd)).toMatch(/^[0-9a-z.-]+$/);
    expect(idOf(odd, prepared(base))).toMatch(/^[0-9a-z.-]+$/);
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
