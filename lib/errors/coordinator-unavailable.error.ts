import { SchedulerError } from './scheduler.error';

/**
 * A runtime control was called while the coordinator cannot answer (Redis down, or not started).
 * A call sent just before the connection dropped may have been applied (only its reply was
 * lost), so the message does not promise that nothing changed.
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
        'If the call reached it before the connection dropped, it may have taken effect: `describe()` tells, ' +
        'once it is reachable again, before you repeat it.',
      { cause },
    );
  }
}
