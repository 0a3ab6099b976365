#!/usr/bin/env node
// Builds the migrated PGlite template (src/db/pglite_template.ts) into node_modules/.cache/valueverse,
// so the first `npm start` on a new DATA_DIR copies it instead of running initdb and every migration.
// Run by `npm ci` / `npm install` (postinstall); offline, and never fails the install: without a
// template the server builds one on its first start. VALUEVERSE_SKIP_PGLITE_TEMPLATE=1 skips it.
import { register } from "tsx/esm/api";

if (process.env.VALUEVERSE_SKIP_PGLITE_TEMPLATE === "1") process.exit(0);
const started = performance.now();
try {
  register();
  const { DEFAULT_TEMPLATE_CACHE_DIR, ensureTemplate } = await import("../src/db/pglite_template.ts");
  const { dir, built } = await ensureTemplate(DEFAULT_TEMPLATE_CACHE_DIR);
  const took = ((performance.now() - started) / 1000).toFixed(1);
  console.log(built ? `valueverse: built the migrated PGlite template in ${took} s: ${dir}` : `valueverse: PGlite template up to date: ${dir}`);
} catch (err) {
  console.warn(`valueverse: could not build the PGlite template (the server builds it on first start): ${err instanceof Error ? err.message : err}`);
}
