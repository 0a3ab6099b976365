// Where webhook deliveries may connect (WEBHOOK_PRIVATE_NETWORKS), and the POST itself.
//
// Each organization chooses its endpoint URLs, so without a guard a tenant could make the server
// post to its own network: loopback, private ranges, the cloud metadata address. With `deny` (the
// default) an endpoint whose address is in one of those ranges is refused twice:
// - when it is created or updated, if its host is an address literal or `localhost` (a 422 naming
//   `webhook_url`);
// - when it is delivered, on the address the connection actually uses: the check runs in the
//   socket's DNS lookup, so a name that resolves to a public address at creation and to a private
//   one later (DNS rebinding) is refused too. The attempt fails with a clear error on the delivery
//   record and is retried like any other failure.
// `allow` (a single-company deployment posting to its own services; the tests' local receivers)
// turns both checks off.
import dns from "node:dns";
import http from "node:http";
import https from "node:https";
import net from "node:net";

export type PrivateNetworks = "deny" | "allow";

const blocked = new net.BlockList();
// IPv4: "this network", private (RFC 1918), shared CGNAT, loopback, link-local (cloud metadata),
// IETF protocol assignments, benchmarking, multicast and reserved.
for (const [prefix, bits] of [
  ["0.0.0.0", 8],
  ["10.0.0.0", 8],
  ["100.64.0.0", 10],
  ["127.0.0.0", 8],
  ["169.254.0.0", 16],
  ["172.16.0.0", 12],
  ["192.0.0.0", 24],
  ["192.168.0.0", 16],
  ["198.18.0.0", 15],
  ["224.0.0.0", 3],
] as const) {
  blocked.addSubnet(prefix, bits, "ipv4");
}
// IPv6: unspecified, loopback, unique local, link-local, multicast.
blocked.addAddress("::", "ipv6");
blocked.addAddress("::1", "ipv6");
blocked.addSubnet("fc00::", 7, "ipv6");
blocked.addSubnet("fe80::", 10, "ipv6");
blocked.addSubnet("ff00::", 8, "ipv6");

/** True for an address a webhook may not reach under `deny` (IPv4-mapped IPv6 judged as its IPv4). */
export function isPrivateAddress(address: string): boolean {
  const family = net.isIP(address);
  if (family === 4) return blocked.check(address, "ipv4");
  if (family !== 6) return false;
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped) return blocked.check(mapped[1]!, "ipv4");
  return blocked.check(address, "ipv6");
}

/** The URL's host without IPv6 brackets. */
const hostOf = (url: URL) => url.hostname.replace(/^\[(.*)\]$/, "$1");

/**
 * At creation: refuses a URL whose host is a private address literal or a loopback name. (Other
 * names are judged on the address they resolve to at delivery.)
 */
export function urlAllowed(raw: string, policy: PrivateNetworks): boolean {
  if (policy === "allow") return true;
  const host = hostOf(new URL(raw)).toLowerCase();
  if (host === "localhost" || host.endsWith(".localhost")) return false;
  return !isPrivateAddress(host);
}

export class BlockedAddressError extends Error {
  readonly code = "EBLOCKED";
  constructor(host: string, address: string) {
    super(`blocked: ${host === address ? host : `${host} resolves to ${address}, which`} is a private address (WEBHOOK_PRIVATE_NETWORKS=deny)`);
  }
}

/** A socket lookup that resolves as usual, then refuses private addresses. */
function guardedLookup(hostname: string, options: dns.LookupOptions, callback: (err: NodeJS.ErrnoException | null, address: string | dns.LookupAddress[], family?: number) => void): void {
  dns.lookup(hostname, { ...options, all: true }, (err, addresses) => {
    if (err) return callback(err, "", 0);
    const list = addresses as dns.LookupAddress[];
    const bad = list.find((a) => isPrivateAddress(a.address));
    if (bad) return callback(new BlockedAddressError(hostname, bad.address) as NodeJS.ErrnoException, "", 0);
    if (options.all) return callback(null, list);
    const first = list[0];
    if (!first) return callback(Object.assign(new Error(`no address for ${hostname}`), { code: "ENOTFOUND" }), "", 0);
    callback(null, first.address, first.family);
  });
}

export interface PostAnswer {
  status: number;
  /** The first `keep` characters of the body; the rest is not read. */
  body: string | null;
}

/**
 * POSTs `body` to `rawUrl` (no redirect is followed: a redirect is an answer like any other) and
 * reads at most `keep` characters of the answer. Aborted by `signal`. Under `deny`, a connection
 * to a private address fails with BlockedAddressError before anything is sent.
 */
export function post(rawUrl: string, headers: Record<string, string>, body: string, opts: { signal: AbortSignal; keep: number; policy: PrivateNetworks }): Promise<PostAnswer> {
  const url = new URL(rawUrl);
  const host = hostOf(url);
  if (opts.policy === "deny" && net.isIP(host) !== 0 && isPrivateAddress(host)) return Promise.reject(new BlockedAddressError(host, host));
  const payload = Buffer.from(body);
  const client = url.protocol === "https:" ? https : http;
  return new Promise<PostAnswer>((resolve, reject) => {
    const req = client.request(
      url,
      {
        method: "POST",
        headers: { ...headers, "content-length": String(payload.length) },
        signal: opts.signal,
        ...(opts.policy === "deny" ? { lookup: guardedLookup as unknown as net.LookupFunction } : {}),
        agent: false,
      },
      (res) => {
        const decoder = new TextDecoder();
        let text = "";
        let done = false;
        const finish = () => {
          if (done) return;
          done = true;
          resolve({ status: res.statusCode ?? 0, body: text === "" ? null : text.slice(0, opts.keep) });
        };
        res.on("data", (chunk: Buffer) => {
          if (text.length < opts.keep) text += decoder.decode(chunk, { stream: true });
          if (text.length >= opts.keep) {
            finish();
            res.destroy();
          }
        });
        res.on("end", finish);
        res.on("error", (err) => {
          if (!done) (done = true), reject(err);
        });
        // Closed before the body ended (the signal aborted, the receiver hung up): not an answer.
        res.on("close", () => {
          if (done) return;
          if (res.complete) return finish();
          done = true;
          reject(opts.signal.aborted ? opts.signal.reason : new Error("the connection closed before the answer ended"));
        });
      },
    );
    req.on("error", reject);
    req.end(payload);
  });
}
