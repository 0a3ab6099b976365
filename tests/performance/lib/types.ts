// Shapes of the load test's configuration, results and JSON summary (summary.json).
import type { LatencySummary } from "./histogram.ts";

export const OPERATIONS = ["single_event", "batch_events", "current_usage", "list_customers", "list_events", "list_invoices"] as const;
export type Operation = (typeof OPERATIONS)[number];

export const OPERATION_LABELS: Record<Operation, string> = {
  single_event: "POST /api/v1/events",
  batch_events: "POST /api/v1/events/batch",
  current_usage: "GET /api/v1/customers/:id/current_usage",
  list_customers: "GET /api/v1/customers",
  list_events: "GET /api/v1/events",
  list_invoices: "GET /api/v1/invoices",
};

export type Mode = "quick" | "progressive" | "stress";

export interface Stage {
  users: number;
  seconds: number;
}

export interface RunConfig {
  mode: Mode;
  url: string;
  stages: Stage[];
  mix: Record<Operation, number>;
  batchSize: number;
  customers: number;
  maxRequests: number;
  /** Events per second the ingest operations may offer at most (null: as fast as the users go). */
  eventsPerSecondCeiling: number | null;
  requestTimeoutMs: number;
}

export interface OperationResult {
  label: string;
  weight: number;
  requests: number;
  ok: number;
  errors: number;
  error_rate: number;
  requests_per_s: number;
  events: number;
  response_bytes: number;
  statuses: Record<string, number>;
  latency_ms: LatencySummary;
}

export interface TimelinePoint {
  /** Seconds since the load started, at the end of this bucket. */
  t: number;
  dt: number;
  stage: number;
  users: number;
  requests: number;
  ok: number;
  errors: number;
  events: number;
  requests_per_s: number;
  events_per_s: number;
  p50_ms: number | null;
  p95_ms: number | null;
  p99_ms: number | null;
  ops: Partial<Record<Operation, { requests: number; errors: number; p95_ms: number | null }>>;
  server_cpu_pct: number | null;
  server_rss_mb: number | null;
  driver_cpu_pct: number;
}

export interface TargetRow {
  metric: string;
  target: string;
  actual: string;
  value: number | null;
  pass: boolean | null;
  note?: string;
}

export interface StageResult extends Stage {
  index: number;
  seconds_measured: number;
  requests: number;
  errors: number;
  error_rate: number;
  events: number;
  events_per_min: number;
  requests_per_s: number;
  latency_ms: LatencySummary;
}

export interface SetupResult {
  database: string | null;
  metric: { status: string; code: string };
  plan: { status: string; code: string };
  customers: { status: string; created: number; failed: number };
  subscriptions: { status: string; created: number; failed: number };
  skipped_operations: Partial<Record<Operation, string>>;
  notes: string[];
  seconds: number;
}

export interface Summary {
  tool: "valueverse-load-test";
  version: 1;
  mode: Mode;
  url: string;
  started_at: string;
  finished_at: string;
  stop_reason: string;
  config: {
    stages: Stage[];
    mix: Partial<Record<Operation, number>>;
    batch_size: number;
    customers: number;
    max_requests: number;
    events_per_s_ceiling: number | null;
    request_timeout_ms: number;
  };
  setup: SetupResult;
  totals: {
    seconds: number;
    requests: number;
    ok: number;
    errors: number;
    error_rate: number;
    requests_per_s: number;
    events: number;
    events_per_s: number;
    events_per_min: number;
    latency_ms: LatencySummary;
    statuses: Record<string, number>;
  };
  operations: Partial<Record<Operation, OperationResult>>;
  stages: StageResult[];
  server: {
    source: string;
    pids: number[];
    cores: number;
    memory_limit_bytes: number;
    cpu_avg_pct: number | null;
    cpu_peak_pct: number | null;
    cpu_avg_cores: number | null;
    rss_peak_bytes: number | null;
    memory_peak_pct: number | null;
  } | null;
  driver: { cpu_avg_pct: number; pid: number };
  machine: { cpus: number; cpu_model: string; memory_bytes: number; node: string };
  targets: TargetRow[];
  error_samples: { operation: Operation; status: string; count: number; body: string }[];
  timeline: TimelinePoint[];
  files: { json: string; html: string; text: string };
}
