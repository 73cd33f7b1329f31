import { SchedulerError } from './scheduler.error';

/**
 * A continuous job (`@DistributedJob({ continuous })`) was asked to run once: a trigger or a task.
 * It runs on its chosen replicas for as long as they are chosen, at most `max` at once; a run
 * beside them would break that bound.
 */
export class ContinuousJobError extends SchedulerError {
  constructor(
    readonly job: string,
    readonly operation: string,
  ) {
    super(
      `Job "${job}" is a continuous job: it runs on its chosen replicas for as long as they are chosen, so ${operation} cannot run it once. ` +
        'Pause and resume it to stop and start its runs.',
    );
  }
}
