import { SchedulerError } from './scheduler.error';

/**
 * Why a run's `ctx.signal` aborted; `signal.reason` is one of these. `cancelled`: a newer fire
 * replaced it (overlap `cancel-previous`); `stopped`: a caller stopped its execution or task;
 * `unchosen`: a continuous job's replica is no longer among those chosen to run it; `paused`: a
 * continuous job was paused.
 */
export type AbortCause = 'timeout' | 'cancelled' | 'stopped' | 'lease-lost' | 'shutdown' | 'unchosen' | 'paused';

/** The `signal.reason` of an aborted run. */
export class JobAbortedError extends SchedulerError {
  constructor(
    readonly job: string,
    readonly kind: AbortCause,
    detail: string,
  ) {
    super(`Job "${job}" was aborted: ${detail}`);
  }
}
