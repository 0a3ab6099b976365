// The Redis tier (L2) and the Redis invalidation channel (pub/sub), over two ioredis connections.
//
// Keys: `vv:<namespace>:epoch` holds the current epoch; `vv:<namespace>:<epoch>:<kind>:<key>` a value,
// `...:<epoch>:t:<kind>:<key>` the key's invalidation token. Every command checks the epoch in Redis
// itself, so a process that missed an epoch move (its subscription was not back yet when the move was
// announced, or it started after a Redis restart) can neither read, store nor invalidate under an
// abandoned epoch:
// - a miss reads the values, their tokens and the epoch in one MGET; nothing is served under an epoch
//   that is not the current one (the process adopts the current epoch and reads again);
// - a writer's invalidation (after its commit) is a script that sets a fresh token and deletes the
//   value under the epoch current when Redis runs it, then a PUBLISH, one pipeline;
// - a loaded value is stored by a script only if the epoch and the key's token are still the ones read
//   with the miss: a load that raced a write never parks a stale value, in whatever order Redis runs
//   the commands (a paused or slow Redis runs a timed-out command late, never not at all).
//
// Failure: commands time out after `timeoutMs`; the connection is never waited for (no offline
// queue), three failures in a row open the circuit for a second, and ioredis reconnects by itself.
// Redis is used only while the subscription is up and the epoch was read after it came up (so every
// later move is heard). An invalidation that may not have been applied (it timed out or could not be
// sent here, or another process reported one over the PostgreSQL fallback), or a lost connection,
// stops this process's use of Redis at once, and the epoch is moved past every epoch it knew as soon
// as Redis answers (retried on a timer, not on traffic): nothing Redis kept from before is read
// again. The epoch never goes back, even when a restarted Redis lost its key.
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

export interface L2Entry {
  key: CacheKey;
  /** The token read with the miss (null: none). */
  token: string | null;
  text: string;
  ttlMs: number;
}

const TOKEN_TTL_MS = 3_600_000;
const OPEN_AFTER_FAILURES = 3;
const OPEN_FOR_MS = 1000;
const SYNC_RETRY_MS = 250;

// KEYS[1] epoch, KEYS[2] value, KEYS[3] token; ARGV[1] the epoch read, ARGV[2] the token read ("" for
// none), ARGV[3] value, ARGV[4] ttl ms.
const SET_IF_CURRENT = `
if (redis.call('GET', KEYS[1]) or '0') ~= ARGV[1] then return 0 end
if (redis.call('GET', KEYS[3]) or '') ~= ARGV[2] then return 0 end
redis.call('SET', KEYS[2], ARGV[3], 'PX', ARGV[4])
return 1`;

// KEYS[1] epoch; ARGV[1] key prefix (up to the epoch), ARGV[2] the new token, ARGV[3] its ttl ms,
// ARGV[4..] "<kind>:<key>". Applied under the epoch current when it runs, whatever the sender knew.
const INVALIDATE = `
local p = ARGV[1] .. (redis.call('GET', KEYS[1]) or '0') .. ':'
for i = 4, #ARGV do
  redis.call('SET', p .. 't:' .. ARGV[i], ARGV[2], 'PX', ARGV[3])
  redis.call('DEL', p .. ARGV[i])
end
return 1`;

// KEYS[1] epoch, KEYS[2] this move's marker; ARGV[1] the highest epoch the caller knew, ARGV[2] "1" to
// move past it, ARGV[3] channel, ARGV[4] origin. The marker makes a move sent again (a timed-out
// copy that ran late) move once; a move is announced on the channel; the epoch never goes back.
const SYNC_EPOCH = `
local e = tonumber(redis.call('GET', KEYS[1]) or '0')
local known = tonumber(ARGV[1])
if ARGV[2] == '1' and redis.call('SET', KEYS[2], '1', 'NX', 'PX', 600000) then
  e = math.max(e, known) + 1
  redis.call('SET', KEYS[1], string.format('%d', e))
  redis.call('PUBLISH', ARGV[3], cjson.encode({o = ARGV[4], e = string.format('%d', e)}))
elseif e < known then
  e = known
  redis.call('SET', KEYS[1], string.format('%d', e))
end
return e`;

type ScriptClient = Redis & {
  setIfCurrent(epochKey: string, value: string, token: string, epoch: string, expected: string, text: string, ttl: number): Promise<number>;
  syncEpoch(epochKey: string, marker: string, known: string, move: string, channel: string, origin: string): Promise<number>;
};
type ScriptPipeline = {
  setIfCurrent: ScriptClient["setIfCurrent"];
  invalidateKeys(epochKey: string, prefix: string, token: string, ttl: number, ...keys: string[]): unknown;
  publish(channel: string, message: string): unknown;
  exec(): Promise<[Error | null, unknown][] | null>;
};

const retryStrategy = (times: number) => Math.min(50 * 2 ** Math.min(times, 6), 2000);

export class RedisTier {
  private readonly client: ScriptClient;
  private readonly sub: Redis;
  private readonly channel: string;
  private readonly epochKey: string;
  private readonly origin = crypto.randomBytes(8).toString("hex");
  /** The epoch commands use; null: Redis is not used (not synced since the subscription came up, or an invalidation may be missing). */
  private epoch: string | null = null;
  /** The highest epoch used or announced so far (a restarted Redis may have lost the key). */
  private known = 0;
  /** The epoch must move before Redis is used again (an invalidation may be missing, or the connection was lost). */
  private mustMove = false;
  /** Counts the reasons to move: a reason that arrives while a move is running needs another one. */
  private moveGen = 0;
  private syncing = false;
  private syncTimer: NodeJS.Timeout | null = null;
  private failures = 0;
  private openUntil = 0;
  /** Logged once per outage. */
  private degraded = false;
  private subscribed = false;
  private closed = false;
  private seq = 0;
  private inFlight = 0;
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
    this.client.defineCommand("setIfCurrent", { numberOfKeys: 3, lua: SET_IF_CURRENT });
    this.client.defineCommand("invalidateKeys", { numberOfKeys: 1, lua: INVALIDATE });
    this.client.defineCommand("syncEpoch", { numberOfKeys: 2, lua: SYNC_EPOCH });
    this.sub = new (RedisClient())(opts.url, { ...base, autoResubscribe: false, maxRetriesPerRequest: null });
    this.channel = `vv:${opts.namespace}:invalidate`;
    this.epochKey = `vv:${opts.namespace}:epoch`;

    this.client.on("error", () => {});
    this.client.on("close", () => {
      if (this.closed) return;
      // Invalidations sent meanwhile may be lost with the connection.
      this.mustMove = true;
      this.moveGen++;
      this.stopUsing();
      this.down("connection closed");
    });
    this.client.on("ready", () => this.sync());
    this.sub.on("error", () => {});
    this.sub.on("close", () => {
      if (this.subscribed) {
        this.subscribed = false;
        // Moves of the epoch announced now would not be heard: read it again once subscribed.
        this.stopUsing();
        opts.onChannel(false);
      }
    });
    this.sub.on("ready", () => {
      this.sub.subscribe(this.channel).then(
        () => {
          this.subscribed = true;
          opts.onChannel(true);
          this.sync();
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

  /** Commands may be sent: connected, subscribed, epoch synced since, circuit closed. */
  get up(): boolean {
    return this.client.status === "ready" && this.subscribed && this.epoch !== null && performance.now() >= this.openUntil;
  }

  get channelUp(): boolean {
    return this.subscribed;
  }

  /** Copies to Redis sent and not answered yet (tests wait for them). */
  get storing(): number {
    return this.inFlight;
  }

  private keyOf(epoch: string, kind: string, key: string): string {
    return `vv:${this.opts.namespace}:${epoch}:${kind}:${key}`;
  }
  private tokenOf(epoch: string, kind: string, key: string): string {
    return `vv:${this.opts.namespace}:${epoch}:t:${kind}:${key}`;
  }

  /**
   * Values and tokens of `keys` in one MGET, with the epoch they were read under (pass it to
   * `store`); null when Redis cannot answer now.
   */
  async read(keys: readonly CacheKey[]): Promise<{ epoch: string; entries: L2Read[] } | null> {
    if (!this.up) {
      // Counted: an outage shows in cache_errors_total{tier="l2"} even though nothing is sent.
      this.opts.onError(1);
      return null;
    }
    // Twice at most: once more after adopting an epoch that moved without this process hearing it.
    for (let attempt = 0; attempt < 2; attempt++) {
      const epoch = this.epoch;
      if (epoch === null) return null;
      const names: string[] = [];
      for (const k of keys) names.push(this.keyOf(epoch, k.kind, k.key));
      for (const k of keys) names.push(this.tokenOf(epoch, k.kind, k.key));
      names.push(this.epochKey);
      let got: (string | null)[];
      try {
        got = await this.client.mget(names);
      } catch (err) {
        this.failed(err, 1);
        return null;
      }
      this.succeeded();
      // Stopped using Redis, or moved, while the MGET was out: what it read is not to be trusted.
      if (this.epoch !== epoch) return null;
      const current = got[2 * keys.length] ?? "0";
      if (current === epoch) return { epoch, entries: keys.map((_, i) => ({ value: got[i] ?? null, token: got[keys.length + i] ?? null })) };
      if (Number(current) > Number(epoch)) {
        // A move this process did not hear of (announced while its subscription was down).
        this.adopt(Number(current));
        continue;
      }
      // Behind what this process used (Redis lost the key without this connection noticing): raise it.
      this.stopUsing();
      this.sync();
      return null;
    }
    return null;
  }

  /** Stores each value unless the epoch moved or its key was invalidated since `epoch` and its token were read (pipelined). */
  async store(epoch: string, entries: readonly L2Entry[]): Promise<void> {
    if (!this.up || this.epoch !== epoch || entries.length === 0) return;
    this.inFlight++;
    try {
      const args = (e: L2Entry) =>
        [this.epochKey, this.keyOf(epoch, e.key.kind, e.key.key), this.tokenOf(epoch, e.key.kind, e.key.key), epoch, e.token ?? "", e.text, e.ttlMs] as const;
      if (entries.length === 1) {
        await this.client.setIfCurrent(...args(entries[0]!));
      } else {
        const p = this.client.pipeline() as unknown as ScriptPipeline;
        for (const e of entries) void p.setIfCurrent(...args(e));
        const results = (await p.exec()) ?? [];
        const bad = results.filter(([err]) => err !== null).length;
        if (bad > 0) throw results.find(([err]) => err !== null)![0];
      }
      this.succeeded();
    } catch (err) {
      this.failed(err, 1);
    } finally {
      this.inFlight--;
    }
  }

  /**
   * After a commit: new tokens, values deleted, other processes told — one pipeline. False when it
   * failed or could not be sent: then this process stops using Redis until the epoch moved, and the
   * caller falls back to another channel (whose receivers do the same, see `suspect`).
   */
  async invalidate(keys: readonly CacheKey[]): Promise<boolean> {
    if (!this.up) {
      this.suspect();
      this.opts.onError(1);
      return false;
    }
    const p = this.client.pipeline() as unknown as ScriptPipeline;
    const token = crypto.randomBytes(9).toString("base64");
    void p.invalidateKeys(this.epochKey, `vv:${this.opts.namespace}:`, token, TOKEN_TTL_MS, ...keys.map((k) => `${k.kind}:${k.key}`));
    const seq = ++this.seq;
    void p.publish(this.channel, JSON.stringify({ o: this.origin, s: seq, k: keys.map((k) => [k.kind, k.key]) }));
    const echoed = this.echoOf(seq);
    try {
      const results = (await p.exec()) ?? [];
      const failed = results.find(([err]) => err !== null);
      if (failed) throw failed[0];
      this.succeeded();
      await echoed.promise;
      return true;
    } catch (err) {
      echoed.cancel();
      this.suspect();
      this.failed(err, 1);
      return false;
    }
  }

  /**
   * An invalidation may be missing from Redis (ours failed, or another process said so): Redis may
   * hold a value older than the database, under the current epoch. Stop reading it now; move the
   * epoch as soon as Redis answers.
   */
  suspect(): void {
    if (this.closed) return;
    this.mustMove = true;
    this.moveGen++;
    this.stopUsing();
    this.sync();
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
    if (this.syncTimer !== null) clearTimeout(this.syncTimer);
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
      if (msg.o === this.origin) return;
      // The epoch moved (another process recovered from an outage): what any tier holds may predate
      // it. Moves from several processes may arrive in any order: the highest wins everywhere.
      const e = Number(msg.e) || 0;
      this.known = Math.max(this.known, e);
      if (this.epoch !== null && e > Number(this.epoch)) this.epoch = String(e);
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

  /** Not used until synced again; remembers the epoch it used (the floor for the next one). */
  private stopUsing(): void {
    if (this.epoch !== null) this.known = Math.max(this.known, Number(this.epoch));
    this.epoch = null;
  }

  private adopt(e: number): void {
    this.known = Math.max(this.known, e);
    this.epoch = String(this.known);
    // Whatever this process kept may predate the write the move was for.
    this.opts.onMessage(null);
  }

  /**
   * Learns the epoch (subscribed first, so any later move is heard), or moves it past every epoch
   * this process knew when it must. One at a time; retried on a timer until it succeeds.
   */
  private sync(): void {
    if (this.syncing || this.closed || !this.subscribed || this.client.status !== "ready") return;
    if (this.epoch !== null && !this.mustMove) return;
    this.syncing = true;
    const move = this.mustMove;
    const gen = this.moveGen;
    const known = this.known;
    this.client.syncEpoch(this.epochKey, `vv:${this.opts.namespace}:move:${this.origin}:${gen}`, String(known), move ? "1" : "0", this.channel, this.origin).then(
      (n) => {
        this.syncing = false;
        if (this.closed) return;
        if (move && gen === this.moveGen) this.mustMove = false;
        if (!this.subscribed || this.client.status !== "ready" || this.mustMove) return this.sync();
        const e = Math.max(Number(n), this.known);
        this.known = e;
        this.epoch = String(e);
        this.failures = 0;
        this.openUntil = 0;
        // Values this process kept while Redis was unreachable may predate a write it did not hear of.
        if (move || e > known) this.opts.onMessage(null);
        this.recovered();
      },
      (err) => {
        this.syncing = false;
        this.failed(err, 1);
        this.retrySync();
      },
    );
  }

  private retrySync(): void {
    if (this.closed || this.syncTimer !== null) return;
    this.syncTimer = setTimeout(() => {
      this.syncTimer = null;
      this.sync();
    }, SYNC_RETRY_MS);
    this.syncTimer.unref();
  }

  private succeeded(): void {
    this.failures = 0;
    if (this.epoch !== null) this.recovered();
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
