// `valueverse serve | ingest-worker | migrate | bill | verify-rollups | org create | bench ingest | bench jetstream | bench usage | bench catalog-ingest`
import { Command } from "commander";
import { migrate } from "./db/migrate.ts";
import { openDatabase } from "./db/open.ts";
import { OrgService } from "./modules/orgs/index.ts";
import { systemClock } from "./shared/clock.ts";
import { ConfigError, loadConfig, type Config } from "./shared/config.ts";

function config(overrides: Record<string, string | undefined> = {}): Config {
  try {
    return loadConfig({ ...process.env, ...Object.fromEntries(Object.entries(overrides).filter(([, v]) => v !== undefined)) });
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(err.message);
      process.exit(2);
    }
    throw err;
  }
}

const program = new Command("valueverse").description("ValueVerse Billing: usage-based billing server (Lago-compatible API)");

program
  .command("serve")
  .description("run the HTTP server (embedded database in DATA_DIR unless DATABASE_URL is set)")
  .option("-w, --workers <n>", "HTTP worker processes on one port (needs DATABASE_URL when > 1); env WORKERS")
  .option("-p, --port <port>", "port to listen on; env PORT")
  .action(async (opts: { workers?: string; port?: string }) => {
    const { serve } = await import("./server.ts");
    await serve(config({ WORKERS: opts.workers, PORT: opts.port }));
  });

program
  .command("ingest-worker")
  .description("consume the JetStream event stream into PostgreSQL (INGEST_MODE=jetstream; needs NATS_URL and DATABASE_URL); start several to scale")
  .option("--metrics-port <port>", "serve /metrics and /health on this port (0: any free port); none by default")
  .option("--metrics-host <host>", "address for --metrics-port", "0.0.0.0")
  .action(async (opts: { metricsPort?: string; metricsHost: string }) => {
    let metricsPort: number | undefined;
    if (opts.metricsPort !== undefined) {
      metricsPort = Number(opts.metricsPort);
      if (!/^\d{1,5}$/.test(opts.metricsPort) || metricsPort > 65535) program.error("--metrics-port must be a port number (0-65535)");
    }
    const { runIngestWorker } = await import("./ingest_worker.ts");
    await runIngestWorker(config(), { metricsPort, metricsHost: opts.metricsHost });
  });

program
  .command("migrate")
  .description("apply pending database migrations and exit")
  .action(async () => {
    const db = await openDatabase(config());
    try {
      const applied = await migrate(db);
      console.log(applied.length ? `applied migrations: ${applied.join(", ")}` : "database is up to date");
    } finally {
      await db.close();
    }
  });

program
  .command("bill")
  .description("run the billing job once: issue the invoices of every due billing period, finalize drafts past their grace period")
  .option("--org <id>", "only this organization (its public id)")
  .action(async (opts: { org?: string }) => {
    const { buildApp } = await import("./app.ts");
    // The scheduler stays off: this process runs the job once, then exits.
    const app = buildApp(config({ BILLING_SCHEDULER: "off", LOG_LEVEL: process.env.LOG_LEVEL || "warn" }));
    await app.start();
    try {
      let orgId: number | undefined;
      if (opts.org !== undefined) {
        const found = (await app.orgs.listOrganizations()).find((o) => o.publicId === opts.org);
        if (found === undefined) return program.error(`no organization ${opts.org}`);
        orgId = found.id;
      }
      const summary = await app.invoicing.runBillingJob(orgId === undefined ? {} : { orgId });
      const rules = await app.wallets.runRecurringRules(orgId === undefined ? {} : { orgId });
      for (const err of rules.errors) console.error(err);
      console.log(JSON.stringify({
        wallet_top_ups: rules.topUps,
        wallets_expired: rules.expired,
        organizations: summary.organizations,
        subscriptions: summary.subscriptions,
        invoices_issued: summary.invoicesIssued,
        invoices_finalized: summary.invoicesFinalized,
        failures: summary.failures,
      }));
      if (summary.failures > 0 || rules.errors.length > 0) process.exitCode = 1;
    } finally {
      await app.close();
    }
  });

program
  .command("verify-rollups")
  .description("recompute the hourly rollups from raw events over a range; print each difference (JSON lines) and a summary; exit 1 on any")
  .option("--org <id>", "only this organization (its public id)")
  .option("--from <iso>", "from this hour (default: the oldest partition kept)")
  .option("--to <iso>", "before this time (default: no limit)")
  .action(async (opts: { org?: string; from?: string; to?: string }) => {
    const parse = (name: string, v: string | undefined) => {
      if (v === undefined) return undefined;
      const d = new Date(v);
      if (Number.isNaN(d.getTime())) return program.error(`--${name}: not an ISO 8601 time: ${v}`);
      return d;
    };
    const from = parse("from", opts.from);
    const to = parse("to", opts.to);
    const db = await openDatabase(config());
    try {
      await migrate(db);
      let orgId: number | undefined;
      if (opts.org !== undefined) {
        const { rows } = await db.query<{ id: number }>("SELECT id FROM organizations WHERE public_id::text = $1", [opts.org]);
        if (rows[0] === undefined) return program.error(`no organization ${opts.org}`);
        orgId = Number(rows[0].id);
      }
      const { verifyRollups } = await import("./modules/ingest/index.ts");
      const { differences, summary } = await verifyRollups(db, { orgId, from, to });
      for (const d of differences) console.log(JSON.stringify({ difference: d }));
      console.log(JSON.stringify({ summary }));
      if (differences.length > 0) process.exitCode = 1;
    } finally {
      await db.close();
    }
  });

const org = program.command("org").description("manage organizations");
org
  .command("create")
  .description("create an organization; prints its id and a new API key (shown only once)")
  .requiredOption("--name <name>", "organization name")
  .action(async (opts: { name: string }) => {
    const db = await openDatabase(config());
    try {
      await migrate(db);
      const { org: created, apiKey } = await new OrgService(db, systemClock).createOrganization(opts.name);
      console.log(JSON.stringify({ id: created.publicId, name: created.name, api_key: apiKey }));
    } finally {
      await db.close();
    }
  });

const bench = program.command("bench").description("benchmarks (JSON summary on the last line of stdout)");
bench
  .command("ingest")
  .description("ingest benchmark against DATABASE_URL (or an embedded database when unset)")
  .option("--seconds <n>", "seconds per workload", "15")
  .action(async (opts: { seconds: string }) => {
    const { runIngestBench } = await import("../bench/ingest.ts");
    await runIngestBench({ seconds: Number(opts.seconds) });
  });
bench
  .command("workers")
  .description("single-event ingestion with WORKERS=2 vs WORKERS=1 in the same run (needs DATABASE_URL)")
  .option("--seconds <n>", "seconds per phase", "15")
  .option("--rounds <n>", "rounds of WORKERS=1 then WORKERS=2", "2")
  .option("--connections <n>", "wrk connections", "256")
  .action(async (opts: { seconds: string; rounds: string; connections: string }) => {
    const { runWorkersBench } = await import("../bench/workers.ts");
    await runWorkersBench({ seconds: Number(opts.seconds), rounds: Number(opts.rounds), connections: Number(opts.connections) });
  });
bench
  .command("billing")
  .description("invoices/s of the billing job: N subscriptions, a plan fee and three usage charges (needs DATABASE_URL, an empty database)")
  .option("--subscriptions <n>", "subscriptions (one customer each), each billed one invoice", "5000")
  .option("--cpu-profile <file>", "write a V8 CPU profile of the billing job alone")
  .action(async (opts: { subscriptions: string; cpuProfile?: string }) => {
    const { runBillingBench } = await import("../bench/billing.ts");
    await runBillingBench({ subscriptions: Number(opts.subscriptions), ...(opts.cpuProfile ? { cpuProfile: opts.cpuProfile } : {}) });
  });
bench
  .command("jetstream")
  .description("ingest throughput in INGEST_MODE=jetstream (3 local NATS nodes, ingest workers) vs direct mode, same run; checks nothing was lost (needs DATABASE_URL, an empty database, and nats-server)")
  .option("--seconds <n>", "seconds per workload", "10")
  .option("--ingest-workers <n>", "ingest-worker processes", "1")
  .option("--no-per-event", "skip the batch100 run with one stream message per event")
  .action(async (opts: { seconds: string; ingestWorkers: string; perEvent: boolean }) => {
    const { runJetstreamBench } = await import("../bench/jetstream.ts");
    await runJetstreamBench({ seconds: Number(opts.seconds), ingestWorkers: Number(opts.ingestWorkers), perEventVariant: opts.perEvent });
  });
bench
  .command("usage")
  .description("current_usage of a subscription with N events: rollups vs a raw scan (needs DATABASE_URL, an empty database)")
  .option("--events <n>", "events in the subscription's open period", "10000000")
  .option("--load <how>", "auto (API, or SQL writing the same rows when the API would take over ~6 min) | api | sql", "auto")
  .option("--requests <n>", "sequential current_usage requests measured", "200")
  .option("--wrk-seconds <n>", "seconds of wrk on current_usage (0: skip)", "10")
  .option("--raw-runs <n>", "timed raw-scan runs (after one warm-up)", "3")
  .option("--unique-runs <n>", "timed current_usage runs with the unique_count charge (after one warm-up)", "2")
  .option("--grouped-runs <n>", "timed current_usage runs per grouped charge from rollups (after one warm-up)", "20")
  .option("--grouped-raw-runs <n>", "timed current_usage runs per grouped charge from raw events (after one warm-up)", "3")
  .option("--ingest-rounds <n>", "rounds of the commitBatch micro benchmark of group keys (0: skip)", "8")
  .action(async (opts: { events: string; load: string; requests: string; wrkSeconds: string; rawRuns: string; uniqueRuns: string; groupedRuns: string; groupedRawRuns: string; ingestRounds: string }) => {
    if (!["auto", "api", "sql"].includes(opts.load)) program.error("--load must be auto, api or sql");
    const { runUsageBench } = await import("../bench/usage.ts");
    await runUsageBench({
      events: Number(opts.events),
      load: opts.load as "auto" | "api" | "sql",
      requests: Math.max(1, Number(opts.requests) || 200),
      wrkSeconds: Math.max(0, Math.min(120, Number(opts.wrkSeconds) || 0)),
      rawRuns: Math.max(1, Math.min(50, Number(opts.rawRuns) || 3)),
      uniqueRuns: Math.max(1, Math.min(50, Number(opts.uniqueRuns) || 2)),
      groupedRuns: Math.max(1, Math.min(500, Number(opts.groupedRuns) || 20)),
      groupedRawRuns: Math.max(1, Math.min(50, Number(opts.groupedRawRuns) || 3)),
      ingestRounds: Math.max(0, Math.min(50, Number(opts.ingestRounds) || 0)),
    });
  });
bench
  .command("catalog-ingest")
  .description("ingest throughput with an empty catalog vs 1,000 metrics, 100 plans, 100,000 subscriptions (needs DATABASE_URL, an empty database)")
  .option("--seconds <n>", "seconds per workload", "15")
  .option("--metrics <n>", "billable metrics", "1000")
  .option("--plans <n>", "plans", "100")
  .option("--subscriptions <n>", "subscriptions (one customer each)", "100000")
  .action(async (opts: { seconds: string; metrics: string; plans: string; subscriptions: string }) => {
    const { runCatalogIngestBench } = await import("../bench/catalog-ingest.ts");
    await runCatalogIngestBench({
      seconds: Number(opts.seconds),
      metrics: Number(opts.metrics),
      plans: Number(opts.plans),
      subscriptions: Number(opts.subscriptions),
    });
  });

await program.parseAsync(process.argv);
