/** Metadata key under which `@DistributedJob` stores its options on a method. */
export const DISTRIBUTED_JOB_METADATA = 'nestjs-distributed-scheduler:job';

/** Injection token of the options after defaults are applied (see `scheduler.providers.ts`). */
export const RESOLVED_SCHEDULER_OPTIONS = Symbol('RESOLVED_SCHEDULER_OPTIONS');

export const DEFAULT_KEY_PREFIX = 'dsched';
export const DEFAULT_LOCK_TTL_MS = 30_000;
export const DEFAULT_SHUTDOWN_TIMEOUT_MS = 10_000;

/**
 * How often (at most) a replica renews its membership (every third of its `sessionTtl` when shorter) and asks whether a job changed while it could not
 * hear about it (a lost pub/sub message): one script call per interval, whatever the number of jobs.
 */
export const HEARTBEAT_INTERVAL_MS = 5_000;

/**
 * How long a replica that is not a fire's preferred claimer waits before claiming it too. The
 * preferred replica has normally taken it by then, so the others' claims are cheap misses that
 * do not compete with it at the due instant; if it is dead, the fire runs this much late.
 */
export const BACKUP_CLAIM_DELAY_MS = 100;
