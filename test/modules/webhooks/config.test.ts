import { describe, expect, it } from "vitest";
import { ConfigError, loadConfig } from "../../../src/shared/config.ts";

function problemsOf(env: Record<string, string>): string[] {
  try {
    loadConfig(env);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as ConfigError).problems;
  }
  throw new Error(`expected ${JSON.stringify(env)} to be refused`);
}

describe("webhook configuration", () => {
  it("retries 10 times from 5 s, waits 10 s for an answer, looks every second, with the worker on", () => {
    expect(loadConfig({}).webhooks).toEqual({
      retryBaseMs: 5_000,
      maxAttempts: 10,
      timeoutMs: 10_000,
      pollMs: 1_000,
      worker: true,
      jwtIssuer: "valueverse-billing",
      privateNetworks: "deny",
    });
  });

  it("reads every variable", () => {
    expect(
      loadConfig({
        WEBHOOK_RETRY_BASE_MS: "250",
        WEBHOOK_MAX_ATTEMPTS: "3",
        WEBHOOK_TIMEOUT_MS: "1500",
        WEBHOOK_POLL_MS: "100",
        WEBHOOK_WORKER: "off",
        WEBHOOK_JWT_ISSUER: "https://billing.example.com",
        WEBHOOK_PRIVATE_NETWORKS: "allow",
      }).webhooks,
    ).toEqual({ retryBaseMs: 250, maxAttempts: 3, timeoutMs: 1_500, pollMs: 100, worker: false, jwtIssuer: "https://billing.example.com", privateNetworks: "allow" });
  });

  it.each([
    ["WEBHOOK_RETRY_BASE_MS", "0"],
    ["WEBHOOK_RETRY_BASE_MS", "soon"],
    ["WEBHOOK_MAX_ATTEMPTS", "0"],
    ["WEBHOOK_MAX_ATTEMPTS", "101"],
    ["WEBHOOK_TIMEOUT_MS", "1e4"],
    ["WEBHOOK_POLL_MS", "1"],
    ["WEBHOOK_WORKER", "yes"],
    ["WEBHOOK_PRIVATE_NETWORKS", "open"],
  ])("%s=%s is refused, naming the variable", (name, value) => {
    const problems = problemsOf({ [name]: value });
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(new RegExp(`^${name}\\b`));
  });
});
