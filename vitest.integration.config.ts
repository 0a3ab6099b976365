import { defineConfig } from "vitest/config";

// The integration and end-to-end suites against real services (PostgreSQL via TEST_DATABASE_URL).
if (!process.env.TEST_DATABASE_URL) {
  throw new Error("the integration suite needs TEST_DATABASE_URL (a PostgreSQL server; see scripts/start-postgres.sh)");
}

export default defineConfig({
  test: {
    include: ["test/integration/**/*.test.ts", "e2e/**/*.test.ts"],
    globalSetup: ["test/global-setup.ts"],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    pool: "forks",
    fileParallelism: false,
  },
});
