import type { TaskStatus } from './execution.constants';
import type { JsonObject } from './execution.entity';

/** The unit that runs: one run of a job handler, belonging to an execution. */
export class Task {
  id!: number;
  vendorType!: string;
  executionId!: number;
  /** The `@DistributedJob` this task runs. */
  jobName!: string;
  /** What the handler receives as `ctx.parameters`. */
  parameters!: JsonObject;
  status!: TaskStatus;
  statusMessage!: string | null;
  /** How many attempts have started. */
  runCount!: number;
  /** A unique id of the task's job, for callers that correlate by it (`getLogByJobId`). */
  jobId!: string;
  extraAttrs!: JsonObject;
  creationTime!: Date;
  startTime!: Date | null;
  updateTime!: Date;
  endTime!: Date | null;
  /** Orders status changes: a change older than the recorded one is dropped. */
  statusRevision!: number;
  /** The fencing token of the attempt that owns the task; changes from older attempts are rejected. */
  fencingToken!: number;
  /**
   * The last checkpoint a run of this task wrote (`ctx.checkpoint`) that Redis took, read back
   * from its JSON: null if none was recorded (or the state itself was null: see
   * `checkpointSavedAt`). Written after each flush Redis took, never by a run it refused.
   * Typed `any` as `JsonObject`'s members are: `unknown` or a recursive JSON type break TypeORM's
   * partial-entity types.
   */
  checkpointState!: any;
  /** When the run called `ctx.checkpoint` with `checkpointState` (coordinator's clock); null for none. */
  checkpointSavedAt!: Date | null;
}
