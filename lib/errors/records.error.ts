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

/**
 * `deleteByVendor` or `delete` met executions that are still going: not final, or final (by
 * `markError`, say) while some of their tasks, listed in `taskIds`, still run or wait to.
 */
export class ExecutionNotFinalError extends SchedulerError {
  constructor(
    readonly executionIds: number[],
    what: string,
    readonly taskIds: number[] = [],
  ) {
    const them = executionIds.length === 1 ? 'it' : 'them';
    super(`${what}: ${notEndedYet(executionIds)}${taskIds.length > 0 ? ` (${tasksOpen(taskIds)})` : ''}; stop ${them} or wait for ${them} to end.`);
  }
}

/** "task 7 is still Pending or Running", "tasks 7, 8 are still ...": the first ten ids. */
function tasksOpen(ids: number[]): string {
  if (ids.length === 1) return `task ${ids[0]} is still Pending or Running`;
  return `tasks ${firstTen(ids)} are still Pending or Running`;
}

function firstTen(ids: number[]): string {
  return ids.length > 10 ? `${ids.slice(0, 10).join(', ')} and ${ids.length - 10} more` : ids.join(', ');
}

/** "execution 11 has not ended yet", "executions 11, 12 have not ended yet": the first ten ids. */
function notEndedYet(ids: number[]): string {
  if (ids.length === 1) return `execution ${ids[0]} has not ended yet`;
  return `executions ${firstTen(ids)} have not ended yet`;
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
