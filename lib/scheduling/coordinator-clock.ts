/** How many recent samples the offset is estimated from. */
const SAMPLES = 20;

/**
 * This replica's estimate of the coordinator's clock, so that it wakes on Redis's time and
 * computes next fires from it: a skewed clock neither claims too early nor skips fires.
 *
 * Each claim reply says when Redis started it; `startedAt - sentAt` is the offset plus the time
 * the request spent travelling and queueing, so the smallest of the recent samples is the closest
 * to the offset (as NTP keeps its least-delayed samples).
 */
export class CoordinatorClock {
  private offset = 0;
  private readonly samples: number[] = [];

  /** `coordinatorTime` was read by the coordinator while serving a request sent at `sentAt`. */
  learn(coordinatorTime: number, sentAt: number): void {
    this.samples.push(coordinatorTime - sentAt);
    if (this.samples.length > SAMPLES) this.samples.shift();
    this.offset = Math.min(...this.samples);
  }

  now(): number {
    return Date.now() + this.offset;
  }
}
