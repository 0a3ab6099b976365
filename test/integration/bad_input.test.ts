// Hostile and broken requests: each gets a clear 4xx naming what is wrong, never a 500; the server
// keeps answering and nothing accepted before is lost or changed.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DB_KIND } from "../helpers/db.ts";
import { startTestApp, type TestApp } from "../helpers/app.ts";
import { T0_S, bearer, client, json, storedEvents, tableCounts, uid } from "./support.ts";

let t: TestApp;
let api: ReturnType<typeof client>;
const sub = uid("sub");
const accepted = [
  { transaction_id: "keep-1", external_subscription_id: sub, code: "calls", timestamp: T0_S - 60, properties: { n: 1 } },
  { transaction_id: "keep-2", external_subscription_id: sub, code: "storage", timestamp: T0_S - 30, precise_total_amount_cents: "9.99" },
];
let before: Awaited<ReturnType<typeof storedEvents>>;

beforeAll(async () => {
  t = await startTestApp();
  api = client(t);
  expect((await api.postBatch(accepted)).statusCode).toBe(200);
  before = await storedEvents(t.db, sub);
});
afterAll(async () => {
  await t?.close();
});

type Raw = { url?: string; contentType?: string | null; body?: string | Buffer };
function send({ url = "/api/v1/events", contentType = "application/json", body }: Raw) {
  const headers: Record<string, string> = { ...bearer(t.apiKey) };
  if (contentType !== null) headers["content-type"] = contentType;
  return t.app.http.inject({ method: "POST", url, headers, ...(body === undefined ? {} : { payload: body }) });
}

const deepArrays = (n: number) => "[".repeat(n) + "1" + "]".repeat(n);
const deepObjects = (n: number) => '{"a":'.repeat(n) + "1" + "}".repeat(n);
const valid = `"transaction_id":"${"x"}","external_subscription_id":"${sub}-bad","code":"calls"`;

describe(`bad request bodies on ${DB_KIND}`, () => {
  it.each<[string, Raw, number, string]>([
    ["malformed JSON", { body: '{"event": {"transaction_id": ' }, 400, "invalid_json"],
    ["JSON with a trailing comma", { body: '{"event": {"code": "x",}}' }, 400, "invalid_json"],
    ["an empty JSON body", { body: "" }, 400, "empty_body"],
    ["a __proto__ key", { body: `{"event":{${valid},"properties":{"__proto__":{"polluted":1}}}}` }, 400, "invalid_json"],
    ["a constructor.prototype key", { body: `{"event":{${valid},"properties":{"constructor":{"prototype":{"p":1}}}}}` }, 400, "invalid_json"],
    ["text/plain", { contentType: "text/plain", body: `{"event":{${valid}}}` }, 415, "unsupported_media_type"],
    ["a form", { contentType: "application/x-www-form-urlencoded", body: "event[code]=x" }, 415, "unsupported_media_type"],
    ["a single event over the 1 MiB body limit", { body: `{"event":{${valid},"properties":{"s":"${"x".repeat(1 << 20)}"}}}` }, 413, "body_too_large"],
    ["deeply nested arrays over the body limit", { body: `{"event":{${valid},"properties":{"d":${deepArrays(600_000)}}}}` }, 413, "body_too_large"],
  ])("%s is refused (%d %s)", async (_case, raw, status, code) => {
    const r = await send(raw);
    expect(r.statusCode).toBe(status);
    expect(json(r)).toMatchObject({ status, code });
  });

  // Lago's clients send action routes a JSON content type with no body; that is no options, not a broken body.
  it.each<[string, string, number, string]>([
    ["void of an unknown invoice", "/api/v1/invoices/00000000-0000-4000-8000-000000000000/void", 404, "invoice_not_found"],
    ["retry_payment of an unknown invoice", "/api/v1/invoices/00000000-0000-4000-8000-000000000000/retry_payment", 404, "invoice_not_found"],
    ["a customer create without its body", "/api/v1/customers", 400, "missing_parameter"],
  ])("%s with a JSON content type and an empty body answers %d %s, not empty_body", async (_case, url, status, code) => {
    const r = await send({ url, body: "" });
    expect(json(r)).toMatchObject({ status, code });
  });

  it.each<[string, Raw, string]>([
    ["no body and no content type", { contentType: null }, "event"],
    ["an empty object", { body: "{}" }, "event"],
    ["a JSON null", { body: "null" }, "event"],
    ["a JSON array", { body: "[]" }, "event"],
    ["a JSON string", { body: '"event"' }, "event"],
    ["a JSON number", { body: "42" }, "event"],
    ["the batch key on the single route", { body: `{"events":[{${valid}}]}` }, "event"],
    ["the single key on the batch route", { url: "/api/v1/events/batch", body: `{"event":{${valid}}}` }, "events"],
  ])("%s is refused with 400 naming the missing `%s`", async (_case, raw, field) => {
    const r = await send(raw);
    expect(r.statusCode).toBe(400);
    expect(json(r)).toMatchObject({ status: 400, code: "missing_parameter", error_details: { [field]: ["value_is_mandatory"] } });
  });

  it.each<[string, string, Record<string, unknown>]>([
    ["an event that is an array", `{"event":[{${valid}}]}`, { event: ["must_be_an_object"] }],
    ["an event that is a string", `{"event":"x"}`, { event: ["must_be_an_object"] }],
    ["an event that is null", `{"event":null}`, { event: ["must_be_an_object"] }],
    ["a NUL byte in transaction_id", `{"event":{${valid},"transaction_id":"a\\u0000b"}}`, { transaction_id: ["contains_nul_character"] }],
    ["a NUL byte in a property key", `{"event":{${valid},"properties":{"k\\u0000":1}}}`, { properties: ["contains_nul_character"] }],
    ["a NUL byte in a property value", `{"event":{${valid},"properties":{"k":["\\u0000"]}}}`, { properties: ["contains_nul_character"] }],
    ["a lone surrogate in code", `{"event":{${valid},"code":"\\ud800"}}`, { code: ["invalid_unicode (unpaired surrogate)"] }],
    ["a lone surrogate in a property", `{"event":{${valid},"properties":{"\\udfff":1}}}`, { properties: ["invalid_unicode (unpaired surrogate)"] }],
    ["a timestamp beyond floating point", `{"event":{${valid},"timestamp":1e400}}`, { timestamp: ["invalid_format (unix seconds, fractions allowed)"] }],
    ["a timestamp of 30 digits", `{"event":{${valid},"timestamp":123456789012345678901234567890}}`, { timestamp: ["invalid_format (unix seconds, fractions allowed)"] }],
    ["a property beyond floating point", `{"event":{${valid},"properties":{"n":-1e400}}}`, { properties: ["number_out_of_range"] }],
    ["an amount beyond floating point", `{"event":{${valid},"precise_total_amount_cents":1e400}}`, { precise_total_amount_cents: ["invalid_value (a decimal number)"] }],
    ["properties 100,000 arrays deep", `{"event":{${valid},"properties":{"d":${deepArrays(100_000)}}}}`, { properties: ["nested_too_deep (max 16 levels)"] }],
    ["properties 100,000 objects deep", `{"event":{${valid},"properties":${deepObjects(100_000)}}}`, { properties: ["nested_too_deep (max 16 levels)"] }],
    ["properties that are an array", `{"event":{${valid},"properties":[{"a":1}]}}`, { properties: ["must_be_an_object"] }],
    ["a transaction_id of 10,000 characters", `{"event":{${valid},"transaction_id":"${"t".repeat(10_000)}"}}`, { transaction_id: ["value_is_too_long (max 255 characters)"] }],
    ["a timestamp that is an object", `{"event":{${valid},"timestamp":{"$date":1}}}`, { timestamp: ["invalid_format (unix seconds, fractions allowed)"] }],
  ])("%s is refused with 422 naming the field", async (_case, body, details) => {
    const r = await send({ body });
    expect(r.statusCode).toBe(422);
    expect(json(r)).toEqual({ status: 422, error: "Unprocessable Entity", code: "validation_errors", error_details: details });
  });

  it("huge but finite numbers in properties are accepted and read back", async () => {
    const tx = uid("tx");
    const r = await send({ body: `{"event":{${valid},"transaction_id":"${tx}","properties":{"max":1.7976931348623157e308,"tiny":5e-324,"neg":-1e300}}}` });
    expect(r.statusCode).toBe(200);
    const got = json(await api.get(tx));
    expect(got.event.properties).toEqual({ max: 1.7976931348623157e308, tiny: 5e-324, neg: -1e300 });
  });

  it("a batch of hostile events is refused whole, by index", async () => {
    const r = await send({
      url: "/api/v1/events/batch",
      body: `{"events":[{${valid}},{"code":"\\u0000"},[],{${valid},"properties":${deepObjects(50)}}]}`,
    });
    expect(r.statusCode).toBe(422);
    expect(Object.keys(json(r).error_details)).toEqual(["1", "2", "3"]);
  });

  it("a batch over the 64 MiB body limit is refused with 413", async () => {
    const one = `{${valid},"properties":{"s":"${"y".repeat(60_000)}"}}`;
    const body = `{"events":[${Array(1200).fill(one).join(",")}]}`; // ~72 MB
    const r = await send({ url: "/api/v1/events/batch", body });
    expect(r.statusCode).toBe(413);
    expect(json(r)).toMatchObject({ status: 413, code: "body_too_large" });
  });

  it("bad path parameters and query strings are 4xx, never 500", async () => {
    const headers = bearer(t.apiKey);
    for (const url of [
      "/api/v1/events/%00",
      "/api/v1/events/a%ED%A0%80",
      "/api/v1/events/%FF",
      "/api/v1/events/x?external_subscription_id=%00",
      `/api/v1/events/${"t".repeat(5000)}`,
      "/api/v1/events?page[]=1",
      "/api/v1/events?per_page=99999999999999999999",
      "/api/v1/events?timestamp_from=2026-02-30T25:61:00Z",
      "/api/v1/events?code=%ED%A0%80",
    ]) {
      const r = await t.app.http.inject({ method: "GET", url, headers });
      expect(r.statusCode, url).toBeGreaterThanOrEqual(200);
      expect(r.statusCode, url).toBeLessThan(500);
    }
  });
});

describe(`after all of that, on ${DB_KIND}`, () => {
  it("the server still answers and accepts events", async () => {
    expect((await t.app.http.inject({ method: "GET", url: "/health" })).statusCode).toBe(200);
    const r = await api.postEvent({ transaction_id: uid("tx"), external_subscription_id: uid("sub"), code: "calls" });
    expect(r.statusCode).toBe(200);
  });

  it("the events accepted before are intact, and no refused event was stored", async () => {
    expect(await storedEvents(t.db, sub)).toEqual(before);
    expect(await storedEvents(t.db, `${sub}-bad`)).toHaveLength(1); // only the huge-numbers event
    const counts = await tableCounts(t.db);
    expect(counts.identities).toBe(counts.events);
    expect(counts.rollup).toBe(counts.events);
    for (const e of accepted) expect((await api.postEvent(e)).statusCode).toBe(200); // still exact retries
  });
});
