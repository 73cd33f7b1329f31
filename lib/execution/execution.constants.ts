import { JOB_TRIGGERS } from '../scheduling/job-context.interface';
import type { JobTrigger } from '../scheduling/job-context.interface';

/** The databases the records support, as named by `records.database` and `schedulerMigrations()`. */
export type RecordsDatabase = 'postgres' | 'mysql' | 'sqlite';
export const RECORDS_DATABASES: readonly RecordsDatabase[] = ['postgres', 'mysql', 'sqlite'];

/** How an execution came about: the same values as a run's `ctx.trigger`. */
export type ExecutionTrigger = JobTrigger;
export const EXECUTION_TRIGGERS = JOB_TRIGGERS;

/** The statuses of a task, and of the execution that sums its tasks up. */
export type ExecutionStatus = 'Pending' | 'Running' | 'Stopped' | 'Error' | 'Success';
export type TaskStatus = ExecutionStatus;

export const EXECUTION_STATUS = {
  PENDING: 'Pending',
  RUNNING: 'Running',
  STOPPED: 'Stopped',
  ERROR: 'Error',
  SUCCESS: 'Success',
} as const satisfies Record<string, ExecutionStatus>;
export const TASK_STATUS = EXECUTION_STATUS;

export const FINAL_STATUSES: readonly ExecutionStatus[] = ['Stopped', 'Error', 'Success'];

/** The statuses of a task (or execution) that has not ended. */
export const OPEN_STATUSES: readonly ExecutionStatus[] = ['Pending', 'Running'];

export function isFinalStatus(status: string): boolean {
  return (FINAL_STATUSES as readonly string[]).includes(status);
}

/**
 * Order of a status within one attempt of a task: a change to a lower rank never overwrites a
 * higher one (a late "Running" cannot undo "Success").
 */
export function statusRank(status: string): number {
  return status === 'Pending' ? 0 : status === 'Running' ? 1 : 2;
}

/** Injection token of the TypeORM DataSource that holds the records. */
export const RECORDS_DATA_SOURCE = Symbol('RECORDS_DATA_SOURCE');
/** Injection token of the records options after defaults are applied. */
export const RESOLVED_RECORDS_OPTIONS = Symbol('RESOLVED_RECORDS_OPTIONS');

/** Table names; fixed so that the shipped migrations and `synchronize` agree. */
export const EXECUTION_TABLE = 'dsched_execution';
export const TASK_TABLE = 'dsched_task';
export const TASK_LOG_TABLE = 'dsched_task_log';

export const DEFAULT_RETAIN_COUNT = 50;
export const DEFAULT_SWEEP_EVERY = '1h';
export const SWEEP_JOB_NAME = 'dsched.sweep';
export const DEFAULT_LOG_MAX_BYTES = 32_768;
/** MySQL's TEXT holds 65,535 bytes; a log stays below it on every database. */
export const MAX_LOG_MAX_BYTES = 65_000;
/** An execution left Pending without tasks for this long is considered abandoned by its creator. */
export const DEFAULT_DANGLING_PENDING_MS = 10 * 60_000;
