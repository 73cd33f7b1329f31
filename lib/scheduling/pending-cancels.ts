/** How long a cancel for a run not yet known here is kept, waiting for the claim reply that names it. */
export const PENDING_CANCEL_MS = 60_000;
/** At most this many are kept: beyond it the oldest is dropped (its run would have been known long ago). */
const MAX_PENDING_CANCELS = 10_000;

export type CancelReason = 'replaced' | 'stopped';

/**
 * Cancels (`cancel-previous`, `stop`) of runs this replica has not heard of yet. They travel on the
 * subscriber connection and can overtake the claim reply that names the run (a slow reply, a
 * claim resent after a timeout): kept for a while, they are applied when that run starts, so a
 * revoked run never runs its handler.
 */
export class PendingCancels {
  private readonly cancels = new Map<string, { reason: CancelReason; until: number }>();

  add(key: string, reason: CancelReason, now = Date.now()): void {
    this.cancels.delete(key);
    this.cancels.set(key, { reason, until: now + PENDING_CANCEL_MS });
    for (const [oldest, { until }] of this.cancels) {
      if (this.cancels.size <= MAX_PENDING_CANCELS && until > now) break;
      this.cancels.delete(oldest);
    }
  }

  /** The cancel waiting for this run, if any; it is consumed. */
  take(key: string, now = Date.now()): CancelReason | undefined {
    const cancel = this.cancels.get(key);
    if (!cancel) return undefined;
    this.cancels.delete(key);
    return cancel.until > now ? cancel.reason : undefined;
  }
}
