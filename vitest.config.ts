import { defineConfig } from "vitest/config";

// Unit tests (pure cores), integration and end-to-end tests. Integration and e2e suites run on
// embedded PGlite, or on PostgreSQL when TEST_DATABASE_URL is set (see vitest.integration.config.ts).
export default defineConfig({
  test: {
    include: ["test/**/*.test.ts", "e2e/**/*.test.ts"],
    globalSetup: ["test/global-setup.ts"],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    pool: "forks",
  },
});
