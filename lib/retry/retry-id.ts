/**
 * A pending retry is a pending trigger of its job (see ARCHITECTURE, "Retries"): its member's id
 * says which attempt it starts, the due time it serves, the fencing token of the run's first
 * attempt (where its records are), and the task it runs, if any. `claim.lua` and `finish.lua`
 * read and write the same form.
 */
export interface RetryId {
  /** The attempt the retry starts (2 for the first retry). */
  attempt: number;
  /** The due time (or request time) the run serves: every attempt has the first one's `scheduledAt`. */
  scheduledAt: number;
  /** The fencing token of the first attempt. */
  firstFencingToken: number;
  /** For a task's retry: the task. */
  taskId: number | null;
}

const PATTERN = /^retry:(\d+):(-?\d+):(\d+):(\d*)$/;

export function retryId(retry: RetryId): string {
  return `retry:${retry.attempt}:${retry.scheduledAt}:${retry.firstFencingToken}:${retry.taskId ?? ''}`;
}

/** The retry a trigger id names, or null for any other trigger. */
export function parseRetryId(id: string): RetryId | null {
  const match = PATTERN.exec(id);
  if (!match) return null;
  return { attempt: Number(match[1]), scheduledAt: Number(match[2]), firstFencingToken: Number(match[3]), taskId: match[4] === '' ? null : Number(match[4]) };
}
