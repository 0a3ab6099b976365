import crypto from "node:crypto";

export interface BackgroundLoopOptions {
  /** How often the loop runs on its own. */
  pollMs: number;
  /** A `kick` runs this much later, so a burst of kicks makes one run. */
  kickDelayMs?: number;
  /** A call of `run` while one waits to start is served by that one (not by another after it). */
  coalesce?: boolean;
  onError?: (err: unknown) => void;
}

/**
 * The background half of a claim-and-attempt worker: a poll timer and a coalescing kick (both
 * unref'd: they never keep the process alive), runs serialised in this process, and a shutdown
 * signal that `stop` aborts before waiting for the run in progress. What a run does is the
 * worker's; whether work is due is judged there too (by its injected clock), the loop only
 * decides how often to look.
 */
export class BackgroundLoop<T> {
  private timer: ReturnType<typeof setInterval> | null = null;
  private kickTimer: ReturnType<typeof setTimeout> | null = null;
  private tail: Promise<unknown> = Promise.resolve();
  private queued: Promise<T> | null = null;
  private readonly shutdown = new AbortController();

  constructor(
    private readonly runOnce: () => Promise<T>,
    private readonly options: BackgroundLoopOptions,
  ) {}

  /** Aborted by `stop`: attempts in flight give up, runs claim nothing more. */
  get signal(): AbortSignal {
    return this.shutdown.signal;
  }

  start(): void {
    if (this.timer !== null || this.shutdown.signal.aborted) return;
    this.timer = setInterval(() => this.background(), this.options.pollMs);
    this.timer.unref();
    this.kick();
  }

  /** Runs shortly (nothing before `start` or after `stop`). */
  kick(): void {
    if (this.timer === null || this.kickTimer !== null) return;
    this.kickTimer = setTimeout(() => {
      this.kickTimer = null;
      this.background();
    }, this.options.kickDelayMs ?? 20);
    this.kickTimer.unref();
  }

  /** One run, after the runs queued before it. */
  run(): Promise<T> {
    if (!this.options.coalesce) return this.serial(this.runOnce);
    if (this.queued !== null) return this.queued;
    const run = this.serial(() => {
      this.queued = null;
      return this.runOnce();
    });
    this.queued = run;
    return run;
  }

  /** Runs `work` after everything queued before it; runs in this process never overlap. */
  serial<U>(work: () => Promise<U>): Promise<U> {
    const run = this.tail.then(work);
    this.tail = run.catch(() => undefined);
    return run;
  }

  /** Stops the timers, aborts `signal` and waits for the runs queued to end. */
  async stop(): Promise<void> {
    if (this.timer !== null) clearInterval(this.timer);
    if (this.kickTimer !== null) clearTimeout(this.kickTimer);
    this.timer = this.kickTimer = null;
    this.shutdown.abort();
    await this.tail;
  }

  private background(): void {
    this.run().catch((err) => this.options.onError?.(err));
  }
}

/** A claim outlives the attempt's timeout by this much before another worker may take the row. */
const LEASE_MARGIN_MS = 60_000;
/** Claims per run (per organization, where a run goes by organization) at most, so a run ends even when retries fall due as fast as they are made. */
const MAX_ROUNDS = 100;

/** Until when a claim made at `now` (wall clock) for an attempt of at most `timeoutMs` holds. */
export const leaseUntil = (now: number, timeoutMs: number): Date => new Date(now + timeoutMs + LEASE_MARGIN_MS);

/**
 * Claims due rows in rounds under a fresh lease id each (`claim` takes at most `batchSize`) and
 * attempts each round's rows at once, until a round comes back short, `signal` aborts, or
 * MAX_ROUNDS have run.
 */
export async function claimRounds<C>(
  signal: AbortSignal,
  batchSize: number,
  claim: (leaseId: string) => Promise<readonly C[]>,
  attempt: (claimed: C, leaseId: string) => Promise<void>,
): Promise<void> {
  for (let round = 0; round < MAX_ROUNDS && !signal.aborted; round++) {
    const leaseId = crypto.randomUUID();
    const claimed = await claim(leaseId);
    if (claimed.length === 0) break;
    await Promise.all(claimed.map((c) => attempt(c, leaseId)));
    if (claimed.length < batchSize) break;
  }
}
