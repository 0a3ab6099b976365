import type { Db } from "../../db/db.ts";
import type { Clock } from "../../shared/clock.ts";
import { AppError, validationFailed } from "../../shared/errors.ts";
import { loadFrozenClocks, readFrozenClock, writeFrozenClock } from "./store.ts";

/**
 * Work a clock move makes due (closing billing periods, ...). `from` is the organization's "now"
 * before the move — the wall clock for a first freeze, so it may be later than `to` when the first
 * freeze goes into the past. Listeners run in order, awaited, before `PUT /test_clock` answers;
 * when one throws, the clock stays moved and the PUT fails, so listeners should catch up on
 * everything due at `to` rather than only what falls in (from, to]: a repeated PUT to the same
 * time runs them again.
 */
export type AdvanceListener = (orgId: number, from: Date, to: Date) => Promise<void>;

export interface TestClockState {
  frozenTime: Date | null;
  currentTime: Date;
}

export interface ClockServiceOptions {
  /** VALUEVERSE_TEST_CLOCK=on. Off: `now()` is the base clock and nothing can be frozen. */
  enabled: boolean;
  /** How often frozen clocks are re-read from the database (other worker processes' moves). */
  refreshMs?: number;
  /**
   * Tells the other processes of a move (the cache's invalidation channel), awaited after the
   * move's listeners ran and before PUT /test_clock answers; they call `learn`. Without it they
   * see the move at their next refresh.
   */
  announce?: (orgId: number, frozenMs: number) => Promise<void>;
  onError?: (err: unknown) => void;
}

/** Other workers see a move within this bound (plus one query); the worker that moved sees it at once. */
export const REFRESH_MS = 1000;

/**
 * The server's clock with per-organization test clocks. `now(orgId)` is the organization's frozen
 * time when it has one, the base (wall) clock otherwise; it never waits on IO: frozen times live
 * in memory, loaded at start, updated by this process's moves and refreshed from the database
 * every `refreshMs` so every worker process agrees within that bound. Clocks only move forward,
 * so a refresh only ever moves a remembered time forward too (a stale read cannot undo a move).
 */
export class ClockService implements Clock {
  private readonly frozen = new Map<number, number>();
  private readonly listeners: AdvanceListener[] = [];
  /** Moves of one organization run one after another (with their listeners) in this process. */
  private readonly moves = new Map<number, Promise<unknown>>();
  private timer: ReturnType<typeof setInterval> | null = null;
  private refreshing: Promise<void> | null = null;

  constructor(
    private readonly db: Db,
    private readonly base: Clock,
    private readonly opts: ClockServiceOptions,
  ) {}

  get enabled(): boolean {
    return this.opts.enabled;
  }

  now(orgId?: number): number {
    if (orgId !== undefined) {
      const frozen = this.frozen.get(orgId);
      if (frozen !== undefined) return frozen;
    }
    return this.base.now(orgId);
  }

  /** Registers work to run when an organization's clock moves; returns its removal. */
  onAdvance(listener: AdvanceListener): () => void {
    this.listeners.push(listener);
    return () => {
      const i = this.listeners.indexOf(listener);
      if (i >= 0) this.listeners.splice(i, 1);
    };
  }

  /** Loads the frozen clocks and starts the periodic refresh (nothing when test clocks are off). */
  async start(): Promise<void> {
    if (!this.enabled) return;
    await this.refresh();
    this.timer ??= setInterval(() => {
      this.refresh().catch((err) => this.opts.onError?.(err));
    }, this.opts.refreshMs ?? REFRESH_MS);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
  }

  /** Re-reads every frozen clock (one small query; concurrent calls share it). */
  refresh(): Promise<void> {
    this.refreshing ??= loadFrozenClocks(this.db)
      .then((clocks) => {
        for (const [orgId, ms] of clocks) this.remember(orgId, ms);
      })
      .finally(() => {
        this.refreshing = null;
      });
    return this.refreshing;
  }

  /** GET /test_clock: read from the database, so it is exact in every worker. */
  async read(orgId: number): Promise<TestClockState> {
    this.assertEnabled();
    const frozenAt = await readFrozenClock(this.db, orgId);
    if (frozenAt !== null) this.remember(orgId, frozenAt.getTime());
    return { frozenTime: frozenAt === null ? null : new Date(this.now(orgId)), currentTime: new Date(this.now(orgId)) };
  }

  /**
   * PUT /test_clock: freezes the organization's clock at `to`. The first freeze may go anywhere;
   * after that only forward (422 naming `frozen_time`). Answers once every listener has run.
   */
  freeze(orgId: number, to: Date): Promise<TestClockState> {
    this.assertEnabled();
    const previous = this.moves.get(orgId) ?? Promise.resolve();
    const move = previous.catch(() => undefined).then(() => this.move(orgId, to));
    this.moves.set(orgId, move);
    void move.finally(() => {
      if (this.moves.get(orgId) === move) this.moves.delete(orgId);
    }).catch(() => undefined);
    return move;
  }

  private async move(orgId: number, to: Date): Promise<TestClockState> {
    const prev = await this.db.transaction(async (tx) => {
      const current = await readFrozenClock(tx, orgId, true);
      if (current !== null && to.getTime() < current.getTime()) throw backwards(current);
      if (!(await writeFrozenClock(tx, orgId, to, new Date(this.base.now())))) {
        throw backwards((await readFrozenClock(tx, orgId)) ?? to);
      }
      return current;
    });
    const from = prev ?? new Date(this.base.now());
    this.remember(orgId, to.getTime());
    // The other processes learn the move once this one has done the work it made due (billing,
    // payments): were they told first, their own background loops could take that work, and the
    // PUT would answer before it is done. They know it before the PUT answers.
    try {
      for (const listener of this.listeners) await listener(orgId, from, to);
    } finally {
      await this.opts.announce?.(orgId, to.getTime());
    }
    return { frozenTime: to, currentTime: new Date(this.now(orgId)) };
  }

  /** Another process moved this organization's clock to `frozenMs` (see `announce`). */
  learn(orgId: number, frozenMs: number): void {
    if (this.enabled && Number.isSafeInteger(orgId) && Number.isFinite(frozenMs)) this.remember(orgId, frozenMs);
  }

  private remember(orgId: number, ms: number): void {
    const known = this.frozen.get(orgId);
    if (known === undefined || ms > known) this.frozen.set(orgId, ms);
  }

  private assertEnabled(): void {
    if (!this.enabled) throw new AppError("not_found", "test_clock_not_found", "test clocks are off (VALUEVERSE_TEST_CLOCK)");
  }
}

const backwards = (current: Date) =>
  validationFailed({ frozen_time: [`cannot_move_backwards (the clock is frozen at ${current.toISOString()})`] }, "a test clock only moves forward");
