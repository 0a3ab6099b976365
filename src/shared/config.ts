// Configuration comes from the environment and is validated once, at start: every bad value is
// reported together, naming the variable and what it accepts.
import path from "node:path";

export type IngestMode = "direct" | "naive";

export interface Config {
  port: number;
  host: string;
  dataDir: string;
  databaseUrl: string | undefined;
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
  ingest: {
    mode: IngestMode;
    batchMax: number;
    queueMax: number;
    writers: number;
    batchRequestMax: number;
  };
  webhooks: WebhookConfig;
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

  const databaseUrl = env.DATABASE_URL || undefined;
  if (databaseUrl !== undefined && !/^postgres(ql)?:\/\//.test(databaseUrl)) {
    problems.push("DATABASE_URL: must be a postgres:// or postgresql:// URL");
  }
  const workers = int("WORKERS", 1, 1, 64);
  if (workers > 1 && databaseUrl === undefined) {
    problems.push(
      `WORKERS=${workers}: more than one worker process needs DATABASE_URL (PostgreSQL); the embedded database belongs to a single process`,
    );
  }

  const config: Config = {
    port: int("PORT", 3000, 0, 65535),
    host: env.HOST || "0.0.0.0",
    dataDir: path.resolve(env.DATA_DIR || "./data"),
    databaseUrl,
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
    ingest: {
      mode: oneOf<IngestMode>("INGEST_MODE", "direct", ["direct", "naive"]),
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
    },
    ...overrides,
  };
  if (problems.length > 0) throw new ConfigError(problems);
  return config;
}
