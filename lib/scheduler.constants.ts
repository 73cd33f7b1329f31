/** Metadata key under which `@DistributedJob` stores its options on a method. */
export const DISTRIBUTED_JOB_METADATA = 'nestjs-distributed-scheduler:job';

/** Injection token of the options after defaults are applied (see `scheduler.providers.ts`). */
export const RESOLVED_SCHEDULER_OPTIONS = Symbol('RESOLVED_SCHEDULER_OPTIONS');

export const DEFAULT_KEY_PREFIX = 'dsched';
export const DEFAULT_LOCK_TTL_MS = 30_000;
export const DEFAULT_SHUTDOWN_TIMEOUT_MS = 10_000;

/**
 * How often a replica asks Redis whether a job changed while it could not hear about it
 * (a lost pub/sub message). One `GET` per interval per replica, whatever the number of jobs.
 */
export const DEFAULT_RESYNC_INTERVAL_MS = 5_000;
