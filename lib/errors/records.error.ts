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
    super(`${what}: execution(s) ${executionIds.slice(0, 10).join(', ')}${executionIds.length > 10 ? ', ...' : ''} are not final yet; stop them or wait for them to end.`);
  }
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
