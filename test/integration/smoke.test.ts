import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DB_KIND } from "../helpers/db.ts";
import { startTestApp, type TestApp } from "../helpers/app.ts";

describe(`events API on ${DB_KIND}`, () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp();
  });
  afterAll(async () => {
    await t.close();
  });

  it("stores an event once and answers a retry with the same payload", async () => {
    const auth = { authorization: `Bearer ${t.apiKey}` };
    const event = { transaction_id: "tx-1", external_subscription_id: "sub-1", code: "api_calls", properties: { n: 1 } };
    const first = await t.app.http.inject({ method: "POST", url: "/api/v1/events", headers: auth, payload: { event } });
    expect(first.statusCode).toBe(200);
    const retry = await t.app.http.inject({ method: "POST", url: "/api/v1/events", headers: auth, payload: { event } });
    expect(retry.statusCode).toBe(200);
    const { rows } = await t.db.query<{ n: string }>("SELECT count(*)::text AS n FROM events");
    expect(rows[0]!.n).toBe("1");
  });
});
