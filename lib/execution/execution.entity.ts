import type { ExecutionStatus, ExecutionTrigger } from './execution.constants';

/** A JSON object of the caller's (extra attributes, task parameters). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- any JSON the caller stores
export type JsonObject = Record<string, any>;

/** Task counts of an execution, by status. */
export interface ExecutionMetrics {
  taskCount: number;
  pendingTaskCount: number;
  runningTaskCount: number;
  successTaskCount: number;
  errorTaskCount: number;
  stoppedTaskCount: number;
}

/**
 * One run of an action: one fire of a `@DistributedJob`, or what a caller created with
 * `ExecutionManager.create`. Its status sums up its tasks.
 *
 * A plain class: its table mapping lives in `schedulerEntities(database)`, so that apps without TypeORM
 * can import this library.
 */
export class Execution {
  id!: number;
  /** What kind of action this is: the job's name (or its `vendorType`), or the caller's own type. */
  vendorType!: string;
  /** Which instance of that kind, e.g. a policy's id; null when there is none. */
  vendorId!: string | null;
  status!: ExecutionStatus;
  /** Why the execution has its status, e.g. the error of a failed run. */
  statusMessage!: string | null;
  metrics!: ExecutionMetrics | null;
  trigger!: ExecutionTrigger;
  extraAttrs!: JsonObject;
  startTime!: Date;
  updateTime!: Date;
  endTime!: Date | null;
  /** For runs of a `@DistributedJob`: the job's name. */
  jobName!: string | null;
  /** For runs of a `@DistributedJob`: the due time (or request time) the run serves. */
  scheduledAt!: Date | null;
  /** For SCHEDULE runs only: their due time, unique per job, so one due time is never recorded twice. */
  dueAt!: Date | null;
  /** For runs of a `@DistributedJob`: the run's fencing token. */
  fencingToken!: number | null;
}
