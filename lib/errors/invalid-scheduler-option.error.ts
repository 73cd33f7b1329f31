import { describeValue } from './invalid-job-option.error';
import { SchedulerError } from './scheduler.error';

/** A `SchedulerModule.forRoot` option that cannot work. */
export class InvalidSchedulerOptionError extends SchedulerError {
  constructor(
    readonly option: string,
    readonly value: unknown,
    reason: string,
  ) {
    super(`SchedulerModule: option "${option}" has an invalid value ${describeValue(value)}: ${reason}`);
  }
}
