import type { ClaimResult } from './coordinator.interface';

/**
 * A claim of many fires is sent in batches; when a later batch fails, the earlier ones have
 * already claimed (and written leases). This error carries their results, so the caller runs
 * what it won instead of throwing it away with the failure.
 */
export class ClaimInterruptedError extends Error {
  constructor(
    /** Results of the first `settled.length` requests, in order. */
    readonly settled: ClaimResult[],
    override readonly cause: unknown,
  ) {
    super(`claim failed after ${settled.length} request(s) had been answered: ${cause instanceof Error ? cause.message : String(cause)}`);
    this.name = 'ClaimInterruptedError';
  }
}
