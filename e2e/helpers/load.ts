// A bounded ingest load against a running server: concurrent clients sending single events and small
// batches with unique transaction ids, plus deliberate retries (same payload) and conflicts (same
// identity, other payload) of events already acknowledged. It records which events got a 2xx, so a
// test can check, after a crash or a shutdown, that every acknowledged event is stored exactly once.
import { call } from "./http.ts";

export interface EventPayload {
  transaction_id: string;
  external_subscription_id: string;
  code: string;
  /** Unix seconds with milliseconds, as Lago's clients send it. */
  timestamp: number;
  properties: Record<string, unknown>;
  precise_total_amount_cents?: string;
}

/** Lago's event identity within one organization: external_subscription_id + transaction_id. */
export const identityOf = (e: { external_subscription_id: string; transaction_id: string }) =>
  `${e.external_subscription_id}\u0000${e.transaction_id}`;

/** The event time in microseconds, parsed from the decimal text of `timestamp` as the server does. */
export function timestampMicros(ts: number): number {
  const [whole, frac = ""] = String(ts).split(".");
  return Number(whole) * 1_000_000 + Number(frac.slice(0, 6).padEnd(6, "0"));
}

export interface LoadControl {
  /** Set to make every client finish its current request and stop. */
  stop: boolean;
  /** Set (performance.now()) just before the server is killed or told to stop. */
  killedAt?: number;
  /** Updated by the load as it goes: identities acknowledged and requests answered so far. */
  acked?: number;
  answered?: number;
}

export interface LoadOptions {
  url: string;
  apiKey: string;
  /** Prefix of every transaction id (unique per run). */
  prefix: string;
  clients: number;
  /** Hard bound on the load's duration. */
  durationMs: number;
  /** Hard bound on the number of new events sent. */
  maxNewEvents: number;
  control: LoadControl;
  seed?: number;
  /** Share of requests that are single events (the rest are batches of 2..maxBatch). */
  singleShare?: number;
  maxBatch?: number;
  /** Every n-th request retries acknowledged events (same payload); 0 for none. Default 10. */
  retryEvery?: number;
  /** Every n-th request sends an acknowledged identity with another payload; 0 for none. Default 25. */
  conflictEvery?: number;
  subscriptions?: number;
  codes?: string[];
  /** Event times are spread over this much time before now (crosses monthly partitions when > 1 month). */
  spreadMs?: number;
}

export interface LoadReport {
  seed: number;
  /** Every identity sent as a new event, with its (first and only) payload. */
  attempted: Map<string, EventPayload>;
  /** Identities whose request (new event or retry) got a 2xx. */
  acked: Map<string, EventPayload>;
  /** Acknowledged identities a conflicting payload was sent for (the stored payload must not change). */
  conflictTargets: Set<string>;
  requests: number;
  /** Requests that got no HTTP answer (connection refused/reset: the server was killed or stopping). */
  noAnswer: number;
  /** ... of which before `control.killedAt` was set: must be 0. */
  noAnswerBeforeKill: number;
  /** 2xx answers received after `control.killedAt` was set (in flight at SIGTERM, answered while draining). */
  ackedAfterKill: number;
  /** Count of answers by "kind:status", e.g. "single:200", "batch:503", "conflict:422". */
  statuses: Record<string, number>;
  newEventsSent: number;
  retriesSent: number;
  retriesAcked: number;
  conflictsSent: number;
  conflictsRefused: number;
  /** Events in requests answered 503 (refused while shutting down): nothing should be stored for them. */
  refusedWhileStopping: Set<string>;
  /** Answers that break the contract (5xx other than 503, a 4xx for a valid event, a wrong body...). */
  problems: string[];
  elapsedMs: number;
}

/** Deterministic PRNG (mulberry32), so a failing run can be replayed with its seed. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export async function runLoad(o: LoadOptions): Promise<LoadReport> {
  const seed = o.seed ?? Math.floor(Math.random() * 2 ** 31);
  const rand = rng(seed);
  const singleShare = o.singleShare ?? 0.5;
  const maxBatch = o.maxBatch ?? 10;
  const retryEvery = o.retryEvery ?? 10;
  const conflictEvery = o.conflictEvery ?? 25;
  let requestNo = 0;
  const subs = o.subscriptions ?? 4;
  const codes = o.codes ?? ["api_calls", "storage_gb", "seats"];
  const spreadMs = o.spreadMs ?? 40 * 86_400_000;

  const report: LoadReport = {
    seed,
    attempted: new Map(),
    acked: new Map(),
    conflictTargets: new Set(),
    requests: 0,
    noAnswer: 0,
    noAnswerBeforeKill: 0,
    ackedAfterKill: 0,
    statuses: {},
    newEventsSent: 0,
    retriesSent: 0,
    retriesAcked: 0,
    conflictsSent: 0,
    conflictsRefused: 0,
    refusedWhileStopping: new Set(),
    problems: [],
    elapsedMs: 0,
  };
  const ackedList: EventPayload[] = [];
  const started = performance.now();
  let seq = 0;
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;

  const newEvent = (): EventPayload => {
    const n = ++seq;
    report.newEventsSent++;
    const nowMs = Date.now();
    // Now and then the transaction id of an acknowledged event, on another subscription: a distinct
    // identity in Lago's scope, to be stored as a separate event.
    const twinOf = ackedList.length > 0 && rand() < 0.03 ? pick(ackedList) : undefined;
    const subIndex = twinOf ? (Number(twinOf.external_subscription_id.split("_").pop()) + 1) % subs : Math.floor(rand() * subs);
    const e: EventPayload = {
      transaction_id: twinOf ? twinOf.transaction_id : `${o.prefix}-${n}`,
      external_subscription_id: `${o.prefix}_sub_${subIndex}`,
      code: pick(codes),
      timestamp: Number(((nowMs - Math.floor(rand() * spreadMs)) / 1000).toFixed(3)),
      properties: { n, region: pick(["eu", "us", "ap"]), gb: Math.round(rand() * 1000) / 10 },
    };
    if (rand() < 0.2) e.precise_total_amount_cents = (rand() * 10_000).toFixed(4);
    if (report.attempted.has(identityOf(e))) {
      report.newEventsSent--; // a twin of a twin: draw again
      return newEvent();
    }
    report.attempted.set(identityOf(e), e);
    return e;
  };

  const count = (kind: string, status: number) => {
    const k = `${kind}:${status}`;
    report.statuses[k] = (report.statuses[k] ?? 0) + 1;
  };
  const ack = (events: EventPayload[]) => {
    for (const e of events) {
      const id = identityOf(e);
      if (!report.acked.has(id)) {
        report.acked.set(id, e);
        ackedList.push(e);
        o.control.acked = report.acked.size;
      }
    }
  };
  const sameIds = (got: unknown, want: EventPayload) => {
    const g = got as { transaction_id?: unknown; external_subscription_id?: unknown } | undefined;
    return g?.transaction_id === want.transaction_id && g?.external_subscription_id === want.external_subscription_id;
  };

  /** Sends one request: "acked" (2xx), "answered" (anything else), "dead" (no answer; the client stops). */
  const send = async (kind: string, events: EventPayload[], batch: boolean, expect: "ok" | "conflict"): Promise<"acked" | "answered" | "dead"> => {
    report.requests++;
    let answer;
    try {
      answer = batch
        ? await call(o.url, "POST", "/api/v1/events/batch", { apiKey: o.apiKey, body: { events }, timeoutMs: 20_000 })
        : await call(o.url, "POST", "/api/v1/events", { apiKey: o.apiKey, body: { event: events[0] }, timeoutMs: 20_000 });
    } catch (err) {
      report.noAnswer++;
      if (o.control.killedAt === undefined) {
        report.noAnswerBeforeKill++;
        report.problems.push(`${kind}: no answer before the server was stopped: ${(err as Error).message} ${String((err as Error).cause ?? "")}`);
      }
      return "dead";
    }
    count(kind, answer.status);
    o.control.answered = (o.control.answered ?? 0) + 1;
    const { status, body } = answer;
    if (status === 503 && o.control.killedAt !== undefined) {
      for (const e of events) report.refusedWhileStopping.add(identityOf(e));
      return "dead";
    }
    if (expect === "conflict") {
      const details = (body as { error_details?: { transaction_id?: unknown } } | null)?.error_details;
      if (status === 422 && JSON.stringify(details?.transaction_id) === JSON.stringify(["value_already_exist"])) report.conflictsRefused++;
      else report.problems.push(`conflict: expected 422 value_already_exist, got ${status} ${JSON.stringify(body).slice(0, 300)}`);
      return "answered";
    }
    if (status >= 200 && status < 300) {
      const b = body as { event?: unknown; events?: unknown[] };
      const shapeOk = batch
        ? Array.isArray(b?.events) && b.events.length === events.length && events.every((e, i) => sameIds(b.events![i], e))
        : sameIds(b?.event, events[0]!);
      if (!shapeOk) report.problems.push(`${kind}: ${status} with an unexpected body ${JSON.stringify(body).slice(0, 300)}`);
      ack(events);
      if (o.control.killedAt !== undefined) report.ackedAfterKill++;
      return "acked";
    }
    report.problems.push(`${kind}: expected 2xx, got ${status} ${JSON.stringify(body).slice(0, 300)}`);
    return "answered";
  };

  const client = async () => {
    while (!o.control.stop && performance.now() - started < o.durationMs) {
      // Retries and conflicts on a fixed cadence (once something is acknowledged), so every run has them.
      const n = ++requestNo;
      let outcome: "acked" | "answered" | "dead";
      if (conflictEvery > 0 && n % conflictEvery === 0 && ackedList.length > 0) {
        const target = pick(ackedList);
        report.conflictTargets.add(identityOf(target));
        report.conflictsSent++;
        const other = { ...target, properties: { ...target.properties, n: -1, conflicting: true } };
        outcome = await send("conflict", [other], false, "conflict");
      } else if (retryEvery > 0 && n % retryEvery === 0 && ackedList.length > 0) {
        // Retries of acknowledged events, alone or inside a batch with new ones.
        const batch = rand() < 0.5;
        const retries = Array.from({ length: batch ? 1 + Math.floor(rand() * 3) : 1 }, () => pick(ackedList));
        report.retriesSent += retries.length;
        const events = batch ? [...retries, ...Array.from({ length: 1 + Math.floor(rand() * 4) }, newEvent)] : retries;
        outcome = await send(batch ? "retry-batch" : "retry", events, batch, "ok");
        if (outcome === "acked") report.retriesAcked += retries.length;
      } else if (report.newEventsSent >= o.maxNewEvents) {
        break;
      } else if (rand() < singleShare) {
        outcome = await send("single", [newEvent()], false, "ok");
      } else {
        const events = Array.from({ length: 2 + Math.floor(rand() * (maxBatch - 1)) }, newEvent);
        // Sometimes the same event twice in one batch: both answered, stored once.
        if (rand() < 0.1) events.push(events[0]!);
        outcome = await send("batch", events, true, "ok");
      }
      if (outcome === "dead") break;
    }
  };

  await Promise.all(Array.from({ length: o.clients }, client));
  report.elapsedMs = performance.now() - started;
  return report;
}

/** One line for logs: what the load did. */
export function summarize(r: LoadReport): string {
  return JSON.stringify({
    seed: r.seed,
    requests: r.requests,
    newEventsSent: r.newEventsSent,
    attempted: r.attempted.size,
    acked: r.acked.size,
    retriesSent: r.retriesSent,
    conflictsSent: r.conflictsSent,
    conflictsRefused: r.conflictsRefused,
    noAnswer: r.noAnswer,
    ackedAfterKill: r.ackedAfterKill,
    refusedWhileStopping: r.refusedWhileStopping.size,
    statuses: r.statuses,
    elapsedMs: Math.round(r.elapsedMs),
  });
}
