import { describe, expect, it } from "vitest";
import { BillingScheduler } from "../../../src/modules/invoicing/index.ts";
import { ConfigError, loadConfig } from "../../../src/shared/config.ts";

describe("the billing scheduler", () => {
  it("is on by default, off when asked, and refuses anything else by name", () => {
    expect(loadConfig({}).billingScheduler).toBe(true);
    expect(loadConfig({ BILLING_SCHEDULER: "off" }).billingScheduler).toBe(false);
    expect(() => loadConfig({ BILLING_SCHEDULER: "sometimes" })).toThrow(ConfigError);
    try {
      loadConfig({ BILLING_SCHEDULER: "false" });
    } catch (err) {
      expect((err as ConfigError).problems).toEqual(['BILLING_SCHEDULER="false": must be one of on, off']);
    }
  });

  it("never runs the job twice at once: a tick during a run joins it", async () => {
    let runs = 0;
    let release!: () => void;
    const scheduler = new BillingScheduler(async () => {
      runs += 1;
      await new Promise<void>((resolve) => (release = resolve));
    });
    const first = scheduler.tick();
    const second = scheduler.tick();
    expect(runs).toBe(1);
    release();
    await Promise.all([first, second]);
    const third = scheduler.tick();
    expect(runs).toBe(2);
    release();
    await third;
  });

  it("runs at the start of each interval on the wall clock and stops, waiting for the run in progress", async () => {
    const started: number[] = [];
    const scheduler = new BillingScheduler(
      async () => {
        started.push(Date.now());
        await new Promise((r) => setTimeout(r, 20));
      },
      { intervalMs: 50 },
    );
    scheduler.start();
    await new Promise((r) => setTimeout(r, 140));
    await scheduler.stop();
    const count = started.length;
    expect(count).toBeGreaterThanOrEqual(2);
    await new Promise((r) => setTimeout(r, 80));
    expect(started.length).toBe(count);
  });

  it("a failing run is reported and does not stop the next one", async () => {
    const errors: unknown[] = [];
    let calls = 0;
    const scheduler = new BillingScheduler(
      async () => {
        calls += 1;
        throw new Error("database away");
      },
      { onError: (err) => errors.push(err) },
    );
    await scheduler.tick();
    await scheduler.tick();
    expect([calls, errors.length]).toEqual([2, 2]);
  });
});
