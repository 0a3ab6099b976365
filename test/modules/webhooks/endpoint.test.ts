import { describe, expect, it } from "vitest";
import { checkWebhookUrl, readEndpointCreate, readEndpointUpdate } from "../../../src/modules/webhooks/core/endpoint.ts";
import { webhookBody } from "../../../src/modules/webhooks/index.ts";

describe("webhook_url", () => {
  it.each([["https://hooks.example.com/lago"], ["http://127.0.0.1:8080/in?x=1"], ["https://[::1]/h"]])("accepts %s", (url) => {
    expect(checkWebhookUrl(url)).toBeNull();
  });

  it.each([
    [undefined, "value_is_mandatory"],
    ["", "value_is_mandatory"],
    [42, "url_invalid"],
    ["ftp://example.com/h", "url_invalid"],
    ["javascript:alert(1)", "url_invalid"],
    ["example.com/hook", "url_invalid"],
    ["https://user:pw@example.com/h", "url_invalid"],
    ["https://exa mple.com/h", "url_invalid"],
    ["https://example.com/h\n", "url_invalid"],
    ["https://example.com/" + "a".repeat(2100), "value_is_too_long"],
  ])("refuses %j with %s", (url, reason) => {
    expect(checkWebhookUrl(url)).toEqual([reason]);
  });
});

describe("endpoint input", () => {
  it("defaults to Lago's jwt signature and every event type", () => {
    expect(readEndpointCreate({ webhook_url: "https://h.example/x" })).toEqual({
      ok: true,
      value: { webhookUrl: "https://h.example/x", signatureAlgo: "jwt", name: null, eventTypes: null },
    });
  });

  it("names every broken field", () => {
    const read = readEndpointCreate({ webhook_url: "nope", signature_algo: "rsa", name: 5, event_types: ["invoice.created", "invoice.exploded"] });
    expect(read).toEqual({
      ok: false,
      errors: { webhook_url: ["url_invalid"], signature_algo: ["value_is_invalid"], name: ["value_is_invalid"], "event_types[1]": ["value_is_invalid"] },
    });
  });

  it("changes only the fields an update carries", () => {
    const current = { webhookUrl: "https://h.example/x", signatureAlgo: "hmac" as const, name: "prod", eventTypes: null };
    expect(readEndpointUpdate({ event_types: ["invoice.created", "invoice.created"] }, current)).toEqual({
      ok: true,
      value: { ...current, eventTypes: ["invoice.created"] },
    });
    expect(readEndpointUpdate({ webhook_url: "" }, current)).toEqual({ ok: false, errors: { webhook_url: ["value_is_mandatory"] } });
  });
});

describe("webhook body", () => {
  it("is Lago's envelope, the object under its object_type", () => {
    expect(JSON.parse(webhookBody("invoice.created", "invoice", "org-1", { lago_id: "i-1" }))).toEqual({
      webhook_type: "invoice.created",
      object_type: "invoice",
      organization_id: "org-1",
      invoice: { lago_id: "i-1" },
    });
  });

  it("refuses an object_type that would overwrite the envelope", () => {
    expect(() => webhookBody("invoice.created", "webhook_type", "org-1", {})).toThrow(/object_type/);
  });
});
