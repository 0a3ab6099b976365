import { DB_KIND, ensurePgliteTemplate } from "./helpers/db.ts";

// Build the migrated PGlite template once per run; every test database is a copy of it.
export default async function setup(): Promise<void> {
  if (DB_KIND === "pglite") await ensurePgliteTemplate();
}
