import { SchedulerError } from './scheduler.error';

/** A runtime control named a job that no replica has registered. */
export class UnknownJobError extends SchedulerError {
  constructor(readonly job: string) {
    super(`No job is named "${job}". Names come from @DistributedJob({ name }) or default to ClassName.methodName.`);
  }
}
