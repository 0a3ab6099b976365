// Rejected events (INGEST_MODE=jetstream) follow RETENTION_DAYS like the events: the data lifecycle
// deletes those recorded before retention by the earliest organization clock, and keeps the rest.
// On PGlite by default, PostgreSQL with TEST_DATABASE_URL.
import { afterAll, describe, expect, it } from "vitest";
import { OrgService } from "../../src/modules/orgs/service.ts";
import { RejectedEventsService } from "../../src/modules/jetstream/service.ts";
import type { PreparedEvent } from "../../src/modules/ingest/core/event.ts";
import { ManualClock } from "../../src/shared/clock.ts";
import { startTestApp, type TestApp } from "../helpers/app.ts";
import { openTestDb } from "../helpers/db.ts";

const DAY = 86_400_000;
const NOW = Date.UTC(2026, 5, 1);
let t: TestApp | undefined;
afterAll(async () => {
  await t?.close();
});

const event = (orgId: number, tx: string): PreparedEvent => ({
  orgId,
  transactionId: tx,
  subscriptionId: "sub_1",
  code: "calls",
  tsMicros: NOW * 1000,
  propertiesJson: null,
  properties: null,
  preciseAmount: null,
  payloadHash: 42,
});

describe("rejected events retention", () => {
  it("expire deletes in slices exactly the rows recorded before the cutoff", async () => {
    const db = await openTestDb();
    try {
      const clock = new ManualClock(NOW - 100 * DAY);
      const { org } = await new OrgService(db, clock).createOrganization("Retention");
      const rejected = new RejectedEventsService(db, clock, null);
      const reject = (tx: string) => rejected.record([{ event: event(org.id, tx), reason: "value_already_exist", message: "", receivedAtMs: clock.now(), streamSequence: null }]);
      for (let i = 0; i < 5; i++) await reject(`old-${i}`);
      clock.set(NOW - 10 * DAY);
      await reject("recent");
      expect(await rejected.expire(new Date(NOW - 30 * DAY), 2)).toBe(5);
      const left = await rejected.list(org.id, { limit: 100, offset: 0 });
      expect(left.rejected.map((r) => r.transaction_id)).toEqual(["recent"]);
      expect(await rejected.expire(new Date(NOW - 30 * DAY))).toBe(0);
    } finally {
      await db.close();
    }
  });

  it("the server's lifecycle applies RETENTION_DAYS to them at start", async () => {
    const db = await openTestDb();
    const clock = new ManualClock(NOW - 400 * DAY);
    const { org } = await new OrgService(db, clock).createOrganization("Retention at start");
    const rejected = new RejectedEventsService(db, clock, null);
    await rejected.record([{ event: event(org.id, "ancient"), reason: "invalid", message: "refused", receivedAtMs: clock.now(), streamSequence: null }]);
    clock.set(NOW - 5 * DAY);
    await rejected.record([{ event: event(org.id, "fresh"), reason: "invalid", message: "refused", receivedAtMs: clock.now(), streamSequence: null }]);
    clock.set(NOW);
    t = await startTestApp({ db, clock, env: { RETENTION_DAYS: "365" } });
    const left = await rejected.list(org.id, { limit: 100, offset: 0 });
    expect(left.rejected.map((r) => r.transaction_id)).toEqual(["fresh"]);
  });
});
