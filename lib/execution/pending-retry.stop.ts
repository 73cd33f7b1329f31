import { randomUUID } from 'node:crypto';
import type { EntityManager } from 'typeorm';
import type { Coordinator, JobRecord } from '../coordination/coordinator.interface';
import { Execution } from './execution.entity';
import type { Task } from './task.entity';

/**
 * Stops a task between two attempts: its last attempt failed (Error) and its next one waits in
 * the coordinator as a pending retry (see ARCHITECTURE, "Retries"). The retry is removed, so no
 * next attempt runs; the task keeps its last attempt's Error. A retry claimed just before (its
 * attempt is starting) is a lease continuing the task: that run is stopped instead. True if there
 * was a next attempt to stop.
 *
 * A dispatched task's retries name the task; a job's run's retries name its first attempt's
 * fencing token, which its execution keeps.
 */
export async function stopPendingRetry(coordinator: Coordinator, manager: EntityManager, task: Pick<Task, 'id' | 'jobName' | 'executionId' | 'fencingToken'>): Promise<boolean> {
  const execution = await manager.findOne(Execution, { where: { id: task.executionId }, select: { id: true, jobName: true, fencingToken: true } });
  const firstFencingToken = execution?.jobName === task.jobName && execution.fencingToken !== null ? Number(execution.fencingToken) : undefined;
  let removed = await coordinator.cancelRetries(task.jobName, { taskId: task.id });
  if (firstFencingToken !== undefined) removed += await coordinator.cancelRetries(task.jobName, { firstFencingToken });
  if (removed > 0) return true;
  const [record] = await coordinator.describe([task.jobName]).catch((): JobRecord[] => []);
  const next = record?.running.find(
    (lease) => lease.fencingToken > task.fencingToken && (lease.taskId === task.id || (firstFencingToken !== undefined && lease.firstFencingToken === firstFencingToken)),
  );
  return next !== undefined && coordinator.stop(task.jobName, next.fencingToken, randomUUID());
}
