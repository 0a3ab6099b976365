// `valueverse serve | migrate | org create | bench ingest`
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

await program.parseAsync(process.argv);
