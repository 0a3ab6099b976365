// Reading the deployment artefacts in deploy/: alert rules and Grafana dashboard queries.
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parse } from "yaml";
import { substituteGrafanaVariables } from "./promql.ts";

export const DEPLOY = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../deploy");

export interface Rule {
  file: string;
  group: string;
  name: string;
  expr: string;
}

/** Every alerting and recording rule of a Prometheus rules file. */
export function loadRules(file: string): Rule[] {
  const doc = parse(fs.readFileSync(file, "utf8")) as {
    groups: { name: string; rules: { alert?: string; record?: string; expr: string }[] }[];
  };
  return doc.groups.flatMap((g) =>
    g.rules.map((r) => ({ file: path.basename(file), group: g.name, name: r.alert ?? r.record ?? "?", expr: String(r.expr) })),
  );
}

export interface DashboardQuery {
  file: string;
  /** Panel title, or `variable <name>`. */
  where: string;
  /** As written in the dashboard. */
  raw: string;
  /** Plain PromQL (Grafana variables substituted). */
  expr: string;
}

export interface GrafanaPanel {
  id?: number;
  type?: string;
  title?: string;
  gridPos?: { h: number; w: number; x: number; y: number };
  datasource?: { type?: string; uid?: string };
  targets?: { refId?: string; expr?: string; datasource?: { type?: string; uid?: string } }[];
  panels?: GrafanaPanel[];
}

export interface GrafanaDashboard {
  uid: string;
  title: string;
  panels: GrafanaPanel[];
  templating?: { list: { name: string; type: string; query?: unknown; definition?: string }[] };
}

export function dashboardFiles(): string[] {
  const dir = path.join(DEPLOY, "grafana");
  return fs
    .readdirSync(dir)
    .filter((f) => f.endsWith(".json"))
    .sort()
    .map((f) => path.join(dir, f));
}

export function loadDashboard(file: string): GrafanaDashboard {
  return JSON.parse(fs.readFileSync(file, "utf8")) as GrafanaDashboard;
}

/** Panels, rows' nested panels included. */
export function allPanels(d: GrafanaDashboard): GrafanaPanel[] {
  const out: GrafanaPanel[] = [];
  const visit = (ps: GrafanaPanel[] | undefined) => {
    for (const p of ps ?? []) {
      out.push(p);
      visit(p.panels);
    }
  };
  visit(d.panels);
  return out;
}

/** Every PromQL query of a dashboard: panel targets and query variables (label_values(<selector>, label)). */
export function dashboardQueries(file: string): DashboardQuery[] {
  const d = loadDashboard(file);
  const name = path.basename(file);
  const out: DashboardQuery[] = [];
  for (const p of allPanels(d)) {
    for (const t of p.targets ?? []) {
      if (typeof t.expr === "string") out.push({ file: name, where: `panel "${p.title}" ${t.refId ?? ""}`.trim(), raw: t.expr, expr: substituteGrafanaVariables(t.expr) });
    }
  }
  for (const v of d.templating?.list ?? []) {
    if (v.type !== "query") continue;
    const q = typeof v.query === "string" ? v.query : ((v.query as { query?: string } | undefined)?.query ?? "");
    const lv = /^\s*label_values\((.*),\s*[A-Za-z_][A-Za-z0-9_]*\s*\)\s*$/.exec(q);
    const qr = /^\s*query_result\((.*)\)\s*$/.exec(q);
    const expr = lv ? lv[1]! : qr ? qr[1]! : /^\s*(label_names|metrics)\(/.test(q) ? undefined : q;
    if (expr !== undefined) out.push({ file: name, where: `variable ${v.name}`, raw: q, expr: substituteGrafanaVariables(expr) });
  }
  return out;
}
