import type { LoggerService } from '@nestjs/common';
import type { JobTrigger } from './job-context.interface';
import type { RunOutcome } from './job.runner';
import type { LocalJob } from './job.registry';

/** A run about to start, as the orchestrator knows it. */
export interface RunStart {
  job: LocalJob;
  trigger: JobTrigger;
  scheduledAt: Date;
  startedAt: Date;
  fencingToken: number;
  instanceId: string;
  /** Set for a run of a task created with `TaskManager.create`. */
  taskId?: number;
  /** True for a run serving a missed due time (recorded in the execution's `extraAttrs.catchUp`). */
  catchUp?: boolean;
  /**
   * A retry (`attempt` 2 or more): the fencing token of the run's first attempt, whose records
   * this attempt continues (the same execution and task, its `runCount` one more).
   */
  attempt?: number;
  firstFencingToken?: number;
}

/** What the records give a run: its ids, parameters, logger and check-in, and its end. */
export interface RunRecord {
  executionId: number | null;
  taskId: number | null;
  trigger: JobTrigger;
  parameters: Readonly<Record<string, unknown>>;
  logger: LoggerService;
  checkIn(data: unknown): Promise<void>;
  /**
   * A flush of the run's checkpoints that the coordinator took (`saved`): its state's JSON and its
   * `savedAt` (epoch ms, coordinator's clock), in flush order. Records them on the run's task;
   * returns at once, never throws (the write does not hold or fail the handler).
   */
  checkpointSaved(state: string, savedAt: number): void;
  /** Records the outcome; resolves once written or queued for retry, never rejects. */
  finish(outcome: RunOutcome): Promise<void>;
}

/**
 * `RunRecorder.start` of a task whose records did not answer in time: the task's parameters are in
 * them, so it cannot run. Its attempt fails (and is retried as its job's `retry` says), rather
 * than being dropped as a run its records refused.
 */
export class RecordsLateError extends Error {}

/**
 * The seam between scheduling and the execution records. Without records (`NoRunRecords`) every
 * run starts; with them, a run whose due time is already recorded, or whose task belongs to a
 * newer attempt or was stopped, does not (`start` resolves null); a task whose records are late
 * fails its attempt (`start` rejects with `RecordsLateError`).
 */
export abstract class RunRecorder {
  abstract start(run: RunStart): Promise<RunRecord | null>;
  /** Waits (up to the deadline) for writes still queued, at shutdown. */
  abstract drain(deadline: number): Promise<void>;
}
