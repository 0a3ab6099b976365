// Every metric (and label) that deploy/prometheus/alerts.yml and the Grafana dashboards query is one the
// server exports on GET /metrics. deploy/prometheus/alerts-jetstream.yml is not checked here: its
// metrics exist only with INGEST_MODE=jetstream (see deploy/README.md).
import path from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { startTestApp, type TestApp } from "../helpers/app.ts";
import { DEPLOY, dashboardFiles, dashboardQueries, loadRules } from "./artefacts.ts";
import { checkExpression, metricNames, parseExposition, parsePromql, substituteGrafanaVariables, type Exposition } from "./promql.ts";

const alertRules = loadRules(path.join(DEPLOY, "prometheus/alerts.yml"));
const queries = dashboardFiles().flatMap(dashboardQueries);

describe("PromQL metric extraction", () => {
  test("finds metric names through functions, aggregations, binary operators, offsets and subqueries", () => {
    expect(
      metricNames(
        'histogram_quantile(0.95, sum by (le) (rate(http_request_duration_seconds_bucket{route!~"/health"}[5m]))) > 0.1 ' +
          "and on() sum(rate(billing_usage_events_total[1m] offset 1w)) >= 10000 " +
          "unless max_over_time(deriv(db_pool_waiting_requests[10m])[1h:1m]) > 0",
      ),
    ).toEqual(["billing_usage_events_total", "db_pool_waiting_requests", "http_request_duration_seconds_bucket"]);
  });

  test("does not take functions, aggregation labels, keywords or label values for metrics", () => {
    expect(metricNames('sum without (instance) (rate(foo_total{status=~"5..", route="bar_total"}[5m])) / ignoring(status) group_left count(up)')).toEqual([
      "foo_total",
      "up",
    ]);
    expect(metricNames('label_replace(vector(1), "x", "$1", "y", "(.*)") + time() + scalar(bar)')).toEqual(["bar"]);
  });

  test("reads a name given as __name__ and reports what it cannot name", () => {
    expect(metricNames('{__name__="billing_usage_events_total", job="x"}')).toEqual(["billing_usage_events_total"]);
    expect(parsePromql('{__name__=~"billing_.*"}').errors[0]).toMatch(/by pattern/);
    expect(parsePromql('{job="x"}').errors[0]).toMatch(/no metric name/);
  });

  test("reports syntax errors", () => {
    expect(parsePromql("sum(rate(foo_total[5m])").errors.length).toBeGreaterThan(0);
    expect(parsePromql("rate(foo_total[5m]) >").errors.length).toBeGreaterThan(0);
    expect(parsePromql("rate(foo_total[5m]) > 1").errors).toEqual([]);
  });

  test("substitutes Grafana variables", () => {
    expect(substituteGrafanaVariables('rate(x_total{job=~"$job", pod="${pod}"}[$__rate_interval])')).toBe('rate(x_total{job=~".*", pod=".*"}[5m])');
  });

  test("reads the exposition format: histograms give _bucket/_sum/_count, labels per series", () => {
    const e = parseExposition(
      [
        "# HELP h_seconds help",
        "# TYPE h_seconds histogram",
        "# TYPE c_total counter",
        'c_total{route="/a",status="200"} 3',
        "# TYPE g gauge",
        "g 1",
      ].join("\n"),
    );
    expect([...e.names].sort()).toEqual(["c_total", "g", "h_seconds_bucket", "h_seconds_count", "h_seconds_sum"]);
    expect([...e.labels.get("c_total")!].sort()).toEqual(["route", "status"]);
  });
});

describe("metrics used by alerts.yml and the Grafana dashboards are exported", () => {
  let t: TestApp;
  let exported: Exposition;

  beforeAll(async () => {
    t = await startTestApp();
    // Traffic so the labelled HTTP series exist: a matched route, an unmatched one, an authenticated call.
    await t.app.http.inject({ method: "GET", url: "/health" });
    await t.app.http.inject({ method: "GET", url: "/no-such-route" });
    await t.app.http.inject({ method: "GET", url: "/api/v1/events", headers: { authorization: `Bearer ${t.apiKey}` } });
    const res = await t.app.http.inject({ method: "GET", url: "/metrics" });
    expect(res.statusCode).toBe(200);
    exported = parseExposition(res.body);
  });
  afterAll(async () => {
    await t?.close();
  });

  test("the artefacts have queries to check", () => {
    expect(alertRules.length).toBeGreaterThanOrEqual(3);
    expect(alertRules.map((r) => r.name)).toEqual(expect.arrayContaining(["HighResponseTime", "LowThroughput", "HighErrorRate"]));
    expect(new Set(queries.map((q) => q.file)).size).toBeGreaterThanOrEqual(3);
  });

  test("the server exports the metrics named in the brief and README", () => {
    for (const name of [
      "http_request_duration_seconds_bucket",
      "http_requests_total",
      "billing_usage_events_total",
      "billing_ingest_commit_seconds_bucket",
      "billing_ingest_queue_events",
      "db_pool_connections",
      "process_resident_memory_bytes",
    ]) {
      expect(exported.names, name).toContain(name);
    }
    expect([...exported.labels.get("http_requests_total")!].sort()).toEqual(["method", "route", "status"]);
  });

  test.each(alertRules.map((r) => [`${r.group}/${r.name}`, r] as const))("alerts.yml %s", (_name, rule) => {
    expect(checkExpression(rule.expr, exported)).toEqual([]);
  });

  test.each(queries.map((q) => [`${q.file}: ${q.where}`, q] as const))("%s", (_name, q) => {
    expect(checkExpression(q.expr, exported), q.raw).toEqual([]);
  });

  test("a made-up metric, a histogram's bare name and a wrong label are reported", () => {
    expect(checkExpression("sum(rate(billing_made_up_events_total[5m])) > 1", exported)).toEqual([
      "billing_made_up_events_total is not exported by GET /metrics",
    ]);
    expect(checkExpression("http_request_duration_seconds > 1", exported)).toEqual([
      "http_request_duration_seconds is a histogram: query http_request_duration_seconds_bucket, _sum or _count",
    ]);
    expect(checkExpression('rate(http_requests_total{job="x", code=~"5.."}[5m])', exported)[0]).toMatch(/http_requests_total has no label "code"/);
  });
});
