import { SchedulerError } from './scheduler.error';

/** An execution or task id that is not in the records. */
export class RecordNotFoundError extends SchedulerError {
  constructor(
    readonly kind: 'execution' | 'task',
    readonly id: number | string,
  ) {
    super(`No ${kind} has the id ${JSON.stringify(id)}.`);
  }
}

/** `deleteByVendor` or `delete` met executions that are still going. */
export class ExecutionNotFinalError extends SchedulerError {
  constructor(
    readonly executionIds: number[],
    what: string,
  ) {
    super(`${what}: ${notEndedYet(executionIds)}; stop ${executionIds.length === 1 ? 'it' : 'them'} or wait for ${executionIds.length === 1 ? 'it' : 'them'} to end.`);
  }
}

/** "execution 11 has not ended yet", "executions 11, 12 have not ended yet": the first ten ids. */
function notEndedYet(ids: number[]): string {
  if (ids.length === 1) return `execution ${ids[0]} has not ended yet`;
  const listed = ids.length > 10 ? `${ids.slice(0, 10).join(', ')} and ${ids.length - 10} more` : ids.join(', ');
  return `executions ${listed} have not ended yet`;
}

/** `stopAndWait` ran out of time before every task of the execution had stopped. */
export class StopTimeoutError extends SchedulerError {
  constructor(
    readonly executionId: number,
    readonly timeoutMs: number,
  ) {
    super(`Execution ${executionId} did not stop within ${timeoutMs} ms.`);
  }
}
