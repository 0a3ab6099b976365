// The load test's reports: a plain-text table (stdout, report.txt) and a self-contained HTML page
// (report.html) whose charts are inline SVG — no script, no CDN, opens offline.
import { OPERATIONS, OPERATION_LABELS, type Operation, type Summary, type TimelinePoint } from "./types.ts";

const fmtInt = (x: number) => Math.round(x).toLocaleString("en-US");
const fmtMs = (x: number | null) => (x === null ? "-" : x < 10 ? x.toFixed(2) : x < 100 ? x.toFixed(1) : fmtInt(x));
const pct = (x: number, digits = 2) => `${(x * 100).toFixed(digits)}%`;
const status = (pass: boolean | null) => (pass === null ? "n/a" : pass ? "PASS" : "FAIL");

function table(header: string[], rows: string[][], rightAligned: boolean[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: string[]) =>
    "  " +
    cells
      .map((c, i) => (rightAligned[i] ? c.padStart(widths[i]!) : c.padEnd(widths[i]!)))
      .join("  ")
      .trimEnd();
  return [line(header), line(widths.map((w) => "-".repeat(w))), ...rows.map(line)].join("\n");
}

function describeRun(s: Summary): string {
  const stages = s.config.stages.map((st) => `${st.users} users × ${st.seconds} s`).join(" → ");
  return `${s.mode} (${stages})`;
}

function setupLine(s: Summary): string {
  const st = s.setup;
  return (
    `metric ${st.metric.status}, plan ${st.plan.status}, customers ${st.customers.status} (${st.customers.created}), ` +
    `subscriptions ${st.subscriptions.status} (${st.subscriptions.created}); ${st.seconds} s`
  );
}

export function renderText(s: Summary): string {
  const out: string[] = [];
  out.push("");
  out.push(`ValueVerse load test — ${describeRun(s)}`);
  out.push(`${s.url}${s.setup.database ? ` (${s.setup.database})` : ""}, ${s.started_at}, ${s.totals.seconds} s, stopped by ${s.stop_reason}`);
  out.push("");
  out.push("Against the brief's targets");
  out.push(
    table(
      ["Metric", "Target", "Actual", "Status", "Note"],
      s.targets.map((t) => [t.metric, t.target, t.actual, status(t.pass), t.note ?? ""]),
      [false, false, true, false, false],
    ),
  );
  out.push("");
  out.push(
    `Totals: ${fmtInt(s.totals.requests)} requests (${fmtInt(s.totals.requests_per_s)}/s), ${fmtInt(s.totals.events)} events accepted ` +
      `(${fmtInt(s.totals.events_per_s)}/s), statuses ${Object.entries(s.totals.statuses)
        .map(([k, v]) => `${k}: ${fmtInt(v)}`)
        .join(", ")}`,
  );
  out.push("");
  out.push("Per operation (latency in ms)");
  const ops = OPERATIONS.flatMap((op) => {
    const o = s.operations[op];
    if (!o) return [];
    const l = o.latency_ms;
    return [[op, String(o.weight), fmtInt(o.requests), o.requests_per_s.toFixed(1), fmtInt(o.errors), pct(o.error_rate), fmtMs(l.p50), fmtMs(l.p90), fmtMs(l.p95), fmtMs(l.p99), fmtMs(l.max), o.events ? fmtInt(o.events) : ""]];
  });
  const all = s.totals.latency_ms;
  ops.push(["all", "", fmtInt(s.totals.requests), String(s.totals.requests_per_s), fmtInt(s.totals.errors), pct(s.totals.error_rate), fmtMs(all.p50), fmtMs(all.p90), fmtMs(all.p95), fmtMs(all.p99), fmtMs(all.max), fmtInt(s.totals.events)]);
  out.push(table(["Operation", "Weight", "Requests", "Req/s", "Errors", "Err%", "p50", "p90", "p95", "p99", "max", "Events"], ops, [false, true, true, true, true, true, true, true, true, true, true, true]));
  if (s.stages.length > 1) {
    out.push("");
    out.push("Stages");
    out.push(
      table(
        ["Stage", "Users", "Seconds", "Req/s", "Events/min", "p95", "p99", "Err%"],
        s.stages.map((st) => [String(st.index + 1), String(st.users), st.seconds_measured.toFixed(1), fmtInt(st.requests_per_s), fmtInt(st.events_per_min), fmtMs(st.latency_ms.p95), fmtMs(st.latency_ms.p99), pct(st.error_rate)]),
        [true, true, true, true, true, true, true, true],
      ),
    );
  }
  out.push("");
  out.push(`Setup: ${setupLine(s)}`);
  for (const note of s.setup.notes) out.push(`  - ${note}`);
  if (s.error_samples.length > 0) {
    out.push("");
    out.push("Errors (by operation and status; first body)");
    for (const e of s.error_samples.slice(0, 10)) out.push(`  ${e.operation} ${e.status} × ${fmtInt(e.count)}: ${e.body.slice(0, 140).replace(/\s+/g, " ")}`);
  }
  out.push("");
  out.push(
    `Load driver: pid ${s.driver.pid}, ${s.driver.cpu_avg_pct.toFixed(0)}% of one core on average (same machine as the server: ` +
      `${s.machine.cpus} CPUs, ${s.machine.cpu_model}).`,
  );
  out.push(`Report: ${s.files.html}`);
  out.push(`JSON:   ${s.files.json}`);
  out.push("");
  return out.join("\n");
}

// ---------------------------------------------------------------------------------------------
// HTML

const esc = (x: unknown) =>
  String(x).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]!);

interface Series {
  name: string;
  color: string;
  values: (number | null)[];
  dashed?: boolean;
}

interface ChartOpts {
  unit: string;
  refs?: { value: number; label: string }[];
  markers?: { x: number; label: string }[];
}

function niceStep(range: number, ticks: number): number {
  const raw = range / ticks;
  const p = 10 ** Math.floor(Math.log10(raw));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= raw) return m * p;
  return 10 * p;
}

const tickLabel = (v: number) => (v >= 10_000 ? `${Math.round(v / 1000).toLocaleString("en-US")}k` : v >= 100 ? fmtInt(v) : String(Math.round(v * 100) / 100));

/** An SVG line chart: x = seconds since the start, one path per series (gaps at null). */
export function lineChart(id: string, title: string, xs: number[], series: Series[], opts: ChartOpts): string {
  const W = 960;
  const H = 280;
  const L = 70;
  const R = 20;
  const T = 44;
  const B = 36;
  const iw = W - L - R;
  const ih = H - T - B;
  const dataMax = Math.max(0, ...series.flatMap((s) => s.values.filter((v): v is number => v !== null && Number.isFinite(v))));
  // A reference line far above the data would flatten it: drawn only when the data reaches a quarter of it.
  const refs = (opts.refs ?? []).filter((r) => dataMax >= r.value * 0.25);
  const offScale = (opts.refs ?? []).filter((r) => !refs.includes(r));
  const top = Math.max(dataMax, ...refs.map((r) => r.value), 1e-9) * 1.08;
  const step = niceStep(top, 5);
  const yMax = Math.ceil(top / step) * step;
  const xMax = Math.max(1, ...xs);
  const X = (x: number) => L + (x / xMax) * iw;
  const Y = (y: number) => T + ih - (y / yMax) * ih;
  const parts: string[] = [];
  parts.push(`<svg id="${esc(id)}" class="chart" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" aria-label="${esc(title)}" xmlns="http://www.w3.org/2000/svg">`);
  parts.push(`<rect x="0" y="0" width="${W}" height="${H}" fill="#fff"/>`);
  parts.push(`<text x="${L}" y="18" class="ct">${esc(title)}${offScale.length ? ` <tspan class="muted">(${esc(offScale.map((r) => `${r.label} ${fmtInt(r.value)} ${opts.unit}`).join(", "))}: off the scale)</tspan>` : ""}</text>`);
  for (let v = 0; v <= yMax + step / 2; v += step) {
    const y = Y(v).toFixed(1);
    parts.push(`<line x1="${L}" x2="${W - R}" y1="${y}" y2="${y}" class="grid"/><text x="${L - 6}" y="${y}" class="yl">${esc(tickLabel(v))}</text>`);
  }
  const xStep = niceStep(xMax, 10);
  for (let x = 0; x <= xMax + 1e-9; x += xStep) {
    parts.push(`<line x1="${X(x).toFixed(1)}" x2="${X(x).toFixed(1)}" y1="${T + ih}" y2="${T + ih + 4}" class="axis"/><text x="${X(x).toFixed(1)}" y="${T + ih + 16}" class="xl">${esc(tickLabel(x))}s</text>`);
  }
  parts.push(`<text x="14" y="${T + ih / 2}" class="unit" transform="rotate(-90 14 ${T + ih / 2})">${esc(opts.unit)}</text>`);
  for (const m of opts.markers ?? []) {
    parts.push(`<line x1="${X(m.x).toFixed(1)}" x2="${X(m.x).toFixed(1)}" y1="${T}" y2="${T + ih}" class="marker"/><text x="${(X(m.x) + 4).toFixed(1)}" y="${T + 10}" class="ml">${esc(m.label)}</text>`);
  }
  for (const r of refs) {
    parts.push(`<line x1="${L}" x2="${W - R}" y1="${Y(r.value).toFixed(1)}" y2="${Y(r.value).toFixed(1)}" class="ref"/><text x="${W - R - 4}" y="${(Y(r.value) - 4).toFixed(1)}" class="rl">${esc(`${r.label} ${fmtInt(r.value)} ${opts.unit}`)}</text>`);
  }
  for (const s of series) {
    let d = "";
    let pen = false;
    s.values.forEach((v, i) => {
      const x = xs[i];
      if (v === null || !Number.isFinite(v) || x === undefined) {
        pen = false;
        return;
      }
      d += `${pen ? "L" : "M"}${X(x).toFixed(1)} ${Y(v).toFixed(1)}`;
      pen = true;
    });
    if (d) parts.push(`<path d="${d}" fill="none" stroke="${s.color}" stroke-width="1.8"${s.dashed ? ' stroke-dasharray="5 3"' : ""}><title>${esc(s.name)}</title></path>`);
  }
  let lx = L;
  for (const s of series) {
    parts.push(`<rect x="${lx}" y="27" width="12" height="4" fill="${s.color}"/><text x="${lx + 16}" y="32" class="lg">${esc(s.name)}</text>`);
    lx += 28 + s.name.length * 6.5;
  }
  parts.push(`<line x1="${L}" x2="${W - R}" y1="${T + ih}" y2="${T + ih}" class="axis"/><line x1="${L}" x2="${L}" y1="${T}" y2="${T + ih}" class="axis"/>`);
  parts.push("</svg>");
  return parts.join("");
}

const OP_COLORS: Record<Operation, string> = {
  single_event: "#1f77b4",
  batch_events: "#ff7f0e",
  current_usage: "#2ca02c",
  list_customers: "#9467bd",
  list_events: "#8c564b",
  list_invoices: "#e377c2",
};

export function renderHtml(s: Summary): string {
  const tl: TimelinePoint[] = s.timeline;
  const xs = tl.map((p) => p.t);
  const ops = OPERATIONS.filter((op) => s.operations[op]);
  const markers =
    s.stages.length > 1
      ? s.config.stages.map((st, i) => ({ x: s.config.stages.slice(0, i).reduce((a, b) => a + b.seconds, 0), label: `${st.users} users` }))
      : [];
  const targetPerS = 1_000_000 / 60;
  const charts = [
    lineChart("chart-events", "Events accepted per second (1 s buckets)", xs, [{ name: "events/s", color: "#d62728", values: tl.map((p) => p.events_per_s) }], {
      unit: "events/s",
      refs: [
        { value: targetPerS, label: "target" },
        ...(s.mode === "stress" ? [{ value: 2 * targetPerS, label: "2× target" }] : []),
      ],
      markers,
    }),
    lineChart(
      "chart-throughput",
      "Requests per second (1 s buckets)",
      xs,
      [
        { name: "all", color: "#333", values: tl.map((p) => p.requests_per_s) },
        ...ops.map((op) => ({ name: op, color: OP_COLORS[op], values: tl.map((p) => (p.ops[op] ? Math.round(p.ops[op].requests / p.dt) : 0)) })),
      ],
      { unit: "req/s", markers },
    ),
    lineChart(
      "chart-latency",
      "Latency over time, all operations (1 s buckets)",
      xs,
      [
        { name: "p50", color: "#2ca02c", values: tl.map((p) => p.p50_ms) },
        { name: "p95", color: "#ff7f0e", values: tl.map((p) => p.p95_ms) },
        { name: "p99", color: "#d62728", values: tl.map((p) => p.p99_ms) },
      ],
      { unit: "ms", refs: [{ value: 100, label: "p95 target" }, { value: 200, label: "p99 target" }], markers },
    ),
    lineChart(
      "chart-latency-ops",
      "p95 latency per operation (1 s buckets)",
      xs,
      ops.map((op) => ({ name: op, color: OP_COLORS[op], values: tl.map((p) => p.ops[op]?.p95_ms ?? null) })),
      { unit: "ms", refs: [{ value: 100, label: "p95 target" }], markers },
    ),
    lineChart(
      "chart-errors",
      "Errors per second and virtual users",
      xs,
      [
        { name: "errors/s", color: "#d62728", values: tl.map((p) => Math.round(p.errors / p.dt)) },
        { name: "virtual users", color: "#7f7f7f", values: tl.map((p) => p.users), dashed: true },
      ],
      { unit: "count", markers },
    ),
    lineChart(
      "chart-cpu",
      `CPU, % of the machine (${s.server?.cores ?? s.machine.cpus} cores)`,
      xs,
      [
        { name: "server", color: "#1f77b4", values: tl.map((p) => p.server_cpu_pct) },
        { name: "load driver", color: "#bcbd22", values: tl.map((p) => Math.round((p.driver_cpu_pct / (s.server?.cores ?? s.machine.cpus)) * 10) / 10), dashed: true },
      ],
      { unit: "%", refs: [{ value: 80, label: "target" }], markers },
    ),
    lineChart("chart-memory", "Server memory (RSS)", xs, [{ name: "server RSS", color: "#9467bd", values: tl.map((p) => p.server_rss_mb) }], { unit: "MiB", markers }),
  ];

  const badge = (pass: boolean | null) => `<span class="badge ${pass === null ? "na" : pass ? "pass" : "fail"}">${status(pass)}</span>`;
  const targets = s.targets
    .map((t) => `<tr><td>${esc(t.metric)}</td><td>${esc(t.target)}</td><td class="num">${esc(t.actual)}</td><td>${badge(t.pass)}</td><td class="muted">${esc(t.note ?? "")}</td></tr>`)
    .join("");
  const opRows = ops
    .map((op) => {
      const o = s.operations[op]!;
      const l = o.latency_ms;
      return `<tr><td><b>${esc(op)}</b><br><span class="muted">${esc(OPERATION_LABELS[op])}</span></td><td class="num">${o.weight}</td><td class="num">${fmtInt(o.requests)}</td><td class="num">${o.requests_per_s.toFixed(1)}</td><td class="num">${fmtInt(o.errors)}</td><td class="num">${pct(o.error_rate)}</td>${[l.p50, l.p90, l.p95, l.p99, l.max].map((v) => `<td class="num">${fmtMs(v)}</td>`).join("")}<td class="num">${o.events ? fmtInt(o.events) : ""}</td><td class="muted">${esc(Object.entries(o.statuses).map(([k, v]) => `${k}: ${fmtInt(v)}`).join(", "))}</td></tr>`;
    })
    .join("");
  const all = s.totals.latency_ms;
  const stageRows = s.stages
    .map(
      (st) =>
        `<tr><td class="num">${st.index + 1}</td><td class="num">${st.users}</td><td class="num">${st.seconds_measured.toFixed(1)}</td><td class="num">${fmtInt(st.requests_per_s)}</td><td class="num">${fmtInt(st.events_per_min)}</td><td class="num">${fmtMs(st.latency_ms.p95)}</td><td class="num">${fmtMs(st.latency_ms.p99)}</td><td class="num">${pct(st.error_rate)}</td></tr>`,
    )
    .join("");
  const errors = s.error_samples
    .slice(0, 20)
    .map((e) => `<tr><td>${esc(e.operation)}</td><td>${esc(e.status)}</td><td class="num">${fmtInt(e.count)}</td><td><code>${esc(e.body.slice(0, 300))}</code></td></tr>`)
    .join("");
  const timelineRows = tl
    .map(
      (p) =>
        `<tr><td class="num">${p.t.toFixed(1)}</td><td class="num">${p.users}</td><td class="num">${fmtInt(p.requests_per_s)}</td><td class="num">${fmtInt(p.events_per_s)}</td><td class="num">${fmtMs(p.p50_ms)}</td><td class="num">${fmtMs(p.p95_ms)}</td><td class="num">${fmtMs(p.p99_ms)}</td><td class="num">${p.errors}</td><td class="num">${p.server_cpu_pct ?? "-"}</td><td class="num">${p.server_rss_mb ?? "-"}</td></tr>`,
    )
    .join("");

  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>ValueVerse load test — ${esc(s.mode)} — ${esc(s.started_at)}</title>
<style>
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:24px auto;max-width:1000px;color:#222;padding:0 12px}
h1{font-size:22px;margin-bottom:4px}h2{font-size:17px;margin-top:28px;border-bottom:1px solid #ddd;padding-bottom:4px}
table{border-collapse:collapse;margin:8px 0;width:100%}td,th{border-bottom:1px solid #eee;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f6f6f6;font-weight:600}.num{text-align:right;font-variant-numeric:tabular-nums}.muted{color:#777;font-size:12px}
.badge{display:inline-block;padding:1px 8px;border-radius:10px;font-weight:600;font-size:12px}.pass{background:#d8f3dc;color:#1b5e20}.fail{background:#fde2e1;color:#b71c1c}.na{background:#eee;color:#555}
svg.chart{display:block;max-width:100%;height:auto;margin:10px 0 18px;border:1px solid #eee}
.chart .ct{font-size:14px;font-weight:600}.chart .grid{stroke:#eee}.chart .axis{stroke:#999}.chart .yl{font-size:11px;text-anchor:end;dominant-baseline:middle;fill:#555}
.chart .xl{font-size:11px;text-anchor:middle;fill:#555}.chart .unit{font-size:11px;text-anchor:middle;fill:#555}.chart .lg{font-size:12px;fill:#333}
.chart .ref{stroke:#d62728;stroke-dasharray:6 4;stroke-width:1.2}.chart .rl{font-size:11px;text-anchor:end;fill:#d62728}.chart .marker{stroke:#aaa;stroke-dasharray:2 3}.chart .ml{font-size:11px;fill:#777}
.chart .muted{font-size:11px;font-weight:400;fill:#999}code{font-size:12px;word-break:break-all}details{margin:12px 0}
</style></head><body>
<h1>ValueVerse load test: ${esc(s.mode)}</h1>
<div class="muted">${esc(describeRun(s))} against ${esc(s.url)}${s.setup.database ? ` (${esc(s.setup.database)})` : ""}; started ${esc(s.started_at)}, ${s.totals.seconds} s, stopped by ${esc(s.stop_reason)}.
Closed-loop virtual users, think time 0, keep-alive connections; events per batch request: ${s.config.batch_size}${s.config.events_per_s_ceiling ? `; ingestion offered at most ${fmtInt(s.config.events_per_s_ceiling)} events/s` : ""}.</div>

<h2>Against the brief's targets</h2>
<table><tr><th>Metric</th><th>Target</th><th class="num">Actual</th><th>Status</th><th>Note</th></tr>${targets}</table>
<p>${fmtInt(s.totals.requests)} requests (${fmtInt(s.totals.requests_per_s)}/s), ${fmtInt(s.totals.events)} events accepted (${fmtInt(s.totals.events_per_s)}/s, ${fmtInt(s.totals.events_per_min)}/min), ${fmtInt(s.totals.errors)} errors.</p>

<h2>Throughput</h2>
${charts[0]}
${charts[1]}
<h2>Latency over time</h2>
${charts[2]}
${charts[3]}
<h2>Errors, users and resources</h2>
${charts[4]}
${charts[5]}
${charts[6]}

<h2>Per operation (latency in ms)</h2>
<table><tr><th>Operation</th><th class="num">Weight</th><th class="num">Requests</th><th class="num">Req/s</th><th class="num">Errors</th><th class="num">Err%</th><th class="num">p50</th><th class="num">p90</th><th class="num">p95</th><th class="num">p99</th><th class="num">max</th><th class="num">Events</th><th>Statuses</th></tr>
${opRows}
<tr><td><b>all</b></td><td></td><td class="num">${fmtInt(s.totals.requests)}</td><td class="num">${fmtInt(s.totals.requests_per_s)}</td><td class="num">${fmtInt(s.totals.errors)}</td><td class="num">${pct(s.totals.error_rate)}</td>${[all.p50, all.p90, all.p95, all.p99, all.max].map((v) => `<td class="num">${fmtMs(v)}</td>`).join("")}<td class="num">${fmtInt(s.totals.events)}</td><td></td></tr></table>
${s.stages.length > 1 ? `<h2>Stages</h2><table><tr><th class="num">Stage</th><th class="num">Users</th><th class="num">Seconds</th><th class="num">Req/s</th><th class="num">Events/min</th><th class="num">p95</th><th class="num">p99</th><th class="num">Err%</th></tr>${stageRows}</table>` : ""}

<h2>Setup</h2>
<p>${esc(setupLine(s))}</p>
${s.setup.notes.length ? `<ul>${s.setup.notes.map((n) => `<li>${esc(n)}</li>`).join("")}</ul>` : ""}
${errors ? `<h2>Errors (by operation and status; first body)</h2><table><tr><th>Operation</th><th>Status</th><th class="num">Count</th><th>Body</th></tr>${errors}</table>` : ""}

<h2>Machine</h2>
<p>${s.machine.cpus} CPUs (${esc(s.machine.cpu_model)}), ${(s.machine.memory_bytes / 2 ** 30).toFixed(1)} GiB, Node ${esc(s.machine.node)}.
Server: ${s.server ? `pid(s) ${esc(s.server.pids.join(", "))} (${esc(s.server.source)})` : "not measured"}. Load driver: pid ${s.driver.pid}, ${s.driver.cpu_avg_pct.toFixed(0)}% of one core on average, on the same machine.</p>

<details><summary>Timeline (1 s buckets)</summary>
<table><tr><th class="num">t (s)</th><th class="num">Users</th><th class="num">Req/s</th><th class="num">Events/s</th><th class="num">p50</th><th class="num">p95</th><th class="num">p99</th><th class="num">Errors</th><th class="num">Server CPU %</th><th class="num">RSS MiB</th></tr>${timelineRows}</table>
</details>
</body></html>
`;
}
