import { describe, expect, it } from "vitest";
import {
  DAY_MS,
  MAX_ID_LENGTH,
  MAX_PROPERTIES_BYTES,
  canonicalJson,
  identityKey,
  isoFromMicros,
  parseTimestamp,
  payloadDigest,
  payloadDigestNative,
  validateEvent,
  type PreparedEvent,
  type TimeWindow,
} from "../../../src/modules/ingest/core/event.ts";

const T0 = Date.UTC(2026, 2, 15, 12, 0, 0); // 2026-03-15T12:00:00Z
const T0_S = T0 / 1000;
const ORG = 7;
const window: TimeWindow = { nowMs: T0, oldestMs: T0 - 365 * DAY_MS, retentionDays: 365 };

const base = { transaction_id: "tx-1", external_subscription_id: "sub-1", code: "api_calls" };

function errorsOf(raw: unknown, w: TimeWindow = window): Record<string, string[]> {
  const v = validateEvent(raw, ORG, w);
  if (v.ok) throw new Error(`expected ${JSON.stringify(raw)} to be refused`);
  return v.errors;
}

function accepted(raw: unknown, w: TimeWindow = window): PreparedEvent {
  const v = validateEvent(raw, ORG, w);
  if (!v.ok) throw new Error(`expected acceptance, got ${JSON.stringify(v.errors)}`);
  return v.event;
}

function nested(levels: number): unknown {
  let v: unknown = 1;
  for (let i = 0; i < levels; i++) v = { a: v };
  return v;
}

describe("validateEvent: a well-formed event", () => {
  it("is accepted with every field carried over", () => {
    const e = accepted({ ...base, timestamp: T0_S, properties: { gb: 10 }, precise_total_amount_cents: "12.5" });
    expect(e).toMatchObject({
      orgId: ORG,
      transactionId: "tx-1",
      subscriptionId: "sub-1",
      code: "api_calls",
      tsMicros: T0 * 1000,
      propertiesJson: '{"gb":10}',
      properties: { gb: 10 },
      preciseAmount: "12.5",
    });
  });

  it("without a timestamp is dated at the organization's now", () => {
    expect(accepted(base).tsMicros).toBe(T0 * 1000);
  });

  it.each([
    ["a null timestamp", null],
    ["an empty-string timestamp", ""],
  ])("with %s is dated at now, like a missing one", (_name, timestamp) => {
    const e = accepted({ ...base, timestamp });
    expect(e.tsMicros).toBe(T0 * 1000);
    expect(e.payloadHash).toBe(accepted(base).payloadHash);
  });

  it("without properties stores none", () => {
    const e = accepted(base);
    expect(e.propertiesJson).toBeNull();
    expect(e.properties).toBeNull();
  });
});

describe("validateEvent: ids (transaction_id, external_subscription_id, code)", () => {
  const fields = ["transaction_id", "external_subscription_id", "code"] as const;
  const cases: [string, unknown, string][] = [
    ["missing", undefined, "value_is_mandatory"],
    ["null", null, "value_is_mandatory"],
    ["an empty string", "", "value_is_mandatory"],
    ["a boolean", true, "must_be_a_string"],
    ["an object", { id: 1 }, "must_be_a_string"],
    ["an array", ["a"], "must_be_a_string"],
    ["one character over the limit", "x".repeat(MAX_ID_LENGTH + 1), "value_is_too_long"],
    ["holding a NUL byte", "ab\u0000c", "contains_nul_character"],
    ["holding a lone high surrogate", "ab\uD800c", "invalid_unicode"],
    ["holding a lone low surrogate", "\uDC00", "invalid_unicode"],
  ];
  for (const field of fields) {
    it.each(cases)(`${field} %s is refused`, (_name, value, reason) => {
      const raw: Record<string, unknown> = { ...base, [field]: value };
      if (value === undefined) delete raw[field];
      const errors = errorsOf(raw);
      expect(Object.keys(errors)).toEqual([field]);
      expect(errors[field]![0]).toContain(reason);
    });

    it(`${field} of exactly ${MAX_ID_LENGTH} characters is accepted`, () => {
      accepted({ ...base, [field]: "y".repeat(MAX_ID_LENGTH) });
    });

    it(`${field} with emoji (paired surrogates) is accepted`, () => {
      accepted({ ...base, [field]: "id-😀-ü" });
    });

    it(`${field} given as a number is accepted as its string form (as Lago does)`, () => {
      const e = accepted({ ...base, [field]: 12345 });
      const stored = { transaction_id: e.transactionId, external_subscription_id: e.subscriptionId, code: e.code }[field];
      expect(stored).toBe("12345");
    });
  }
});

describe("validateEvent: timestamp", () => {
  it.each([
    ["whole unix seconds as a number", T0_S, T0 * 1000],
    ["whole unix seconds as a numeric string", String(T0_S), T0 * 1000],
    ["a numeric string with surrounding spaces", ` ${T0_S} `, T0 * 1000],
    ["half a second as a number", T0_S + 0.5, T0 * 1000 + 500_000],
    ["milliseconds as a string", `${T0_S}.123`, T0 * 1000 + 123_000],
    ["microseconds as a string, exactly", `${T0_S}.123456`, T0 * 1000 + 123_456],
    ["one microsecond as a string", `${T0_S}.000001`, T0 * 1000 + 1],
    ["microseconds as a number, exactly", T0_S + 0.123456, T0 * 1000 + 123_456],
    ["one microsecond as a number, exactly", 1773576000.000001, T0 * 1000 + 1],
    ["sub-microsecond digits, truncated", `${T0_S}.1234569`, T0 * 1000 + 123_456],
  ])("%s is read to the microsecond", (_name, timestamp, micros) => {
    expect(accepted({ ...base, timestamp }).tsMicros).toBe(micros);
  });

  it.each([
    ["an ISO date string", "2026-03-15T12:00:00Z"],
    ["a word", "yesterday"],
    ["a negative number", -1],
    ["a negative numeric string", "-1773576000"],
    ["exponent notation in a string", "1.7e9"],
    ["milliseconds since the epoch (13 digits)", String(T0)],
    ["two decimal points", "1773576000.1.2"],
    ["a boolean", true],
    ["an object", { seconds: T0_S }],
    ["an array", [T0_S]],
    ["a blank string", "   "],
  ])("%s is refused as invalid_format", (_name, timestamp) => {
    const errors = errorsOf({ ...base, timestamp });
    expect(Object.keys(errors)).toEqual(["timestamp"]);
    expect(errors.timestamp![0]).toMatch(/^invalid_format/);
  });

  it("up to 24 hours ahead of now is accepted (sender clock skew)", () => {
    expect(accepted({ ...base, timestamp: T0_S + 86_400 }).tsMicros).toBe((T0 + DAY_MS) * 1000);
  });

  it("more than 24 hours ahead of now is refused as too far in the future", () => {
    expect(errorsOf({ ...base, timestamp: T0_S + 86_401 }).timestamp![0]).toMatch(/^too_far_in_the_future/);
  });

  it("older than the retention period is refused, naming RETENTION_DAYS", () => {
    const reason = errorsOf({ ...base, timestamp: T0_S - 366 * 86_400 }).timestamp![0]!;
    expect(reason).toMatch(/^older_than_retention/);
    expect(reason).toContain("RETENTION_DAYS=365");
  });

  it("exactly at the retention limit is accepted", () => {
    accepted({ ...base, timestamp: T0_S - 365 * 86_400 });
  });

  it("far in the past is accepted when there is no retention limit", () => {
    const open: TimeWindow = { nowMs: T0, oldestMs: null, retentionDays: 0 };
    expect(accepted({ ...base, timestamp: 1 }, open).tsMicros).toBe(1_000_000);
  });
});

describe("validateEvent: properties", () => {
  it.each([
    ["an array", [1, 2]],
    ["a string", "gb=10"],
    ["a number", 10],
    ["a boolean", false],
  ])("given as %s is refused: it must be an object", (_name, properties) => {
    expect(errorsOf({ ...base, properties })).toEqual({ properties: ["must_be_an_object"] });
  });

  it("given as null is accepted as no properties", () => {
    expect(accepted({ ...base, properties: null }).propertiesJson).toBeNull();
  });

  it("nested arrays and objects are accepted", () => {
    const e = accepted({ ...base, properties: { tags: ["a", { b: [1, null, true] }], n: -1.5 } });
    expect(JSON.parse(e.propertiesJson!)).toEqual({ tags: ["a", { b: [1, null, true] }], n: -1.5 });
  });

  it.each([
    ["a NUL byte in a value", { k: "a\u0000b" }, "contains_nul_character"],
    ["a NUL byte in a key", { "k\u0000": 1 }, "contains_nul_character"],
    ["a NUL byte deep inside an array", { k: [["x", "\u0000"]] }, "contains_nul_character"],
    ["a lone surrogate in a value", { k: "\uD83D" }, "invalid_unicode"],
    ["a lone surrogate in a key", { "\uDE00": 1 }, "invalid_unicode"],
    ["an infinite number", { k: Infinity }, "number_out_of_range"],
    ["a NaN", { k: Number.NaN }, "number_out_of_range"],
    ["an undefined value", { k: undefined }, "invalid_value"],
  ])("holding %s are refused", (_name, properties, reason) => {
    const errors = errorsOf({ ...base, properties });
    expect(Object.keys(errors)).toEqual(["properties"]);
    expect(errors.properties![0]).toContain(reason);
  });

  it("16 levels of nesting are accepted", () => {
    accepted({ ...base, properties: nested(16) });
  });

  it("17 levels of nesting are refused as too deep", () => {
    expect(errorsOf({ ...base, properties: nested(17) }).properties![0]).toMatch(/^nested_too_deep/);
  });

  const fill = (n: number, ch = "x") => ({ s: ch.repeat(n) }); // {"s":"…"} is n + 8 bytes
  it(`of exactly ${MAX_PROPERTIES_BYTES} bytes are accepted`, () => {
    expect(accepted({ ...base, properties: fill(MAX_PROPERTIES_BYTES - 8) }).propertiesJson!.length).toBe(MAX_PROPERTIES_BYTES);
  });

  it(`of ${MAX_PROPERTIES_BYTES + 1} bytes are refused as too long`, () => {
    expect(errorsOf({ ...base, properties: fill(MAX_PROPERTIES_BYTES - 7) }).properties![0]).toMatch(/^value_is_too_long/);
  });

  it("over the limit in UTF-8 bytes (though not in characters) are refused", () => {
    // 40,000 two-byte characters: 40,008 characters but 80,008 bytes.
    expect(errorsOf({ ...base, properties: fill(40_000, "é") }).properties![0]).toMatch(/^value_is_too_long/);
  });
});

describe("validateEvent: precise_total_amount_cents", () => {
  it.each([
    ["a decimal string", "1234.56", "1234.56"],
    ["a negative decimal string", "-3", "-3"],
    ["a string with 20 decimals", "0.12345678901234567890", "0.12345678901234567890"],
    ["a string with spaces around it", " 7.5 ", "7.5"],
    ["a number", 12.5, "12.5"],
  ])("given as %s is accepted", (_name, value, stored) => {
    expect(accepted({ ...base, precise_total_amount_cents: value }).preciseAmount).toBe(stored);
  });

  it.each([
    ["a word", "ten"],
    ["exponent notation", "1e5"],
    ["a number too large to write in decimals", 1e21],
    ["21 decimals", "0.123456789012345678901"],
    ["31 integer digits", "1".repeat(31)],
    ["a boolean", true],
    ["an object", { value: 1 }],
    ["a comma as decimal separator", "12,5"],
  ])("given as %s is refused", (_name, value) => {
    expect(errorsOf({ ...base, precise_total_amount_cents: value })).toEqual({
      precise_total_amount_cents: ["invalid_value (a decimal number)"],
    });
  });

  it("absent, null or empty is accepted as none", () => {
    for (const value of [undefined, null, ""]) {
      expect(accepted({ ...base, precise_total_amount_cents: value }).preciseAmount).toBeNull();
    }
  });
});

describe("validateEvent: the event as a whole", () => {
  it.each([
    ["null", null],
    ["an array", [base]],
    ["a string", "event"],
    ["a number", 42],
  ])("given as %s is refused: it must be an object", (_name, raw) => {
    expect(errorsOf(raw)).toEqual({ event: ["must_be_an_object"] });
  });

  it("reports every broken field together", () => {
    const errors = errorsOf({
      transaction_id: "",
      external_subscription_id: "a\u0000",
      code: true,
      timestamp: "soon",
      properties: [],
      precise_total_amount_cents: "x",
    });
    expect(Object.keys(errors).sort()).toEqual(
      ["code", "external_subscription_id", "precise_total_amount_cents", "properties", "timestamp", "transaction_id"].sort(),
    );
  });

  it("ignores unknown fields (Lago's external_customer_id and the like)", () => {
    const e = accepted({ ...base, external_customer_id: "cus-1", extra: { x: 1 } });
    expect(e.payloadHash).toBe(accepted(base).payloadHash);
  });
});

describe("canonicalJson", () => {
  it("writes the same text whatever the key order, at every level", () => {
    const a = canonicalJson({ b: 1, a: { d: [1, 2], c: "x" } });
    const b = canonicalJson({ a: { c: "x", d: [1, 2] }, b: 1 });
    expect(a).toBe(b);
    expect(a).toBe('{"a":{"c":"x","d":[1,2]},"b":1}');
  });

  it("keeps array order (arrays are ordered data)", () => {
    expect(canonicalJson({ a: [1, 2] })).not.toBe(canonicalJson({ a: [2, 1] }));
  });

  it("writes the same text for objects already in key order (JSON.stringify's fast path) as for any other order", () => {
    let seed = 7;
    const rnd = (k: number) => (seed = (seed * 1103515245 + 12345) >>> 0) % k;
    const keys = ["a", "b", "B", "_", "é", "10", "2", "a b", "😀", "z"];
    const gen = (depth: number): unknown => {
      const kind = depth > 3 ? rnd(4) : rnd(6);
      if (kind === 0) return ["x", "é\n\"", "", "😀"][rnd(4)];
      if (kind === 1) return [0, -1.5, 1e21, 42][rnd(4)];
      if (kind === 2) return [true, false, null][rnd(3)];
      if (kind === 3) return rnd(2) ? "s" : 1;
      if (kind === 4) return Array.from({ length: rnd(4) }, () => gen(depth + 1));
      const o: Record<string, unknown> = {};
      for (let i = rnd(5); i > 0; i--) o[keys[rnd(keys.length)]!] = gen(depth + 1);
      return o;
    };
    // The same object with every level's keys sorted (the fast path when no key is integer-like) or reversed.
    const reorder = (v: unknown, dir: 1 | -1): unknown => {
      if (Array.isArray(v)) return v.map((x) => reorder(x, dir));
      if (v === null || typeof v !== "object") return v;
      const ks = Object.keys(v).sort();
      if (dir < 0) ks.reverse();
      return Object.fromEntries(ks.map((k) => [k, reorder((v as Record<string, unknown>)[k], dir)]));
    };
    for (let i = 0; i < 500; i++) {
      const v = { root: gen(0), [keys[rnd(keys.length)]!]: gen(0) };
      expect(canonicalJson(reorder(v, 1))).toBe(canonicalJson(reorder(v, -1)));
    }
    const sorted = { a: 1, b: { c: [1, "x", null], d: true } };
    expect(canonicalJson(sorted)).toBe(JSON.stringify(sorted));
  });

  it("refuses what the database would refuse even when the keys are in order", () => {
    expect(() => canonicalJson({ a: "x\u0000" })).toThrow("contains_nul_character");
    expect(() => canonicalJson({ a: ["\uD800"] })).toThrow("invalid_unicode");
    expect(() => canonicalJson({ "\u0000": 1 })).toThrow("contains_nul_character");
    let deep: unknown = 1;
    for (let i = 0; i < 17; i++) deep = { a: deep };
    expect(() => canonicalJson(deep)).toThrow("nested_too_deep");
  });

  it("writes the same JSON as JSON.stringify for scalars", () => {
    for (const v of ["é\n\"", 0, -1.5, 1e308, true, false, null]) expect(canonicalJson(v)).toBe(JSON.stringify(v));
  });
});

describe("payload hash: tells a retry from a conflict", () => {
  const full = { ...base, timestamp: T0_S, properties: { gb: 10, region: "eu", nested: { a: 1, b: 2 } }, precise_total_amount_cents: "1.5" };
  const hash = (raw: unknown) => accepted(raw).payloadHash;

  it("is equal for the same payload sent with its keys in another order", () => {
    const reordered = {
      precise_total_amount_cents: "1.5",
      properties: { nested: { b: 2, a: 1 }, region: "eu", gb: 10 },
      timestamp: T0_S,
      code: "api_calls",
      external_subscription_id: "sub-1",
      transaction_id: "tx-1",
    };
    expect(hash(reordered)).toBe(hash(full));
  });

  it("is equal for the same instant written as a number or a string", () => {
    expect(hash({ ...full, timestamp: String(T0_S) })).toBe(hash(full));
    expect(hash({ ...full, timestamp: `${T0_S}.000` })).toBe(hash(full));
  });

  it.each([
    ["the code", { code: "storage" }],
    ["the timestamp by one microsecond", { timestamp: `${T0_S}.000001` }],
    ["a property value", { properties: { gb: 11, region: "eu", nested: { a: 1, b: 2 } } }],
    ["a nested property value", { properties: { gb: 10, region: "eu", nested: { a: 1, b: 3 } } }],
    ["a property's type", { properties: { gb: "10", region: "eu", nested: { a: 1, b: 2 } } }],
    ["an extra property", { properties: { gb: 10, region: "eu", nested: { a: 1, b: 2 }, x: null } }],
    ["the amount", { precise_total_amount_cents: "1.50" }],
    ["the amount removed", { precise_total_amount_cents: null }],
    ["the properties removed", { properties: null }],
  ])("differs when %s differs", (_name, change) => {
    expect(hash({ ...full, ...change })).not.toBe(hash(full));
  });

  it("differs between a timestamp left out and one given (even when it equals now)", () => {
    expect(hash({ ...base, timestamp: T0_S })).not.toBe(hash(base));
  });

  it("is the same for a retry without timestamp sent later (the clock moved)", () => {
    const later: TimeWindow = { ...window, nowMs: T0 + 3_600_000 };
    expect(accepted(base, later).payloadHash).toBe(accepted(base).payloadHash);
  });

  it("does not involve the identity: the identity digests do", () => {
    const a = accepted(full);
    const b = accepted({ ...full, transaction_id: "tx-2" });
    const c = accepted({ ...full, external_subscription_id: "sub-2" });
    expect(b.payloadHash).toBe(a.payloadHash);
    expect(identityKey(b)).not.toBe(identityKey(a));
    expect(identityKey(c)).not.toBe(identityKey(a));
    expect(identityKey(accepted({ ...full, code: "other", properties: null }))).toBe(identityKey(a));
  });

  it("identity is scoped by organization", () => {
    const a = validateEvent(base, 1, window);
    const b = validateEvent(base, 2, window);
    expect(a.ok && b.ok && identityKey(a.event) !== identityKey(b.event)).toBe(true);
  });
});

describe("payloadDigest (stored in event_identities: its value must never change)", () => {
  it("is the first 53 bits of MD5 of the UTF-8 bytes (fixed values)", () => {
    expect(payloadDigest("")).toBe(7463148230664214); // md5("") = d41d8cd98f00b2…
    expect(payloadDigest('api_calls\u0000\u0000{"gb":10}\u0000')).toBe(5438006958322456);
    expect(payloadDigest("é€😀")).toBe(2076927871279448);
  });

  it("equals node:crypto's MD5 for every length around the block boundaries and for any characters", () => {
    const inputs: string[] = [];
    for (let n = 0; n <= 200; n++) inputs.push("x".repeat(n), "é".repeat(n), "😀".repeat(n >> 1) + "a".repeat(n & 1));
    let seed = 42;
    const rnd = (k: number) => ((seed = (seed * 1103515245 + 12345) >>> 0) % k);
    for (let i = 0; i < 2000; i++) {
      let s = "";
      const n = rnd(300);
      for (let j = 0; j < n; j++) s += String.fromCharCode(rnd(4) === 0 ? 0x80 + rnd(0xd000) : rnd(0x80));
      inputs.push(s);
    }
    inputs.push("a".repeat(100_000) + "é");
    for (const s of inputs) expect(payloadDigest(s), JSON.stringify(s.slice(0, 40))).toBe(payloadDigestNative(s));
  });
});

describe("parseTimestamp", () => {
  it.each([
    [0, 0],
    ["0", 0],
    [1, 1_000_000],
    [T0_S, T0 * 1000],
    ["1773576000.5", T0 * 1000 + 500_000],
    ["1773576000.999999", T0 * 1000 + 999_999],
    [1773576000.999999, T0 * 1000 + 999_999],
    ["999999999999", 999_999_999_999_000_000],
  ])("reads %j as %d microseconds", (input, micros) => {
    expect(parseTimestamp(input)).toBe(micros);
  });

  it.each([
    ["NaN", Number.NaN],
    ["Infinity", Infinity],
    ["a negative number", -0.5],
    ["a number of 13 integer digits", 1e12],
    ["a number in exponent form beyond 12 digits", 1e21],
    ["an empty string", ""],
    ["a hex string", "0x10"],
    ["a trailing dot", "1773576000."],
    ["a leading dot", ".5"],
    ["undefined", undefined],
    ["null", null],
  ])("refuses %s", (_name, input) => {
    expect(parseTimestamp(input)).toBeNull();
  });
});

describe("isoFromMicros", () => {
  it.each([
    [0, "1970-01-01T00:00:00.000Z"],
    [T0 * 1000, "2026-03-15T12:00:00.000Z"],
    [T0 * 1000 + 123_000, "2026-03-15T12:00:00.123Z"],
    [T0 * 1000 + 123_456, "2026-03-15T12:00:00.123456Z"],
    [T0 * 1000 + 1, "2026-03-15T12:00:00.000001Z"],
    [T0 * 1000 + 999_999, "2026-03-15T12:00:00.999999Z"],
  ])("writes %d microseconds as %s", (micros, iso) => {
    expect(isoFromMicros(micros)).toBe(iso);
  });

  it("reads back what parseTimestamp read, to the microsecond", () => {
    const micros = parseTimestamp("1773576000.654321")!;
    expect(Date.parse(isoFromMicros(micros))).toBe(Math.floor(micros / 1000));
    expect(isoFromMicros(micros).endsWith(".654321Z")).toBe(true);
  });
});

