import type { ExecutionStatus } from './execution.constants';
import type { ExecutionMetrics } from './execution.entity';

/**
 * An execution's status from its tasks' statuses, as Harbor derives it: any task pending or
 * running → Running; else any error → Error; else any stopped → Stopped; else Success.
 */
export function deriveExecutionStatus(counts: Partial<Record<ExecutionStatus, number>>): { status: ExecutionStatus; metrics: ExecutionMetrics } {
  const count = (status: ExecutionStatus) => counts[status] ?? 0;
  const metrics: ExecutionMetrics = {
    taskCount: Object.values(counts).reduce<number>((sum, n) => sum + (n ?? 0), 0),
    pendingTaskCount: count('Pending'),
    runningTaskCount: count('Running'),
    successTaskCount: count('Success'),
    errorTaskCount: count('Error'),
    stoppedTaskCount: count('Stopped'),
  };
  let status: ExecutionStatus = 'Success';
  if (metrics.pendingTaskCount + metrics.runningTaskCount > 0) status = 'Running';
  else if (metrics.errorTaskCount > 0) status = 'Error';
  else if (metrics.stoppedTaskCount > 0) status = 'Stopped';
  return { status, metrics };
}

/** The metrics of a job's run as it starts: its one task running. */
export const ONE_RUNNING_TASK: ExecutionMetrics = deriveExecutionStatus({ Running: 1 }).metrics;

/** The metrics of an execution without tasks: all zeros (never null), as Harbor shows them. */
export const NO_TASKS: ExecutionMetrics = deriveExecutionStatus({}).metrics;
