import { SchedulerError } from './scheduler.error';

/** Two `@DistributedJob` methods share one name; the cluster could not tell them apart. */
export class DuplicateJobError extends SchedulerError {
  constructor(
    readonly job: string,
    first: string,
    second: string,
  ) {
    super(
      `Job "${job}": option "name" has the value '${job}' on both ${first} and ${second}. ` +
        'Job names are unique across the app; give one of them another `name`.',
    );
  }
}
