// The metric names and label matchers used by PromQL expressions, read with Prometheus' own PromQL
// grammar (@prometheus-io/lezer-promql, the parser of Prometheus' web UI), plus a reader of the
// Prometheus text exposition format, so tests can check that what alerts and dashboards query exists.
import { parser } from "@prometheus-io/lezer-promql";

export interface Selector {
  /** The metric name: `foo{...}` or `{__name__="foo"}`. */
  metric: string;
  /** Label names used in matchers (`__name__` excluded). */
  labels: string[];
  /** Character offset in the expression. */
  at: number;
}

export interface ParsedQuery {
  selectors: Selector[];
  /** Syntax errors and selectors whose metric name cannot be known (regex on __name__, none at all). */
  errors: string[];
}

/**
 * Grafana's variables made into plain PromQL: interval variables become a duration, any other
 * variable (used inside label values, e.g. job=~"$job") becomes `.*`.
 */
export function substituteGrafanaVariables(expr: string): string {
  return expr
    .replace(/\$(__rate_interval|__interval|__range)\b|\$\{(__rate_interval|__interval|__range)\}/g, "5m")
    .replace(/\$\{[^}]+\}|\$[A-Za-z_][A-Za-z0-9_]*/g, ".*");
}

export function parsePromql(expr: string): ParsedQuery {
  const tree = parser.parse(expr);
  const selectors: Selector[] = [];
  const errors: string[] = [];
  const text = (from: number, to: number) => expr.slice(from, to);
  const unquote = (s: string) => {
    try {
      return s.startsWith("`") ? s.slice(1, -1) : (JSON.parse(s.startsWith("'") ? `"${s.slice(1, -1).replace(/"/g, '\\"')}"` : s) as string);
    } catch {
      return s.slice(1, -1);
    }
  };
  tree.iterate({
    enter(ref) {
      if (ref.type.isError) {
        errors.push(`syntax error at ${ref.from}: …${expr.slice(Math.max(0, ref.from - 20), ref.from + 20)}…`);
        return;
      }
      if (ref.name !== "VectorSelector") return;
      const node = ref.node;
      let metric: string | undefined;
      let nameIsRegex = false;
      const labels: string[] = [];
      const ident = node.getChild("Identifier");
      if (ident) metric = text(ident.from, ident.to);
      const matchers = node.getChild("LabelMatchers");
      for (let m = matchers?.firstChild; m; m = m.nextSibling) {
        if (m.name !== "UnquotedLabelMatcher" && m.name !== "QuotedLabelMatcher" && m.name !== "QuotedLabelName") continue;
        const nameNode = m.getChild("LabelName") ?? m.getChild("QuotedLabelName") ?? (m.name === "QuotedLabelName" ? m : null);
        const valueNode = m.getChild("StringLiteral");
        const op = m.getChild("MatchOp");
        if (m.name === "QuotedLabelName" || (m.name === "QuotedLabelMatcher" && !op)) {
          metric = unquote(text(m.from, m.to)); // {"metric.name", ...}: a bare quoted name is the metric
          continue;
        }
        if (!nameNode) continue;
        const raw = text(nameNode.from, nameNode.to);
        const label = raw.startsWith('"') || raw.startsWith("'") || raw.startsWith("`") ? unquote(raw) : raw;
        if (label === "__name__") {
          const opText = op ? text(op.from, op.to) : "=";
          if (opText === "=" && valueNode) metric = unquote(text(valueNode.from, valueNode.to));
          else nameIsRegex = true;
          continue;
        }
        labels.push(label);
      }
      if (metric === undefined) {
        errors.push(
          nameIsRegex
            ? `selector at ${ref.from} matches metric names by pattern: which metrics it uses cannot be checked`
            : `selector at ${ref.from} has no metric name`,
        );
        return;
      }
      selectors.push({ metric, labels, at: ref.from });
    },
  });
  return { selectors, errors };
}

/** The metric names in an expression (sorted, unique). */
export function metricNames(expr: string): string[] {
  return [...new Set(parsePromql(expr).selectors.map((s) => s.metric))].sort();
}

export interface Exposition {
  /** Every series name that can be queried: counters/gauges by name; histograms as _bucket/_sum/_count. */
  names: Set<string>;
  /** Label names seen on each series name's samples. */
  labels: Map<string, Set<string>>;
  /** `# TYPE` of each family. */
  types: Map<string, string>;
}

/** Reads Prometheus' text exposition format (what GET /metrics answers). */
export function parseExposition(text: string): Exposition {
  const names = new Set<string>();
  const labels = new Map<string, Set<string>>();
  const types = new Map<string, string>();
  for (const line of text.split("\n")) {
    const type = /^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (\w+)$/.exec(line);
    if (type) {
      const [, family, kind] = type as unknown as [string, string, string];
      types.set(family, kind);
      if (kind === "histogram") for (const s of ["_bucket", "_sum", "_count"]) names.add(family + s);
      else if (kind === "summary") for (const s of ["", "_sum", "_count"]) names.add(family + s);
      else names.add(family);
      continue;
    }
    if (line.startsWith("#") || line.trim() === "") continue;
    const sample = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s/.exec(line);
    if (!sample) continue;
    const name = sample[1] as string;
    names.add(name);
    let set = labels.get(name);
    if (!set) labels.set(name, (set = new Set()));
    for (const m of (sample[3] ?? "").matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="(?:[^"\\]|\\.)*"/g)) set.add(m[1] as string);
  }
  return { names, labels, types };
}

/** Labels that Prometheus adds to every scraped series (scrape job, target, deploy/prometheus/prometheus.yml's relabelling). */
export const TARGET_LABELS = new Set(["job", "instance", "namespace", "pod"]);
/** Series that Prometheus itself writes for each scrape target (not exported by the application). */
export const SCRAPE_SERIES = new Set(["up"]);

/** Problems with one expression against what the server exports: unknown metrics, unknown labels, syntax. */
export function checkExpression(expr: string, exported: Exposition): string[] {
  const { selectors, errors } = parsePromql(expr);
  const problems = [...errors];
  for (const s of selectors) {
    if (SCRAPE_SERIES.has(s.metric)) {
      for (const l of s.labels) if (!TARGET_LABELS.has(l)) problems.push(`${s.metric}: label "${l}" is not a target label`);
      continue;
    }
    if (!exported.names.has(s.metric)) {
      const family = exported.types.get(s.metric);
      problems.push(
        family === "histogram"
          ? `${s.metric} is a histogram: query ${s.metric}_bucket, _sum or _count`
          : `${s.metric} is not exported by GET /metrics`,
      );
      continue;
    }
    const known = exported.labels.get(s.metric);
    for (const l of s.labels) {
      if (TARGET_LABELS.has(l)) continue;
      if (!known) problems.push(`${s.metric}: no samples exported, so label "${l}" cannot be checked`);
      else if (!known.has(l)) problems.push(`${s.metric} has no label "${l}" (it has: ${[...known].sort().join(", ") || "none"})`);
    }
  }
  return problems;
}
