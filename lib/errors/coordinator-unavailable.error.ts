import { SchedulerError } from './scheduler.error';

/** A runtime control was called while the coordinator cannot answer (Redis down, or not started). */
export class CoordinatorUnavailableError extends SchedulerError {
  constructor(where: string, cause?: unknown) {
    super(`The scheduler cannot reach its coordinator (${where})${cause instanceof Error ? `: ${cause.message}` : ''}`);
  }
}
