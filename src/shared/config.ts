// Configuration comes from the environment and is validated once, at start: every bad value is
// reported together, naming the variable and what it accepts.
import os from "node:os";
import path from "node:path";
import { parseRetrySchedule } from "../modules/payments/core/dunning.ts";

export type IngestMode = "direct" | "naive" | "jetstream";

export interface Config {
  port: number;
  host: string;
  dataDir: string;
  databaseUrl: string | undefined;
  /** DATABASE_READ_URL: a streaming replica of DATABASE_URL for list and usage reads (src/db/replica.ts). */
  databaseReadUrl: string | undefined;
  /** DATABASE_READ_RETRY_MS: while the replica is unavailable, how often it is probed again. */
  databaseReadRetryMs: number;
  pool: { size: number; maxOverflow: number; timeoutMs: number; recycleMs: number };
  workers: number;
  logLevel: string;
  apiKey: string | undefined;
  adminToken: string | undefined;
  retentionDays: number;
  /** VALUEVERSE_TEST_CLOCK=on: each organization may freeze its own clock (PUT /api/v1/test_clock). */
  testClock: boolean;
  /** BILLING_SCHEDULER=on (default): the server runs the billing job every minute; `valueverse bill` runs it on demand. */
  billingScheduler: boolean;
  /** BILLING_BATCH_SIZE: subscriptions per transaction on the billing job's batch path (0: one at a time). */
  billingBatchSize: number;
  /**
   * ROLLUP_GROUP_MAX_ROWS_PERCENT: a pricing group key stays out of a metric's rollups (its grouped
   * usage read from raw events) when keeping it would make them more than this many rows per 100
   * sampled events (src/modules/metering, boundGroupKeys); 100 keeps every key.
   */
  rollupGroupMaxRowsPercent: number;
  /** ALERTS_POLL_MS: how often usage alerts are evaluated against live usage (src/modules/alerts). */
  alertsPollMs: number;
  ingest: {
    mode: IngestMode;
    batchMax: number;
    queueMax: number;
    writers: number;
    batchRequestMax: number;
  };
  webhooks: WebhookConfig;
  payments: PaymentConfig;
  /** NATS JetStream (INGEST_MODE=jetstream: the API publishes, `valueverse ingest-worker` writes). */
  nats: NatsConfig;
  cache: CacheConfig;
}

/** The two-tier cache (src/modules/cache). */
export interface CacheConfig {
  /** CACHE=off: no caching at all (diagnosis, benchmarks). */
  enabled: boolean;
  /** REDIS_URL: the shared tier and the invalidation channel; unset: in-process tier only. */
  redisUrl: string | undefined;
  /** CACHE_L1_MAX_ITEMS: entries of the in-process LRU. */
  l1MaxItems: number;
  /** CACHE_L1_TTL_MS: how long the in-process tier keeps an entry at most. */
  l1TtlMs: number;
  /** CACHE_REDIS_TIMEOUT_MS: a Redis command not answered by then failed (the database answers). */
  redisTimeoutMs: number;
  /** CACHE_NAMESPACE: separates deployments sharing a Redis; derived from the database when unset. */
  namespace: string | undefined;
}

/** Decoupled ingestion through a replicated JetStream stream (src/modules/jetstream). */
export interface NatsConfig {
  /** NATS_URL: the cluster's servers, comma-separated (`nats://host:port` or `host:port`). */
  servers: string[];
  /** NATS_STREAM: the stream's name. */
  stream: string;
  /** NATS_SUBJECT: subject prefix; an organization's events go to `<prefix>.<organization>`. */
  subject: string;
  /** NATS_REPLICAS: copies of every message (one per JetStream server; the cluster needs at least this many). */
  replicas: number;
  /** NATS_DUPLICATE_WINDOW_MS: JetStream drops a publish whose Nats-Msg-Id it saw this recently. */
  duplicateWindowMs: number;
  /** NATS_CONSUMER: the durable pull consumer every ingest worker shares. */
  consumer: string;
  /** NATS_ACK_WAIT_MS: a message a worker took and did not acknowledge by then goes to another one. */
  ackWaitMs: number;
  /** NATS_PUBLISH_TIMEOUT_MS: how long the API keeps trying to get an event into the stream before a 503. */
  publishTimeoutMs: number;
  /** NATS_EVENTS_PER_MESSAGE: most events of one batch request in one stream message (1: a message per event). */
  eventsPerMessage: number;
}

/** Invoice collection (src/modules/payments). */
export interface PaymentConfig {
  /** PAYMENT_RETRY_SCHEDULE: waits before the 2nd, 3rd, … attempt after a transient failure or timeout. */
  retryScheduleMs: number[];
  /** PAYMENT_TIMEOUT_MS: an attempt the provider has not answered by then is a timeout. */
  timeoutMs: number;
  /** PAYMENT_POLL_MS: how often the payment worker looks for due payments. */
  pollMs: number;
  /** PAYMENT_WORKER=off: this process charges nothing (another process, or tests calling runDue, do). */
  worker: boolean;
  /** PAYMENT_SANDBOX=off: no built-in sandbox provider (customers naming it are not charged). */
  sandbox: boolean;
}

/** Webhook delivery (src/modules/webhooks). */
export interface WebhookConfig {
  /** WEBHOOK_RETRY_BASE_MS: the wait after a first failed attempt; each next wait is 4 times longer (at most 6 h). */
  retryBaseMs: number;
  /** WEBHOOK_MAX_ATTEMPTS: attempts per delivery, the first included; then it is marked failed. */
  maxAttempts: number;
  /** WEBHOOK_TIMEOUT_MS: an attempt not answered by then has failed. */
  timeoutMs: number;
  /** WEBHOOK_POLL_MS: how often the delivery worker looks for due deliveries. */
  pollMs: number;
  /** WEBHOOK_WORKER=off: this process sends nothing (another process, or tests calling deliverDue, do). */
  worker: boolean;
  /** WEBHOOK_JWT_ISSUER: the `iss` claim of `jwt` signatures (Lago: its API URL). */
  jwtIssuer: string;
  /** WEBHOOK_PRIVATE_NETWORKS: `deny` (default) refuses endpoints on loopback, private and link-local addresses; `allow` posts anywhere. */
  privateNetworks: "deny" | "allow";
}

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n  - ${problems.join("\n  - ")}`);
    this.name = "ConfigError";
  }
}

type Env = Record<string, string | undefined>;

const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"];

export function loadConfig(env: Env = process.env, overrides: Partial<Config> = {}): Config {
  const problems: string[] = [];

  const int = (name: string, fallback: number, min: number, max: number): number => {
    const raw = env[name];
    if (raw === undefined || raw === "") return fallback;
    if (!/^\d+$/.test(raw.trim())) {
      problems.push(`${name}=${JSON.stringify(raw)}: must be a whole number between ${min} and ${max}`);
      return fallback;
    }
    const value = Number(raw.trim());
    if (value < min || value > max) problems.push(`${name}=${raw}: must be between ${min} and ${max}`);
    return value;
  };
  const oneOf = <T extends string>(name: string, fallback: T, allowed: readonly T[]): T => {
    const raw = env[name];
    if (raw === undefined || raw === "") return fallback;
    if (!(allowed as readonly string[]).includes(raw)) {
      problems.push(`${name}=${JSON.stringify(raw)}: must be one of ${allowed.join(", ")}`);
      return fallback;
    }
    return raw as T;
  };
  const secret = (name: string, minLength: number): string | undefined => {
    const raw = env[name];
    if (raw === undefined || raw === "") return undefined;
    if (raw.length < minLength || /\s/.test(raw)) {
      problems.push(`${name}: must be at least ${minLength} characters with no whitespace`);
      return undefined;
    }
    return raw;
  };
  const retrySchedule = (name: string, fallback: string): number[] => {
    const raw = env[name];
    const read = parseRetrySchedule(raw === undefined || raw === "" ? fallback : raw);
    if (read.ok) return read.value;
    problems.push(`${name}=${JSON.stringify(raw)}: ${read.reason}; expected comma-separated waits such as "1h,1d,3d" (units ms, s, m, h, d) or "none"`);
    return [];
  };

  const databaseUrl = env.DATABASE_URL || undefined;
  if (databaseUrl !== undefined && !/^postgres(ql)?:\/\//.test(databaseUrl)) {
    problems.push("DATABASE_URL: must be a postgres:// or postgresql:// URL");
  }
  const databaseReadUrl = env.DATABASE_READ_URL || undefined;
  if (databaseReadUrl !== undefined) {
    if (!/^postgres(ql)?:\/\//.test(databaseReadUrl)) problems.push("DATABASE_READ_URL: must be a postgres:// or postgresql:// URL");
    else if (databaseUrl === undefined) problems.push("DATABASE_READ_URL: a read replica needs DATABASE_URL (its PostgreSQL primary); the embedded database has no replicas");
  }
  // One process per core on PostgreSQL; the embedded database belongs to a single process.
  const workers = int("WORKERS", databaseUrl ? Math.min(64, os.availableParallelism()) : 1, 1, 64);
  if (workers > 1 && databaseUrl === undefined) {
    problems.push(
      `WORKERS=${workers}: more than one worker process needs DATABASE_URL (PostgreSQL); the embedded database belongs to a single process`,
    );
  }

  const redisUrl = env.REDIS_URL || undefined;
  if (redisUrl !== undefined && !/^rediss?:\/\/./.test(redisUrl)) problems.push("REDIS_URL: must be a redis:// or rediss:// URL");

  const natsServers = (env.NATS_URL ?? "").split(",").map((s) => s.trim()).filter((s) => s !== "");
  for (const server of natsServers) {
    if (!/^((nats|tls|ws|wss):\/\/)?[^\s/,:]+(:\d{1,5})?$/.test(server)) {
      problems.push(`NATS_URL: ${JSON.stringify(server)} is not a NATS server address (nats://host:port or host:port, comma-separated)`);
    }
  }
  const name = (varName: string, fallback: string, pattern: RegExp, what: string): string => {
    const raw = env[varName];
    if (raw === undefined || raw === "") return fallback;
    if (!pattern.test(raw)) problems.push(`${varName}=${JSON.stringify(raw)}: ${what}`);
    return raw;
  };

  const config: Config = {
    port: int("PORT", 3000, 0, 65535),
    host: env.HOST || "0.0.0.0",
    dataDir: path.resolve(env.DATA_DIR || "./data"),
    databaseUrl,
    databaseReadUrl,
    databaseReadRetryMs: int("DATABASE_READ_RETRY_MS", 5_000, 10, 3_600_000),
    pool: {
      size: int("DATABASE_POOL_SIZE", 20, 1, 1000),
      maxOverflow: int("DATABASE_POOL_MAX_OVERFLOW", 30, 0, 1000),
      timeoutMs: int("DATABASE_POOL_TIMEOUT_MS", 30_000, 1, 3_600_000),
      recycleMs: int("DATABASE_POOL_RECYCLE_MS", 1_800_000, 1000, 86_400_000),
    },
    workers,
    logLevel: oneOf("LOG_LEVEL", "info", LOG_LEVELS),
    apiKey: secret("VALUEVERSE_API_KEY", 16),
    adminToken: secret("VALUEVERSE_ADMIN_TOKEN", 16),
    retentionDays: int("RETENTION_DAYS", 365, 0, 36_500),
    // Never on by default: a frozen clock changes what "now" means for billing.
    testClock: oneOf("VALUEVERSE_TEST_CLOCK", "off", ["on", "off"]) === "on",
    billingScheduler: oneOf("BILLING_SCHEDULER", "on", ["on", "off"]) === "on",
    billingBatchSize: int("BILLING_BATCH_SIZE", 500, 0, 10_000),
    rollupGroupMaxRowsPercent: int("ROLLUP_GROUP_MAX_ROWS_PERCENT", 50, 1, 100),
    alertsPollMs: int("ALERTS_POLL_MS", 60_000, 100, 86_400_000),
    ingest: {
      mode: oneOf<IngestMode>("INGEST_MODE", "direct", ["direct", "naive", "jetstream"]),
      batchMax: int("INGEST_BATCH_MAX", 1000, 1, 100_000),
      queueMax: int("INGEST_QUEUE_MAX", 100_000, 1, 10_000_000),
      writers: int("INGEST_WRITERS", databaseUrl ? 2 : 1, 1, 64),
      batchRequestMax: int("INGEST_BATCH_REQUEST_MAX", 10_000, 1, 100_000),
    },
    webhooks: {
      retryBaseMs: int("WEBHOOK_RETRY_BASE_MS", 5_000, 1, 86_400_000),
      maxAttempts: int("WEBHOOK_MAX_ATTEMPTS", 10, 1, 100),
      timeoutMs: int("WEBHOOK_TIMEOUT_MS", 10_000, 10, 300_000),
      pollMs: int("WEBHOOK_POLL_MS", 1_000, 10, 3_600_000),
      worker: oneOf("WEBHOOK_WORKER", "on", ["on", "off"]) === "on",
      jwtIssuer: env.WEBHOOK_JWT_ISSUER || "valueverse-billing",
      privateNetworks: oneOf("WEBHOOK_PRIVATE_NETWORKS", "deny", ["deny", "allow"]),
    },
    payments: {
      retryScheduleMs: retrySchedule("PAYMENT_RETRY_SCHEDULE", "1h,1d,3d"),
      timeoutMs: int("PAYMENT_TIMEOUT_MS", 30_000, 10, 600_000),
      pollMs: int("PAYMENT_POLL_MS", 1_000, 10, 3_600_000),
      worker: oneOf("PAYMENT_WORKER", "on", ["on", "off"]) === "on",
      sandbox: oneOf("PAYMENT_SANDBOX", "on", ["on", "off"]) === "on",
    },
    nats: {
      servers: natsServers,
      stream: name("NATS_STREAM", "VALUEVERSE_EVENTS", /^[A-Za-z0-9_-]{1,64}$/, "letters, digits, _ and - (at most 64)"),
      subject: name("NATS_SUBJECT", "valueverse.events", /^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/, "dot-separated tokens of letters, digits, _ and - (no wildcards)"),
      replicas: int("NATS_REPLICAS", 3, 1, 5),
      duplicateWindowMs: int("NATS_DUPLICATE_WINDOW_MS", 120_000, 1_000, 86_400_000),
      consumer: name("NATS_CONSUMER", "valueverse-ingest", /^[A-Za-z0-9_-]{1,64}$/, "letters, digits, _ and - (at most 64)"),
      ackWaitMs: int("NATS_ACK_WAIT_MS", 30_000, 1_000, 3_600_000),
      publishTimeoutMs: int("NATS_PUBLISH_TIMEOUT_MS", 10_000, 100, 120_000),
      eventsPerMessage: int("NATS_EVENTS_PER_MESSAGE", 100, 1, 1000),
    },
    cache: {
      enabled: oneOf("CACHE", "on", ["on", "off"]) === "on",
      redisUrl,
      l1MaxItems: int("CACHE_L1_MAX_ITEMS", 10_000, 1, 10_000_000),
      l1TtlMs: int("CACHE_L1_TTL_MS", 60_000, 1, 86_400_000),
      redisTimeoutMs: int("CACHE_REDIS_TIMEOUT_MS", 100, 1, 60_000),
      namespace: env.CACHE_NAMESPACE || undefined,
    },
    ...overrides,
  };
  if (config.ingest.mode === "jetstream") {
    if (config.nats.servers.length === 0) problems.push("INGEST_MODE=jetstream: needs NATS_URL (the JetStream cluster's servers, comma-separated)");
    if (config.databaseUrl === undefined) {
      problems.push("INGEST_MODE=jetstream: needs DATABASE_URL (PostgreSQL): the ingest workers are other processes, and the embedded database belongs to one");
    }
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return config;
}
