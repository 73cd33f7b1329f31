import type { Task } from '../../lib/records';

/** The fields of a Pending task of `executionId` that no replica runs, to insert as it is. */
export function pendingTask(executionId: number): Partial<Task> {
  const now = new Date();
  return {
    vendorType: 'revisions',
    executionId,
    jobName: 'unit',
    parameters: {},
    status: 'Pending',
    statusMessage: null,
    runCount: 0,
    jobId: `job-${executionId}-${Math.random()}`,
    extraAttrs: {},
    creationTime: now,
    startTime: null,
    updateTime: now,
    endTime: null,
    statusRevision: 0,
    fencingToken: 0,
  };
}

/** Polls the database until `condition` holds: for state no event announces. */
export async function waitUntil(condition: () => Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error('Timed out waiting for a condition');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
