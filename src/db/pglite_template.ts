// A migrated PGlite data directory, built once per installation and copied into each new DATA_DIR.
// On a 2-core machine a fresh initdb takes 7–8 s and the migrations another 1–1.5 s; copying the
// template and opening the copy takes well under one. The template is keyed by the PGlite version
// and the exact content of every migration, so one built from other migrations is never used.
import crypto from "node:crypto";
import fs from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { listMigrations, migrate, type Migration } from "./migrate.ts";
import { openPglite } from "./pglite.ts";

// Bumped when what a template holds, or how it is laid out, changes.
const TEMPLATE_FORMAT = 1;
const MANIFEST = "template.json";
const PREFIX = "pglite-";

/** Per installation: `npm ci` starts it empty, and the postinstall script fills it. */
export const DEFAULT_TEMPLATE_CACHE_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../node_modules/.cache/valueverse");

export interface TemplateManifest {
  format: number;
  key: string;
  pglite: string;
  migrations: { version: number; name: string; sha256: string }[];
}

let pgliteVersionMemo: string | undefined;

/** The installed PGlite's version: its data directory format may change between releases. */
export function pgliteVersion(): string {
  if (pgliteVersionMemo) return pgliteVersionMemo;
  let dir = path.dirname(createRequire(import.meta.url).resolve("@electric-sql/pglite"));
  for (;;) {
    const file = path.join(dir, "package.json");
    if (fs.existsSync(file)) {
      const pkg = JSON.parse(fs.readFileSync(file, "utf8")) as { name?: string; version?: string };
      if (pkg.name === "@electric-sql/pglite" && pkg.version) return (pgliteVersionMemo = pkg.version);
    }
    const up = path.dirname(dir);
    if (up === dir) throw new Error("cannot find the version of @electric-sql/pglite");
    dir = up;
  }
}

export function templateManifest(migrations: Migration[] = listMigrations()): TemplateManifest {
  const entries = migrations.map((m) => ({
    version: m.version,
    name: m.name,
    sha256: crypto.createHash("sha256").update(m.sql).digest("hex"),
  }));
  const pglite = pgliteVersion();
  const key = crypto
    .createHash("sha256")
    .update(JSON.stringify({ format: TEMPLATE_FORMAT, pglite, migrations: entries }))
    .digest("hex")
    .slice(0, 20);
  return { format: TEMPLATE_FORMAT, key, pglite, migrations: entries };
}

/**
 * The template's PGlite directory for these migrations, or null when there is none (or when what is
 * there was not built from exactly these migrations by this PGlite version).
 */
export function findTemplate(cacheDir: string, migrations: Migration[] = listMigrations()): string | null {
  const want = templateManifest(migrations);
  const dir = path.join(cacheDir, PREFIX + want.key);
  try {
    const have = JSON.parse(fs.readFileSync(path.join(dir, MANIFEST), "utf8")) as TemplateManifest;
    if (JSON.stringify(have) !== JSON.stringify(want)) return null;
    if (!fs.existsSync(path.join(dir, "pg", "PG_VERSION"))) return null;
    return path.join(dir, "pg");
  } catch {
    return null;
  }
}

/**
 * Returns the template for these migrations, building it first when missing: initdb and every
 * migration in a private directory, closed cleanly, then renamed into place in one step, so a
 * half-built template is never seen. Several processes may build at once; the first rename wins.
 * Other templates in the cache (other migrations, other PGlite versions) are removed.
 */
export async function ensureTemplate(cacheDir: string, migrations: Migration[] = listMigrations()): Promise<{ dir: string; built: boolean }> {
  const found = findTemplate(cacheDir, migrations);
  if (found) return { dir: found, built: false };
  const manifest = templateManifest(migrations);
  fs.mkdirSync(cacheDir, { recursive: true });
  const work = path.join(cacheDir, `.build-${manifest.key}-${process.pid}-${crypto.randomBytes(4).toString("hex")}`);
  try {
    const db = await openPglite({ dataDir: path.join(work, "pg") });
    try {
      await migrate(db, migrations);
    } finally {
      await db.close();
    }
    fs.writeFileSync(path.join(work, MANIFEST), JSON.stringify(manifest, null, 2) + "\n");
    const final = path.join(cacheDir, PREFIX + manifest.key);
    // A directory under this key that findTemplate refuses (no manifest, another one) is replaced.
    if (fs.existsSync(final) && findTemplate(cacheDir, migrations) === null) fs.rmSync(final, { recursive: true, force: true });
    try {
      fs.renameSync(work, final);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== "ENOTEMPTY" && code !== "EEXIST") throw err;
      // Another process built it meanwhile.
    }
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
  const dir = findTemplate(cacheDir, migrations);
  if (!dir) throw new Error(`the PGlite template in ${cacheDir} is missing right after it was built`);
  pruneTemplates(cacheDir, manifest.key);
  return { dir, built: true };
}

/** Removes templates other than `keep` and build directories abandoned over an hour ago. */
export function pruneTemplates(cacheDir: string, keep: string): void {
  const hourAgo = Date.now() - 3_600_000;
  for (const name of fs.readdirSync(cacheDir)) {
    const full = path.join(cacheDir, name);
    try {
      const stale =
        (name.startsWith(PREFIX) && name !== PREFIX + keep) ||
        (name.startsWith(".build-") && fs.statSync(full).mtimeMs < hourAgo);
      if (stale) fs.rmSync(full, { recursive: true, force: true });
    } catch {
      // Best effort: another process may be removing it too.
    }
  }
}

/** True when `pgDir` holds no database yet (absent or empty): the only case a template is used for. */
export function isFreshPgDir(pgDir: string): boolean {
  try {
    return fs.readdirSync(pgDir).length === 0;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return true;
    throw err;
  }
}

/**
 * Copies the template to `pgDir` (which must be fresh): into a sibling directory first, then renamed,
 * so a crash midway leaves no half-copied database behind, only a `.pg-copy-*` directory that the
 * next call removes (the caller holds the DATA_DIR lock, so no other process is copying). Files are
 * copied on libuv's threads, so the server keeps answering /health (503) meanwhile.
 */
export async function copyTemplate(templatePgDir: string, pgDir: string): Promise<void> {
  const parent = path.dirname(pgDir);
  fs.mkdirSync(parent, { recursive: true });
  const base = path.basename(pgDir);
  for (const name of fs.readdirSync(parent)) {
    if (name.startsWith(`.${base}-copy-`)) fs.rmSync(path.join(parent, name), { recursive: true, force: true });
  }
  const tmp = path.join(parent, `.${base}-copy-${process.pid}`);
  try {
    await copyTree(templatePgDir, tmp);
    // An empty pg directory (created by hand, or by an older start that failed before initdb) goes.
    if (fs.existsSync(pgDir)) fs.rmdirSync(pgDir);
    fs.renameSync(tmp, pgDir);
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

async function copyTree(from: string, to: string, concurrency = 8): Promise<void> {
  const files: [string, string][] = [];
  const walk = (src: string, dst: string) => {
    fs.mkdirSync(dst, { mode: fs.statSync(src).mode });
    for (const entry of fs.readdirSync(src, { withFileTypes: true })) {
      const a = path.join(src, entry.name);
      const b = path.join(dst, entry.name);
      if (entry.isDirectory()) walk(a, b);
      else if (entry.isFile()) files.push([a, b]);
      else throw new Error(`unexpected entry in the PGlite template: ${a}`);
    }
  };
  walk(from, to);
  let next = 0;
  const worker = async () => {
    while (next < files.length) {
      const [a, b] = files[next++]!;
      await fs.promises.copyFile(a, b);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
}
