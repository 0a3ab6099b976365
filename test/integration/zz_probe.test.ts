import { it } from "vitest";
import { startTestApp } from "../helpers/app.ts";
it("probe", async () => {
  const t = await startTestApp({ env: { VALUEVERSE_ADMIN_TOKEN: "admin-token-0123456789" } });
  const h = t.app.http;
  const auth = { authorization: `Bearer ${t.apiKey}` };
  const ct = { ...auth, "content-type": "application/json" };
  for (const n of [1000, 100000, 1000000]) {
    const deep = "[".repeat(n) + "1" + "]".repeat(n);
    const r3 = await h.inject({ method: "POST", url: "/api/v1/events", headers: ct, payload: `{"event":{"transaction_id":"d","external_subscription_id":"s","code":"c","properties":{"d":${deep}}}}` });
    console.log("deep", n, r3.statusCode, r3.body.slice(0, 200));
    const deepo = '{"a":'.repeat(n) + "1" + "}".repeat(n);
    const r6 = await h.inject({ method: "POST", url: "/api/v1/events/batch", headers: ct, payload: `{"events":[{"transaction_id":"d","external_subscription_id":"s","code":"c","properties":${deepo}}]}` });
    console.log("deepo", n, r6.statusCode, r6.body.slice(0, 200));
  }
  const r4 = await h.inject({ method: "POST", url: "/api/v1/events", headers: ct, payload: '{"event":{"transaction_id":"x","external_subscription_id":"s","code":"c","properties":{"__proto__":{"a":1}}}}' });
  console.log("proto", r4.statusCode, r4.body.slice(0, 200));
  const r7 = await h.inject({ method: "POST", url: "/api/v1/events", headers: ct, payload: '{"event":{"transaction_id":"x","external_subscription_id":"s","code":"c","properties":{"constructor":{"prototype":{"a":1}}}}}' });
  console.log("ctor", r7.statusCode, r7.body.slice(0, 200));
  const r5 = await h.inject({ method: "POST", url: "/api/v1/events", headers: ct, payload: '{"event":{"transaction_id":"x\\ud800","external_subscription_id":"s\\u0000","code":"c","properties":{"k\\u0000":1}}}' });
  console.log("nul", r5.statusCode, r5.body.slice(0, 300));
  const r8 = await h.inject({ method: "POST", url: "/api/v1/events", headers: ct, payload: '{"event":{"transaction_id":"n1","external_subscription_id":"s","code":"c","timestamp":1e400,"precise_total_amount_cents":123456789012345678901234567890123,"properties":{"n":1e308,"m":-1e-320, "big":123456789012345678901234567890}}}' });
  console.log("nums", r8.statusCode, r8.body.slice(0, 300));
  const r9 = await h.inject({ method: "POST", url: "/api/v1/events", headers: ct, payload: '{"event":{"transaction_id":"n2","external_subscription_id":"s","code":"c","properties":{"n":1e308,"m":-1e-320, "big":123456789012345678901234567890}}}' });
  console.log("nums2", r9.statusCode, r9.body.slice(0, 400));
  const r10 = await h.inject({ method: "POST", url: "/api/v1/events", headers: ct, payload: '{"event":{"transaction_id":"n3","external_subscription_id":"s","code":"c","precise_total_amount_cents":"999999999999999999999999999999.99999999999999999999"}}' });
  console.log("amt", r10.statusCode, r10.body.slice(0, 400));
  await t.close();
});
