// How a webhook is signed, as Lago signs it. Both are deterministic functions of the key and the
// exact body bytes: every attempt of a delivery carries the same body and the same signature.
import crypto from "node:crypto";

export type SignatureAlgo = "jwt" | "hmac";

/**
 * `X-Lago-Signature` of an `hmac` endpoint: base64 (standard alphabet, padded) of HMAC-SHA256 over
 * the raw request body, keyed by the organization's HMAC key taken as UTF-8 text.
 */
export function hmacSignature(hmacKey: string, body: string | Uint8Array): string {
  return crypto.createHmac("sha256", hmacKey).update(body).digest("base64");
}

/** The receiver's check, in constant time. */
export function verifyHmacSignature(hmacKey: string, body: string | Uint8Array, signature: string): boolean {
  const expected = Buffer.from(hmacSignature(hmacKey, body), "base64");
  const given = Buffer.from(signature, "base64");
  return given.length === expected.length && crypto.timingSafeEqual(given, expected);
}

const base64url = (s: string) => Buffer.from(s, "utf8").toString("base64url");

/**
 * `X-Lago-Signature` of a `jwt` endpoint: an RS256 JWT whose claims are `{"data": <the raw body as
 * a string>, "iss": <issuer>}` (Lago's), signed with the organization's RSA private key (PEM).
 */
export function jwtSignature(privateKeyPem: string, body: string, issuer: string): string {
  const signingInput = `${base64url(JSON.stringify({ alg: "RS256", typ: "JWT" }))}.${base64url(JSON.stringify({ data: body, iss: issuer }))}`;
  return `${signingInput}.${crypto.sign("sha256", Buffer.from(signingInput), privateKeyPem).toString("base64url")}`;
}

/** The receiver's check of a `jwt` signature: RS256 under the public key, the issuer, and `data` equal to the body. */
export function verifyJwtSignature(publicKeyPem: string, token: string, body: string, issuer: string): boolean {
  const parts = token.split(".");
  if (parts.length !== 3) return false;
  const [header, claims, signature] = parts as [string, string, string];
  try {
    const alg = (JSON.parse(Buffer.from(header, "base64url").toString("utf8")) as { alg?: unknown }).alg;
    if (alg !== "RS256") return false;
    if (!crypto.verify("sha256", Buffer.from(`${header}.${claims}`), publicKeyPem, Buffer.from(signature, "base64url"))) return false;
    const decoded = JSON.parse(Buffer.from(claims, "base64url").toString("utf8")) as { data?: unknown; iss?: unknown };
    return decoded.iss === issuer && decoded.data === body;
  } catch {
    return false;
  }
}
