// The PostgreSQL invalidation channel (LISTEN/NOTIFY) on a dedicated connection: the channel when no
// Redis is configured, and the fallback a writer uses when Redis could not take an invalidation.
//
// A NOTIFY is sent after the writer's commit and before it answers. PostgreSQL hands it to the other
// listening sessions asynchronously (each backend forwards it when it next idles), so the writer
// waits for an acknowledgement from every other listener (counted in pg_stat_activity by this
// connection's application_name), at most ACK_WAIT_MS: once they all dropped the keys, a client
// reading from any process after our answer cannot get the old value. A fallback for an invalidation
// Redis did not take says so (`r`): the receivers stop reading Redis before they acknowledge.
import crypto from "node:crypto";
import pg from "pg";
import type { CacheKey } from "./kinds.ts";

export const PG_CHANNEL = "valueverse_cache";
// NOTIFY payloads must stay under 8000 bytes.
const MAX_PAYLOAD = 7000;
const APPLICATION_NAME = "valueverse-cache";
const ACK_WAIT_MS = 250;

export interface PgChannelOptions {
  url: string;
  log: { warn(obj: object, msg: string): void; info(obj: object, msg: string): void };
  /** Keys another process invalidated; `redisMissed`: Redis may not have taken that invalidation. */
  onMessage(keys: CacheKey[], redisMissed: boolean): void;
  onChannel(up: boolean): void;
}

export class PgChannel {
  private client: pg.Client | null = null;
  private listening = false;
  private closed = false;
  private retryMs = 100;
  private logged = false;
  private readonly origin = crypto.randomBytes(8).toString("hex");
  private seq = 0;
  /** Statements on the channel's one client run one after another (node-postgres 9 refuses overlapping ones). */
  private chain: Promise<unknown> = Promise.resolve();
  /** Our invalidations waiting for the other listeners' acknowledgements, by sequence. */
  private readonly waiters = new Map<number, { acks: Set<string>; expected: number; done: () => void }>();

  constructor(private readonly opts: PgChannelOptions) {}

  get up(): boolean {
    return this.listening;
  }

  async start(): Promise<void> {
    await this.connect();
  }

  /**
   * One NOTIFY per ~7 kB of keys, then waits (at most a second) for its own copy to come back:
   * PostgreSQL has then signalled every listener, and their copies are on their way ahead of any
   * request a client sends them after our answer. Throws when the database cannot take it.
   * `redisMissed`: this is the fallback for an invalidation Redis may not have applied.
   */
  async publish(keys: readonly CacheKey[], redisMissed = false): Promise<void> {
    const client = this.client;
    if (client === null || !this.listening) throw new Error("the PostgreSQL cache channel is not connected");
    const seq = ++this.seq;
    const waiter = { acks: new Set<string>(), expected: Number.POSITIVE_INFINITY, done: () => {} };
    const acked = new Promise<void>((resolve) => (waiter.done = resolve));
    const timer = setTimeout(() => waiter.done(), ACK_WAIT_MS);
    this.waiters.set(seq, waiter);
    try {
      const payloads = [...chunks(this.origin, seq, keys, redisMissed)];
      for (const payload of payloads.slice(0, -1)) await this.serial(() => client.query("SELECT pg_notify($1, $2)", [PG_CHANNEL, payload]));
      const { rows } = await this.serial(() => client.query<{ listeners: string }>(
        `SELECT pg_notify($1, $2), (SELECT count(*) FROM pg_stat_activity
                                      WHERE datname = current_database() AND application_name = $3 AND pid <> pg_backend_pid())::text AS listeners`,
        [PG_CHANNEL, payloads.at(-1)!, APPLICATION_NAME],
      ));
      waiter.expected = Number(rows[0]?.listeners ?? 0);
      if (waiter.acks.size >= waiter.expected) waiter.done();
      await acked;
    } finally {
      clearTimeout(timer);
      this.waiters.delete(seq);
    }
  }

  private serial<T>(run: () => Promise<T>): Promise<T> {
    const next = this.chain.then(run, run);
    this.chain = next.catch(() => undefined);
    return next;
  }

  async close(): Promise<void> {
    this.closed = true;
    const c = this.client;
    this.client = null;
    this.listening = false;
    await c?.end().catch(() => {});
  }

  private async connect(): Promise<void> {
    if (this.closed) return;
    const client = new pg.Client({ connectionString: this.opts.url, application_name: APPLICATION_NAME });
    const lost = () => {
      if (this.client !== client) return;
      this.client = null;
      if (this.listening) {
        this.listening = false;
        this.opts.onChannel(false);
      }
      if (!this.logged && !this.closed) {
        this.logged = true;
        this.opts.log.warn({}, "cache invalidation channel (PostgreSQL LISTEN) lost: the in-process cache is bypassed until it is back");
      }
      client.end().catch(() => {});
      this.retry();
    };
    client.on("error", lost);
    client.on("end", lost);
    client.on("notification", (n) => {
      if (n.channel === PG_CHANNEL && n.payload !== undefined) this.onPayload(n.payload);
    });
    this.client = client;
    try {
      await client.connect();
      await client.query(`LISTEN ${PG_CHANNEL}`);
      if (this.client !== client) return;
      this.retryMs = 100;
      this.listening = true;
      if (this.logged) {
        this.logged = false;
        this.opts.log.info({}, "cache invalidation channel (PostgreSQL LISTEN) back");
      }
      this.opts.onChannel(true);
    } catch {
      lost();
    }
  }

  private retry(): void {
    if (this.closed) return;
    const wait = this.retryMs;
    this.retryMs = Math.min(this.retryMs * 2, 5000);
    setTimeout(() => void this.connect(), wait).unref();
  }

  private onPayload(text: string): void {
    let msg: { o?: string; k?: [string, string][]; s?: number; r?: number; ack?: string; by?: string };
    try {
      msg = JSON.parse(text);
    } catch {
      return;
    }
    if (msg.ack !== undefined) {
      if (msg.ack !== this.origin || typeof msg.s !== "number" || msg.by === undefined) return;
      const waiter = this.waiters.get(msg.s);
      if (waiter === undefined) return;
      waiter.acks.add(msg.by);
      if (waiter.acks.size >= waiter.expected) waiter.done();
      return;
    }
    if (msg.o === this.origin || !Array.isArray(msg.k)) return;
    this.opts.onMessage(
      msg.k.map(([kind, key]) => ({ kind, key }) as CacheKey),
      msg.r === 1,
    );
    // Only the last chunk of an invalidation carries its sequence: acknowledged once all arrived.
    if (typeof msg.s === "number" && this.client !== null) {
      const client = this.client;
      this.serial(() => client.query("SELECT pg_notify($1, $2)", [PG_CHANNEL, JSON.stringify({ ack: msg.o, s: msg.s, by: this.origin })])).catch(() => {});
    }
  }
}

/** The last chunk carries `seq`: notifications from one session arrive in order. */
function* chunks(origin: string, seq: number, keys: readonly CacheKey[], redisMissed: boolean): Generator<string> {
  const r = redisMissed ? { r: 1 } : {};
  let batch: [string, string][] = [];
  let size = 0;
  for (const k of keys) {
    const entrySize = Buffer.byteLength(JSON.stringify(k.key)) + k.kind.length + 6;
    if (batch.length > 0 && size + entrySize > MAX_PAYLOAD) {
      yield JSON.stringify({ o: origin, ...r, k: batch });
      batch = [];
      size = 0;
    }
    batch.push([k.kind, k.key]);
    size += entrySize;
  }
  yield JSON.stringify({ o: origin, s: seq, ...r, k: batch });
}
