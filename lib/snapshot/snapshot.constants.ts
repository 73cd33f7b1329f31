/** The built-in job that writes the periodic snapshot (once across the cluster, as any job). */
export const SNAPSHOT_JOB_NAME = 'dsched.snapshot';

/** Defaults of the `snapshot` option. */
export const DEFAULT_SNAPSHOT_EVERY_MS = 30_000;
export const MIN_SNAPSHOT_EVERY_MS = 1_000;
export const DEFAULT_SNAPSHOT_MAX_CHANGES = 100;
export const MAX_SNAPSHOT_MAX_CHANGES = 1_000_000;
export const DEFAULT_SNAPSHOT_KEEP = 5;
export const MAX_SNAPSHOT_KEEP = 100;

/** The table of the database store (a migration of its own per database). */
export const SNAPSHOT_TABLE = 'dsched_snapshot';

/** Injection token of the database store, provided by the records' providers when `records` is on. */
export const SNAPSHOT_DATABASE_STORE = Symbol('SNAPSHOT_DATABASE_STORE');

/** How long a read of the store may hold the first synchronization before the app starts from code. */
export const SNAPSHOT_READ_TIMEOUT_MS = 5_000;
/** A failed save is tried again after 1 s, doubling up to `every`. */
export const SNAPSHOT_RETRY_MIN_MS = 1_000;
/** How long a manual or on-change snapshot trigger id is remembered (one snapshot per id across replicas). */
export const SNAPSHOT_TRIGGER_ID_TTL_MS = 10 * 60_000;
