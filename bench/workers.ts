// Two workers vs one (`npm run bench:workers`): single-event ingestion (POST /api/v1/events, 256
// wrk connections, the ingest benchmark's `single` workload) against a server with WORKERS=1 and
// one with WORKERS=2, on PostgreSQL (DATABASE_URL), in the same run. The two settings alternate for
// `rounds` rounds (1, 2, 1, 2, ...), each on a freshly started server after a warm-up, so a burst of
// load from elsewhere on the machine hits both; the ratio is of the mean events/s. Progress goes to
// stderr; the last line on stdout is one JSON object. The goal (>= 1.4x) is reported, not asserted.
import { wrk, type Workload } from "./ingest.ts";
import { startServer } from "./server.ts";
import { cpuBetween, cpuSnapshot, loadavg, machine, round2 } from "./support.ts";

const log = (s: string) => process.stderr.write(`[bench:workers] ${s}\n`);

export async function runWorkersBench(opts: { seconds: number; rounds: number; connections: number }): Promise<void> {
  const databaseUrl = process.env.DATABASE_URL;
  if (!databaseUrl) {
    log("DATABASE_URL is required: more than one worker process needs PostgreSQL");
    process.exit(2);
  }
  const seconds = Math.max(3, Math.min(120, opts.seconds || 15));
  const rounds = Math.max(1, Math.min(10, opts.rounds || 2));
  const connections = Math.max(1, Math.min(2048, opts.connections || 256));
  const apiKey = "bench_" + Math.random().toString(36).slice(2) + Math.random().toString(36).slice(2);
  const runId = Date.now().toString(36);
  const base = { DATABASE_URL: databaseUrl, VALUEVERSE_API_KEY: apiKey, INGEST_QUEUE_MAX: "1000000", BILLING_SCHEDULER: "off" };
  log(`${seconds}s per phase, ${rounds} round(s) of WORKERS=1 then WORKERS=2, ${connections} connections, load average ${loadavg()}`);

  const phases: Record<"1" | "2", Workload[]> = { "1": [], "2": [] };
  // How busy the machine was during each measured phase, and who used the CPU: with 2 cores shared by
  // wrk, PostgreSQL and the workers, a second worker can only add what the first left idle.
  const cpu: Record<"1" | "2", { busy: number; seconds: Record<string, number> }[]> = { "1": [], "2": [] };
  for (let round = 0; round < rounds; round++) {
    for (const workers of ["1", "2"] as const) {
      const server = await startServer({ ...base, WORKERS: workers }, log);
      try {
        await wrk(server.url, apiKey, { size: 0, seconds: 3, connections: 64, prefix: `${runId}-w${workers}-r${round}-warm` });
        const before = cpuSnapshot();
        const result = await wrk(server.url, apiKey, { size: 0, seconds, connections, prefix: `${runId}-w${workers}-r${round}` });
        const used = cpuBetween(before, cpuSnapshot(), { server: server.child.pid! });
        phases[workers].push(result);
        cpu[workers].push(used);
        log(
          `round ${round + 1}, WORKERS=${workers}: ${result.events_per_s} events/s, p95 ${result.p95_ms} ms, errors ${result.error_rate}, ` +
            `machine ${Math.round(used.busy * 100)} % busy, CPU s ${JSON.stringify(used.seconds)} (load average ${loadavg()})`,
        );
      } finally {
        await server.stop();
      }
    }
  }

  const mean = (ws: Workload[], pick: (w: Workload) => number) => round2(ws.reduce((a, w) => a + pick(w), 0) / ws.length);
  const summarize = (ws: Workload[]) => ({
    events_per_s: Math.round(mean(ws, (w) => w.events_per_s)),
    p50_ms: mean(ws, (w) => w.p50_ms),
    p95_ms: mean(ws, (w) => w.p95_ms),
    p99_ms: mean(ws, (w) => w.p99_ms),
    error_rate: mean(ws, (w) => w.error_rate),
    runs: ws.map((w) => w.events_per_s),
  });
  const cpuOf = (workers: "1" | "2") => {
    const runs = cpu[workers];
    const busy = round2(runs.reduce((a, r) => a + r.busy, 0) / runs.length);
    const events = phases[workers].reduce((a, w) => a + w.events, 0);
    const sum = (name: string) => runs.reduce((a, r) => a + (r.seconds[name] ?? 0), 0);
    return {
      machine_busy: busy,
      // CPU microseconds per stored event: the server under test (all its processes) and PostgreSQL
      // (every backend on the machine); wrk has exited by the second snapshot, so it is only in machine_busy.
      server_us_per_event: events > 0 ? Math.round((sum("server") * 1e6) / events) : null,
      postgres_us_per_event: events > 0 ? Math.round((sum("postgres") * 1e6) / events) : null,
    };
  };
  const one = { ...summarize(phases["1"]), cpu: cpuOf("1") };
  const two = { ...summarize(phases["2"]), cpu: cpuOf("2") };
  const ratio = round2(two.events_per_s / Math.max(1, one.events_per_s));
  const summary = {
    workload: "single",
    connections,
    seconds_per_phase: seconds,
    rounds,
    workers_1: one,
    workers_2: two,
    ratio_2_vs_1: ratio,
    goal: { ratio_at_least: 1.4, met: ratio >= 1.4 },
    // The most a second process could add if it used every idle cycle left by WORKERS=1 as efficiently.
    idle_bound_ratio: round2(1 / Math.max(0.01, one.cpu.machine_busy)),
    database: "postgres",
    machine: machine(),
  };
  log(`WORKERS=2 vs WORKERS=1: ${ratio}x (${two.events_per_s} vs ${one.events_per_s} events/s)`);
  process.stdout.write(JSON.stringify(summary) + "\n");
}
