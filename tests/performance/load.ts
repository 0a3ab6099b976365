// ValueVerse load test driver (`tests/performance/run_load_test.sh quick|progressive|stress`).
//
// Closed-loop virtual users (think time 0) over an undici keep-alive pool (no pipelining) drive a
// running server on the loopback interface with a mix of single and batch event ingestion,
// current-usage reads and customer, event and invoice lists. Setup goes through the API (a metric,
// a plan, customers, subscriptions; what the server does not have yet — a 404 `route_not_found` —
// is skipped and reported). A progress line goes to stderr once a second; at the end a table
// against the brief's targets goes to stdout and summary.json, report.html and report.txt are
// written under tests/performance/reports/<timestamp>/. Every run is bounded in time and requests.
import dns from "node:dns/promises";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import { Pool } from "undici";
import { startServer, type BenchServer } from "../../bench/server.ts";
import { Histogram } from "./lib/histogram.ts";
import { ProcSampler, machineCapacity, pidsListeningOn, type ProcSample } from "./lib/procstat.ts";
import { renderHtml, renderText } from "./lib/report.ts";
import {
  OPERATIONS,
  OPERATION_LABELS,
  type Mode,
  type Operation,
  type OperationResult,
  type RunConfig,
  type SetupResult,
  type Stage,
  type StageResult,
  type Summary,
  type TargetRow,
  type TimelinePoint,
} from "./lib/types.ts";

export type { Summary } from "./lib/types.ts";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const log = (s: string) => process.stderr.write(`[load] ${s}\n`);

// ---------------------------------------------------------------------------------------------
// Modes, targets and hard caps

/** The brief's targets (performance-tuning-guide.md). */
export const TARGETS = { eventsPerMin: 1_000_000, p95Ms: 100, p99Ms: 200, errorRate: 0.001, cpuPct: 80, memoryPct: 80 };

const HARD_MAX_SECONDS = 900;
const HARD_MAX_USERS = 5000;
const HARD_MAX_REQUESTS = 20_000_000;

const DEFAULT_MIX: Record<Operation, number> = {
  single_event: 40,
  batch_events: 15,
  current_usage: 20,
  list_customers: 10,
  list_events: 10,
  list_invoices: 5,
};
const STRESS_MIX: Record<Operation, number> = {
  single_event: 30,
  batch_events: 40,
  current_usage: 15,
  list_customers: 5,
  list_events: 5,
  list_invoices: 5,
};

interface ModeSpec {
  description: string;
  stages: Stage[];
  mix: Record<Operation, number>;
  maxRequests: number;
  eventsPerSecondCeiling: number | null;
}

const MODES: Record<Mode, ModeSpec> = {
  quick: { description: "1 minute, 100 virtual users", stages: [{ users: 100, seconds: 60 }], mix: DEFAULT_MIX, maxRequests: 3_000_000, eventsPerSecondCeiling: null },
  progressive: {
    description: "staged increase: 50 → 100 → 200 → 400 virtual users, 30 s each",
    stages: [50, 100, 200, 400].map((users) => ({ users, seconds: 30 })),
    mix: DEFAULT_MIX,
    maxRequests: 6_000_000,
    eventsPerSecondCeiling: null,
  },
  stress: {
    description: "2× the target load: 400 virtual users for 2 minutes, batch-heavy, ingestion offered up to 33,334 events/s",
    stages: [{ users: 400, seconds: 120 }],
    mix: STRESS_MIX,
    maxRequests: 10_000_000,
    eventsPerSecondCeiling: Math.ceil((2 * TARGETS.eventsPerMin) / 60),
  },
};

const USAGE = `usage: run_load_test.sh quick|progressive|stress [options]
       node --import tsx tests/performance/load.ts --mode quick|progressive|stress [options]

modes:
  quick         ${MODES.quick.description}
  progressive   ${MODES.progressive.description}
  stress        ${MODES.stress.description}

target (loopback only: 127.0.0.1, localhost, ::1):
  LOAD_TEST_URL=http://127.0.0.1:3000   the server (or --url)
  LOAD_TEST_API_KEY=...                 an API key of the organization to load (or --api-key)
  --start-server                        start a server for the run (embedded database in a temp
                                        dir, or DATABASE_URL when set) and stop it at the end
  --workers N                           WORKERS for the started server (default: the server's)

options:
  --duration S          total seconds (progressive: split evenly over its stages); cap ${HARD_MAX_SECONDS}
  --users N             virtual users (progressive: the last stage; earlier ones scale down); cap ${HARD_MAX_USERS}
  --customers N         customers and subscriptions created at setup (default 50)
  --batch-size N        events per batch request (default 100, at most 1000)
  --max-requests N      stop after this many requests (default per mode; cap ${HARD_MAX_REQUESTS})
  --events-per-second N ceiling on ingested events offered per second (stress: 33,334)
  --request-timeout S   per-request timeout in seconds (default 10)
  --mix op=w,...        replace the mix's weights (operations: ${OPERATIONS.join(", ")})
  --server-pid PID      server process to measure (repeatable; default: found by the port)
  --out-dir DIR         where to write the report (default tests/performance/reports/<timestamp>)
  --strict              exit with status 3 when a target is missed
`;

// ---------------------------------------------------------------------------------------------
// Arguments

interface Cli {
  config: RunConfig;
  apiKey: string | undefined;
  startServer: boolean;
  workers: string | undefined;
  serverPids: number[];
  outDir: string | undefined;
  strict: boolean;
}

/** A usage or target error: reported without a stack, exit status 2 (cleanup still runs). */
class UsageError extends Error {}

function fail(message: string): never {
  throw new UsageError(message);
}

function intOption(v: string | undefined, name: string, min: number, max: number): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isFinite(n) || n < min) fail(`--${name} must be a number ≥ ${min} (got ${JSON.stringify(v)})`);
  if (n > max) {
    log(`--${name} ${n} is over the hard cap; using ${max}`);
    return max;
  }
  return n;
}

function parseCli(argv: string[]): Cli {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        mode: { type: "string" },
        url: { type: "string" },
        "api-key": { type: "string" },
        "start-server": { type: "boolean" },
        workers: { type: "string" },
        duration: { type: "string" },
        users: { type: "string" },
        customers: { type: "string" },
        "batch-size": { type: "string" },
        "max-requests": { type: "string" },
        "events-per-second": { type: "string" },
        "request-timeout": { type: "string" },
        "server-pid": { type: "string", multiple: true },
        mix: { type: "string" },
        "out-dir": { type: "string" },
        strict: { type: "boolean" },
        help: { type: "boolean", short: "h" },
      },
    });
  } catch (e) {
    fail(`${(e as Error).message}\n${USAGE}`);
  }
  const { values: o, positionals } = parsed;
  if (o.help) {
    process.stdout.write(USAGE);
    process.exit(0);
  }
  const mode = (o.mode ?? positionals[0]) as Mode | undefined;
  if (mode === undefined || !(mode in MODES)) fail(`mode must be quick, progressive or stress\n${USAGE}`);
  const spec = MODES[mode];

  let stages = spec.stages.map((s) => ({ ...s }));
  const users = intOption(o.users, "users", 1, HARD_MAX_USERS);
  if (users !== undefined) {
    const top = Math.max(...stages.map((s) => s.users));
    stages = stages.map((s) => ({ ...s, users: Math.max(1, Math.round((s.users / top) * users)) }));
  }
  const duration = intOption(o.duration, "duration", 1, HARD_MAX_SECONDS);
  if (duration !== undefined) {
    const each = Math.max(1, duration / stages.length);
    stages = stages.map((s) => ({ ...s, seconds: Math.round(each * 10) / 10 }));
  }
  const total = stages.reduce((a, s) => a + s.seconds, 0);
  if (total > HARD_MAX_SECONDS) fail(`a run lasts at most ${HARD_MAX_SECONDS} s (asked ${total} s)`);

  const mix = { ...spec.mix };
  if (o.mix !== undefined) {
    for (const op of OPERATIONS) mix[op] = 0;
    for (const part of o.mix.split(",")) {
      const [name, weight = "1"] = part.split("=").map((x) => x.trim());
      if (!(OPERATIONS as readonly string[]).includes(name ?? "")) fail(`--mix: unknown operation ${JSON.stringify(name)} (one of ${OPERATIONS.join(", ")})`);
      mix[name as Operation] = intOption(weight, `mix ${name}`, 0, 1000)!;
    }
  }
  const ceilingArg = intOption(o["events-per-second"], "events-per-second", 1, 10_000_000);
  return {
    config: {
      mode,
      url: o.url || process.env.LOAD_TEST_URL || "http://127.0.0.1:3000",
      stages,
      mix,
      batchSize: intOption(o["batch-size"], "batch-size", 1, 1000) ?? 100,
      customers: intOption(o.customers, "customers", 1, 10_000) ?? 50,
      maxRequests: intOption(o["max-requests"], "max-requests", 1, HARD_MAX_REQUESTS) ?? spec.maxRequests,
      eventsPerSecondCeiling: ceilingArg ?? spec.eventsPerSecondCeiling,
      requestTimeoutMs: (intOption(o["request-timeout"], "request-timeout", 1, 120) ?? 10) * 1000,
    },
    apiKey: o["api-key"] || process.env.LOAD_TEST_API_KEY || undefined,
    startServer: o["start-server"] ?? false,
    workers: o.workers,
    serverPids: (o["server-pid"] ?? []).map((p) => intOption(p, "server-pid", 1, 2 ** 22)!),
    outDir: o["out-dir"],
    strict: o.strict ?? false,
  };
}

/** Only loopback: 127.0.0.1, ::1, or localhost when it resolves to nothing but those. */
async function assertLoopback(url: string): Promise<URL> {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    fail(`not a URL: ${url}`);
  }
  if (u.protocol !== "http:") fail(`only http:// is supported (got ${u.protocol})`);
  const host = u.hostname.replace(/^\[|\]$/g, "");
  if (host === "127.0.0.1" || host === "::1") return u;
  if (host === "localhost") {
    const addrs = await dns.lookup("localhost", { all: true });
    if (addrs.length > 0 && addrs.every((a) => a.address === "127.0.0.1" || a.address === "::1")) return u;
    fail(`localhost resolves to ${addrs.map((a) => a.address).join(", ")}: refusing, traffic stays on 127.0.0.1/::1`);
  }
  fail(`refusing to load ${u.host}: the load test only targets 127.0.0.1, localhost or ::1`);
}

// ---------------------------------------------------------------------------------------------
// HTTP

interface Reply {
  status: number;
  body: string;
}

class Api {
  readonly pool: Pool;
  private readonly headers: Record<string, string>;

  constructor(readonly origin: string, apiKey: string, connections: number, timeoutMs: number) {
    this.pool = new Pool(origin, {
      connections,
      pipelining: 1,
      keepAliveTimeout: 30_000,
      keepAliveMaxTimeout: 60_000,
      headersTimeout: timeoutMs,
      bodyTimeout: timeoutMs,
      connect: { timeout: 5_000 },
    });
    this.headers = { authorization: `Bearer ${apiKey}`, "content-type": "application/json", "user-agent": "valueverse-load-test" };
  }

  async call(method: "GET" | "POST", urlPath: string, body?: unknown): Promise<Reply> {
    const r = await this.pool.request({
      method,
      path: urlPath,
      headers: this.headers,
      ...(body === undefined ? {} : { body: typeof body === "string" ? body : JSON.stringify(body) }),
    });
    return { status: r.statusCode, body: await r.body.text() };
  }

  /** One timed request for the load phase: the body is read to the end and only its size kept. */
  async timed(method: "GET" | "POST", urlPath: string, body: string | undefined): Promise<{ status: number; bytes: number; sample: string | null }> {
    const r = await this.pool.request({ method, path: urlPath, headers: this.headers, ...(body === undefined ? {} : { body }) });
    if (r.statusCode >= 400) {
      const text = await r.body.text();
      return { status: r.statusCode, bytes: text.length, sample: text.slice(0, 300) };
    }
    let bytes = 0;
    for await (const chunk of r.body) bytes += (chunk as Buffer).length;
    return { status: r.statusCode, bytes, sample: null };
  }

  close(): Promise<void> {
    return this.pool.close();
  }
}

const parse = (r: Reply): Record<string, unknown> | null => {
  try {
    return JSON.parse(r.body) as Record<string, unknown>;
  } catch {
    return null;
  }
};

/** A 404 for the route itself (not for a resource): the server does not have it yet. */
function routeMissing(r: Reply): boolean {
  if (r.status !== 404) return false;
  const code = parse(r)?.code;
  return code === undefined || code === "route_not_found";
}

const brief = (r: Reply) => `${r.status} ${r.body.slice(0, 160).replace(/\s+/g, " ")}`;

function errorStatus(e: unknown): string {
  const code = (e as { code?: string }).code ?? "";
  if (code === "UND_ERR_HEADERS_TIMEOUT" || code === "UND_ERR_BODY_TIMEOUT" || code === "UND_ERR_CONNECT_TIMEOUT") return "timeout";
  if (code === "ECONNREFUSED") return "conn_refused";
  if (code === "ECONNRESET" || code === "UND_ERR_SOCKET" || code === "EPIPE") return "conn_reset";
  return code ? `net_${code}` : "network";
}

// ---------------------------------------------------------------------------------------------
// Setup through the API

interface World {
  runId: string;
  metricCode: string;
  customers: string[];
  /** subscriptions[i] belongs to customers[i] (when subscriptions exist). */
  subscriptions: string[];
  ops: Operation[];
  weights: number[];
}

async function mapLimit<T>(n: number, limit: number, fn: (i: number) => Promise<T>): Promise<T[]> {
  const out: T[] = new Array(n);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, n) }, async () => {
      while (next < n) {
        const i = next++;
        out[i] = await fn(i);
      }
    }),
  );
  return out;
}

async function setup(api: Api, config: RunConfig): Promise<{ world: World; result: SetupResult }> {
  const started = performance.now();
  const runId = `lt${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;
  const notes: string[] = [];
  const skipped: Partial<Record<Operation, string>> = {};
  const n = config.customers;

  let health: Reply;
  try {
    health = await api.call("GET", "/health");
  } catch (e) {
    fail(`cannot reach ${api.origin} (${errorStatus(e)}: ${(e as Error).message}): start the server, or pass --start-server`);
  }
  if (health.status !== 200) fail(`GET /health answered ${brief(health)}: the server is not ready`);
  const database = (parse(health)?.database as string | undefined) ?? null;

  const auth = await api.call("GET", "/api/v1/customers?per_page=1");
  if (auth.status === 401) fail("the API key was refused (401): set LOAD_TEST_API_KEY to a key of the organization to load");
  if (routeMissing(auth)) skipped.list_customers = "GET /api/v1/customers answered 404 (route_not_found): not supported by this server yet";

  // A metric summing `tokens`, and a plan charging it.
  const metricCode = `${runId}_tokens`;
  const metric = { status: "created", code: metricCode };
  let metricId: string | null = null;
  const m = await api.call("POST", "/api/v1/billable_metrics", {
    billable_metric: { name: "Load test tokens", code: metricCode, aggregation_type: "sum_agg", field_name: "tokens" },
  });
  if (m.status === 200) metricId = ((parse(m)?.billable_metric as Record<string, unknown> | undefined)?.lago_id as string | undefined) ?? null;
  else if (routeMissing(m)) {
    metric.status = "unsupported";
    notes.push("billable metrics: POST /api/v1/billable_metrics answered 404 (route_not_found): not supported yet; events are sent with an unknown code");
  } else {
    metric.status = `failed: ${brief(m)}`;
    notes.push(`billable metric: creation failed (${brief(m)}); events are still sent with code ${metricCode}`);
  }

  const planCode = `${runId}_plan`;
  const plan = { status: "created", code: planCode };
  const p = await api.call("POST", "/api/v1/plans", {
    plan: {
      name: "Load test plan",
      code: planCode,
      interval: "monthly",
      amount_cents: 1000,
      amount_currency: "USD",
      pay_in_advance: false,
      charges: metricId ? [{ billable_metric_id: metricId, charge_model: "standard", properties: { amount: "0.001" } }] : [],
    },
  });
  if (p.status !== 200) {
    if (routeMissing(p)) {
      plan.status = "unsupported";
      notes.push("plans: POST /api/v1/plans answered 404 (route_not_found): not supported yet; no subscriptions");
    } else {
      plan.status = `failed: ${brief(p)}`;
      notes.push(`plan: creation failed (${brief(p)}); no subscriptions`);
    }
  } else if (!metricId) notes.push("plan created without charges (no billable metric)");

  const customerIds = Array.from({ length: n }, (_, i) => `${runId}_cus_${i}`);
  const customers = { status: "created", created: 0, failed: 0 };
  const first = await api.call("POST", "/api/v1/customers", { customer: { external_id: customerIds[0], name: "Load test customer 0", currency: "USD" } });
  if (routeMissing(first)) {
    customers.status = "unsupported";
    notes.push("customers: POST /api/v1/customers answered 404 (route_not_found): not supported yet");
  } else {
    const replies = [first, ...(await mapLimit(n - 1, 8, (i) => api.call("POST", "/api/v1/customers", { customer: { external_id: customerIds[i + 1], name: `Load test customer ${i + 1}`, currency: "USD" } })))];
    customers.created = replies.filter((r) => r.status === 200).length;
    customers.failed = n - customers.created;
    if (customers.failed > 0) {
      customers.status = customers.created > 0 ? "partial" : "failed";
      notes.push(`customers: ${customers.failed} of ${n} creations failed (first: ${brief(replies.find((r) => r.status !== 200)!)})`);
    }
  }

  const subscriptionIds = customerIds.map((_, i) => `${runId}_sub_${i}`);
  const subscriptions = { status: "created", created: 0, failed: 0 };
  let liveSubs: number[] = [];
  if (plan.status !== "created") {
    subscriptions.status = "skipped (no plan)";
  } else {
    const subscribe = (i: number) =>
      api.call("POST", "/api/v1/subscriptions", { subscription: { external_customer_id: customerIds[i], plan_code: planCode, external_id: subscriptionIds[i] } });
    const s0 = await subscribe(0);
    if (routeMissing(s0)) {
      subscriptions.status = "unsupported";
      notes.push("subscriptions: POST /api/v1/subscriptions answered 404 (route_not_found): not supported yet");
    } else {
      const replies = [s0, ...(await mapLimit(n - 1, 8, (i) => subscribe(i + 1)))];
      liveSubs = replies.flatMap((r, i) => (r.status === 200 ? [i] : []));
      subscriptions.created = liveSubs.length;
      subscriptions.failed = n - liveSubs.length;
      if (subscriptions.failed > 0) {
        subscriptions.status = liveSubs.length > 0 ? "partial" : "failed";
        notes.push(`subscriptions: ${subscriptions.failed} of ${n} creations failed (first: ${brief(replies.find((r) => r.status !== 200)!)})`);
      }
    }
  }

  // Events go to the live subscriptions; without any, to subscription ids nobody has (still stored).
  const world: World = {
    runId,
    metricCode,
    customers: liveSubs.length > 0 ? liveSubs.map((i) => customerIds[i]!) : customerIds,
    subscriptions: liveSubs.length > 0 ? liveSubs.map((i) => subscriptionIds[i]!) : subscriptionIds,
    ops: [],
    weights: [],
  };

  // Probe every operation once; a missing route takes it out of the mix.
  if (liveSubs.length === 0) skipped.current_usage = `no subscriptions (${subscriptions.status}): current-usage reads need one`;
  for (const op of OPERATIONS) {
    if (skipped[op] !== undefined) continue;
    const req = buildRequest(op, world, config.batchSize, `${runId}-probe-${op}`);
    const r = await api.call(req.method, req.path, req.body);
    if (routeMissing(r)) skipped[op] = `${req.method} ${req.path.split("?")[0]} answered 404 (route_not_found): not supported by this server yet`;
    else if (r.status >= 400) notes.push(`probe ${OPERATION_LABELS[op]} answered ${brief(r)} (kept in the mix; its errors count)`);
  }
  for (const [op, why] of Object.entries(skipped)) notes.push(`skipped ${op}: ${why}`);

  for (const op of OPERATIONS) {
    if (skipped[op] !== undefined || config.mix[op] <= 0) continue;
    world.ops.push(op);
    world.weights.push(config.mix[op]);
  }
  if (world.ops.length === 0) throw new Error("no operation of the mix is supported by this server");

  return {
    world,
    result: {
      database,
      metric,
      plan,
      customers,
      subscriptions,
      skipped_operations: skipped,
      notes,
      seconds: Math.round((performance.now() - started) / 10) / 100,
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Requests of the mix

interface Request {
  method: "GET" | "POST";
  path: string;
  body: string | undefined;
  events: number;
}

const pick = <T>(xs: T[]): T => xs[Math.floor(Math.random() * xs.length)]!;

function eventJson(world: World, sub: string, tx: string): string {
  const tokens = 1 + Math.floor(Math.random() * 100);
  return `{"transaction_id":"${tx}","external_subscription_id":"${sub}","code":"${world.metricCode}","properties":{"tokens":${tokens},"region":"eu-west"}}`;
}

function buildRequest(op: Operation, world: World, batchSize: number, tx: string): Request {
  switch (op) {
    case "single_event":
      return { method: "POST", path: "/api/v1/events", body: `{"event":${eventJson(world, pick(world.subscriptions), tx)}}`, events: 1 };
    case "batch_events": {
      const sub = pick(world.subscriptions);
      const parts: string[] = new Array(batchSize);
      for (let i = 0; i < batchSize; i++) parts[i] = eventJson(world, sub, `${tx}-${i}`);
      return { method: "POST", path: "/api/v1/events/batch", body: `{"events":[${parts.join(",")}]}`, events: batchSize };
    }
    case "current_usage": {
      const i = Math.floor(Math.random() * world.subscriptions.length);
      const q = `external_subscription_id=${encodeURIComponent(world.subscriptions[i]!)}`;
      return { method: "GET", path: `/api/v1/customers/${encodeURIComponent(world.customers[i]!)}/current_usage?${q}`, body: undefined, events: 0 };
    }
    case "list_customers": {
      const pages = Math.max(1, Math.ceil(world.customers.length / 20));
      return { method: "GET", path: `/api/v1/customers?page=${1 + Math.floor(Math.random() * pages)}&per_page=20`, body: undefined, events: 0 };
    }
    case "list_events":
      return { method: "GET", path: `/api/v1/events?per_page=20&external_subscription_id=${encodeURIComponent(pick(world.subscriptions))}`, body: undefined, events: 0 };
    case "list_invoices":
      return { method: "GET", path: `/api/v1/invoices?per_page=20&external_customer_id=${encodeURIComponent(pick(world.customers))}`, body: undefined, events: 0 };
  }
}

// ---------------------------------------------------------------------------------------------
// Recording

class OpAgg {
  readonly hist = new Histogram();
  requests = 0;
  errors = 0;
  events = 0;
  bytes = 0;
  readonly statuses: Record<string, number> = {};
}

class Bucket {
  readonly hist = new Histogram();
  readonly ops = new Map<Operation, { requests: number; errors: number; hist: Histogram }>();
  requests = 0;
  errors = 0;
  events = 0;
}

class Recorder {
  readonly total = new Map<Operation, OpAgg>();
  readonly stages: Map<Operation, OpAgg>[] = [];
  readonly stageTimes: { start: number; end: number | null }[] = [];
  readonly timeline: TimelinePoint[] = [];
  readonly errorSamples = new Map<string, { operation: Operation; status: string; count: number; body: string }>();
  stage = 0;
  users = 0;
  private bucket = new Bucket();
  private bucketStart: number;
  private lastCpu = process.cpuUsage();
  // Whole-run counters, for the progress line.
  requests = 0;
  errors = 0;
  events = 0;

  constructor(readonly t0: number) {
    this.bucketStart = t0;
  }

  beginStage(index: number, users: number, now: number): void {
    const prev = this.stageTimes[this.stage];
    if (prev && prev.end === null && index !== this.stage) prev.end = now;
    this.stage = index;
    this.users = users;
    this.stages[index] ??= new Map();
    this.stageTimes[index] = { start: now, end: null };
  }

  endStages(now: number): void {
    for (const s of this.stageTimes) if (s && s.end === null) s.end = now;
  }

  record(op: Operation, ms: number, status: string, ok: boolean, events: number, bytes: number, sample: string | null): void {
    for (const map of [this.total, this.stages[this.stage]!]) {
      let a = map.get(op);
      if (!a) map.set(op, (a = new OpAgg()));
      a.hist.record(ms);
      a.requests++;
      a.bytes += bytes;
      a.statuses[status] = (a.statuses[status] ?? 0) + 1;
      if (ok) a.events += events;
      else a.errors++;
    }
    const b = this.bucket;
    b.hist.record(ms);
    b.requests++;
    let bo = b.ops.get(op);
    if (!bo) b.ops.set(op, (bo = { requests: 0, errors: 0, hist: new Histogram() }));
    bo.requests++;
    bo.hist.record(ms);
    this.requests++;
    if (ok) {
      b.events += events;
      this.events += events;
    } else {
      b.errors++;
      bo.errors++;
      this.errors++;
      const key = `${op} ${status}`;
      const s = this.errorSamples.get(key);
      if (s) s.count++;
      else if (this.errorSamples.size < 50) this.errorSamples.set(key, { operation: op, status, count: 1, body: sample ?? "" });
    }
  }

  /** Closes the current 1-second bucket. */
  rollover(now: number, server: ProcSample | null): TimelinePoint {
    const b = this.bucket;
    this.bucket = new Bucket();
    const dt = Math.max(1e-3, (now - this.bucketStart) / 1000);
    this.bucketStart = now;
    const cpu = process.cpuUsage(this.lastCpu);
    this.lastCpu = process.cpuUsage();
    const r2 = (x: number | null) => (x === null ? null : Math.round(x * 100) / 100);
    const ops: TimelinePoint["ops"] = {};
    for (const [op, o] of b.ops) ops[op] = { requests: o.requests, errors: o.errors, p95_ms: r2(o.hist.percentile(0.95)) };
    const point: TimelinePoint = {
      t: Math.round(((now - this.t0) / 1000) * 100) / 100,
      dt: Math.round(dt * 1000) / 1000,
      stage: this.stage,
      users: this.users,
      requests: b.requests,
      ok: b.requests - b.errors,
      errors: b.errors,
      events: b.events,
      requests_per_s: Math.round(b.requests / dt),
      events_per_s: Math.round(b.events / dt),
      p50_ms: r2(b.hist.percentile(0.5)),
      p95_ms: r2(b.hist.percentile(0.95)),
      p99_ms: r2(b.hist.percentile(0.99)),
      ops,
      server_cpu_pct: server ? Math.round(server.cpuPct * 10) / 10 : null,
      server_rss_mb: server ? Math.round((server.rssBytes / 2 ** 20) * 10) / 10 : null,
      driver_cpu_pct: Math.round(((cpu.user + cpu.system) / 1e6 / dt) * 1000) / 10,
    };
    this.timeline.push(point);
    return point;
  }
}

// ---------------------------------------------------------------------------------------------
// The load phase

/** Spaces ingestion so that at most `rate` events per second are offered (reservation model). */
class Pacer {
  private nextFree = performance.now();
  constructor(private readonly rate: number) {}
  /** Milliseconds to wait before sending `events` events. */
  reserve(events: number): number {
    const now = performance.now();
    const at = Math.max(now, this.nextFree);
    this.nextFree = at + (events / this.rate) * 1000;
    return at - now;
  }
}

interface LoadOutcome {
  seconds: number;
  stopReason: string;
  serverSamples: ProcSample[];
}

async function runLoad(api: Api, world: World, config: RunConfig, recorder: Recorder, sampler: ProcSampler | null, t0: number, interrupted: { stop: boolean }): Promise<LoadOutcome> {
  const totalSeconds = config.stages.reduce((a, s) => a + s.seconds, 0);
  const deadline = t0 + totalSeconds * 1000;
  const cumulative = world.weights.map(((sum) => (w: number) => (sum += w))(0));
  const weightTotal = cumulative[cumulative.length - 1]!;
  const pacer = config.eventsPerSecondCeiling ? new Pacer(config.eventsPerSecondCeiling) : null;
  const serverSamples: ProcSample[] = [];
  let issued = 0;
  let activeUsers = 0;
  let stopReason = "time";
  let stopped = false;
  let wake: () => void = () => {};
  const stoppedSignal = new Promise<void>((resolve) => (wake = resolve));
  const stop = (why: string) => {
    if (stopped) return;
    stopped = true;
    stopReason = why;
    wake();
  };

  const chooseOp = (): Operation => {
    const x = Math.random() * weightTotal;
    for (let i = 0; i < cumulative.length; i++) if (x < cumulative[i]!) return world.ops[i]!;
    return world.ops[world.ops.length - 1]!;
  };

  const vu = async (index: number) => {
    let seq = 0;
    while (!stopped && index < activeUsers) {
      if (performance.now() >= deadline) return;
      if (issued >= config.maxRequests) return stop(`request cap (${config.maxRequests.toLocaleString("en-US")})`);
      issued++;
      const op = chooseOp();
      const req = buildRequest(op, world, config.batchSize, `${world.runId}-${index}-${seq++}`);
      if (pacer && req.events > 0) {
        const wait = pacer.reserve(req.events);
        if (wait > 0) {
          if (performance.now() + wait >= deadline) return;
          await new Promise((r) => setTimeout(r, wait));
          if (stopped) return;
        }
      }
      const start = performance.now();
      let status: string;
      let ok = false;
      let bytes = 0;
      let sample: string | null = null;
      try {
        const r = await api.timed(req.method, req.path, req.body);
        status = String(r.status);
        ok = r.status < 400;
        bytes = r.bytes;
        sample = r.sample;
      } catch (e) {
        status = errorStatus(e);
        sample = (e as Error).message;
      }
      recorder.record(op, performance.now() - start, status, ok, req.events, bytes, sample);
    }
  };

  const tty = process.stderr.isTTY;
  const ticker = setInterval(() => {
    if (interrupted.stop) stop("interrupted (SIGINT)");
    const now = performance.now();
    const server = sampler ? sampler.sample(recorder.timeline.length % 5 === 0) : null;
    if (server) serverSamples.push(server);
    const p = recorder.rollover(now, server);
    const errPct = recorder.requests ? (recorder.errors / recorder.requests) * 100 : 0;
    const line =
      `[load] ${p.t.toFixed(0).padStart(4)}s/${totalSeconds}s  users ${String(p.users).padStart(4)}  ` +
      `${p.requests_per_s.toLocaleString("en-US").padStart(7)} req/s  ${p.events_per_s.toLocaleString("en-US").padStart(8)} events/s  ` +
      `p95 ${p.p95_ms === null ? "   -" : p.p95_ms.toFixed(1).padStart(6)} ms  errors ${recorder.errors.toLocaleString("en-US")} (${errPct.toFixed(2)}%)` +
      (server ? `  server cpu ${server.cpuPct.toFixed(0)}% rss ${(server.rssBytes / 2 ** 20).toFixed(0)} MiB` : "");
    process.stderr.write(tty ? `\r\x1b[2K${line}` : `${line}\n`);
  }, 1000);

  const running: Promise<void>[] = [];
  const alive: boolean[] = [];
  let stageEnd = t0;
  try {
    for (let i = 0; i < config.stages.length && !stopped; i++) {
      const stage = config.stages[i]!;
      stageEnd += stage.seconds * 1000;
      recorder.beginStage(i, stage.users, performance.now());
      activeUsers = stage.users;
      if (config.stages.length > 1) {
        if (tty) process.stderr.write("\n");
        log(`stage ${i + 1}/${config.stages.length}: ${stage.users} users for ${stage.seconds} s`);
      }
      // Users past a smaller stage's count stop after their current request; a later, larger stage
      // relaunches only the ones that ended.
      for (let k = 0; k < stage.users; k++) {
        if (alive[k]) continue;
        alive[k] = true;
        running.push(vu(k).finally(() => (alive[k] = false)));
      }
      const wait = Math.max(0, Math.min(stageEnd, deadline) - performance.now());
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([stoppedSignal, new Promise<void>((r) => (timer = setTimeout(r, wait)))]);
      clearTimeout(timer);
    }
    stop("time");
    await Promise.all(running);
  } finally {
    clearInterval(ticker);
  }
  const end = performance.now();
  recorder.endStages(end);
  const server = sampler ? sampler.sample(false) : null;
  if (server) serverSamples.push(server);
  if (recorder.timeline.length === 0 || end - t0 - recorder.timeline[recorder.timeline.length - 1]!.t * 1000 > 50) recorder.rollover(end, server);
  if (tty) process.stderr.write("\n");
  return { seconds: (end - t0) / 1000, stopReason: stopReason === "time" ? `time (${totalSeconds} s)` : stopReason, serverSamples };
}

// ---------------------------------------------------------------------------------------------
// Summary

function opResult(op: Operation, a: OpAgg, seconds: number, weight: number): OperationResult {
  return {
    label: OPERATION_LABELS[op],
    weight,
    requests: a.requests,
    ok: a.requests - a.errors,
    errors: a.errors,
    error_rate: a.requests ? Number((a.errors / a.requests).toFixed(6)) : 0,
    requests_per_s: Math.round((a.requests / seconds) * 10) / 10,
    events: a.events,
    response_bytes: a.bytes,
    statuses: a.statuses,
    latency_ms: a.hist.summary(),
  };
}

function merged(map: Map<Operation, OpAgg>): { hist: Histogram; requests: number; errors: number; events: number; statuses: Record<string, number> } {
  const hist = new Histogram();
  let requests = 0;
  let errors = 0;
  let events = 0;
  const statuses: Record<string, number> = {};
  for (const a of map.values()) {
    hist.merge(a.hist);
    requests += a.requests;
    errors += a.errors;
    events += a.events;
    for (const [s, c] of Object.entries(a.statuses)) statuses[s] = (statuses[s] ?? 0) + c;
  }
  return { hist, requests, errors, events, statuses };
}

const fmtInt = (x: number) => Math.round(x).toLocaleString("en-US");

function targetRows(s: Omit<Summary, "targets" | "files">): TargetRow[] {
  const t = s.totals;
  const rows: TargetRow[] = [];
  const bestStage = s.stages.length > 1 ? [...s.stages].sort((a, b) => b.events_per_min - a.events_per_min)[0] : undefined;
  rows.push({
    metric: "Events/minute",
    target: `≥ ${fmtInt(TARGETS.eventsPerMin)}`,
    actual: fmtInt(t.events_per_min),
    value: t.events_per_min,
    pass: t.events_per_min >= TARGETS.eventsPerMin,
    note: `${Math.round((t.events_per_min / TARGETS.eventsPerMin) * 100)}% of target` + (bestStage ? `; best stage (${bestStage.users} users): ${fmtInt(bestStage.events_per_min)}` : ""),
  });
  const p95 = t.latency_ms.p95;
  const p99 = t.latency_ms.p99;
  rows.push({ metric: "P95 response time", target: `< ${TARGETS.p95Ms} ms`, actual: p95 === null ? "-" : `${p95.toFixed(1)} ms`, value: p95, pass: p95 === null ? null : p95 < TARGETS.p95Ms, note: "all operations" });
  rows.push({ metric: "P99 response time", target: `< ${TARGETS.p99Ms} ms`, actual: p99 === null ? "-" : `${p99.toFixed(1)} ms`, value: p99, pass: p99 === null ? null : p99 < TARGETS.p99Ms, note: "all operations" });
  rows.push({
    metric: "Error rate",
    target: `< ${TARGETS.errorRate * 100}%`,
    actual: `${(t.error_rate * 100).toFixed(3)}%`,
    value: t.error_rate,
    pass: t.requests > 0 ? t.error_rate < TARGETS.errorRate : null,
    note: `${fmtInt(t.errors)} of ${fmtInt(t.requests)} requests`,
  });
  const sv = s.server;
  rows.push({
    metric: "Server CPU (avg)",
    target: `< ${TARGETS.cpuPct}%`,
    actual: sv?.cpu_avg_pct == null ? "-" : `${sv.cpu_avg_pct.toFixed(1)}%`,
    value: sv?.cpu_avg_pct ?? null,
    pass: sv?.cpu_avg_pct == null ? null : sv.cpu_avg_pct < TARGETS.cpuPct,
    note: sv?.cpu_avg_pct == null ? "server process not found (use --server-pid)" : `of ${sv.cores} core(s); ${sv.cpu_avg_cores?.toFixed(2)} cores used, peak ${sv.cpu_peak_pct?.toFixed(0)}%; ${sv.pids.length} process(es)`,
  });
  rows.push({
    metric: "Server memory (peak)",
    target: `< ${TARGETS.memoryPct}%`,
    actual: sv?.memory_peak_pct == null ? "-" : `${sv.memory_peak_pct.toFixed(1)}%`,
    value: sv?.memory_peak_pct ?? null,
    pass: sv?.memory_peak_pct == null ? null : sv.memory_peak_pct < TARGETS.memoryPct,
    note: sv?.rss_peak_bytes == null ? "server process not found (use --server-pid)" : `RSS ${(sv.rss_peak_bytes / 2 ** 20).toFixed(0)} MiB of ${(sv.memory_limit_bytes / 2 ** 30).toFixed(1)} GiB`,
  });
  return rows;
}

// ---------------------------------------------------------------------------------------------
// Main

function stamp(d: Date): string {
  return d.toISOString().replace(/[:]/g, "").replace(/\..+$/, "").replace("T", "-");
}

export async function main(argv: string[]): Promise<number> {
  const cli = parseCli(argv);
  const config = cli.config;
  let server: BenchServer | null = null;
  let dataDir: string | null = null;
  let apiKey = cli.apiKey;
  const interrupted = { stop: false };
  const onSigint = () => {
    if (interrupted.stop) {
      server?.child.kill("SIGTERM");
      process.exit(130);
    }
    interrupted.stop = true;
    log("interrupted: finishing the requests in flight and writing the report (again to quit now)");
  };
  process.on("SIGINT", onSigint);

  try {
    if (cli.startServer) {
      apiKey ??= `lt_${Math.random().toString(36).slice(2)}${Math.random().toString(36).slice(2)}`;
      const env: Record<string, string> = { VALUEVERSE_API_KEY: apiKey };
      if (!process.env.DATABASE_URL) {
        dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "vv-load-"));
        env.DATA_DIR = dataDir;
      }
      if (cli.workers) env.WORKERS = cli.workers;
      log(`starting a server (${process.env.DATABASE_URL ? "DATABASE_URL" : `embedded database in ${dataDir}`})`);
      server = await startServer(env, log);
      config.url = server.url;
    }
    const url = await assertLoopback(config.url);
    if (!apiKey) fail("set LOAD_TEST_API_KEY (an API key of the organization to load) or use --start-server");

    const maxUsers = Math.max(...config.stages.map((s) => s.users));
    const api = new Api(url.origin, apiKey, maxUsers + 8, config.requestTimeoutMs);
    try {
      log(`${config.mode}: ${config.stages.map((s) => `${s.users} users × ${s.seconds} s`).join(" → ")} against ${url.origin}`);
      log("setup: billable metric, plan, customers, subscriptions");
      const { world, result: setupResult } = await setup(api, config);
      for (const note of setupResult.notes) log(`setup: ${note}`);
      log(`setup done in ${setupResult.seconds} s (${setupResult.customers.created} customers, ${setupResult.subscriptions.created} subscriptions); mix: ${world.ops.map((o, i) => `${o} ${world.weights[i]}`).join(", ")}`);

      // The server's processes: given, the one we started, or whoever listens on the port.
      let source = "--server-pid";
      let roots = cli.serverPids;
      if (roots.length === 0 && server?.child.pid) {
        roots = [server.child.pid];
        source = "started by the load test";
      }
      if (roots.length === 0) {
        roots = pidsListeningOn(Number(url.port || 80));
        source = `listening on port ${url.port || 80}`;
      }
      const sampler = roots.length > 0 ? new ProcSampler(roots) : null;
      if (!sampler) log("server process not found by its port (another user's process?): CPU and memory not measured; pass --server-pid");
      else log(`measuring server process(es) ${sampler.currentPids.join(", ")} (${source})`);

      const startedAt = new Date();
      const t0 = performance.now();
      const recorder = new Recorder(t0);
      const outcome = await runLoad(api, world, config, recorder, sampler, t0, interrupted);
      const finishedAt = new Date();
      log(`load done: ${outcome.stopReason}`);

      const seconds = outcome.seconds;
      const all = merged(recorder.total);
      const weightOf = (op: Operation) => world.weights[world.ops.indexOf(op)] ?? 0;
      const operations: Summary["operations"] = {};
      for (const op of OPERATIONS) {
        const a = recorder.total.get(op);
        if (a) operations[op] = opResult(op, a, seconds, weightOf(op));
      }
      const stages: StageResult[] = config.stages.flatMap((stage, index) => {
        const map = recorder.stages[index];
        const times = recorder.stageTimes[index];
        if (!map || !times) return [];
        const m = merged(map);
        const secs = Math.max(1e-3, ((times.end ?? performance.now()) - times.start) / 1000);
        return [
          {
            index,
            ...stage,
            seconds_measured: Math.round(secs * 100) / 100,
            requests: m.requests,
            errors: m.errors,
            error_rate: m.requests ? Number((m.errors / m.requests).toFixed(6)) : 0,
            events: m.events,
            events_per_min: Math.round((m.events / secs) * 60),
            requests_per_s: Math.round(m.requests / secs),
            latency_ms: m.hist.summary(),
          },
        ];
      });
      const samples = outcome.serverSamples;
      const capacity = sampler?.capacity ?? machineCapacity();
      const avg = (xs: number[]) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : null);
      const r1 = (x: number | null) => (x === null ? null : Math.round(x * 10) / 10);
      const peakRss = samples.length ? Math.max(...samples.map((s) => s.rssBytes)) : null;
      const base: Omit<Summary, "targets" | "files"> = {
        tool: "valueverse-load-test",
        version: 1,
        mode: config.mode,
        url: url.origin,
        started_at: startedAt.toISOString(),
        finished_at: finishedAt.toISOString(),
        stop_reason: outcome.stopReason,
        config: {
          stages: config.stages,
          mix: Object.fromEntries(world.ops.map((o, i) => [o, world.weights[i]!])),
          batch_size: config.batchSize,
          customers: config.customers,
          max_requests: config.maxRequests,
          events_per_s_ceiling: config.eventsPerSecondCeiling,
          request_timeout_ms: config.requestTimeoutMs,
        },
        setup: setupResult,
        totals: {
          seconds: Math.round(seconds * 100) / 100,
          requests: all.requests,
          ok: all.requests - all.errors,
          errors: all.errors,
          error_rate: all.requests ? Number((all.errors / all.requests).toFixed(6)) : 0,
          requests_per_s: Math.round(all.requests / seconds),
          events: all.events,
          events_per_s: Math.round(all.events / seconds),
          events_per_min: Math.round((all.events / seconds) * 60),
          latency_ms: all.hist.summary(),
          statuses: all.statuses,
        },
        operations,
        stages,
        server: sampler
          ? {
              source,
              pids: sampler.currentPids,
              cores: capacity.cores,
              memory_limit_bytes: capacity.memoryBytes,
              // The last sample is the tail after the load (requests draining): not in the averages.
              cpu_avg_pct: r1(avg(samples.slice(0, -1).map((s) => s.cpuPct)) ?? avg(samples.map((s) => s.cpuPct))),
              cpu_peak_pct: r1(samples.length ? Math.max(...samples.map((s) => s.cpuPct)) : null),
              cpu_avg_cores: samples.length ? Math.round((avg(samples.slice(0, -1).map((s) => s.cpuCores)) ?? samples[0]!.cpuCores) * 100) / 100 : null,
              rss_peak_bytes: peakRss,
              memory_peak_pct: peakRss === null ? null : r1((peakRss / capacity.memoryBytes) * 100),
            }
          : null,
        driver: { cpu_avg_pct: r1(avg(recorder.timeline.map((p) => p.driver_cpu_pct))) ?? 0, pid: process.pid },
        machine: { cpus: os.availableParallelism(), cpu_model: os.cpus()[0]?.model ?? "unknown", memory_bytes: os.totalmem(), node: process.version },
        error_samples: [...recorder.errorSamples.values()].sort((a, b) => b.count - a.count),
        timeline: recorder.timeline,
      };

      const outDir = path.resolve(cli.outDir ?? path.join(HERE, "reports", `${stamp(startedAt)}-${config.mode}`));
      fs.mkdirSync(outDir, { recursive: true });
      const summary: Summary = {
        ...base,
        targets: targetRows(base),
        files: { json: path.join(outDir, "summary.json"), html: path.join(outDir, "report.html"), text: path.join(outDir, "report.txt") },
      };
      const text = renderText(summary);
      fs.writeFileSync(summary.files.json, JSON.stringify(summary, null, 2) + "\n");
      fs.writeFileSync(summary.files.html, renderHtml(summary));
      fs.writeFileSync(summary.files.text, text);
      process.stdout.write(text);
      log(`report: ${summary.files.html}`);
      if (cli.strict && summary.targets.some((t) => t.pass === false)) return 3;
      return 0;
    } finally {
      await api.close();
    }
  } finally {
    process.off("SIGINT", onSigint);
    if (server) {
      log("stopping the server");
      await server.stop();
    }
    if (dataDir) fs.rmSync(dataDir, { recursive: true, force: true });
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (e: unknown) => {
      if (e instanceof UsageError) process.stderr.write(`[load] ${e.message}\n`);
      else process.stderr.write(`\n[load] failed: ${(e as Error).stack ?? String(e)}\n`);
      process.exit(e instanceof UsageError ? 2 : 1);
    },
  );
}
