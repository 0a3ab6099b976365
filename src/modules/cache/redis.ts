// The Redis tier (L2) and the Redis invalidation channel (pub/sub), over two ioredis connections.
//
// Keys: `vv:<namespace>:<epoch>:<kind>:<key>` holds the encoded value, `...:t:<kind>:<key>` the key's
// invalidation token. A writer sets a fresh token and deletes the value after it commits; a reader
// that missed reads the token with the value (one MGET), loads from the database, and stores what it
// loaded only if the token is still the one it read (a Lua script): a load that raced a write can
// never park a stale value in Redis.
//
// Failure: commands time out after `timeoutMs`; the connection is never waited for (no offline
// queue), three failures in a row open the circuit for a second, and ioredis reconnects by itself.
// When an invalidation could not be applied, or the connection was lost, the epoch (part of every
// key) is bumped on recovery: whatever Redis kept from before is never read again.
import crypto from "node:crypto";
import { createRequire } from "node:module";
import type { Redis, RedisOptions } from "ioredis";
import type { CacheKey } from "./kinds.ts";

export interface RedisLog {
  warn(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
}

/** ioredis, loaded when a Redis tier is built: only REDIS_URL needs it (it cost every start ~0.1 s). */
let ioredis: typeof import("ioredis") | undefined;
const RedisClient = (): typeof Redis => (ioredis ??= createRequire(import.meta.url)("ioredis") as typeof import("ioredis")).Redis;

export interface RedisTierOptions {
  url: string;
  namespace: string;
  timeoutMs: number;
  log: RedisLog;
  /** Every failed command (for cache_errors_total{tier="l2"}). */
  onError(count: number): void;
  /** An invalidation message from another process (keys), or `null`: drop everything (epoch moved). */
  onMessage(keys: CacheKey[] | null): void;
  /** The pub/sub subscription came up (true) or went down (false). */
  onChannel(up: boolean): void;
}

export interface L2Read {
  /** The encoded value, or null when absent. */
  value: string | null;
  /** The key's invalidation token as read (null: none). */
  token: string | null;
}

const TOKEN_TTL_MS = 3_600_000;
const OPEN_AFTER_FAILURES = 3;
const OPEN_FOR_MS = 1000;

// KEYS[1] value, KEYS[2] token; ARGV[1] the token read ("" for none), ARGV[2] value, ARGV[3] ttl ms.
const SET_IF_TOKEN = `
local t = redis.call('GET', KEYS[2])
if (t or '') == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
  return 1
end
return 0`;

type ScriptClient = Redis & { setIfToken(value: string, token: string, expected: string, text: string, ttl: number): Promise<number> };

const retryStrategy = (times: number) => Math.min(50 * 2 ** Math.min(times, 6), 2000);

export class RedisTier {
  private readonly client: ScriptClient;
  private readonly sub: Redis;
  private readonly channel: string;
  private readonly origin = crypto.randomBytes(8).toString("hex");
  private epoch: string | null = null;
  /** The highest epoch announced so far (a bump may be heard before our own INCR answers). */
  private seenEpoch = 0;
  private failures = 0;
  private openUntil = 0;
  /** Logged once per outage. */
  private degraded = false;
  /** An invalidation may not have reached Redis: bump the epoch once it answers again. */
  private dirty = false;
  private lostConnection = false;
  private subscribed = false;
  private closed = false;
  private seq = 0;
  /** Our own invalidation messages awaited back from the subscription, by sequence. */
  private readonly echoes = new Map<number, () => void>();

  constructor(private readonly opts: RedisTierOptions) {
    const base: RedisOptions = { retryStrategy, connectTimeout: 2000, enableReadyCheck: true, lazyConnect: true };
    this.client = new (RedisClient())(opts.url, {
      ...base,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      commandTimeout: opts.timeoutMs,
    }) as ScriptClient;
    this.client.defineCommand("setIfToken", { numberOfKeys: 2, lua: SET_IF_TOKEN });
    this.sub = new (RedisClient())(opts.url, { ...base, autoResubscribe: false, maxRetriesPerRequest: null });
    this.channel = `vv:${opts.namespace}:invalidate`;

    this.client.on("error", () => {});
    this.client.on("close", () => {
      if (this.closed) return;
      this.lostConnection = true;
      this.epoch = null;
      this.down("connection closed");
    });
    this.client.on("ready", () => void this.onReady());
    this.sub.on("error", () => {});
    this.sub.on("close", () => {
      if (this.subscribed) {
        this.subscribed = false;
        opts.onChannel(false);
      }
    });
    this.sub.on("ready", () => {
      this.sub.subscribe(this.channel).then(
        () => {
          this.subscribed = true;
          opts.onChannel(true);
        },
        () => this.sub.disconnect(true),
      );
    });
    this.sub.on("message", (_channel: string, text: string) => this.onPublished(text));
  }

  /** Connects both connections; resolves either way (a Redis down at start is an outage like any other). */
  async start(): Promise<void> {
    await Promise.allSettled([this.client.connect(), this.sub.connect()]);
  }

  /** Commands may be sent: connected, epoch known, circuit closed. */
  get up(): boolean {
    return this.client.status === "ready" && this.epoch !== null && performance.now() >= this.openUntil;
  }

  get channelUp(): boolean {
    return this.subscribed;
  }

  private keyOf(kind: string, key: string): string {
    return `vv:${this.opts.namespace}:${this.epoch}:${kind}:${key}`;
  }
  private tokenOf(kind: string, key: string): string {
    return `vv:${this.opts.namespace}:${this.epoch}:t:${kind}:${key}`;
  }

  /** Values and tokens of `keys` in one MGET; null when Redis cannot answer now. */
  async read(keys: readonly CacheKey[]): Promise<L2Read[] | null> {
    if (!this.up) {
      // Counted: an outage shows in cache_errors_total{tier="l2"} even though nothing is sent.
      this.opts.onError(1);
      return null;
    }
    const names: string[] = [];
    for (const k of keys) names.push(this.keyOf(k.kind, k.key));
    for (const k of keys) names.push(this.tokenOf(k.kind, k.key));
    try {
      const got = await this.client.mget(names);
      this.succeeded();
      return keys.map((_, i) => ({ value: got[i] ?? null, token: got[keys.length + i] ?? null }));
    } catch (err) {
      this.failed(err, 1);
      return null;
    }
  }

  /** Stores each value unless its key was invalidated since `token` was read (pipelined). */
  async store(entries: readonly { key: CacheKey; token: string | null; text: string; ttlMs: number }[]): Promise<void> {
    if (!this.up || entries.length === 0) return;
    try {
      if (entries.length === 1) {
        const e = entries[0]!;
        await this.client.setIfToken(this.keyOf(e.key.kind, e.key.key), this.tokenOf(e.key.kind, e.key.key), e.token ?? "", e.text, e.ttlMs);
      } else {
        const p = this.client.pipeline() as unknown as { setIfToken: ScriptClient["setIfToken"]; exec(): Promise<[Error | null, unknown][] | null> };
        for (const e of entries) void p.setIfToken(this.keyOf(e.key.kind, e.key.key), this.tokenOf(e.key.kind, e.key.key), e.token ?? "", e.text, e.ttlMs);
        const results = (await p.exec()) ?? [];
        const bad = results.filter(([err]) => err !== null).length;
        if (bad > 0) throw results.find(([err]) => err !== null)![0];
      }
      this.succeeded();
    } catch (err) {
      this.failed(err, 1);
    }
  }

  /**
   * After a commit: new tokens, values deleted, other processes told — one pipeline. False when it
   * failed (the caller falls back to another channel; the epoch moves once Redis is back).
   */
  async invalidate(keys: readonly CacheKey[]): Promise<boolean> {
    if (!this.up) {
      this.dirty = true;
      this.opts.onError(1);
      return false;
    }
    const p = this.client.pipeline();
    const token = crypto.randomBytes(9).toString("base64");
    for (const k of keys) {
      p.set(this.tokenOf(k.kind, k.key), token, "PX", TOKEN_TTL_MS);
      p.del(this.keyOf(k.kind, k.key));
    }
    const seq = ++this.seq;
    p.publish(this.channel, JSON.stringify({ o: this.origin, s: seq, k: keys.map((k) => [k.kind, k.key]) }));
    const echoed = this.subscribed ? this.echoOf(seq) : { promise: Promise.resolve(), cancel() {} };
    try {
      const results = (await p.exec()) ?? [];
      const failed = results.find(([err]) => err !== null);
      if (failed) throw failed[0];
      this.succeeded();
      await echoed.promise;
      return true;
    } catch (err) {
      echoed.cancel();
      this.dirty = true;
      this.failed(err, 1);
      return false;
    }
  }

  /**
   * Resolves once this process's own subscription received message `seq` (at most `timeoutMs`),
   * then after the I/O already pending: Redis writes a message to every subscriber before it
   * answers PUBLISH, so by then the other processes' sockets hold it too, ahead of any request a
   * client sends them after our answer.
   */
  private echoOf(seq: number): { promise: Promise<void>; cancel(): void } {
    let done!: () => void;
    const promise = new Promise<void>((resolve) => (done = resolve));
    const timer = setTimeout(() => finish(), this.opts.timeoutMs);
    const finish = () => {
      clearTimeout(timer);
      this.echoes.delete(seq);
      setImmediate(done);
    };
    this.echoes.set(seq, finish);
    return { promise, cancel: finish };
  }

  async close(): Promise<void> {
    this.closed = true;
    this.client.disconnect();
    this.sub.disconnect();
  }

  // -----------------------------------------------------------------------------------------------

  private onPublished(text: string): void {
    let msg: { o?: string; k?: [string, string][]; e?: string; s?: number };
    try {
      msg = JSON.parse(text);
    } catch {
      return;
    }
    if (msg.e !== undefined) {
      // The epoch moved (another process recovered from an outage): what any tier holds may predate
      // it. Bumps from several processes may arrive in any order: the highest wins everywhere.
      this.seenEpoch = Math.max(this.seenEpoch, Number(msg.e) || 0);
      if (this.epoch !== null) this.epoch = String(Math.max(Number(this.epoch), this.seenEpoch));
      this.opts.onMessage(null);
      return;
    }
    if (msg.o === this.origin) {
      if (typeof msg.s === "number") this.echoes.get(msg.s)?.();
      return;
    }
    if (!Array.isArray(msg.k)) return;
    this.opts.onMessage(msg.k.map(([kind, key]) => ({ kind, key }) as CacheKey));
  }

  /** (Re)connected: learn the epoch, or move it when invalidations may have been lost meanwhile. */
  private async onReady(): Promise<void> {
    const epochKey = `vv:${this.opts.namespace}:epoch`;
    try {
      if (this.lostConnection || this.dirty) {
        this.dirty = false;
        this.lostConnection = false;
        const epoch = await this.client.incr(epochKey);
        await this.client.publish(this.channel, JSON.stringify({ o: this.origin, e: String(epoch) }));
        this.epoch = String(Math.max(epoch, this.seenEpoch));
        // Values this process kept while Redis was unreachable may predate a write it did not hear of.
        this.opts.onMessage(null);
      } else {
        this.epoch = String(Math.max(Number((await this.client.get(epochKey)) ?? 0), this.seenEpoch));
      }
      this.failures = 0;
      this.openUntil = 0;
      this.recovered();
    } catch (err) {
      this.failed(err, 1);
      // Try again on the next command failure cycle: the connection stays, the epoch stays unknown.
      setTimeout(() => {
        if (!this.closed && this.client.status === "ready" && this.epoch === null) void this.onReady();
      }, 500).unref();
    }
  }

  private succeeded(): void {
    this.failures = 0;
    if (this.dirty && this.epoch !== null) {
      // Answering again after an invalidation failed (a timeout need not drop the connection):
      // abandon every value that may have missed its delete.
      this.epoch = null;
      void this.onReady();
      return;
    }
    this.recovered();
  }

  private failed(err: unknown, n: number): void {
    this.opts.onError(n);
    if (++this.failures >= OPEN_AFTER_FAILURES) {
      this.openUntil = performance.now() + OPEN_FOR_MS;
      this.down((err as Error)?.message ?? String(err));
    }
  }

  private down(reason: string): void {
    if (this.degraded || this.closed) return;
    this.degraded = true;
    this.opts.log.warn({ reason }, "redis cache unavailable: answering from the in-process cache and the database until it is back");
  }

  private recovered(): void {
    if (!this.degraded) return;
    this.degraded = false;
    this.opts.log.info({}, "redis cache available again");
  }
}
