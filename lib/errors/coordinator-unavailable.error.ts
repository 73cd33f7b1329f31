import { SchedulerError } from './scheduler.error';

/**
 * A runtime control was called while the coordinator cannot answer (Redis down, or not started).
 * The message says it in plain words; the client's own error (such as ioredis's "Stream isn't
 * writeable and enableOfflineQueue options is false") is kept as `cause`.
 */
export class CoordinatorUnavailableError extends SchedulerError {
  constructor(
    readonly where: string,
    cause?: unknown,
  ) {
    super(
      `The scheduler cannot reach ${where}: it is not connected right now, and reconnects in the background. ` +
        'Nothing was changed; try again once it is reachable.',
      { cause },
    );
  }
}
