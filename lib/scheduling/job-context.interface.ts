import type { LoggerService } from '@nestjs/common';
import type { JsonValue, LastCheckpoint } from '../checkpoint/checkpoint.interface';

/** How a run came about. */
export type JobTrigger = 'SCHEDULE' | 'MANUAL' | 'EVENT';

export const JOB_TRIGGERS = {
  SCHEDULE: 'SCHEDULE',
  MANUAL: 'MANUAL',
  EVENT: 'EVENT',
} as const satisfies Record<JobTrigger, JobTrigger>;

/** The one argument a `@DistributedJob` handler is called with. */
export interface JobContext {
  /** The job's name. */
  readonly name: string;
  /** The due time this run serves (for a manual run, when it was requested). */
  readonly scheduledAt: Date;
  /** When this replica started the handler, on the clock of `scheduledAt` (Redis's), whatever this replica's own skew. */
  readonly startedAt: Date;
  readonly trigger: JobTrigger;
  /**
   * True for a catch-up run: one that serves a due time that was missed (the cluster was down,
   * Redis unreachable, or its state restored), run late by the job's `missed` policy. Its
   * `scheduledAt` is the missed due time it serves; `trigger` is `SCHEDULE`. False otherwise.
   */
  readonly catchUp: boolean;
  /**
   * Which attempt of its run this is, from 1. With `retry`, a run whose handler threw is tried
   * again as attempt 2, 3, … (each with a new `fencingToken`, the same `scheduledAt`).
   */
  readonly attempt: number;
  /**
   * Aborts when the run must stop: its `timeout`, a `cancel-previous` fire, the loss of its lock,
   * or application shutdown. `signal.reason` says which.
   */
  readonly signal: AbortSignal;
  /**
   * Strictly increases with every run of this job across the cluster. Store it with what the run
   * writes and reject writes that carry a smaller one: they come from a run that was replaced.
   */
  readonly fencingToken: number;
  /** The replica running this run. */
  readonly instanceId: string;
  /**
   * A logger whose context is the job's name. With execution records, its lines also go to the
   * task's log (`TaskManager.getLog`).
   */
  readonly logger: LoggerService;
  /**
   * With execution records: the execution and task recording this run. Null without records, or
   * while the database is unreachable (the records are written when it returns).
   */
  readonly executionId: number | null;
  readonly taskId: number | null;
  /** What `TaskManager.create` passed for this task; empty for scheduled and triggered runs. */
  readonly parameters: Readonly<Record<string, unknown>>;
  /** Sends progress to the check-in processor of the job's vendor type (`@OnCheckIn`). */
  checkIn(data: unknown): Promise<void>;
  /**
   * The job's last checkpoint written when this run started (by an earlier run, including one
   * whose replica died or lost its lease), or null if there is none. Read with the run's claim.
   */
  readonly lastCheckpoint: LastCheckpoint | null;
  /**
   * Records this run's progress. Resolves once buffered; the latest state is written to the
   * coordinator after `checkpoint.maxUpdates` calls or `checkpoint.interval` after the first call
   * not yet written, and when the run ends (also when it is aborted at shutdown). The next run
   * finds it in `lastCheckpoint`. Rejects with `InvalidCheckpointError` if the state has no JSON
   * form or its JSON exceeds 512 KB. A write fenced off by a newer run (this run was replaced) is
   * refused and logged once; the run's later checkpoints are dropped.
   */
  checkpoint(state: JsonValue): Promise<void>;
}
