import { SchedulerError } from './scheduler.error';

/** A `@DistributedJob` on a request-scoped provider, which has no instance outside a request. */
export class RequestScopedJobError extends SchedulerError {
  constructor(
    readonly job: string,
    className: string,
  ) {
    super(
      `Job "${job}": ${className} is request-scoped (or depends on a request-scoped provider), ` +
        'so there is no instance to run the job on. Move the method to a singleton provider.',
    );
  }
}
