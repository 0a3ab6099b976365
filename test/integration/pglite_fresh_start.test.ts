// A fresh embedded DATA_DIR starts as a copy of the migrated PGlite template (src/db/pglite_template.ts):
// the copy holds exactly what migrating a fresh database gives, a template built from other
// migrations is never used, existing data directories are opened as they are and just migrate, and
// the server answers /health 503 while starting, then 200. PGlite only (PostgreSQL has no template).
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildApp } from "../../src/app.ts";
import type { Db } from "../../src/db/db.ts";
import { listMigrations, migrate } from "../../src/db/migrate.ts";
import { openEmbedded } from "../../src/db/open.ts";
import { openPglite } from "../../src/db/pglite.ts";
import {
  DEFAULT_TEMPLATE_CACHE_DIR,
  copyTemplate,
  ensureTemplate,
  findTemplate,
  templateManifest,
  type TemplateManifest,
} from "../../src/db/pglite_template.ts";
import { loadConfig } from "../../src/shared/config.ts";
import { DB_KIND, openTestDb } from "../helpers/db.ts";

let tmp: string;
const allMigrations = listMigrations();
// The template of every migration but the last: "an installation one migration behind".
const olderMigrations = allMigrations.slice(0, -1);
let olderCache: string;
let older: string;
let current: string;

/** The cluster's system identifier (pg_control's first 8 bytes): initdb picks a new one, a copy keeps it. */
const systemId = (pgDir: string) => fs.readFileSync(path.join(pgDir, "global", "pg_control")).subarray(0, 8).toString("hex");

/** Everything the migrations define, and the rows they leave. */
async function schemaOf(db: Db): Promise<Record<string, unknown>> {
  const q = async (sql: string) => (await db.query(sql)).rows;
  const relations = await q("SELECT relname, relkind FROM pg_class WHERE relnamespace = 'public'::regnamespace ORDER BY 1");
  const rowCounts: Record<string, string> = {};
  for (const r of await q("SELECT relname FROM pg_class WHERE relnamespace = 'public'::regnamespace AND relkind IN ('r', 'p') ORDER BY 1")) {
    const name = (r as { relname: string }).relname;
    rowCounts[name] = String((await db.query<{ n: string }>(`SELECT count(*) AS n FROM "${name}"`)).rows[0]!.n);
  }
  return {
    relations,
    rowCounts,
    columns: await q(
      "SELECT table_name, column_name, data_type, column_default, is_nullable FROM information_schema.columns WHERE table_schema = 'public' ORDER BY 1, 2",
    ),
    indexes: await q("SELECT tablename, indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' ORDER BY 1, 2"),
    constraints: await q(
      "SELECT conrelid::regclass::text AS rel, conname, pg_get_constraintdef(oid) AS def FROM pg_constraint WHERE connamespace = 'public'::regnamespace ORDER BY 1, 2",
    ),
    functions: await q("SELECT proname, pg_get_functiondef(oid) AS def FROM pg_proc WHERE pronamespace = 'public'::regnamespace ORDER BY 1, 2"),
    triggers: await q("SELECT tgrelid::regclass::text AS rel, tgname, pg_get_triggerdef(oid) AS def FROM pg_trigger WHERE NOT tgisinternal ORDER BY 1, 2"),
    views: await q("SELECT viewname, definition FROM pg_views WHERE schemaname = 'public' ORDER BY 1"),
    extensions: await q("SELECT extname FROM pg_extension ORDER BY 1"),
    migrations: await q("SELECT version, name FROM schema_migrations ORDER BY 1"),
  };
}

const logged: { level: string; msg: string; fields: object }[] = [];
const log = {
  info: (fields: object, msg: string) => void logged.push({ level: "info", msg, fields }),
  warn: (fields: object, msg: string) => void logged.push({ level: "warn", msg, fields }),
};

describe.skipIf(DB_KIND !== "pglite")("a fresh PGlite data directory", () => {
  let reference: Record<string, unknown>;

  beforeAll(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), "vv-fresh-start-"));
    olderCache = path.join(tmp, "cache-older");
    // The installation's template (npm ci's postinstall builds it; built here when missing).
    current = (await ensureTemplate(DEFAULT_TEMPLATE_CACHE_DIR)).dir;
    const ref = await openTestDb(); // initdb + every migration (the test template)
    reference = await schemaOf(ref);
    await ref.close();
  });

  afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

  it("builds a template once into a private directory, then finds it without building", async () => {
    const first = await ensureTemplate(olderCache, olderMigrations);
    expect(first.built).toBe(true);
    older = first.dir;
    const manifest = JSON.parse(fs.readFileSync(path.join(path.dirname(older), "template.json"), "utf8")) as TemplateManifest;
    expect(manifest).toEqual(templateManifest(olderMigrations));
    expect(manifest.migrations.map((m) => m.version)).toEqual(olderMigrations.map((m) => m.version));
    // Only the finished template is left: no build directory.
    expect(fs.readdirSync(olderCache)).toEqual([path.basename(path.dirname(older))]);
    const again = await ensureTemplate(olderCache, olderMigrations);
    expect(again).toEqual({ dir: older, built: false });
  });

  it("a new data directory is a copy of the template holding exactly what migrating a fresh database gives", async () => {
    const pgDir = path.join(tmp, "fresh", "pg");
    const before = Date.now();
    const db = await openEmbedded(pgDir, log);
    try {
      expect(await migrate(db)).toEqual([]); // nothing left to apply
      expect(await schemaOf(db)).toEqual(reference);
      // Recorded as applied when this database was created, as a migration at start would be.
      const applied = (await db.query<{ applied_at: Date }>("SELECT min(applied_at) AS applied_at FROM schema_migrations")).rows[0]!.applied_at;
      expect(new Date(applied).getTime()).toBeGreaterThanOrEqual(before - 1000);
    } finally {
      await db.close();
    }
    expect(systemId(pgDir)).toBe(systemId(current));
    expect(logged.at(-1)).toMatchObject({ level: "info", msg: "new data directory created from the migrated PGlite template" });
    expect(fs.readdirSync(path.dirname(pgDir))).toEqual(["pg"]); // no copy directory left behind
  });

  it("a template built from other migrations is never used", () => {
    // The cache one migration behind holds no template for the current migrations.
    expect(findTemplate(olderCache, allMigrations)).toBeNull();
    expect(findTemplate(olderCache, olderMigrations)).toBe(older);
    // Same versions and names, one changed statement: another key.
    const edited = allMigrations.map((m, i) => (i === 0 ? { ...m, sql: m.sql + "\n-- edited\n" } : m));
    expect(templateManifest(edited).key).not.toBe(templateManifest(allMigrations).key);
    expect(findTemplate(DEFAULT_TEMPLATE_CACHE_DIR, edited)).toBeNull();
    // A template whose manifest does not match what it is filed under (a tampered or mixed-up cache) is refused.
    const tampered = path.join(tmp, "cache-tampered");
    const want = templateManifest(olderMigrations);
    fs.cpSync(path.dirname(older), path.join(tampered, `pglite-${want.key}`), { recursive: true });
    expect(findTemplate(tampered, olderMigrations)).not.toBeNull();
    const manifestFile = path.join(tampered, `pglite-${want.key}`, "template.json");
    fs.writeFileSync(manifestFile, JSON.stringify({ ...want, pglite: "0.0.1" }));
    expect(findTemplate(tampered, olderMigrations)).toBeNull();
    fs.writeFileSync(manifestFile, JSON.stringify({ ...want, migrations: want.migrations.slice(0, -1) }));
    expect(findTemplate(tampered, olderMigrations)).toBeNull();
  });

  it("an existing data directory one migration behind is opened as it is and migrated", async () => {
    const pgDir = path.join(tmp, "existing", "pg");
    await copyTemplate(older, pgDir); // stands for a data directory created by the previous release
    let db = await openPglite({ dataDir: pgDir });
    await db.query("CREATE TABLE operator_marker (note text)");
    await db.query("INSERT INTO operator_marker VALUES ('kept')");
    await db.close();

    const id = systemId(pgDir);
    logged.length = 0;
    db = await openEmbedded(pgDir, log);
    try {
      expect(logged).toEqual([]); // no template involved
      expect(await migrate(db)).toEqual([allMigrations.at(-1)!.version]);
      expect((await db.query("SELECT note FROM operator_marker")).rows).toEqual([{ note: "kept" }]);
      await db.query("DROP TABLE operator_marker");
      expect(await schemaOf(db)).toEqual(reference);
    } finally {
      await db.close();
    }
    expect(systemId(pgDir)).toBe(id);
  });

  it("an empty pg directory and a copy left half done by a crash are replaced by a whole copy", async () => {
    const dataDir = path.join(tmp, "crashed");
    const pgDir = path.join(dataDir, "pg");
    fs.mkdirSync(pgDir, { recursive: true });
    fs.mkdirSync(path.join(dataDir, ".pg-copy-99999", "base"), { recursive: true });
    fs.writeFileSync(path.join(dataDir, ".pg-copy-99999", "PG_VERSION"), "17\n");
    const db = await openEmbedded(pgDir, log);
    try {
      expect(await migrate(db)).toEqual([]);
      expect((await db.query("SELECT count(*)::int AS n FROM schema_migrations")).rows).toEqual([{ n: allMigrations.length }]);
    } finally {
      await db.close();
    }
    expect(fs.readdirSync(dataDir)).toEqual(["pg"]);
  });

  it("the install script (npm's postinstall) reports the installation's template, and can be skipped", () => {
    const run = (env: Record<string, string> = {}) =>
      execFileSync(process.execPath, ["scripts/pglite-template.mjs"], { env: { ...process.env, ...env }, encoding: "utf8", timeout: 60_000 });
    expect(run().trim()).toBe(`valueverse: PGlite template up to date: ${current}`);
    expect(run({ VALUEVERSE_SKIP_PGLITE_TEMPLATE: "1" })).toBe("");
  });

  it("the server on a new DATA_DIR answers /health 503 while starting, then 200 with the API key's organization", async () => {
    const dataDir = path.join(tmp, "server");
    const apiKey = "fresh_start_key_0123456789";
    const app = buildApp(loadConfig({ DATA_DIR: dataDir, VALUEVERSE_API_KEY: apiKey, LOG_LEVEL: "silent" }));
    try {
      expect((await app.http.inject({ method: "GET", url: "/health" })).statusCode).toBe(503);
      const started = performance.now();
      const starting = app.start();
      const during = await app.http.inject({ method: "GET", url: "/health" });
      expect(during.statusCode).toBe(503);
      expect(during.json()).toEqual({ status: "starting" });
      const events = await app.http.inject({ method: "GET", url: "/api/v1/events", headers: { authorization: `Bearer ${apiKey}` } });
      expect(events.statusCode).toBe(503);
      await starting;
      const ms = performance.now() - started;
      const ready = await app.http.inject({ method: "GET", url: "/health" });
      expect(ready.statusCode).toBe(200);
      expect(ready.json()).toEqual({ status: "ok", database: "pglite" });
      const authed = await app.http.inject({ method: "GET", url: "/api/v1/events", headers: { authorization: `Bearer ${apiKey}` } });
      expect(authed.statusCode).toBe(200);
      console.log(`[fresh start] database ready ${Math.round(ms)} ms after start()`);
      expect(ms).toBeLessThan(30_000);
    } finally {
      await app.close();
    }
    expect(systemId(path.join(dataDir, "pg"))).toBe(systemId(current));
  });
});
