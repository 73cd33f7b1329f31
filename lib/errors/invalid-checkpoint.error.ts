import { SchedulerError } from './scheduler.error';

/** What a handler passed to `ctx.checkpoint` cannot be stored: not JSON, or too large. */
export class InvalidCheckpointError extends SchedulerError {
  constructor(
    readonly job: string,
    reason: string,
  ) {
    super(`Job "${job}": the checkpoint cannot be stored: ${reason}`);
  }
}
