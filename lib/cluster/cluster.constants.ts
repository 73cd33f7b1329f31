/** A member not heard from for this long leaves the live set (mgmt's DefaultSessionTTL). */
export const DEFAULT_SESSION_TTL_MS = 10_000;
/** The tasks a worker runs at once unless `worker: { concurrency }` says otherwise. */
export const DEFAULT_WORKER_CONCURRENCY = 10;
/** Below this, heartbeats every third of it would flood the coordinator. */
export const MIN_SESSION_TTL_MS = 1_000;
/** Above this, a dead replica would hold its place (and its chosen jobs) for over an hour. */
export const MAX_SESSION_TTL_MS = 3_600_000;

/**
 * How long a departure (who left, when, why) is kept for the replicas that have not heard of it
 * yet. Each replica reads it at its next heartbeat, sent at once on the `members` announcement.
 */
export const DEPARTURES_KEPT_MS = 60_000;

/**
 * Members without a session entry (replicas of a version before membership) leave after this
 * long without a heartbeat, as they always did.
 */
export const LEGACY_MEMBER_TTL_MS = 15_000;

/** A label's key or value: short, printable, one line (labels are logged and sent at each heartbeat). */
export const MAX_LABEL_LENGTH = 100;
export const MAX_LABELS = 32;

/** The default heartbeat interval, and at most a third of the session TTL (as etcd's keep-alives). */
export function heartbeatInterval(sessionTtl: number, defaultInterval: number): number {
  return Math.min(defaultInterval, Math.floor(sessionTtl / 3));
}

/** Metadata key under which `@RegisterPlacementStrategy` stores a strategy's name on its class. */
export const PLACEMENT_STRATEGY_METADATA = 'nestjs-distributed-scheduler:placement-strategy';

/** A strategy's name: what `hosts.strategy` says. */
export const STRATEGY_NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$/;
