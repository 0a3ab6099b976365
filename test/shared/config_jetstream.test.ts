// INGEST_MODE=jetstream and the NATS_* variables.
import { describe, expect, it } from "vitest";
import { ConfigError, loadConfig } from "../../src/shared/config.ts";

function problems(env: Record<string, string>): string[] {
  try {
    loadConfig(env);
    return [];
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
}

const PG = "postgres://u@127.0.0.1:5432/db";

describe("loadConfig: JetStream ingestion", () => {
  it("defaults to direct mode and a 3-replica stream", () => {
    const c = loadConfig({});
    expect(c.ingest.mode).toBe("direct");
    expect(c.nats).toEqual({
      servers: [],
      stream: "VALUEVERSE_EVENTS",
      subject: "valueverse.events",
      replicas: 3,
      duplicateWindowMs: 120_000,
      consumer: "valueverse-ingest",
      ackWaitMs: 30_000,
      publishTimeoutMs: 10_000,
      eventsPerMessage: 100,
    });
  });

  it("reads the servers, comma-separated, with or without a scheme", () => {
    const c = loadConfig({ INGEST_MODE: "jetstream", DATABASE_URL: PG, NATS_URL: " nats://10.0.0.1:4222, 10.0.0.2:4222 ,tls://n3.example:4443" });
    expect(c.ingest.mode).toBe("jetstream");
    expect(c.nats.servers).toEqual(["nats://10.0.0.1:4222", "10.0.0.2:4222", "tls://n3.example:4443"]);
  });

  it("needs NATS_URL and DATABASE_URL in jetstream mode, naming both", () => {
    const p = problems({ INGEST_MODE: "jetstream" });
    expect(p).toHaveLength(2);
    expect(p[0]).toMatch(/^INGEST_MODE=jetstream: needs NATS_URL/);
    expect(p[1]).toMatch(/^INGEST_MODE=jetstream: needs DATABASE_URL/);
  });

  it("reports every bad NATS variable by name", () => {
    const p = problems({
      NATS_URL: "nats://ok:4222,http://x/y",
      NATS_STREAM: "bad.name",
      NATS_SUBJECT: "events.>",
      NATS_REPLICAS: "7",
      NATS_DUPLICATE_WINDOW_MS: "10",
      NATS_CONSUMER: "a b",
      NATS_ACK_WAIT_MS: "x",
      NATS_PUBLISH_TIMEOUT_MS: "0",
    });
    expect(new Set(p.map((x) => x.split(/[=:]/)[0]))).toEqual(
      new Set(["NATS_URL", "NATS_STREAM", "NATS_SUBJECT", "NATS_REPLICAS", "NATS_DUPLICATE_WINDOW_MS", "NATS_CONSUMER", "NATS_ACK_WAIT_MS", "NATS_PUBLISH_TIMEOUT_MS"]),
    );
    expect(p.find((x) => x.startsWith("NATS_URL"))).toContain('"http://x/y" is not a NATS server address');
    expect(p).toHaveLength(8);
  });

  it("refuses an unknown mode", () => {
    expect(problems({ INGEST_MODE: "kafka" })).toEqual(['INGEST_MODE="kafka": must be one of direct, naive, jetstream']);
  });
});
