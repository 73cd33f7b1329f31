import { SchedulerError } from './scheduler.error';

/**
 * Not a failure: the `error` of an `errors$` event of phase `missed`, which says that due times of
 * a job were missed (nobody could serve them) and what its missed-run policy made of them. Its
 * message is the warning logged once per episode; the event's `missed` field has the numbers.
 */
export class MissedFiresError extends SchedulerError {
  constructor(
    readonly job: string,
    message: string,
  ) {
    super(message);
  }
}
