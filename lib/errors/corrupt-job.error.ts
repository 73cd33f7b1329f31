import { SchedulerError } from './scheduler.error';

/**
 * A key of a job holds what the scheduler did not write (edited by hand, or by another program
 * on the same prefix). The job is left alone, and nothing is written for it, until the key is
 * repaired or deleted; the other jobs go on.
 */
export class CorruptJobError extends SchedulerError {
  constructor(
    readonly job: string,
    /** The Redis key (or, on the embedded coordinator, the part of the job) that is corrupt. */
    readonly key: string,
    /** What is wrong with it, e.g. `its field "rev" is not a number: "x"`. */
    readonly problem: string,
  ) {
    super(
      `Job "${job}": its key "${key}" holds data the scheduler did not write: ${problem}. The job does not run until ` +
        `the key is repaired or deleted (a deleted job hash is registered again); the other jobs are not affected.`,
    );
  }
}
