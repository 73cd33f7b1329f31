/** Where in the background work an error happened. */
/** `data`: a job's keys in Redis hold what the scheduler did not write (a `CorruptJobError`). */
export type SchedulerErrorPhase = 'connection' | 'register' | 'sync' | 'claim' | 'run' | 'extend' | 'finish' | 'record' | 'data';

/** One error of the background loop or of a handler, as offered by `JobScheduler.errors$`. */
export interface SchedulerErrorEvent {
  phase: SchedulerErrorPhase;
  /** The job concerned, when there is one. */
  job?: string;
  error: Error;
  at: Date;
}
