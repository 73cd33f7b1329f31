/** A continuous job's default strategy: the chosen replicas stay chosen while they live (a leader stays leader). */
export const DEFAULT_CONTINUOUS_STRATEGY = 'sticky';

/**
 * How often a chosen replica asks again for a slot while all of the job's slots are held (by
 * replicas not yet told they are no longer chosen, or by a dead one whose lease has not expired).
 */
export const SLOT_RETRY_MS = 250;

/** After the coordinator failed to answer a slot request: asked again this long after. */
export const SLOT_ERROR_RETRY_MS = 1_000;

/**
 * The wait before a run that ended while its replica is still chosen (its handler returned or
 * threw, or its lease was lost) starts again: 1 s doubling to 1 min, less up to a fifth at
 * random. A run that lasted longer than `maxDelay` starts the count over.
 */
export const RESTART_BACKOFF = { delay: 1_000, factor: 2, maxDelay: 60_000, jitter: 0.2 } as const;
