// deploy/grafana/*.json: importable dashboards whose queries parse. (That every metric they query is
// exported is test/deploy/metrics.test.ts.)
import path from "node:path";
import { describe, expect, test } from "vitest";
import { allPanels, dashboardFiles, dashboardQueries, loadDashboard } from "./artefacts.ts";
import { parsePromql } from "./promql.ts";

const files = dashboardFiles();

describe("Grafana dashboards", () => {
  test("the brief's dashboards are there", () => {
    expect(files.map((f) => path.basename(f))).toEqual(
      expect.arrayContaining(["billing-system-overview.json", "database-performance.json", "api-performance.json", "cache-performance.json"]),
    );
  });

  test("unique uids and titles", () => {
    const ds = files.map(loadDashboard);
    expect(new Set(ds.map((d) => d.uid)).size).toBe(ds.length);
    expect(new Set(ds.map((d) => d.title)).size).toBe(ds.length);
    for (const d of ds) expect(d.uid).toMatch(/^[a-zA-Z0-9_-]{1,40}$/);
  });

  test.each(files.map((f) => [path.basename(f), f] as const))("%s: panels, layout, data source and variables", (_name, file) => {
    const d = loadDashboard(file);
    const panels = allPanels(d);
    expect(panels.length).toBeGreaterThan(3);
    const ids = panels.map((p) => p.id);
    expect(new Set(ids).size, "unique panel ids").toBe(ids.length);
    const variables = new Set((d.templating?.list ?? []).map((v) => v.name));
    expect(variables).toContain("datasource");
    for (const p of panels) {
      const g = p.gridPos!;
      expect(g, `gridPos of "${p.title}"`).toBeDefined();
      expect(g.x + g.w, `"${p.title}" fits 24 columns`).toBeLessThanOrEqual(24);
      if (p.type === "row" || p.type === "text") continue;
      expect(p.targets?.length, `"${p.title}" has queries`).toBeGreaterThan(0);
      expect(p.datasource, `"${p.title}" data source`).toEqual({ type: "prometheus", uid: "${datasource}" });
      for (const t of p.targets!) {
        for (const m of (t.expr ?? "").matchAll(/\$\{?([A-Za-z_][A-Za-z0-9_]*)/g)) {
          if (!m[1]!.startsWith("__")) expect(variables, `"${p.title}" uses $${m[1]}`).toContain(m[1]);
        }
      }
    }
    // Panels do not overlap.
    const cells = new Set<string>();
    for (const p of panels) {
      const g = p.gridPos!;
      for (let x = g.x; x < g.x + g.w; x++)
        for (let y = g.y; y < g.y + g.h; y++) {
          expect(cells.has(`${x},${y}`), `"${p.title}" overlaps at ${x},${y}`).toBe(false);
          cells.add(`${x},${y}`);
        }
    }
  });

  test.each(files.flatMap(dashboardQueries).map((q) => [`${q.file}: ${q.where}`, q] as const))("%s parses as PromQL", (_name, q) => {
    expect(parsePromql(q.expr).errors, q.raw).toEqual([]);
  });
});
