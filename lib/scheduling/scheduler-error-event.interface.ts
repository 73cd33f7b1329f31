import type { MissedPolicy } from './missed-runs';

/** Where in the background work an error happened. */
/** `data`: a job's keys in Redis hold what the scheduler did not write (a `CorruptJobError`). */
/**
 * `missed`: not an error but a notice (its `error` is a `MissedFiresError`, its `missed` field
 * says what): due times of a job were missed, and its missed-run policy skipped some of them
 * or runs catch-up runs for them. One event per episode, not per due time.
 */
/** `recover`: looking for, or recovering, runs whose replica died (`LeaseRecovery`). */
export type SchedulerErrorPhase = 'connection' | 'register' | 'sync' | 'claim' | 'run' | 'extend' | 'finish' | 'record' | 'data' | 'missed' | 'recover';

/** What an event of phase `missed` tells: one episode of missed due times of one job. */
export interface MissedFires {
  policy: MissedPolicy;
  /** The due times found missed: how many, the first and the last. */
  count: number;
  from: Date;
  to: Date;
  /** Those of them skipped by the policy (before the window, beyond `maxCatchUp`, or all with `skip`): none has run or will. */
  skipped: number;
  /** The catch-up runs this episode starts, the first one's due time first (0 and null for none). */
  catchUpRuns: number;
  runningFrom: Date | null;
  /** False when a cron schedule had so many missed due times that they were counted only up to a bound: the counts are lower bounds. */
  exact: boolean;
}

/** One error of the background loop or of a handler, as offered by `JobScheduler.errors$`. */
export interface SchedulerErrorEvent {
  phase: SchedulerErrorPhase;
  /** The job concerned, when there is one. */
  job?: string;
  error: Error;
  at: Date;
  /** Phase `missed` only: the episode of missed due times. */
  missed?: MissedFires;
}
