// The PostgreSQL invalidation channel (LISTEN/NOTIFY) on a dedicated connection: the channel when no
// Redis is configured, and the fallback a writer uses when Redis could not take an invalidation.
// A NOTIFY is sent after the writer's commit and before it answers; every process listening on the
// database drops the keys from its in-process tier when the notification arrives.
import crypto from "node:crypto";
import pg from "pg";
import type { CacheKey } from "./kinds.ts";

export const PG_CHANNEL = "valueverse_cache";
// NOTIFY payloads must stay under 8000 bytes.
const MAX_PAYLOAD = 7000;

export interface PgChannelOptions {
  url: string;
  log: { warn(obj: object, msg: string): void; info(obj: object, msg: string): void };
  onMessage(keys: CacheKey[] | null): void;
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
  private readonly echoes = new Map<number, () => void>();

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
   */
  async publish(keys: readonly CacheKey[]): Promise<void> {
    const client = this.client;
    if (client === null || !this.listening) throw new Error("the PostgreSQL cache channel is not connected");
    const seq = ++this.seq;
    let echoed!: () => void;
    const echo = new Promise<void>((resolve) => (echoed = resolve));
    const timer = setTimeout(() => echoed(), 1000);
    this.echoes.set(seq, echoed);
    try {
      for (const payload of chunks(this.origin, seq, keys)) await client.query("SELECT pg_notify($1, $2)", [PG_CHANNEL, payload]);
      await echo;
      await new Promise((resolve) => setImmediate(resolve));
    } finally {
      clearTimeout(timer);
      this.echoes.delete(seq);
    }
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
    const client = new pg.Client({ connectionString: this.opts.url, application_name: "valueverse-cache" });
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
    let msg: { o?: string; k?: [string, string][]; s?: number };
    try {
      msg = JSON.parse(text);
    } catch {
      return;
    }
    if (msg.o === this.origin) {
      if (typeof msg.s === "number") this.echoes.get(msg.s)?.();
      return;
    }
    if (!Array.isArray(msg.k)) return;
    this.opts.onMessage(msg.k.map(([kind, key]) => ({ kind, key }) as CacheKey));
  }
}

/** The last chunk carries `seq`: notifications from one session arrive in order. */
function* chunks(origin: string, seq: number, keys: readonly CacheKey[]): Generator<string> {
  let batch: [string, string][] = [];
  let size = 0;
  for (const k of keys) {
    const entrySize = Buffer.byteLength(JSON.stringify(k.key)) + k.kind.length + 6;
    if (batch.length > 0 && size + entrySize > MAX_PAYLOAD) {
      yield JSON.stringify({ o: origin, k: batch });
      batch = [];
      size = 0;
    }
    batch.push([k.kind, k.key]);
    size += entrySize;
  }
  yield JSON.stringify({ o: origin, s: seq, k: batch });
}
