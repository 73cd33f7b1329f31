/** The most attempts a run may have: beyond it a failing job would only keep failing. */
export const MAX_RETRY_ATTEMPTS = 100;
/** The longest wait between two attempts (a day): a retry waits in the coordinator, not in a timer. */
export const MAX_RETRY_DELAY_MS = 24 * 3_600_000;
/** A factor above this reaches `maxDelay` within a few attempts anyway. */
export const MAX_RETRY_FACTOR = 100;

/**
 * How long a lease that expired without a finish is kept for its recovery (`RECOVERY_GRACE_MS` in
 * common.lua: the same value). Within it only a replica with the job recovers it (it knows the
 * job's retry policy); past it, any replica drops what is left of it, counted as abandoned.
 */
export const RECOVERY_GRACE_MS = 60_000;

export const DEFAULT_RETRY_ATTEMPTS = 1;
export const DEFAULT_RETRY_DELAY_MS = 1_000;
export const DEFAULT_RETRY_FACTOR = 2;
export const DEFAULT_RETRY_MAX_DELAY_MS = 3_600_000;
export const DEFAULT_RETRY_JITTER = 0;
