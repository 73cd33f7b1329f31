import { parseRetryId } from '../retry/retry-id';

/**
 * A dispatched task is a pending trigger of its job (see ARCHITECTURE, "Task dispatch"), with
 * trigger `EVENT` and this id: `dispatch.lua` writes it, `claim.lua` and `stop-task.lua` read it.
 */
export function taskTriggerId(taskId: number): string {
  return `task:${taskId}`;
}

const PATTERN = /^task:(\d+)$/;

/** The task a dispatched task's trigger id names, or null for any other trigger. */
export function parseTaskTriggerId(id: string): number | null {
  const match = PATTERN.exec(id);
  return match ? Number(match[1]) : null;
}

/** The task a trigger runs, first attempt (`task:<id>`) or retry (`retry:…:<id>`); null for a run of the job itself. */
export function taskOfTrigger(id: string): number | null {
  return parseTaskTriggerId(id) ?? parseRetryId(id)?.taskId ?? null;
}
