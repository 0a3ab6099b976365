import { defineConfig } from "vitest/config";

// Unit tests (pure cores) and integration tests on embedded PGlite. Suites that need real
// PostgreSQL/Redis/NATS live in vitest.integration.config.ts and run from .ci/run.
export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    exclude: ["test/**/*.pg.test.ts", "node_modules/**"],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    pool: "forks",
  },
});
