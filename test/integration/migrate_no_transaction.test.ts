// The migration runner with `-- valueverse: no-transaction` migrations (src/db/migrate.ts): applied
// once, outside a transaction (CREATE INDEX CONCURRENTLY), recorded; a failure midway keeps what came
// before and a re-run completes (an INVALID index left by a failed build is rebuilt); several
// migrate() calls at once apply each migration once. On PGlite and on PostgreSQL.
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import pg from "pg";
import { afterEach, describe, expect, it } from "vitest";
import type { Db } from "../../src/db/db.ts";
import { listMigrations, migrate, type Migration } from "../../src/db/migrate.ts";
import { openPostgres } from "../../src/db/postgres.ts";
import { createPostgresDatabase, DB_KIND, openTestDb, TEST_DATABASE_URL } from "../helpers/db.ts";

const NO_TX = "-- valueverse: no-transaction\n";
const real = listMigrations();

const open: Db[] = [];
afterEach(async () => {
  for (const db of open.splice(0).reverse()) await db.close();
});

async function testDb(): Promise<Db & { url?: string }> {
  const db = await openTestDb();
  open.push(db);
  return db;
}

/** The real migrations, then these (versions from 9001). */
const withExtra = (...extra: [number, string][]): Migration[] => [
  ...real,
  ...extra.map(([version, sql]) => ({ version, name: `test_${version}`, sql })),
];

async function recorded(db: Db, from = 9000): Promise<number[]> {
  const { rows } = await db.query<{ version: number }>("SELECT version FROM schema_migrations WHERE version > $1 ORDER BY 1", [from]);
  return rows.map((r) => Number(r.version));
}

/** null when there is no such index, else whether it is valid. */
async function indexValid(db: Db, name: string): Promise<boolean | null> {
  const { rows } = await db.query<{ valid: boolean }>("SELECT i.indisvalid AS valid FROM pg_index i WHERE i.indexrelid = to_regclass($1)", [name]);
  return rows[0] === undefined ? null : rows[0].valid;
}

describe(`no-transaction migrations (${DB_KIND})`, () => {
  it("migration 0027 is a no-transaction one, and a migrated database has its indexes, valid", async () => {
    const m27 = real.find((m) => m.version === 27);
    expect(m27?.sql.startsWith(NO_TX)).toBe(true);
    const db = await testDb();
    for (const name of ["credit_notes_refunds_idx", "fees_advance_unbilled_created_idx", "invoices_unpaid_due_idx"]) {
      expect(await indexValid(db, name)).toBe(true);
    }
    expect(await migrate(db)).toEqual([]);
  });

  it("applies a no-transaction migration once, records it, and continues with the migrations after it", async () => {
    const db = await testDb();
    const ms = withExtra(
      [9001, "CREATE TABLE mig_t (a int, b int);\nINSERT INTO mig_t SELECT g, g FROM generate_series(1, 2000) g;"],
      [9002, `${NO_TX}CREATE INDEX CONCURRENTLY IF NOT EXISTS mig_t_a_idx ON mig_t (a);\nCREATE INDEX CONCURRENTLY IF NOT EXISTS mig_t_b_idx ON mig_t (b);`],
      [9003, "CREATE TABLE mig_u (x int);"],
      [9004, `${NO_TX}CREATE INDEX CONCURRENTLY IF NOT EXISTS mig_u_x_idx ON mig_u (x);`],
    );
    expect(await migrate(db, ms)).toEqual([9001, 9002, 9003, 9004]);
    expect(await recorded(db)).toEqual([9001, 9002, 9003, 9004]);
    for (const name of ["mig_t_a_idx", "mig_t_b_idx", "mig_u_x_idx"]) expect(await indexValid(db, name)).toBe(true);
    expect(await migrate(db, ms)).toEqual([]);
    expect(await recorded(db)).toEqual([9001, 9002, 9003, 9004]);
  });

  it("a failure midway leaves the migrations before it recorded, no INVALID index, and a re-run completes", async () => {
    const db = await testDb();
    const ms = withExtra(
      [9001, "CREATE TABLE mig_d (a int, b int);\nINSERT INTO mig_d SELECT g, g % 100 FROM generate_series(1, 1000) g;"],
      [9002, "CREATE TABLE mig_e (x int);"],
      [
        9003,
        `${NO_TX}CREATE INDEX CONCURRENTLY IF NOT EXISTS mig_d_a_idx ON mig_d (a);\nCREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS mig_d_b_uniq ON mig_d (b);`,
      ],
      [9004, "CREATE TABLE mig_f (y int);"],
    );
    await expect(migrate(db, ms)).rejects.toMatchObject({ code: "23505" });
    expect(await recorded(db)).toEqual([9001, 9002]);
    expect(await indexValid(db, "mig_d_a_idx")).toBe(true); // its statement committed by itself
    expect(await indexValid(db, "mig_d_b_uniq")).toBeNull(); // the failed build's INVALID index was dropped
    expect(await db.query("SELECT to_regclass('mig_f') AS r").then((r) => r.rows[0])).toEqual({ r: null });

    await db.query("DELETE FROM mig_d WHERE a > 100");
    expect(await migrate(db, ms)).toEqual([9003, 9004]);
    expect(await recorded(db)).toEqual([9001, 9002, 9003, 9004]);
    expect(await indexValid(db, "mig_d_b_uniq")).toBe(true);
  });

  it("an INVALID index of the name being built (a build that died) is dropped and built again, not skipped", async () => {
    const db = await testDb();
    const table = withExtra([9001, "CREATE TABLE mig_g (b int);\nINSERT INTO mig_g SELECT g % 10 FROM generate_series(1, 100) g;"]);
    expect(await migrate(db, table)).toEqual([9001]);
    // A concurrent build that fails halfway leaves its index behind, marked INVALID.
    await expect(db.query("CREATE UNIQUE INDEX CONCURRENTLY mig_g_b_uniq ON mig_g (b)")).rejects.toMatchObject({ code: "23505" });
    expect(await indexValid(db, "mig_g_b_uniq")).toBe(false);
    await db.query("DELETE FROM mig_g WHERE ctid NOT IN (SELECT min(ctid) FROM mig_g GROUP BY b)");
    const ms = [...table, { version: 9002, name: "test_9002", sql: `${NO_TX}CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS mig_g_b_uniq ON mig_g (b);` }];
    expect(await migrate(db, ms)).toEqual([9002]);
    expect(await indexValid(db, "mig_g_b_uniq")).toBe(true);
  });

  it("refuses, before running anything, CONCURRENTLY in a transactional migration and CREATE INDEX CONCURRENTLY without IF NOT EXISTS", async () => {
    const db = await testDb();
    await expect(migrate(db, withExtra([9001, "CREATE TABLE mig_h (a int);"], [9002, "CREATE INDEX CONCURRENTLY mig_h_a ON mig_h (a);"]))).rejects.toThrow(
      /9002_test_9002: .*no-transaction/,
    );
    await expect(migrate(db, withExtra([9001, "CREATE TABLE mig_h (a int);"], [9002, `${NO_TX}CREATE INDEX CONCURRENTLY mig_h_a ON mig_h (a);`]))).rejects.toThrow(
      /IF NOT EXISTS/,
    );
    expect(await recorded(db)).toEqual([]);
  });

  it("two migrate() calls at once on one handle apply each migration once", async () => {
    const db = await testDb();
    const ms = withExtra(
      [9001, "CREATE TABLE mig_i (a int);\nINSERT INTO mig_i SELECT generate_series(1, 1000);"],
      [9002, `${NO_TX}CREATE INDEX CONCURRENTLY IF NOT EXISTS mig_i_a_idx ON mig_i (a);`],
      [9003, "CREATE TABLE mig_j (a int);"],
    );
    const [a, b] = await Promise.all([migrate(db, ms), migrate(db, ms)]);
    expect([...a, ...b].sort()).toEqual([9001, 9002, 9003]);
    expect(await recorded(db)).toEqual([9001, 9002, 9003]);
  });

  it.skipIf(DB_KIND !== "postgres")("two `valueverse migrate` processes on a new database apply every migration once between them", async () => {
    const { url, drop } = await createPostgresDatabase(TEST_DATABASE_URL!);
    try {
      const run = async () => {
        const { stdout } = await promisify(execFile)(process.execPath, ["bin/valueverse.mjs", "migrate"], {
          env: { ...process.env, DATABASE_URL: url, LOG_LEVEL: "silent" },
          timeout: 90_000,
        });
        const m = /applied migrations: ([\d, ]+)/.exec(stdout);
        return m ? m[1]!.split(", ").map(Number) : (expect(stdout).toContain("database is up to date"), []);
      };
      const [a, b] = await Promise.all([run(), run()]);
      expect([...a, ...b].sort((x, y) => x - y)).toEqual(real.map((m) => m.version));
    } finally {
      await drop();
    }
  });

  it.skipIf(DB_KIND !== "postgres")(
    "two processes migrating at once: each migration applied once, and a waiting one does not deadlock the concurrent build",
    async () => {
      const db1 = await testDb();
      const db2 = openPostgres({ url: db1.url!, size: 2, maxOverflow: 0, timeoutMs: 10_000, recycleMs: 600_000 });
      open.push(db2);
      const ms = withExtra(
        [9001, "CREATE TABLE mig_k (a int);\nINSERT INTO mig_k SELECT generate_series(1, 5000);"],
        [9002, `${NO_TX}CREATE INDEX CONCURRENTLY IF NOT EXISTS mig_k_a_idx ON mig_k (a);`],
        [9003, "CREATE TABLE mig_l (a int);"],
      );
      expect(await migrate(db1, ms.slice(0, -2))).toEqual([9001]);
      // A writer with an open transaction on the table: the concurrent build waits for it to end.
      const writer = new pg.Client({ connectionString: db1.url });
      await writer.connect();
      try {
        await writer.query("BEGIN");
        await writer.query("INSERT INTO mig_k VALUES (0)");
        const first = migrate(db1, ms);
        const building = async () =>
          Number(
            (await db2.query<{ n: string }>("SELECT count(*) AS n FROM pg_stat_activity WHERE query LIKE 'CREATE INDEX CONCURRENTLY%' AND state = 'active'"))
              .rows[0]!.n,
          );
        const until = Date.now() + 20_000;
        while ((await building()) === 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
        expect(await building()).toBe(1);
        // A second process starts migrating while the build waits (and while it runs, once the writer is done).
        const second = migrate(db2, ms);
        await new Promise((r) => setTimeout(r, 1_500)); // longer than deadlock_timeout (1 s)
        await writer.query("COMMIT");
        const [a, b] = await Promise.all([first, second]);
        expect([...a, ...b].sort()).toEqual([9002, 9003]);
        expect(await recorded(db1)).toEqual([9001, 9002, 9003]);
        expect(await indexValid(db1, "mig_k_a_idx")).toBe(true);
      } finally {
        await writer.end();
      }
    },
  );
});
