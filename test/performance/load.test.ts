// The load-test tool itself: a 5-second, 5-user quick run against a server it starts (embedded
// database), then its JSON summary and HTML report.
import { execFile } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterAll, describe, expect, it } from "vitest";
import type { Summary } from "../../tests/performance/load.ts";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const run = promisify(execFile);
const outDir = fs.mkdtempSync(path.join(os.tmpdir(), "vv-load-test-"));

afterAll(() => fs.rmSync(outDir, { recursive: true, force: true }));

describe("load test driver (tests/performance)", () => {
  // The embedded database, always: a DATABASE_URL of the caller's must not receive the load.
  const env = { ...process.env };
  delete env.DATABASE_URL;
  delete env.LOAD_TEST_API_KEY;
  delete env.LOAD_TEST_URL;

  it("runs a short quick load against a server it starts and writes the summary and the HTML report", async () => {
    const { stdout } = await run(
      path.join(ROOT, "tests/performance/run_load_test.sh"),
      ["quick", "--start-server", "--duration", "5", "--users", "5", "--customers", "5", "--out-dir", outDir],
      { cwd: ROOT, env, timeout: 40_000, maxBuffer: 1 << 24 },
    );
    expect(stdout).toContain("Against the brief's targets");

    const summary = JSON.parse(fs.readFileSync(path.join(outDir, "summary.json"), "utf8")) as Summary;
    expect(summary.mode).toBe("quick");
    expect(summary.config.stages).toEqual([{ users: 5, seconds: 5 }]);
    expect(summary.totals.requests).toBeGreaterThan(0);
    expect(summary.totals.seconds).toBeGreaterThan(4);
    expect(summary.totals.seconds).toBeLessThan(20);
    // Every operation of the mix the server supports has its own breakdown.
    const measured = Object.keys(summary.operations);
    expect(measured.length).toBeGreaterThanOrEqual(3);
    expect(measured).toEqual(expect.arrayContaining(["single_event", "batch_events", "list_customers"]));
    for (const op of Object.values(summary.operations)) {
      expect(op.requests).toBeGreaterThan(0);
      expect(op.latency_ms.p50).toBeGreaterThan(0);
      expect(op.latency_ms.p99).toBeGreaterThanOrEqual(op.latency_ms.p50!);
    }
    for (const skipped of Object.keys(summary.setup.skipped_operations)) expect(measured).not.toContain(skipped);
    expect(summary.targets.map((t) => t.metric)).toEqual(["Events/minute", "P95 response time", "P99 response time", "Error rate", "Server CPU (avg)", "Server memory (peak)"]);
    expect(summary.server?.pids.length).toBeGreaterThan(0);
    expect(summary.server?.rss_peak_bytes).toBeGreaterThan(0);
    expect(summary.timeline.length).toBeGreaterThanOrEqual(4);

    const html = fs.readFileSync(path.join(outDir, "report.html"), "utf8");
    for (const id of ["chart-events", "chart-throughput", "chart-latency", "chart-latency-ops", "chart-cpu"]) expect(html).toContain(`id="${id}"`);
    expect(html.match(/<path d="M/g)?.length ?? 0).toBeGreaterThan(3);
    expect(html).not.toMatch(/<script[^>]+src=|<link[^>]+href=/); // self-contained
  }, 45_000);
});
