import type { CoordinatorClock } from './coordinator-clock';

/**
 * A run whose lease was not renewed by this fraction of the validity it had left gives it up:
 * the rest is the margin for the abort to reach the handler before Redis can hand the job on.
 */
export const LEASE_SAFETY_FRACTION = 0.9;

/** When a lease known at `knownAt` to be valid until `expiresAt` must be given up, unless renewed (same clock). */
export function leaseGiveUpTime(knownAt: number, expiresAt: number): number {
  return knownAt + LEASE_SAFETY_FRACTION * Math.max(0, expiresAt - knownAt);
}

/**
 * The deadline of one run's lease, on a timer of its own: it fires at 90% of the validity the
 * lease had left when last heard of, whether or not an extension is due by then, and whatever the
 * lease's age (an adopted lease may have little left). Times are on the coordinator's clock,
 * which is where the lease expires; the timer waits until the earliest local time that clock can
 * reach the deadline.
 */
export class LeaseTimer {
  private timer?: NodeJS.Timeout;
  /** The local time the lease is given up at, unless renewed first. */
  private giveUpAt = Infinity;

  constructor(
    private readonly clock: CoordinatorClock,
    private readonly onGiveUp: () => void,
  ) {}

  /** The lease was valid until `expiresAt` as of `knownAt` (both on the coordinator's clock). */
  renew(knownAt: number, expiresAt: number): void {
    this.clear();
    const giveUpAt = this.clock.localTimeAt(leaseGiveUpTime(knownAt, expiresAt));
    this.giveUpAt = giveUpAt;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.onGiveUp();
    }, Math.max(0, giveUpAt - Date.now()));
    this.timer.unref();
  }

  /**
   * True once the lease is past its give-up time. The timer says so only on a later turn of the
   * event loop: a process that was stopped (SIGSTOP, a long pause) reads a claim reply and runs
   * what follows before its timers, so a run about to start asks here first.
   */
  expired(): boolean {
    return Date.now() >= this.giveUpAt;
  }

  clear(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }
}
