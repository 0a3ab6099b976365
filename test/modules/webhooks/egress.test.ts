// The webhook egress guard (WEBHOOK_PRIVATE_NETWORKS): which addresses are private, which URLs are
// refused at creation, and a real POST refused (or sent) on the address its lookup resolves to.
import http from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BlockedAddressError, isPrivateAddress, post, urlAllowed } from "../../../src/modules/webhooks/egress.ts";

describe("isPrivateAddress", () => {
  it.each([
    ["127.0.0.1", true],
    ["127.255.0.9", true],
    ["10.1.2.3", true],
    ["172.16.0.1", true],
    ["172.31.255.255", true],
    ["172.32.0.1", false],
    ["192.168.1.1", true],
    ["169.254.169.254", true], // cloud metadata
    ["100.64.0.1", true],
    ["0.0.0.0", true],
    ["224.0.0.1", true],
    ["8.8.8.8", false],
    ["93.184.216.34", false],
    ["::1", true],
    ["::", true],
    ["fd12:3456::1", true],
    ["fe80::1", true],
    ["::ffff:127.0.0.1", true],
    ["::ffff:8.8.8.8", false],
    ["2606:4700::1111", false],
    ["not-an-ip", false],
  ])("%s -> %s", (address, expected) => {
    expect(isPrivateAddress(address)).toBe(expected);
  });
});

describe("urlAllowed", () => {
  it.each([
    ["http://127.0.0.1:8080/hook", false],
    ["http://[::1]/hook", false],
    ["http://localhost/hook", false],
    ["http://app.localhost/hook", false],
    ["http://169.254.169.254/latest/meta-data", false],
    ["https://hooks.example.com/lago", true],
    ["https://8.8.8.8/x", true],
  ])("deny: %s -> %s", (url, expected) => {
    expect(urlAllowed(url, "deny")).toBe(expected);
  });

  it("allow lets every URL through", () => {
    expect(urlAllowed("http://127.0.0.1/x", "allow")).toBe(true);
    expect(urlAllowed("http://localhost/x", "allow")).toBe(true);
  });
});

describe("post", () => {
  let server: http.Server;
  let port = 0;
  const received: string[] = [];
  beforeAll(async () => {
    server = http.createServer((req, res) => {
      let body = "";
      req.on("data", (c) => (body += c));
      req.on("end", () => {
        received.push(body);
        res.writeHead(req.url === "/big" ? 200 : 202, { "content-type": "text/plain" });
        res.end(req.url === "/big" ? "x".repeat(10_000) : "ok");
      });
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    port = (server.address() as AddressInfo).port;
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));

  const opts = (policy: "deny" | "allow") => ({ signal: new AbortController().signal, keep: 100, policy });

  it("allow: posts the body and keeps at most `keep` characters of the answer", async () => {
    const answer = await post(`http://127.0.0.1:${port}/hook`, { "content-type": "application/json" }, '{"a":1}', opts("allow"));
    expect(answer).toEqual({ status: 202, body: "ok" });
    expect(received.at(-1)).toBe('{"a":1}');
    const big = await post(`http://127.0.0.1:${port}/big`, {}, "{}", opts("allow"));
    expect(big.status).toBe(200);
    expect(big.body).toHaveLength(100);
  });

  it("deny: an address literal and a name resolving to loopback are refused before anything is sent", async () => {
    const before = received.length;
    await expect(post(`http://127.0.0.1:${port}/hook`, {}, "{}", opts("deny"))).rejects.toBeInstanceOf(BlockedAddressError);
    // `localhost` goes through the socket's lookup: refused on the address it resolves to.
    const err = await post(`http://localhost:${port}/hook`, {}, "{}", opts("deny")).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BlockedAddressError);
    expect((err as Error).message).toMatch(/^blocked: localhost resolves to (127\.0\.0\.1|::1), which is a private address/);
    expect(received.length).toBe(before);
  });

  it("an abort before the answer ends rejects with the signal's reason", async () => {
    const hang = http.createServer(() => undefined);
    await new Promise<void>((r) => hang.listen(0, "127.0.0.1", r));
    const controller = new AbortController();
    const pending = post(`http://127.0.0.1:${(hang.address() as AddressInfo).port}/`, {}, "{}", { signal: controller.signal, keep: 10, policy: "allow" });
    setTimeout(() => controller.abort(new DOMException("late", "TimeoutError")), 50);
    const err = (await pending.catch((e: unknown) => e)) as { name?: string; cause?: { name?: string } };
    expect(err.name === "TimeoutError" || err.cause?.name === "TimeoutError").toBe(true);
    hang.closeAllConnections();
    await new Promise<void>((r) => hang.close(() => r()));
  });
});
