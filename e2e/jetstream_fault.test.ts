// The JetStream fault test (INGEST_MODE=jetstream): a real 3-node nats-server cluster on 127.0.0.1,
// the real server and two `valueverse ingest-worker` processes on PostgreSQL. Under a bounded load
// (single events, batches, exact retries, conflicting payloads), SIGKILL the stream's leader node
// and one worker (frozen for a moment first, so it dies holding unacknowledged messages); the load keeps going (clients retry 503s as Lago's clients do). Then every
// acknowledged event is stored exactly once, as sent, with rollups that agree; of the payloads
// acknowledged for one identity, exactly one is stored and every other is a rejected event.
import crypto from "node:crypto";
import { isDeepStrictEqual } from "node:util";
import { connect } from "nats";
import { afterAll, describe, expect, it } from "vitest";
import { call } from "./helpers/http.ts";
import { startIngestWorker, type IngestWorkerProcess } from "./helpers/ingest_worker.ts";
import { identityOf, timestampMicros, type EventPayload } from "./helpers/load.ts";
import { natsServerBinary, startNatsCluster, type NatsCluster } from "./helpers/nats.ts";
import { createDataTarget, E2E_DB_KIND, killAllServers, randomKey, sleep, startServer, type DataTarget } from "./helpers/server.ts";
import { checkDatabase } from "./helpers/verify.ts";

const LOAD_MS = 14_000;
const MAX_NEW_EVENTS = 40_000;
const CLIENTS = 10;

const natsBin = natsServerBinary();
const skipReason =
  E2E_DB_KIND !== "postgres"
    ? "INGEST_MODE=jetstream needs PostgreSQL (DATABASE_URL); run with TEST_DATABASE_URL"
    : natsBin === null
      ? "nats-server is not installed (Debian package nats-server)"
      : null;

interface Load {
  attempted: Map<string, EventPayload>;
  /** Identity -> the payloads acknowledged for it (the first one, plus conflicting ones). */
  acked: Map<string, EventPayload[]>;
  ackedCount: number;
  requests: number;
  retried: number;
  statuses: Record<string, number>;
  problems: string[];
}

describe.skipIf(skipReason !== null)(`JetStream fault test: kill a NATS node and an ingest worker under load${skipReason ? ` (skipped: ${skipReason})` : ""}`, () => {
  let cluster: NatsCluster | undefined;
  let target: DataTarget | undefined;
  const workers: IngestWorkerProcess[] = [];

  afterAll(async () => {
    await Promise.all(workers.map((w) => w.kill()));
    await killAllServers();
    await cluster?.stop();
    await target?.cleanup();
  });

  it("stores every acknowledged event exactly once", { timeout: 240_000 }, async () => {
    const log = (msg: string) => console.log(`[jetstream fault] ${msg}`);
    cluster = await startNatsCluster(3);
    target = await createDataTarget("postgres");
    const run = crypto.randomBytes(3).toString("hex");
    const apiKey = randomKey();
    const env = {
      DATABASE_URL: target.databaseUrl!,
      NATS_URL: cluster.url,
      NATS_STREAM: `VV_FAULT_${run}`,
      NATS_SUBJECT: `vvfault.${run}`,
      NATS_CONSUMER: `vv-fault-${run}`,
      NATS_ACK_WAIT_MS: "3000",
      NATS_PUBLISH_TIMEOUT_MS: "10000",
      INGEST_BATCH_MAX: "500",
    };
    const server = await startServer({ target, apiKey, env: { ...env, INGEST_MODE: "jetstream", BILLING_SCHEDULER: "off", WEBHOOK_WORKER: "off" } });
    workers.push(await startIngestWorker(env), await startIngestWorker(env));
    log(`cluster ${cluster.url}; API ${server.url}; workers ${workers.map((w) => w.pid).join(", ")}`);

    // The load, with the kills in the middle of it.
    const load: Load = { attempted: new Map(), acked: new Map(), ackedCount: 0, requests: 0, retried: 0, statuses: {}, problems: [] };
    const started = performance.now();
    const loading = runLoad(server.url, apiKey, `jf-${run}`, load, started);

    const nc = await connect({ servers: cluster.url.split(",") });
    const jsm = await nc.jetstreamManager();
    while (load.ackedCount < 500 && performance.now() - started < LOAD_MS / 3) await sleep(20);
    await sleep(Math.max(0, 2_000 - (performance.now() - started)));

    // One worker frozen, then killed while it holds messages it pulled and never acknowledged (a
    // worker killed between two pulls holds none): those must come back to the other worker.
    const victim = workers[0]!;
    // Its pull stays open on the server (up to 2 s), so messages keep going to it while it is frozen.
    process.kill(victim.pid, "SIGSTOP");
    await sleep(1_500);
    const held = (await jsm.consumers.info(env.NATS_STREAM, env.NATS_CONSUMER)).num_ack_pending;
    const ackedAtWorkerKill = load.ackedCount;
    await victim.kill();
    log(`froze, then killed ingest worker ${victim.pid} at ${Math.round(performance.now() - started)} ms (${held} message(s) unacknowledged by all workers), ${ackedAtWorkerKill} events acknowledged`);

    // Then the NATS server leading the stream.
    await sleep(500);
    const leaderName = (await jsm.streams.info(env.NATS_STREAM)).cluster?.leader;
    const leader = cluster.nodes.find((n) => n.name === leaderName) ?? cluster.nodes[0]!;
    const ackedAtNatsKill = load.ackedCount;
    await leader.kill();
    log(`killed NATS node ${leader.name} (the stream leader) at ${Math.round(performance.now() - started)} ms, ${ackedAtNatsKill} events acknowledged`);
    await loading;
    log(`load: ${JSON.stringify({ requests: load.requests, retried: load.retried, attempted: load.attempted.size, acked: load.acked.size, statuses: load.statuses })}`);

    expect(load.problems, load.problems.slice(0, 20).join("\n")).toEqual([]);
    expect(ackedAtNatsKill - ackedAtWorkerKill, "events were acknowledged after the worker died").toBeGreaterThan(0);
    expect(load.ackedCount - ackedAtNatsKill, "events were acknowledged after the NATS node died").toBeGreaterThan(100);

    // The surviving worker drains the stream (the dead worker's messages come back after NATS_ACK_WAIT_MS).
    const drainStart = performance.now();
    for (;;) {
      const info = await jsm.streams.info(env.NATS_STREAM).catch(() => null);
      if (info !== null && info.state.messages === 0) break;
      const ci = await jsm.consumers.info(env.NATS_STREAM, env.NATS_CONSUMER).catch(() => null);
      log(`draining: stream ${info?.state.messages} messages; consumer pending ${ci?.num_pending}, ack pending ${ci?.num_ack_pending}, redelivered ${ci?.num_redelivered}, waiting ${ci?.num_waiting}`);
      await sleep(800);
      if (performance.now() - drainStart > 90_000) throw new Error(`the stream still holds ${info?.state.messages} messages after 90 s`);
      await sleep(200);
    }
    log(`stream drained ${Math.round(performance.now() - drainStart)} ms after the load`);
    for (const l of workers[1]!.logLines(40).slice(0, 20)) log(`surviving worker: ${JSON.stringify(l).slice(0, 300)}`);
    const lag = await call(workers[1]!.metricsUrl, "GET", "/metrics");
    expect(lag.status).toBe(200);
    expect(String(lag.body)).toMatch(/^billing_ingest_lag_messages 0$/m);
    expect(String(lag.body)).toMatch(/^billing_ingest_redelivered_total [1-9]\d*$/m);
    await nc.close();

    // In the database: every acknowledged identity once; single-payload ones as sent.
    const single = new Map<string, EventPayload>();
    for (const [id, payloads] of load.acked) if (payloads.length === 1) single.set(id, payloads[0]!);
    const db = await target.openDb();
    try {
      const check = await checkDatabase(db, { apiKey, acked: single, attempted: load.attempted });
      log(`database: ${JSON.stringify({ ...check, storedUnackedIds: undefined, problems: check.problems.length })}`);
      expect(check.problems, check.problems.join("\n")).toEqual([]);
      expect(check.missing).toBe(0);
      expect(check.duplicated).toBe(0);

      // Identities acknowledged with several payloads: one of them stored, every other one rejected.
      const conflicted = [...load.acked].filter(([, p]) => p.length > 1);
      expect(conflicted.length, "the load sent conflicting payloads").toBeGreaterThan(0);
      const orgId = check.orgId;
      let rejectedExpected = 0;
      for (const [, payloads] of conflicted) {
        const e = payloads[0]!;
        const stored = await db.query<{ properties: Record<string, unknown>; ts_us: string }>(
          "SELECT properties, (extract(epoch FROM ts) * 1000000)::int8::text AS ts_us FROM events WHERE org_id = $1 AND external_subscription_id = $2 AND transaction_id = $3",
          [orgId, e.external_subscription_id, e.transaction_id],
        );
        expect(stored.rows, `stored once: ${e.transaction_id}`).toHaveLength(1);
        const winner = payloads.find((p) => isDeepStrictEqual(p.properties, stored.rows[0]!.properties) && String(timestampMicros(p.timestamp)) === stored.rows[0]!.ts_us);
        expect(winner, `the stored payload of ${e.transaction_id} is one that was acknowledged`).toBeDefined();
        const rejected = await db.query<{ event: string }>(
          "SELECT event FROM rejected_events WHERE org_id = $1 AND external_subscription_id = $2 AND transaction_id = $3",
          [orgId, e.external_subscription_id, e.transaction_id],
        );
        const distinct = new Set(payloads.map((p) => JSON.stringify(p.properties)));
        expect(rejected.rows, `rejections of ${e.transaction_id}`).toHaveLength(distinct.size - 1);
        for (const r of rejected.rows) expect(JSON.parse(r.event).properties).not.toEqual(stored.rows[0]!.properties);
        rejectedExpected += distinct.size - 1;
      }
      const allRejected = await db.query<{ n: string }>("SELECT count(*)::text AS n FROM rejected_events WHERE org_id = $1", [orgId]);
      expect(Number(allRejected.rows[0]!.n)).toBe(rejectedExpected);
      log(`${conflicted.length} identities acknowledged with conflicting payloads: each stored once, ${rejectedExpected} rejected events`);
    } finally {
      await db.close();
    }

    const stopped = await workers[1]!.stop();
    expect(stopped).toEqual({ code: 0, signal: null });
    expect(workers[1]!.logLines(50).filter((l) => !/delivered again|starting again|pulling/.test(String(l.msg))), "no unexpected error logged by the surviving worker").toEqual([]);
    expect((await server.stop()).code).toBe(0);
  });
});

/**
 * Clients sending new single events and batches, exact retries of acknowledged events, and (every
 * 25th request) another payload for an acknowledged identity, which this mode acknowledges too. A
 * 503, a 429 or no answer is retried with the same events (as a client would) for up to 20 s.
 */
async function runLoad(url: string, apiKey: string, prefix: string, load: Load, started: number): Promise<void> {
  let seq = 0;
  let requestNo = 0;
  let newEvents = 0;
  const ackedList: EventPayload[] = [];
  const newEvent = (): EventPayload => {
    const n = ++seq;
    newEvents++;
    const e: EventPayload = {
      transaction_id: `${prefix}-${n}`,
      external_subscription_id: `${prefix}_sub_${n % 5}`,
      code: ["api_calls", "storage_gb", "seats"][n % 3]!,
      timestamp: Number(((Date.now() - (n % 1000) * 60_000) / 1000).toFixed(3)),
      properties: { n, region: ["eu", "us", "ap"][n % 3] },
    };
    load.attempted.set(identityOf(e), e);
    return e;
  };
  const send = async (events: EventPayload[], batch: boolean): Promise<void> => {
    const deadline = performance.now() + 20_000;
    for (let attempt = 0; ; attempt++) {
      load.requests++;
      if (attempt > 0) load.retried++;
      let status = 0;
      let body: unknown;
      try {
        const r = batch
          ? await call(url, "POST", "/api/v1/events/batch", { apiKey, body: { events }, timeoutMs: 15_000 })
          : await call(url, "POST", "/api/v1/events", { apiKey, body: { event: events[0] }, timeoutMs: 15_000 });
        status = r.status;
        body = r.body;
      } catch {
        status = 0; // no answer
      }
      load.statuses[status] = (load.statuses[status] ?? 0) + 1;
      if (status === 200) {
        for (const e of events) {
          const id = identityOf(e);
          const list = load.acked.get(id);
          if (list === undefined) {
            load.acked.set(id, [e]);
            ackedList.push(e);
          } else if (!list.some((p) => isDeepStrictEqual(p, e))) list.push(e);
          load.ackedCount++;
        }
        return;
      }
      if ((status === 503 || status === 429 || status === 0) && performance.now() < deadline) {
        await sleep(100 + attempt * 50);
        continue;
      }
      load.problems.push(`${batch ? "batch" : "single"}: ${status} ${JSON.stringify(body).slice(0, 300)}`);
      return;
    }
  };
  const client = async () => {
    while (performance.now() - started < LOAD_MS) {
      const n = ++requestNo;
      if (n % 25 === 0 && ackedList.length > 0) {
        const target = ackedList[Math.floor(Math.random() * ackedList.length)]!;
        await send([{ ...target, properties: { ...target.properties, conflicting: n } }], false);
      } else if (n % 10 === 0 && ackedList.length > 0) {
        await send([ackedList[Math.floor(Math.random() * ackedList.length)]!, newEvent()], true);
      } else if (newEvents >= MAX_NEW_EVENTS) {
        break;
      } else if (n % 2 === 0) {
        await send([newEvent()], false);
      } else {
        await send(Array.from({ length: 2 + (n % 19) }, newEvent), true);
      }
    }
  };
  await Promise.all(Array.from({ length: CLIENTS }, client));
}
