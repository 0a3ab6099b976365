import { describe, expect, it } from "vitest";
import { BackgroundLoop, claimRounds } from "../../src/shared/background_loop.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A run that records when it starts and ends, and waits for `release` before ending. */
function recorder() {
  const log: string[] = [];
  let n = 0;
  const gates: (() => void)[] = [];
  const run = async () => {
    const i = ++n;
    log.push(`start ${i}`);
    await new Promise<void>((resolve) => gates.push(resolve));
    log.push(`end ${i}`);
    return i;
  };
  const release = async () => {
    while (gates.length === 0) await sleep(1);
    gates.shift()!();
  };
  return { log, run, release };
}

describe("BackgroundLoop", () => {
  it("runs one at a time, in the order asked", async () => {
    const r = recorder();
    const loop = new BackgroundLoop(r.run, { pollMs: 60_000 });
    const a = loop.run();
    const b = loop.serial(() => r.run());
    await r.release();
    await r.release();
    expect(await Promise.all([a, b])).toEqual([1, 2]);
    expect(r.log).toEqual(["start 1", "end 1", "start 2", "end 2"]);
  });

  it("coalescing: calls while a run waits to start share it; without, each call is a run", async () => {
    for (const coalesce of [true, false]) {
      const r = recorder();
      const loop = new BackgroundLoop(r.run, { pollMs: 60_000, coalesce });
      const first = loop.run();
      if (coalesce) expect(loop.run()).toBe(first); // not started yet: the same run
      while (r.log.length === 0) await sleep(1);
      const queued = [loop.run(), loop.run()];
      for (let i = 0; i < (coalesce ? 2 : 3); i++) await r.release();
      expect(await first).toBe(1);
      expect(await Promise.all(queued)).toEqual(coalesce ? [2, 2] : [2, 3]);
    }
  });

  it("a run that fails does not stop the next one, and the loop's own failures go to onError", async () => {
    const errors: unknown[] = [];
    let calls = 0;
    const loop = new BackgroundLoop(
      async () => {
        calls++;
        if (calls === 1) throw new Error("database down");
        return calls;
      },
      { pollMs: 60_000, onError: (err) => errors.push(err) },
    );
    await expect(loop.run()).rejects.toThrow("database down");
    expect(await loop.run()).toBe(2);
    calls = 0;
    loop.start();
    for (let i = 0; i < 200 && calls === 0; i++) await sleep(5);
    await loop.stop();
    expect(errors.map((e) => (e as Error).message)).toEqual(["database down"]);
  });

  it("kicks only while started; stop aborts the signal and waits for the run; no start after stop", async () => {
    let runs = 0;
    let sawAbort = false;
    const loop: BackgroundLoop<void> = new BackgroundLoop(
      async () => {
        runs++;
        await sleep(30);
        sawAbort = loop.signal.aborted;
      },
      { pollMs: 60_000 },
    );
    loop.kick();
    await sleep(50);
    expect(runs).toBe(0);
    loop.start(); // runs after the kick delay
    for (let i = 0; i < 200 && runs === 0; i++) await sleep(5);
    expect(runs).toBe(1);
    await loop.stop();
    expect(sawAbort).toBe(true);
    loop.start();
    loop.kick();
    await sleep(50);
    expect(runs).toBe(1);
  });

  it("polls every pollMs", async () => {
    let runs = 0;
    const loop = new BackgroundLoop(async () => void runs++, { pollMs: 15 });
    loop.start();
    await sleep(150);
    await loop.stop();
    expect(runs).toBeGreaterThanOrEqual(3);
  });
});

describe("claimRounds", () => {
  it("claims under a fresh lease per round until a round comes back short", async () => {
    const batches = [[1, 2], [3, 4], [5]];
    const leases: string[] = [];
    const attempted: [number, string][] = [];
    await claimRounds(
      new AbortController().signal,
      2,
      async (leaseId) => {
        leases.push(leaseId);
        return batches.shift() ?? [];
      },
      async (n, leaseId) => void attempted.push([n, leaseId]),
    );
    expect(new Set(leases).size).toBe(3);
    expect(attempted).toEqual([[1, leases[0]], [2, leases[0]], [3, leases[1]], [4, leases[1]], [5, leases[2]]]);
  });

  it("stops at an empty round, on abort, and after 100 full rounds", async () => {
    let claims = 0;
    await claimRounds(new AbortController().signal, 1, async () => (claims++, []), async () => {});
    expect(claims).toBe(1);

    const shutdown = new AbortController();
    claims = 0;
    await claimRounds(shutdown.signal, 1, async () => (claims++, [claims]), async () => shutdown.abort());
    expect(claims).toBe(1);

    claims = 0;
    await claimRounds(new AbortController().signal, 1, async () => (claims++, [claims]), async () => {});
    expect(claims).toBe(100);
  });
});
