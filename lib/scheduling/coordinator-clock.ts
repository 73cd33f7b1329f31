/** How many recent samples the offset is estimated from. */
const SAMPLES = 20;
/** Redis's `TIME` is read in whole milliseconds (truncated), so any reading may be up to this much behind. */
const READING_RESOLUTION_MS = 1;

interface Sample {
  /** Coordinator time minus local time, assuming the reading was taken halfway through the round trip. */
  offset: number;
  roundTrip: number;
}

/**
 * This replica's estimate of the coordinator's clock, so that it wakes on Redis's time and
 * computes due times from it: a skewed clock neither claims too early nor skips fires.
 *
 * Every reply that carries the coordinator's time (heartbeat, snapshot, claim, describe) is a
 * sample: the reading was taken somewhere between sending and receiving, so the offset is known
 * within half the round trip. The sample with the shortest round trip among the recent ones is
 * the closest (as NTP keeps its least-delayed samples), and its half round trip bounds the error.
 *
 * Nothing may be scheduled from it before the first sample: `known` says when that is.
 */
export class CoordinatorClock {
  private readonly samples: Sample[] = [];
  private best: Sample | null;
  private readonly exact: boolean;
  private readonly waiters: (() => void)[] = [];

  /**
   * `exact`: the coordinator reads this process's own clock (the embedded coordinator), so the
   * offset is zero and known from the start.
   */
  constructor(
    exact = false,
    private readonly localNow: () => number = () => Date.now(),
  ) {
    this.exact = exact;
    this.best = exact ? { offset: 0, roundTrip: 0 } : null;
  }

  /** True once a reply has told this replica how far its clock is from the coordinator's. */
  get known(): boolean {
    return this.best !== null;
  }

  /** Resolves once the offset is known. */
  whenKnown(): Promise<void> {
    return this.known ? Promise.resolve() : new Promise((resolve) => this.waiters.push(resolve));
  }

  /** `coordinatorTime` was read by the coordinator while serving a request sent at `sentAt` and answered at `receivedAt` (local clock). */
  learn(coordinatorTime: number, sentAt: number, receivedAt: number = this.localNow()): void {
    if (this.exact || !Number.isFinite(coordinatorTime) || receivedAt < sentAt) return;
    const roundTrip = receivedAt - sentAt;
    // Whole milliseconds: due times are stored and compared as integers.
    this.samples.push({ offset: Math.round(coordinatorTime - (sentAt + roundTrip / 2)), roundTrip });
    if (this.samples.length > SAMPLES) this.samples.shift();
    this.best = this.samples.reduce((best, sample) => (sample.roundTrip < best.roundTrip ? sample : best));
    this.waiters.splice(0).forEach((resolve) => resolve());
  }

  /** Now, by the coordinator's clock as far as this replica can tell (its local clock until `known`). */
  now(): number {
    return this.localNow() + (this.best?.offset ?? 0);
  }

  /**
   * The latest the coordinator's clock can read now. A due time computed after it is after every
   * due time the coordinator has served so far (it serves none before its own clock reaches it).
   */
  latest(): number {
    return this.now() + this.uncertainty();
  }

  /** The local time at which the coordinator's clock reaches `coordinatorTime`, at the earliest. */
  localTimeAt(coordinatorTime: number): number {
    return coordinatorTime - (this.best?.offset ?? 0) - this.uncertainty();
  }

  /** How far the estimate may be from the coordinator's clock, either way. */
  private uncertainty(): number {
    if (this.exact || !this.best) return 0;
    return Math.ceil(this.best.roundTrip / 2) + READING_RESOLUTION_MS;
  }
}
