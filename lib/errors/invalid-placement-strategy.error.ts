import { describeValue } from './invalid-job-option.error';
import { SchedulerError } from './scheduler.error';

/** A strategy registered under a name that cannot be used, or that cannot choose. */
export class InvalidPlacementStrategyError extends SchedulerError {
  constructor(
    readonly strategy: unknown,
    readonly source: string,
    reason: string,
  ) {
    super(`Placement strategy ${describeValue(strategy)} (${source}): ${reason}`);
  }
}
