import os from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { ConfigError, loadConfig } from "../../src/shared/config.ts";

function problemsOf(env: Record<string, string>): string[] {
  try {
    loadConfig(env);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as ConfigError).problems;
  }
  throw new Error(`expected ${JSON.stringify(env)} to be refused`);
}

describe("loadConfig: defaults", () => {
  const config = loadConfig({});

  it("listens on 0.0.0.0:3000", () => {
    expect(config.port).toBe(3000);
    expect(config.host).toBe("0.0.0.0");
  });

  it("uses the embedded database in ./data", () => {
    expect(config.databaseUrl).toBeUndefined();
    expect(config.dataDir).toBe(path.resolve("./data"));
  });

  it("sizes the pool with the brief's numbers (20 + 30 overflow, 30 s timeout, 30 min recycle)", () => {
    expect(config.pool).toEqual({ size: 20, maxOverflow: 30, timeoutMs: 30_000, recycleMs: 1_800_000 });
  });

  it("runs one worker process on the embedded database (one process owns it)", () => {
    expect(config.workers).toBe(1);
  });

  it("runs one worker process per core on PostgreSQL", () => {
    expect(loadConfig({ DATABASE_URL: "postgres://u@db:5432/billing" }).workers).toBe(Math.min(64, os.availableParallelism()));
  });

  it("has no read replica", () => {
    expect(config.databaseReadUrl).toBeUndefined();
    expect(config.databaseReadRetryMs).toBe(5_000);
  });

  it("logs at info, has no bootstrap key and no admin API", () => {
    expect(config.logLevel).toBe("info");
    expect(config.apiKey).toBeUndefined();
    expect(config.adminToken).toBeUndefined();
  });

  it("accepts batches of up to 10,000 events per request", () => {
    expect(config.ingest.batchRequestMax).toBe(10_000);
  });

  it("treats empty variables as unset", () => {
    expect(loadConfig({ PORT: "", DATABASE_URL: "", WORKERS: "", LOG_LEVEL: "" })).toEqual(config);
  });
});

describe("loadConfig: values from the environment", () => {
  it("reads every variable", () => {
    const c = loadConfig({
      PORT: "8080",
      HOST: "127.0.0.1",
      DATA_DIR: "/var/lib/vv",
      DATABASE_URL: "postgres://u@db:5432/billing",
      DATABASE_POOL_SIZE: "5",
      DATABASE_POOL_MAX_OVERFLOW: "0",
      DATABASE_POOL_TIMEOUT_MS: "1000",
      DATABASE_POOL_RECYCLE_MS: "60000",
      WORKERS: "4",
      LOG_LEVEL: "warn",
      VALUEVERSE_API_KEY: "k".repeat(16),
      VALUEVERSE_ADMIN_TOKEN: "a".repeat(32),
      INGEST_QUEUE_MAX: "10",
      INGEST_BATCH_REQUEST_MAX: "100",
    });
    expect(c).toMatchObject({
      port: 8080,
      host: "127.0.0.1",
      dataDir: "/var/lib/vv",
      databaseUrl: "postgres://u@db:5432/billing",
      pool: { size: 5, maxOverflow: 0, timeoutMs: 1000, recycleMs: 60_000 },
      workers: 4,
      logLevel: "warn",
      apiKey: "k".repeat(16),
      adminToken: "a".repeat(32),
    });
    expect(c.ingest.queueMax).toBe(10);
    expect(c.ingest.batchRequestMax).toBe(100);
  });

  it("allows several workers with DATABASE_URL", () => {
    expect(loadConfig({ WORKERS: "2", DATABASE_URL: "postgresql://localhost/x" }).workers).toBe(2);
  });

  it("keeps an explicit WORKERS=1 on PostgreSQL", () => {
    expect(loadConfig({ WORKERS: "1", DATABASE_URL: "postgresql://localhost/x" }).workers).toBe(1);
  });

  it("reads a replica URL beside DATABASE_URL", () => {
    const c = loadConfig({ DATABASE_URL: "postgres://u@primary/x", DATABASE_READ_URL: "postgres://u@replica/x", DATABASE_READ_RETRY_MS: "250" });
    expect(c.databaseReadUrl).toBe("postgres://u@replica/x");
    expect(c.databaseReadRetryMs).toBe(250);
  });
});

describe("loadConfig: bad values", () => {
  it.each([
    ["PORT", "http"],
    ["PORT", "70000"],
    ["PORT", "-1"],
    ["PORT", "3000.5"],
    ["DATABASE_POOL_SIZE", "0"],
    ["DATABASE_POOL_SIZE", "twenty"],
    ["DATABASE_POOL_MAX_OVERFLOW", "-5"],
    ["DATABASE_POOL_TIMEOUT_MS", "0"],
    ["DATABASE_POOL_RECYCLE_MS", "1e6"],
    ["WORKERS", "0"],
    ["LOG_LEVEL", "loud"],
    ["DATABASE_URL", "mysql://localhost/x"],
    ["DATABASE_READ_RETRY_MS", "0"],
    ["VALUEVERSE_API_KEY", "short"],
    ["VALUEVERSE_API_KEY", "has a space in it!!"],
    ["VALUEVERSE_ADMIN_TOKEN", "short"],
    ["RETENTION_DAYS", "forever"],
    ["INGEST_QUEUE_MAX", "0"],
    ["INGEST_BATCH_REQUEST_MAX", "lots"],
  ])("%s=%s is refused, naming the variable", (name, value) => {
    const problems = problemsOf({ [name]: value });
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(new RegExp(`^${name}\\b`));
  });

  it("reports every bad value together, each by its variable name", () => {
    const problems = problemsOf({
      PORT: "abc",
      DATABASE_POOL_SIZE: "0",
      DATABASE_POOL_TIMEOUT_MS: "soon",
      LOG_LEVEL: "chatty",
      VALUEVERSE_ADMIN_TOKEN: "123",
    });
    expect(problems).toHaveLength(5);
    for (const name of ["PORT", "DATABASE_POOL_SIZE", "DATABASE_POOL_TIMEOUT_MS", "LOG_LEVEL", "VALUEVERSE_ADMIN_TOKEN"]) {
      expect(problems.some((p) => p.startsWith(name))).toBe(true);
    }
  });

  it("puts every problem in the error message", () => {
    expect(() => loadConfig({ PORT: "abc", LOG_LEVEL: "chatty" })).toThrow(/PORT[\s\S]*LOG_LEVEL/);
  });

  it("says what a bad value should be", () => {
    expect(problemsOf({ PORT: "abc" })[0]).toContain("between 0 and 65535");
    expect(problemsOf({ LOG_LEVEL: "chatty" })[0]).toContain("fatal, error, warn, info, debug, trace, silent");
  });

  it("refuses WORKERS > 1 without DATABASE_URL, explaining why", () => {
    const [problem] = problemsOf({ WORKERS: "2" });
    expect(problem).toMatch(/^WORKERS=2/);
    expect(problem).toContain("DATABASE_URL");
    expect(problem).toContain("embedded database");
  });

  it("refuses DATABASE_READ_URL without DATABASE_URL: the embedded database has no replicas", () => {
    const [problem] = problemsOf({ DATABASE_READ_URL: "postgres://u@replica/x" });
    expect(problem).toMatch(/^DATABASE_READ_URL\b/);
    expect(problem).toContain("DATABASE_URL");
  });

  it("refuses a DATABASE_READ_URL that is not PostgreSQL", () => {
    const [problem] = problemsOf({ DATABASE_URL: "postgres://u@primary/x", DATABASE_READ_URL: "mysql://replica/x" });
    expect(problem).toBe("DATABASE_READ_URL: must be a postgres:// or postgresql:// URL");
  });

  it("never echoes a secret's value in its problem", () => {
    const [problem] = problemsOf({ VALUEVERSE_API_KEY: "secret-xyz" });
    expect(problem).not.toContain("secret-xyz");
  });
});
