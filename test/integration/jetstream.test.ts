// INGEST_MODE=jetstream against a real 3-node nats-server cluster on 127.0.0.1 (started here) and
// PostgreSQL: the API answers once the replicated stream has an event, an in-process ingest worker
// commits it exactly once, redeliveries store nothing new, conflicting duplicates become rejected
// events (listed, counted, and an `event.error` webhook in the outbox), and the lag is exported.
// The embedded database belongs to one process, so this mode (and this file) needs PostgreSQL.
import crypto from "node:crypto";
import { connect, type NatsConnection } from "nats";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { natsServerBinary, startNatsCluster, type NatsCluster } from "../../e2e/helpers/nats.ts";
import { createIngestWorker, type IngestWorker } from "../../src/ingest_worker.ts";
import { KEY_DIGEST, type EventWriter } from "../../src/modules/ingest/index.ts";
import { StreamSetupError, ensureStream, identityDigest } from "../../src/modules/jetstream/index.ts";
import { loadConfig } from "../../src/shared/config.ts";
import { startTestApp, type TestApp } from "../helpers/app.ts";
import { DB_KIND, openTestDb } from "../helpers/db.ts";
import { T0_S, bearer, client, json, parseMetrics, scalar, storedEvents, uid, waitFor } from "./support.ts";

const natsBin = natsServerBinary();
const skipReason =
  DB_KIND !== "postgres"
    ? "INGEST_MODE=jetstream needs PostgreSQL (DATABASE_URL); run with TEST_DATABASE_URL"
    : natsBin === null
      ? "nats-server is not installed (Debian package nats-server)"
      : null;

const workerErrors: string[] = [];
const workerLog = {
  warn: () => {},
  error: (o: { err?: unknown }, msg?: string) => workerErrors.push(`${msg}: ${(o.err as Error | undefined)?.message}`),
};

// The API answers with the lago_id the worker will store the event under, computed without the database.
describe(`identity digest: the API's equals the database's (${DB_KIND})`, () => {
  it("for plain, empty, ambiguous, accented, astral and long ids", async () => {
    const cases: [string, string][] = [
      ["sub_1", "tx_1"],
      ["", "x"],
      ["ab", "c"],
      ["a", "bc"],
      ["sübscrïption", "trånsaction"],
      ["🙂🙂", "𝄞-tx"],
      ["a".repeat(255), "中文".repeat(100)],
    ];
    const db = await openTestDb();
    try {
      for (const [sub, tx] of cases) {
        const { rows } = await db.query<{ d: string }>(`SELECT ${KEY_DIGEST("$1::text", "$2::text")}::text AS d`, [sub, tx]);
        expect(identityDigest(sub, tx), `${sub} / ${tx}`).toBe(rows[0]!.d);
      }
    } finally {
      await db.close();
    }
  });
});

describe.skipIf(skipReason !== null)(`INGEST_MODE=jetstream on a 3-node NATS cluster${skipReason ? ` (skipped: ${skipReason})` : ""}`, () => {
  let cluster: NatsCluster;
  let t: TestApp;
  let env: Record<string, string>;
  let worker: IngestWorker | null = null;
  let nc: NatsConnection;

  const startWorker = async (wrapWriter?: (w: EventWriter) => Pick<EventWriter, "submit">) => {
    const w = createIngestWorker(loadConfig({ ...env, LOG_LEVEL: "silent" }), t.db, workerLog, wrapWriter ? { wrapWriter } : {});
    await w.start();
    return w;
  };
  const streamMessages = async () => (await (await nc.jetstreamManager()).streams.info(env.NATS_STREAM!)).state.messages;
  const drained = () => waitFor(async () => (await streamMessages()) === 0, "the stream to be drained by the worker", 30_000);
  const metricsOf = async () => parseMetrics((await t.app.http.inject({ method: "GET", url: "/metrics" })).body);

  beforeAll(async () => {
    cluster = await startNatsCluster(3);
    const db = await openTestDb();
    const run = crypto.randomBytes(3).toString("hex");
    env = {
      INGEST_MODE: "jetstream",
      NATS_URL: cluster.url,
      DATABASE_URL: (db as { url?: string }).url!,
      NATS_STREAM: `VV_TEST_${run}`,
      NATS_SUBJECT: `vvtest.${run}`,
      NATS_CONSUMER: `vv-test-${run}`,
      NATS_ACK_WAIT_MS: "2000",
      NATS_PUBLISH_TIMEOUT_MS: "1500",
      WEBHOOK_WORKER: "off",
      BILLING_SCHEDULER: "off",
    };
    t = await startTestApp({ db, env });
    nc = await connect({ servers: cluster.url.split(",") });
    worker = await startWorker();
  }, 120_000);

  afterAll(async () => {
    await worker?.stop();
    await nc?.close();
    await t?.close();
    await cluster?.stop();
  });

  it("answers 200 in Lago's shape once the stream has the event, with the lago_id the worker stores it under", async () => {
    const api = client(t);
    const sub = uid("sub-ü🙂");
    const event = { transaction_id: uid("tx-✓"), external_subscription_id: sub, code: "api_calls", timestamp: T0_S, properties: { tokens: 12 } };
    const r = await api.postEvent(event);
    expect(r.statusCode, r.body).toBe(200);
    const answered = json(r).event;
    expect(answered).toMatchObject({ transaction_id: event.transaction_id, external_subscription_id: sub, code: "api_calls", properties: { tokens: 12 } });
    expect(answered.lago_id).toBe(identityDigest(sub, event.transaction_id));
    // Readable once the worker committed it (the lag), under the same lago_id the API answered.
    let got: any;
    await waitFor(async () => {
      const g = await api.get(event.transaction_id, `external_subscription_id=${encodeURIComponent(sub)}`);
      got = json(g).event;
      return g.statusCode === 200;
    }, "the event to be stored");
    expect(got.lago_id).toBe(answered.lago_id);
    expect(got.timestamp).toBe(answered.timestamp);
    expect(await storedEvents(t.db, sub)).toHaveLength(1);
  });

  it("refuses invalid events with the same 422 as direct mode, and publishes nothing", async () => {
    const before = await streamMessages();
    const bad = await client(t).postEvent({ transaction_id: "", code: true, properties: [] });
    expect(bad.statusCode).toBe(422);
    expect(json(bad).error_details).toEqual({
      transaction_id: ["value_is_mandatory"],
      external_subscription_id: ["value_is_mandatory"],
      code: ["must_be_a_string"],
      properties: ["must_be_an_object"],
    });
    const badBatch = await client(t).postBatch([{ transaction_id: "ok", external_subscription_id: "s", code: "c" }, { code: "c" }]);
    expect(badBatch.statusCode).toBe(422);
    expect(Object.keys(json(badBatch).error_details)).toEqual(["1"]);
    expect(await streamMessages()).toBe(before);
  });

  it("publishes a batch, answers once every event is acknowledged, and the worker stores each exactly once", async () => {
    const sub = uid("sub");
    const events = Array.from({ length: 500 }, (_, i) => ({ transaction_id: `b-${i}`, external_subscription_id: sub, code: "api_calls", timestamp: T0_S, properties: { i } }));
    const seqBefore = (await (await nc.jetstreamManager()).streams.info(env.NATS_STREAM!)).state.last_seq;
    const r = await client(t).postBatch(events);
    expect(r.statusCode, r.body).toBe(200);
    expect(json(r).events.map((e: { transaction_id: string }) => e.transaction_id)).toEqual(events.map((e) => e.transaction_id));
    // NATS_EVENTS_PER_MESSAGE (100): five messages for 500 events.
    expect((await (await nc.jetstreamManager()).streams.info(env.NATS_STREAM!)).state.last_seq - seqBefore).toBe(5);
    await waitFor(async () => (await scalar(t.db, "SELECT count(*) AS n FROM events WHERE external_subscription_id = $1", [sub])) === 500, "500 events stored");
    await drained();
    expect(await scalar(t.db, "SELECT count(*) AS n FROM event_identities i JOIN events e ON e.transaction_id LIKE 'b-%' AND e.external_subscription_id = $1 AND i.ts = e.ts AND i.key_hash = ('x' || left(md5(length(e.external_subscription_id)::text || ':' || e.external_subscription_id || e.transaction_id), 16))::bit(64)::int8", [sub])).toBe(500);
    expect(await scalar(t.db, "SELECT coalesce(sum(events_count), 0) AS n FROM event_counts_hourly WHERE external_subscription_id = $1", [sub])).toBe(500);
  });

  it("drops an exact retry within the duplicate window at the stream; a retry after it stores nothing new either", async () => {
    const sub = uid("sub");
    const event = { transaction_id: "retry-1", external_subscription_id: sub, code: "api_calls", timestamp: T0_S, properties: { a: 1 } };
    const dupBefore = (await metricsOf()).get("billing_ingest_publish_duplicates_total") ?? 0;
    expect((await client(t).postEvent(event)).statusCode).toBe(200);
    expect((await client(t).postEvent(event)).statusCode).toBe(200); // the same message id: dropped by the stream
    expect((await metricsOf()).get("billing_ingest_publish_duplicates_total")).toBe(dupBefore + 1);
    // A batch is another message (another id): it reaches the worker, which stores nothing new...
    expect((await client(t).postBatch([event, event])).statusCode).toBe(200);
    expect((await metricsOf()).get("billing_ingest_publish_duplicates_total")).toBe(dupBefore + 1);
    // ...and the same batch again is dropped by the stream.
    expect((await client(t).postBatch([event, event])).statusCode).toBe(200);
    expect((await metricsOf()).get("billing_ingest_publish_duplicates_total")).toBe(dupBefore + 3);
    await drained();
    expect(parseMetrics(await worker!.metrics.registry.metrics()).get("billing_usage_events_duplicates_total")).toBeGreaterThanOrEqual(2);
    expect(await storedEvents(t.db, sub)).toHaveLength(1);
    expect(await scalar(t.db, "SELECT count(*) AS n FROM rejected_events WHERE external_subscription_id = $1", [sub])).toBe(0);
  });

  it("a message redelivered after its commit (the worker failed before acknowledging) stores nothing new", async () => {
    await worker!.stop();
    // This worker commits each batch, then fails once before acknowledging it: JetStream delivers it again.
    let failures = 0;
    worker = await startWorker((w) => ({
      async submit(events) {
        const outcomes = await w.submit(events);
        if (failures++ === 0) throw new Error("simulated crash between commit and acknowledgement");
        return outcomes;
      },
    }));
    const sub = uid("sub");
    const events = Array.from({ length: 20 }, (_, i) => ({ transaction_id: `r-${i}`, external_subscription_id: sub, code: "api_calls", timestamp: T0_S, properties: { i } }));
    expect((await client(t).postBatch(events)).statusCode).toBe(200);
    await drained();
    expect(failures).toBeGreaterThanOrEqual(2);
    const m = parseMetrics(await worker.metrics.registry.metrics());
    expect(m.get("billing_ingest_redelivered_total")).toBeGreaterThanOrEqual(1);
    expect(m.get("billing_usage_events_duplicates_total")).toBeGreaterThanOrEqual(1);
    expect(await storedEvents(t.db, sub)).toHaveLength(20);
    expect(await scalar(t.db, "SELECT coalesce(sum(events_count), 0) AS n FROM event_counts_hourly WHERE external_subscription_id = $1", [sub])).toBe(20);
    await worker.stop();
    worker = await startWorker();
  });

  it("records a conflicting duplicate as a rejected event: listed, counted, and sent as event.error; the stored event is unchanged", async () => {
    const key = t.apiKey;
    const ep = await t.app.http.inject({ method: "POST", url: "/api/v1/webhook_endpoints", headers: bearer(key), payload: { webhook_endpoint: { webhook_url: "http://127.0.0.1:9/hook", signature_algo: "hmac" } } });
    expect(ep.statusCode, ep.body).toBe(200);
    const sub = uid("sub");
    const first = { transaction_id: "c-1", external_subscription_id: sub, code: "api_calls", timestamp: T0_S, properties: { v: 1 } };
    const other = { ...first, properties: { v: 2 } };
    expect((await client(t).postEvent(first)).statusCode).toBe(200);
    await waitFor(async () => (await storedEvents(t.db, sub)).length === 1, "the first event stored");
    // The API cannot know: it acknowledges, and the worker finds the conflict.
    const r = await client(t).postEvent(other);
    expect(r.statusCode, r.body).toBe(200);
    await drained();
    const listed = await t.app.http.inject({ method: "GET", url: `/api/v1/rejected_events?external_subscription_id=${sub}`, headers: bearer(key) });
    expect(listed.statusCode).toBe(200);
    const body = json(listed);
    expect(body.meta.total_count).toBe(1);
    expect(body.rejected_events[0]).toMatchObject({
      transaction_id: "c-1",
      external_subscription_id: sub,
      code: "api_calls",
      error_code: "value_already_exist",
      event: { transaction_id: "c-1", external_subscription_id: sub, properties: { v: 2 } },
      lago_event_id: identityDigest(sub, "c-1"),
    });
    const stored = await storedEvents(t.db, sub);
    expect(stored).toHaveLength(1);
    expect(stored[0]!.properties).toEqual({ v: 1 });
    // One event.error in the outbox, Lago's envelope.
    const hooks = await t.db.query<{ payload: string }>("SELECT payload FROM webhooks WHERE webhook_type = 'event.error'");
    expect(hooks.rows).toHaveLength(1);
    const hook = JSON.parse(hooks.rows[0]!.payload);
    expect(hook).toMatchObject({
      webhook_type: "event.error",
      object_type: "event_error",
      event_error: { status: 422, error: "Unprocessable Entity", message: "value_already_exist", event: { transaction_id: "c-1", properties: { v: 2 } } },
    });
    expect(parseMetrics(await worker!.metrics.registry.metrics()).get('billing_ingest_rejected_events_total{reason="value_already_exist"}')).toBe(1);
    // The same conflicting payload again has the same message id: the stream drops it within its
    // window (past it, the worker would record nothing new: one row per identity and payload).
    // Another payload is another rejection.
    expect((await client(t).postEvent(other)).statusCode).toBe(200);
    const third = { ...first, properties: { v: 3 } };
    expect((await client(t).postEvent(third)).statusCode).toBe(200);
    await drained();
    expect(json(await t.app.http.inject({ method: "GET", url: `/api/v1/rejected_events?external_subscription_id=${sub}`, headers: bearer(key) })).meta.total_count).toBe(2);
    expect((await t.db.query("SELECT 1 FROM webhooks WHERE webhook_type = 'event.error'")).rows).toHaveLength(2);
    // Scoped by organization, and the query is validated.
    const otherOrg = await t.app.orgs.createOrganization("other");
    expect(json(await t.app.http.inject({ method: "GET", url: "/api/v1/rejected_events", headers: bearer(otherOrg.apiKey) })).meta.total_count).toBe(0);
    const bad = await t.app.http.inject({ method: "GET", url: "/api/v1/rejected_events?error_code=nope&per_page=0", headers: bearer(key) });
    expect(bad.statusCode).toBe(422);
    expect(Object.keys(json(bad).error_details).sort()).toEqual(["error_code", "per_page"]);
  });

  it("exports the lag: events acknowledged and not yet committed, and the age of the oldest", async () => {
    await worker!.stop();
    worker = null;
    const sub = uid("sub");
    const events = Array.from({ length: 30 }, (_, i) => ({ transaction_id: `l-${i}`, external_subscription_id: sub, code: "api_calls", timestamp: T0_S }));
    // 10 single events one after another (a message each), 10 at once (they share messages: the
    // requests of one turn of the event loop go as one) and a batch of 10 (one message).
    for (const e of events.slice(0, 10)) expect((await client(t).postEvent(e)).statusCode).toBe(200);
    for (const r of await Promise.all(events.slice(10, 20).map((e) => client(t).postEvent(e)))) expect(r.statusCode).toBe(200);
    expect((await client(t).postBatch(events.slice(20))).statusCode).toBe(200);
    await new Promise((r) => setTimeout(r, 1_100)); // past the gauge's 1 s cache
    const m = await metricsOf();
    expect(m.get("billing_ingest_lag_messages")).toBeGreaterThanOrEqual(12);
    expect(m.get("billing_ingest_lag_messages")).toBeLessThan(21);
    expect(m.get("billing_ingest_lag_seconds")).toBeGreaterThan(0);
    expect(await storedEvents(t.db, sub)).toHaveLength(0); // acknowledged, not yet readable
    worker = await startWorker();
    await drained();
    expect(await storedEvents(t.db, sub)).toHaveLength(30);
    await new Promise((r) => setTimeout(r, 1_100));
    expect((await metricsOf()).get("billing_ingest_lag_messages")).toBe(0);
    expect(parseMetrics(await worker.metrics.registry.metrics()).get("billing_ingest_lag_messages")).toBe(0);
  });

  it("refuses a stream with more replicas than the cluster has servers, saying so", async () => {
    const single = await startNatsCluster(1);
    const conn = await connect({ servers: single.url });
    try {
      const config = loadConfig({ ...env, NATS_URL: single.url, NATS_REPLICAS: "3" }).nats;
      const err = await ensureStream(await conn.jetstreamManager(), config).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(StreamSetupError);
      expect((err as Error).message).toMatch(/NATS_REPLICAS=3: the JetStream cluster cannot hold 3 copies/);
      // With one replica it works, and asking for three afterwards is refused rather than silently weaker.
      await ensureStream(await conn.jetstreamManager(), { ...config, replicas: 1 });
      const again = await ensureStream(await conn.jetstreamManager(), config).catch((e: unknown) => e);
      expect((again as Error).message).toMatch(/exists with 1 replica\(s\) but NATS_REPLICAS=3/);
    } finally {
      await conn.close();
      await single.stop();
    }
  });

  it("logged no worker error but the simulated crash", () => {
    expect(workerErrors.filter((e) => !e.includes("simulated crash"))).toEqual([]);
    expect(workerErrors.length).toBeGreaterThanOrEqual(1);
  });

  // Last: it leaves the cluster without a quorum.
  it("acknowledges nothing without a quorum of the stream's servers: 503 with Retry-After", async () => {
    const failuresBefore = (await metricsOf()).get("billing_ingest_publish_failures_total") ?? 0;
    await cluster.nodes[0]!.kill();
    await cluster.nodes[1]!.kill();
    const sub = uid("sub");
    const r = await client(t).postEvent({ transaction_id: "q-1", external_subscription_id: sub, code: "api_calls", timestamp: T0_S });
    expect(r.statusCode, r.body).toBe(503);
    expect(r.headers["retry-after"]).toBe("1");
    expect(json(r)).toMatchObject({ status: 503, code: "event_stream_unavailable" });
    expect((await metricsOf()).get("billing_ingest_publish_failures_total")).toBe(failuresBefore + 1);
    expect(await storedEvents(t.db, sub)).toHaveLength(0);
  });
});
