import { SchedulerError } from './scheduler.error';

/** `JobScheduler.trigger` was refused: the job already has as many pending triggers as one job may have. */
export class TooManyTriggersError extends SchedulerError {
  constructor(
    readonly job: string,
    readonly pending: number,
    readonly max: number,
  ) {
    super(
      `Job "${job}": already ${pending} pending triggers, the most one job may have (${max}); this trigger was refused. ` +
        'Pending triggers run one after another as the overlap policy allows: try again once some have run.',
    );
  }
}
