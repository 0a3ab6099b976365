// Runs the billing job in the server at the start of every wall-clock minute (BILLING_SCHEDULER=on).
// A run that is still going when the next minute starts is not doubled; the job is idempotent, so
// several server processes each running it only repeat work, never an invoice.

export interface BillingSchedulerOptions {
  /** Milliseconds between runs; runs are aligned to multiples of it on the wall clock. */
  intervalMs?: number;
  /** The wall clock (tests inject one). */
  now?: () => number;
  onError?: (err: unknown) => void;
}

export class BillingScheduler {
  private timer: ReturnType<typeof setTimeout> | null = null;
  private running: Promise<void> | null = null;
  private stopped = true;
  private readonly intervalMs: number;
  private readonly now: () => number;

  constructor(
    private readonly run: () => Promise<unknown>,
    private readonly opts: BillingSchedulerOptions = {},
  ) {
    this.intervalMs = opts.intervalMs ?? 60_000;
    this.now = opts.now ?? Date.now;
  }

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.schedule();
  }

  /** Stops the timer and waits for a run in progress (the database closes after). */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    await this.running;
  }

  /** One run now, unless one is in progress (which it then joins). */
  tick(): Promise<void> {
    this.running ??= this.run()
      .then(() => undefined)
      .catch((err) => this.opts.onError?.(err))
      .finally(() => {
        this.running = null;
      });
    return this.running;
  }

  private schedule(): void {
    if (this.stopped) return;
    const wait = this.intervalMs - (this.now() % this.intervalMs);
    this.timer = setTimeout(() => {
      void this.tick().finally(() => this.schedule());
    }, wait);
    this.timer.unref();
  }
}
