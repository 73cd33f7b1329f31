import type { RunStatus } from '../coordination/coordinator.interface';
import type { OverlapPolicy } from './distributed-job-options.interface';
import type { JobTrigger } from './job-context.interface';

/** A job's schedule as it is in force across the cluster. */
export interface JobSchedule {
  cron?: string;
  timeZone?: string;
  /** Period in ms. */
  every?: number;
  jitter: number;
}

export interface JobRunInfo {
  fencingToken: number;
  instanceId: string;
  trigger: JobTrigger;
  scheduledAt: Date;
  startedAt: Date;
  /** A catch-up run: it serves a missed due time (`scheduledAt`). */
  catchUp: boolean;
  /** Which attempt of its run (1 unless retried: `retry`). */
  attempt: number;
}

/** A failed run's next attempt, waiting in the coordinator for its time (`retry`). */
export interface JobPendingRetry {
  /** The attempt it starts (2 for the first retry). */
  attempt: number;
  /** The due time (or request time) the run serves; every attempt serves the same. */
  scheduledAt: Date;
  /** Claimed by any replica with the job from this time on (coordinator's clock). */
  notBefore: Date;
  trigger: JobTrigger;
  /** The fencing token of the run's first attempt. */
  firstFencingToken: number;
  /** For a task's retry (`TaskManager.create`): the task; null for a job's run. */
  taskId: number | null;
}

export interface JobLastRun extends JobRunInfo {
  finishedAt: Date | null;
  status: RunStatus;
  error: string | null;
}

/** A continuous job's cap and the replicas holding its slots now. */
export interface JobContinuous {
  /** At most this many runs at once (`continuous.max` of the definition in force). */
  max: number;
  /** The live slot leases: which instance runs it, with which fencing token, since when. */
  holders: { instanceId: string; fencingToken: number; since: Date }[];
}

/** What `JobScheduler.describe` and `list` tell of a job, cluster-wide. */
export interface JobDescription {
  name: string;
  /** Null for an on-demand job. */
  schedule: JobSchedule | null;
  /** True when `updateSchedule` replaced the schedule of the code definition. */
  scheduleOverridden: boolean;
  overlap: OverlapPolicy;
  paused: boolean;
  nextRunAt: Date | null;
  running: JobRunInfo[];
  locked: { by: string; until: Date | null } | null;
  /** Pending triggers, pending retries included. */
  pendingTriggers: number;
  /** Failed runs' next attempts, the soonest first. */
  pendingRetries: JobPendingRetry[];
  lastRun: JobLastRun | null;
  /** Scheduled fires skipped for being claimed later than the job's `threshold`, cluster-wide. */
  skippedLate: number;
  /** Missed due times skipped by the job's `missed` policy (before the window, beyond `maxCatchUp`, or all with `skip`), cluster-wide. */
  skippedMissed: number;
  /** Catch-up runs started for missed due times, cluster-wide. */
  catchUpRuns: number;
  /**
   * Runs whose replica died (their lease expired without a finish: killed, paused past `lockTtl`,
   * cut off) that a new attempt recovered on another replica, cluster-wide (see `retry`).
   */
  recoveredRuns: number;
  /**
   * Runs whose replica died with no attempt left to recover them (`retry.attempts` used up; a job
   * without `retry` has 1): they are not run again, and their last run says `abandoned`.
   */
  abandonedRuns: number;
  /** For a continuous job, its cap and current holders; null for a job that fires. */
  continuous: JobContinuous | null;
  /** The replica whose code definition is in force, and when it registered it. */
  definedBy: string;
  definedAt: Date;
}

/**
 * The schedule to put in force with `JobScheduler.updateSchedule`. Fields not given keep the value
 * in force: `{ every }` keeps the jitter, `{ cron }` keeps a cron schedule's time zone, `{ jitter }`
 * alone changes only the jitter. `cron` and `every` replace each other.
 */
export interface ScheduleUpdate {
  cron?: string;
  timeZone?: string;
  every?: number | string;
  jitter?: number;
}
