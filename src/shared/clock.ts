// Time is injected: core code never reads the wall clock. `now(orgId)` is per organization so test
// clocks (frozen per organization) can replace it without touching callers.
export interface Clock {
  /** Milliseconds since the epoch, as the organization sees it. */
  now(orgId?: number): number;
}

export const systemClock: Clock = { now: () => Date.now() };

/** A clock that only moves when told to; for tests. */
export class ManualClock implements Clock {
  constructor(private ms: number) {}
  now(): number {
    return this.ms;
  }
  set(ms: number): void {
    this.ms = ms;
  }
  advance(ms: number): void {
    this.ms += ms;
  }
}
