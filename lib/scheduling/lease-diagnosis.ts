import { IntervalHistogram, monitorEventLoopDelay } from 'node:perf_hooks';

/** An event-loop delay at least this long counts as the loop being blocked. */
const BLOCKED_LOOP_MS = 200;
/** A coordinator reply at least this slow counts as Redis stalling. */
const SLOW_REPLY_MS = 200;

/**
 * Says why a run's lease could not be renewed in time, so that the warning names the real cause:
 * Redis slow to answer (stalled, paused, overloaded: nothing to change in the app) or this
 * process's event loop blocked (a handler computing without yielding: let it yield, or raise
 * `lockTtl`). It watches the event loop's delay (`monitorEventLoopDelay`) and how long the lease
 * calls (extend, finish) took, over the last two `lockTtl`s.
 */
export class LeaseDiagnosis {
  private histogram?: IntervalHistogram;
  private readonly loopDelays: { at: number; ms: number }[] = [];
  private readonly replies: { at: number; ms: number }[] = [];
  private readonly inFlight = new Set<{ sentAt: number }>();
  private lastTickAt: number | null = null;

  constructor(
    private readonly windowMs: number,
    /** How often `tick` is called while runs hold leases: a tick that comes later was held up by the loop. */
    private readonly tickIntervalMs: number,
  ) {}

  /** Starts watching the event loop when the lease ticks start; idempotent. */
  watch(): void {
    this.lastTickAt = performance.now();
    if (this.histogram) return;
    this.histogram = monitorEventLoopDelay({ resolution: 20 });
    this.histogram.enable();
  }

  unwatch(): void {
    this.lastTickAt = null;
    this.histogram?.disable();
    this.histogram = undefined;
  }

  /** Times a lease call to the coordinator. */
  async timed<T>(call: () => Promise<T>): Promise<T> {
    const call$ = { sentAt: performance.now() };
    this.inFlight.add(call$);
    try {
      return await call();
    } finally {
      this.inFlight.delete(call$);
      this.record(this.replies, performance.now() - call$.sentAt);
    }
  }

  /** The cause, in the words of a log line. */
  explain(): string {
    const loop = Math.round(this.longestLoopDelayMs());
    const now = performance.now();
    const pending = [...this.inFlight].map((call) => now - call.sentAt);
    const redis = Math.round(Math.max(0, ...pending, ...this.recent(this.replies).map((reply) => reply.ms)));
    if (loop >= BLOCKED_LOOP_MS && loop * 2 >= redis) {
      return `this process's event loop was blocked for up to ${loop} ms (a handler computing without yielding?): let handlers yield, or raise lockTtl`;
    }
    if (redis >= SLOW_REPLY_MS) {
      return `Redis took ${redis} ms to answer (it stalled, was paused or is overloaded); this process's event loop was not blocked (longest delay ${loop} ms)`;
    }
    return `Redis could not be reached to renew it; this process's event loop was not blocked (longest delay ${loop} ms)`;
  }

  /**
   * Keeps the loop's longest delay since the last tick. Called on every lease tick, so that what
   * is judged is the window, not the whole life of the process.
   */
  tick(): void {
    const now = performance.now();
    // The histogram's own timer may run after this one in the turn that ends a block: the
    // lateness of this tick measures the block as well.
    if (this.lastTickAt !== null) this.record(this.loopDelays, Math.max(0, now - this.lastTickAt - this.tickIntervalMs));
    this.lastTickAt = now;
    if (!this.histogram) return;
    this.record(this.loopDelays, this.histogram.max / 1e6);
    this.histogram.reset();
  }

  private longestLoopDelayMs(): number {
    if (this.histogram) {
      this.record(this.loopDelays, this.histogram.max / 1e6);
      this.histogram.reset();
    }
    return Math.max(0, ...this.recent(this.loopDelays).map((sample) => sample.ms));
  }

  private record(samples: { at: number; ms: number }[], ms: number): void {
    samples.push({ at: performance.now(), ms });
    this.recent(samples);
  }

  /** Drops samples older than the window; answers the others. */
  private recent(samples: { at: number; ms: number }[]): { at: number; ms: number }[] {
    const since = performance.now() - this.windowMs;
    while (samples.length > 0 && samples[0].at < since) samples.shift();
    return samples;
  }
}
