import crypto from "node:crypto";
import { describe, expect, it } from "vitest";
import { hmacSignature, jwtSignature, verifyHmacSignature, verifyJwtSignature } from "../../../src/modules/webhooks/index.ts";

// RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?".
const RFC4231_HEX = "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843";

describe("hmac signatures", () => {
  it("are base64 of HMAC-SHA256 over the body, keyed by the key's UTF-8 bytes (RFC 4231 case 2)", () => {
    expect(hmacSignature("Jefe", "what do ya want for nothing?")).toBe(Buffer.from(RFC4231_HEX, "hex").toString("base64"));
  });

  it("sign the exact bytes: strings and their UTF-8 buffers agree, a re-serialized body does not", () => {
    const body = '{"webhook_type":"invoice.created","object_type":"invoice","invoice":{"total":"10.00","name":"Zoë"}}';
    expect(hmacSignature("whsec_k", body)).toBe(hmacSignature("whsec_k", Buffer.from(body, "utf8")));
    expect(hmacSignature("whsec_k", JSON.stringify(JSON.parse(body), null, 1))).not.toBe(hmacSignature("whsec_k", body));
  });

  it.each([
    ["the same key and body", "k1", "body", true],
    ["another key", "k2", "body", false],
    ["a changed body", "k1", "body ", false],
  ])("verify against %s: %s", (_what, key, body, ok) => {
    expect(verifyHmacSignature(key, body, hmacSignature("k1", "body"))).toBe(ok);
  });

  it("refuse a signature that is not base64 of 32 bytes", () => {
    expect(verifyHmacSignature("k1", "body", "not-a-signature")).toBe(false);
    expect(verifyHmacSignature("k1", "body", "")).toBe(false);
  });
});

describe("jwt signatures (RS256, Lago's claims)", () => {
  const { privateKey, publicKey } = crypto.generateKeyPairSync("rsa", {
    modulusLength: 2048,
    publicKeyEncoding: { type: "spki", format: "pem" },
    privateKeyEncoding: { type: "pkcs8", format: "pem" },
  });
  const body = '{"webhook_type":"customer.created","object_type":"customer","customer":{}}';
  const token = jwtSignature(privateKey, body, "https://billing.example");

  it("carry the raw body as `data` and the issuer as `iss`", () => {
    const [header, claims] = token.split(".") as [string, string, string];
    expect(JSON.parse(Buffer.from(header, "base64url").toString())).toEqual({ alg: "RS256", typ: "JWT" });
    expect(JSON.parse(Buffer.from(claims, "base64url").toString())).toEqual({ data: body, iss: "https://billing.example" });
  });

  it("verify with the public key, and only for that body and issuer", () => {
    expect(verifyJwtSignature(publicKey, token, body, "https://billing.example")).toBe(true);
    expect(verifyJwtSignature(publicKey, token, body + " ", "https://billing.example")).toBe(false);
    expect(verifyJwtSignature(publicKey, token, body, "https://other.example")).toBe(false);
    const [h, c, s] = token.split(".") as [string, string, string];
    expect(verifyJwtSignature(publicKey, `${h}.${c}.${s.slice(0, -4)}AAAA`, body, "https://billing.example")).toBe(false);
    expect(verifyJwtSignature(publicKey, "a.b", body, "https://billing.example")).toBe(false);
  });
});
