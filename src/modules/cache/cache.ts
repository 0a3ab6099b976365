// The two-tier cache-aside: an in-process LRU (L1) in front of Redis (L2, optional) in front of the
// loader (the database). Reads: L1, then L2, then one load per key however many readers wait on it
// (single flight). Writes: the writer calls `invalidate` after its transaction committed and before
// it answers; the keys leave this process's L1 and Redis, and every other process is told.
//
// Invariants:
// - A load that overlapped an invalidation of its key is handed to its waiters but stored nowhere:
//   in this process the flight is marked stale; in Redis the key's token moved (see redis.ts).
// - Redis never serves a value older than an invalidation that was answered: when one may not have
//   reached Redis (it timed out, or could not be sent), the writer and every process that hears the
//   PostgreSQL fallback stop reading Redis until the key epoch moved (see redis.ts).
// - L1 is only served while this process hears every invalidation: all of its channels (Redis
//   pub/sub when REDIS_URL is set; PostgreSQL LISTEN when the database is PostgreSQL) are up. While
//   one is down, reads skip L1 and go to Redis or the database; when it is back, L1 starts empty
//   (whatever it held may have missed a message).
// - With no channel at all, L1 is exact only if this is the only process on the database: embedded
//   PGlite (one process owns it). On PostgreSQL without a channel (not the server's own wiring: it
//   always listens), L1 entries live at most 1 s.
import crypto from "node:crypto";
import { CodecError, decode, encode } from "./core/codec.ts";
import { Lru } from "./core/lru.ts";
import { CACHE_KINDS, type CacheKey, type CacheKind, L2_TTL_MS } from "./kinds.ts";
import { type CacheMetrics, NO_CACHE_METRICS } from "./metrics.ts";
import { PgChannel } from "./postgres.ts";
import { type L2Entry, RedisTier } from "./redis.ts";

export interface CacheOptions {
  /** CACHE=off: every read goes to the loader (benchmarks, diagnosis). */
  enabled: boolean;
  l1MaxItems: number;
  l1TtlMs: number;
  redisUrl?: string;
  redisTimeoutMs: number;
  /** Separates deployments (databases) sharing one Redis; derived from the database when unset. */
  namespace?: string;
}

export const DEFAULT_CACHE_OPTIONS: CacheOptions = { enabled: true, l1MaxItems: 10_000, l1TtlMs: 60_000, redisTimeoutMs: 100 };

/** Where the data lives, known once the database is open. */
export interface CacheTarget {
  dbKind: "postgres" | "pglite";
  /** PostgreSQL URL for the LISTEN connection (unset: no PostgreSQL channel). */
  databaseUrl?: string;
  /** Embedded database directory (names the Redis namespace). */
  dataDir?: string;
}

export interface CacheLog {
  warn(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
}

export interface CacheDeps {
  metrics?: CacheMetrics;
  log?: CacheLog;
  /** Monotonic milliseconds for TTLs (real elapsed time: a frozen test clock must not pin entries). */
  now?: () => number;
}

interface Flight {
  stale: boolean;
  promise: Promise<unknown>;
}

interface Pending<T> {
  flight: Flight;
  resolve(v: T): void;
  reject(e: unknown): void;
}

const SEP = "\u0000";
const idOf = (kind: CacheKind, key: string) => kind + SEP + key;
const SILENT: CacheLog = { warn() {}, info() {} };

export class Cache {
  private readonly l1: Lru<unknown>;
  private readonly flights = new Map<string, Flight>();
  private readonly metrics: CacheMetrics;
  private readonly log: CacheLog;
  private readonly now: () => number;
  private l1TtlMs: number;
  private redis: RedisTier | null = null;
  private pg: PgChannel | null = null;
  private readonly channels: { readonly up: boolean }[] = [];
  private readonly dropListeners = new Map<CacheKind, ((key: string) => void)[]>();

  constructor(
    readonly options: CacheOptions = DEFAULT_CACHE_OPTIONS,
    deps: CacheDeps = {},
  ) {
    this.metrics = deps.metrics ?? NO_CACHE_METRICS;
    this.log = deps.log ?? SILENT;
    this.now = deps.now ?? (() => performance.now());
    this.l1TtlMs = options.l1TtlMs;
    this.l1 = new Lru(options.l1MaxItems, (id) => this.metrics.count("eviction", "l1", kindOfId(id)));
  }

  /** Connects the channels and Redis for the database in use. Never fails for Redis being down. */
  async start(target: CacheTarget): Promise<void> {
    if (!this.options.enabled) return;
    const onMessage = (keys: CacheKey[] | null) => (keys === null ? this.clearLocal() : this.dropLocal(keys));
    // Over PostgreSQL: when the writer's Redis did not take the invalidation, Redis may still hold the
    // old value; it is not read here again before the epoch moved (before this process acknowledges).
    const onPgMessage = (keys: CacheKey[], redisMissed: boolean) => {
      if (redisMissed) this.redis?.suspect();
      this.dropLocal(keys);
    };
    const onChannel = (up: boolean) => {
      // Back: start empty, whatever L1 held may have missed a message while the channel was down.
      if (up) this.clearLocal();
    };
    if (target.dbKind === "postgres" && target.databaseUrl !== undefined) {
      this.pg = new PgChannel({ url: target.databaseUrl, log: this.log, onMessage: onPgMessage, onChannel });
      this.channels.push(this.pg);
    }
    if (this.options.redisUrl !== undefined) {
      this.redis = new RedisTier({
        url: this.options.redisUrl,
        namespace: this.options.namespace ?? namespaceOf(target),
        timeoutMs: this.options.redisTimeoutMs,
        log: this.log,
        onError: (n) => this.metrics.count("error", "l2", "all", n),
        onMessage,
        onChannel,
      });
      const redis = this.redis;
      this.channels.push({
        get up() {
          return redis.channelUp;
        },
      });
    }
    if (this.channels.length === 0 && target.dbKind === "postgres") {
      this.l1TtlMs = Math.min(this.l1TtlMs, 1000);
      this.log.warn({}, "no cache invalidation channel: in-process cache entries live at most 1 s");
    }
    await Promise.all([this.pg?.start(), this.redis?.start()]);
  }

  async close(): Promise<void> {
    await Promise.all([this.pg?.close(), this.redis?.close()]);
    this.clearLocal();
  }

  /** L1 may be served now (every channel this process relies on is listening). */
  get l1Usable(): boolean {
    if (!this.options.enabled) return false;
    for (const c of this.channels) if (!c.up) return false;
    return true;
  }

  /** Redis answers commands now (tests, health). */
  get l2Up(): boolean {
    return this.redis?.up ?? false;
  }

  /** Copies to Redis sent and not answered yet (tests wait for them: readers do not). */
  get l2Storing(): number {
    return this.redis?.storing ?? 0;
  }

  get l1Size(): number {
    return this.l1.size;
  }

  /** The cached value of `key`, or what `load` answers (then cached). `load` may answer null (cached too). */
  get<T>(kind: CacheKind, key: string, load: () => Promise<T>): Promise<T> {
    if (!this.options.enabled) return load();
    const id = idOf(kind, key);
    if (this.l1Usable) {
      const found = this.l1.get(id, this.now());
      if (found.hit) {
        this.metrics.count("hit", "l1", kind);
        return Promise.resolve(found.value as T);
      }
      this.metrics.count("miss", "l1", kind);
    }
    const flying = this.flights.get(id);
    if (flying !== undefined) return flying.promise as Promise<T>;
    return this.fill<T>(kind, [key], async () => new Map([[key, await load()]])).get(key)!;
  }

  /**
   * Several keys of one kind at once: L1, then one MGET for the rest, then one `loadMany` call for
   * what Redis did not have. `loadMany` must answer every key it is given (null for absent).
   */
  async getMany<T>(kind: CacheKind, keys: readonly string[], loadMany: (keys: string[]) => Promise<Map<string, T>>): Promise<Map<string, T>> {
    const out = new Map<string, T>();
    if (!this.options.enabled) return keys.length === 0 ? out : loadMany([...new Set(keys)]);
    const waits: Promise<unknown>[] = [];
    const todo: string[] = [];
    const useL1 = this.l1Usable;
    const now = this.now();
    for (const key of new Set(keys)) {
      const id = idOf(kind, key);
      if (useL1) {
        const found = this.l1.get(id, now);
        if (found.hit) {
          this.metrics.count("hit", "l1", kind);
          out.set(key, found.value as T);
          continue;
        }
        this.metrics.count("miss", "l1", kind);
      }
      const flying = this.flights.get(id);
      if (flying !== undefined) waits.push(flying.promise.then((v) => out.set(key, v as T)));
      else todo.push(key);
    }
    if (todo.length > 0) for (const [key, p] of this.fill(kind, todo, loadMany)) waits.push(p.then((v) => out.set(key, v)));
    await Promise.all(waits);
    return out;
  }

  /**
   * After the writing transaction committed, before answering: drops `keys` here and in Redis and
   * tells every other process. Never throws (a channel that fails is counted, logged once by it,
   * and the other channel is tried; when Redis did not take it, no process reads Redis again before
   * the epoch moved).
   */
  async invalidate(keys: readonly CacheKey[]): Promise<void> {
    if (!this.options.enabled || keys.length === 0) return;
    this.dropLocal(keys);
    if (this.redis !== null && (await this.redis.invalidate(keys))) return;
    if (this.pg === null) return;
    try {
      await this.pg.publish(keys, this.redis !== null);
    } catch {
      this.metrics.count("error", "l1", "all");
    }
  }

  /**
   * Calls `listener` with every key of `kind` invalidated here or announced by another process
   * (before the invalidating process's `invalidate` resolves, as far as the channel allows).
   */
  onDrop(kind: CacheKind, listener: (key: string) => void): void {
    const list = this.dropListeners.get(kind) ?? [];
    list.push(listener);
    this.dropListeners.set(kind, list);
  }

  /** Drops keys from this process only (a message from another process). */
  dropLocal(keys: readonly CacheKey[]): void {
    for (const { kind, key } of keys) {
      const listeners = this.dropListeners.get(kind);
      if (listeners !== undefined) for (const l of listeners) l(key);
      const id = idOf(kind, key);
      this.l1.delete(id);
      const flight = this.flights.get(id);
      if (flight !== undefined) {
        flight.stale = true;
        this.flights.delete(id);
      }
    }
  }

  /** Empties this process's tier; loads in flight store nothing. */
  clearLocal(): void {
    this.l1.clear();
    for (const f of this.flights.values()) f.stale = true;
    this.flights.clear();
  }

  // -----------------------------------------------------------------------------------------------

  /** Starts one flight per key (none in flight), all served by one L2 read and one load. */
  private fill<T>(kind: CacheKind, keys: readonly string[], loadMany: (keys: string[]) => Promise<Map<string, T>>): Map<string, Promise<T>> {
    const pending = new Map<string, Pending<T>>();
    const promises = new Map<string, Promise<T>>();
    for (const key of keys) {
      let resolve!: (v: T) => void;
      let reject!: (e: unknown) => void;
      const promise = new Promise<T>((res, rej) => {
        resolve = res;
        reject = rej;
      });
      const flight: Flight = { stale: false, promise };
      const id = idOf(kind, key);
      this.flights.set(id, flight);
      pending.set(key, { flight, resolve, reject });
      promises.set(key, promise);
      // The flight leaves the map when it settles (unless an invalidation replaced it already).
      promise.then(
        () => this.land(id, flight),
        () => this.land(id, flight),
      );
    }
    void this.run(kind, pending, loadMany);
    return promises;
  }

  private land(id: string, flight: Flight): void {
    if (this.flights.get(id) === flight) this.flights.delete(id);
  }

  private async run<T>(kind: CacheKind, pending: Map<string, Pending<T>>, loadMany: (keys: string[]) => Promise<Map<string, T>>): Promise<void> {
    const keys = [...pending.keys()];
    const cacheKeys = keys.map((key) => ({ kind, key }));
    let tokens: Map<string, string | null> | null = null;
    const missing: string[] = [];
    try {
      const l2 = this.redis === null ? null : await this.redis.read(cacheKeys);
      if (l2 !== null) tokens = new Map();
      keys.forEach((key, i) => {
        const got = l2?.entries[i];
        if (got === undefined) return void missing.push(key);
        tokens!.set(key, got.token);
        if (got.value !== null) {
          try {
            const value = decode<T>(got.value);
            this.metrics.count("hit", "l2", kind);
            this.settle(kind, key, pending.get(key)!, value);
            return;
          } catch {
            this.metrics.count("error", "l2", kind);
          }
        } else this.metrics.count("miss", "l2", kind);
        missing.push(key);
      });
      if (missing.length === 0) return;
      const loaded = await loadMany(missing);
      const toStore: L2Entry[] = [];
      for (const key of missing) {
        const p = pending.get(key)!;
        if (!loaded.has(key)) throw new Error(`cache loader answered no value for ${kind} ${key}`);
        const value = loaded.get(key) as T;
        if (tokens !== null && !p.flight.stale) {
          try {
            toStore.push({ key: { kind, key }, token: tokens.get(key) ?? null, text: encode(value), ttlMs: L2_TTL_MS[kind] });
          } catch (err) {
            if (!(err instanceof CodecError)) throw err;
            this.metrics.count("error", "l2", kind);
            this.log.warn({ err, kind }, "cache: value cannot be encoded for Redis; kept in process only");
          }
        }
        this.settle(kind, key, p, value);
      }
      // Not awaited by readers: the answer does not wait for Redis to take the copy.
      if (toStore.length > 0) void this.redis!.store(l2!.epoch, toStore);
    } catch (err) {
      for (const p of pending.values()) p.reject(err);
    }
  }

  private settle<T>(kind: CacheKind, key: string, p: Pending<T>, value: T): void {
    if (!p.flight.stale && this.l1Usable) this.l1.set(idOf(kind, key), value, this.now() + this.l1TtlMs);
    p.resolve(value);
  }
}

function kindOfId(id: string): CacheKind {
  const kind = id.slice(0, id.indexOf(SEP));
  return (CACHE_KINDS as readonly string[]).includes(kind) ? (kind as CacheKind) : "metric";
}

/** Deployments sharing a Redis stay apart: the namespace names the database (never its password). */
function namespaceOf(target: CacheTarget): string {
  let name: string;
  if (target.databaseUrl !== undefined) {
    const u = new URL(target.databaseUrl);
    name = `${u.hostname}:${u.port}${u.pathname}`;
  } else if (target.dataDir !== undefined) {
    name = `pglite:${target.dataDir}`;
  } else {
    // An injected database with nothing to name it by (tests): private to this instance.
    name = crypto.randomUUID();
  }
  return crypto.createHash("sha256").update(name).digest("hex").slice(0, 12);
}
