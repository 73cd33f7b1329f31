import { ClaimResult, Coordinator } from '../../lib/coordination/coordinator.interface';
import { taskTriggerId } from '../../lib/dispatch/task-trigger-id';

export type TaskLease = Extract<ClaimResult, { status: 'claimed' }>;

/**
 * Takes a task's lease the way the library does (ARCHITECTURE, "Task dispatch"): the task is
 * dispatched as a pending trigger of its job, then `instanceId` claims that trigger. Throws if
 * the job is unknown or the claim is not won, so a test never goes on without its lease.
 */
export async function leaseTask(coordinator: Coordinator, name: string, instanceId: string, lockTtl: number, taskId: number): Promise<TaskLease> {
  const [dispatched] = await coordinator.dispatchTasks([{ name, taskId }]);
  if (!dispatched) throw new Error(`Task ${taskId} of job "${name}" was not dispatched: the coordinator does not know the job.`);
  const { states, triggers } = await coordinator.snapshot([name], instanceId);
  const pending = triggers.find((trigger) => trigger.id === taskTriggerId(taskId));
  if (!pending) throw new Error(`Task ${taskId} of job "${name}" is not pending after its dispatch (another replica took it?).`);
  const [result] = await coordinator.claim([{ name, rev: states[0].rev, next: null, member: pending.member }], instanceId, lockTtl);
  if (result.status !== 'claimed') throw new Error(`Task ${taskId} of job "${name}" was not claimed: ${JSON.stringify(result)}.`);
  return result;
}

/**
 * Registers an on-demand job as `instanceId` alone declares it: an app that does not declare the
 * job never claims its tasks, so a task lease `leaseTask` takes for `instanceId` (a replica that
 * never answers: no run, no renewal, no reaction to a stop) stays its own.
 */
export async function registerElsewhere(coordinator: Coordinator, name: string, instanceId: string): Promise<void> {
  const definition = { spec: null, overlap: 'skip' as const, paused: false };
  await coordinator.register([{ name, definition, definitionHash: JSON.stringify(definition), first: null }], 'boot', instanceId);
}
