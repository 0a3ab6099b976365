import { buildApp, type App } from "../../src/app.ts";
import type { Db } from "../../src/db/db.ts";
import { ManualClock, type Clock } from "../../src/shared/clock.ts";
import { loadConfig } from "../../src/shared/config.ts";
import { openTestDb } from "./db.ts";

export interface TestApp {
  app: App;
  db: Db;
  clock: ManualClock;
  apiKey: string;
  /** Base URL when started with `listen: true`. */
  url: string;
  close(): Promise<void>;
}

export const T0 = Date.UTC(2026, 2, 15, 12, 0, 0); // 2026-03-15T12:00:00Z

/** A migrated server on a fresh test database, with one organization and an injected clock. */
export async function startTestApp(
  opts: { env?: Record<string, string>; listen?: boolean; clock?: Clock; db?: Db } = {},
): Promise<TestApp> {
  const db = opts.db ?? (await openTestDb());
  const clock = (opts.clock as ManualClock | undefined) ?? new ManualClock(T0);
  const apiKey = "test_api_key_" + Math.random().toString(36).slice(2, 12);
  const config = loadConfig({ LOG_LEVEL: "silent", VALUEVERSE_API_KEY: apiKey, WEBHOOK_PRIVATE_NETWORKS: "allow", ...opts.env });
  const app = buildApp(config, { db, clock });
  await app.start();
  let url = "";
  if (opts.listen) url = await app.http.listen({ port: 0, host: "127.0.0.1" });
  return {
    app,
    db,
    clock,
    apiKey,
    url,
    close: () => app.close(),
  };
}
