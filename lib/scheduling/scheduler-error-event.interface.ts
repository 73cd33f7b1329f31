/** Where in the background work an error happened. */
export type SchedulerErrorPhase = 'connection' | 'register' | 'sync' | 'claim' | 'run' | 'extend' | 'finish' | 'record';

/** One error of the background loop or of a handler, as offered by `JobScheduler.errors$`. */
export interface SchedulerErrorEvent {
  phase: SchedulerErrorPhase;
  /** The job concerned, when there is one. */
  job?: string;
  error: Error;
  at: Date;
}
