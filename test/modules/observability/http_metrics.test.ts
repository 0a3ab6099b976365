import client from "prom-client";
import { describe, expect, it } from "vitest";
import type { Db } from "../../../src/db/db.ts";
import { createMetrics } from "../../../src/observability/metrics.ts";

const db = { poolStats: () => ({ total: 1, idle: 1, waiting: 0, max: 2 }) } as unknown as Db;
const BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.5, 1, 2.5, 5, 10];

/** prom-client's own labelled histogram and counter, as the HTTP metrics were first written. */
function reference() {
  const registry = new client.Registry();
  const labelNames = ["route", "method", "status"];
  const h = new client.Histogram({ name: "http_request_duration_seconds", help: "HTTP request latency by route, method and status", labelNames, buckets: BUCKETS, registers: [registry] });
  const c = new client.Counter({ name: "http_requests_total", help: "HTTP requests by route, method and status", labelNames, registers: [registry] });
  return {
    registry,
    observe(route: string, method: string, status: number, seconds: number) {
      const labels = { route, method, status: String(status) };
      h.labels(labels).observe(seconds);
      c.labels(labels).inc();
    },
  };
}

const httpLines = (text: string) => text.split("\n").filter((l) => l.includes("http_request")).join("\n");

describe("HTTP request metrics", () => {
  it("export exactly what prom-client's labelled histogram and counter export for the same requests", async () => {
    const m = createMetrics(db);
    const ref = reference();
    const routes = ["/api/v1/events", "unmatched", "/api/v1/events/:transaction_id"];
    for (let i = 0; i < 3000; i++) {
      // Durations on and around every bucket bound, and past the last one.
      const seconds = i % 50 === 0 ? BUCKETS[(i / 50) % BUCKETS.length]! : Math.pow(10, -4 + (i % 101) / 20);
      const args = [routes[i % 3]!, i % 7 === 0 ? "GET" : "POST", [200, 404, 422, 500][(i >> 3) % 4]!, seconds] as const;
      m.httpRequest(...args);
      ref.observe(...args);
    }
    const ours = httpLines(await m.registry.metrics());
    expect(ours).toContain('http_requests_total{route="/api/v1/events",method="POST",status="200"}');
    expect(ours).toBe(httpLines(await ref.registry.metrics()));
    // What the cluster primary aggregates: the JSON form, too.
    const json = async (r: client.Registry) => (await r.getMetricsAsJSON()).filter((x) => x.name.startsWith("http_"));
    expect(await json(m.registry)).toEqual(await json(ref.registry));
  });

  it("sum across workers like prom-client's metrics (node:cluster aggregation)", async () => {
    const a = createMetrics(db);
    const b = createMetrics(db);
    a.httpRequest("/api/v1/events", "POST", 200, 0.003);
    b.httpRequest("/api/v1/events", "POST", 200, 0.3);
    b.httpRequest("/api/v1/events", "POST", 422, 0.002);
    const merged = client.AggregatorRegistry.aggregate([await a.registry.getMetricsAsJSON(), await b.registry.getMetricsAsJSON()]);
    const text = await merged.metrics();
    expect(text).toMatch(/^http_requests_total\{route="\/api\/v1\/events",method="POST",status="200"\} 2$/m);
    expect(text).toMatch(/^http_request_duration_seconds_bucket\{le="0.005",route="\/api\/v1\/events",method="POST",status="200"\} 1$/m);
    expect(text).toMatch(/^http_request_duration_seconds_count\{route="\/api\/v1\/events",method="POST",status="200"\} 2$/m);
    expect(text).toMatch(/^http_request_duration_seconds_sum\{route="\/api\/v1\/events",method="POST",status="422"\} 0.002$/m);
  });
});
