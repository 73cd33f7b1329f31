import { SchedulerError } from './scheduler.error';

/** Two placement strategies under one name: which one a job meant would be a guess. */
export class DuplicatePlacementStrategyError extends SchedulerError {
  constructor(
    readonly strategy: string,
    first: string,
    second: string,
  ) {
    super(`Placement strategy "${strategy}" is registered twice (${first}, then ${second}); give one of them another name.`);
  }
}
